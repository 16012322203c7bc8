/*
 * confab browser UI, built on confab-client.js (Protocol v1, `confab.v1`).
 *
 * The protocol work — login and re-login, reconnect with backoff, rejoin with
 * recovery, the outbox of unacknowledged sends, deduplication — lives in
 * confab-client.js. This file only turns its events into DOM and user actions
 * into calls. All user-provided text is rendered with textContent only.
 *
 * Stable hooks for tests and styling (keep them):
 *   #login-screen #login-form #username #login-button #login-error
 *   #chat                       the chat screen (hidden until logged in)
 *   #status[data-state]         connecting | connected | reconnecting | disconnected
 *   #whoami #logout-button
 *   #sidebar-toggle[aria-expanded]  opens the sidebar on narrow screens; #sidebar
 *   #sidebar-close              closes it again (narrow screens only)
 *   #total-unread               unread count of all rooms, on the toggle
 *   #room-form #room-input #join-button   join (or switch to) a room
 *   #quick-rooms button[data-room]
 *   #rooms .room[data-room][data-state=joining|joined][aria-current]
 *        .room-button (switch)  .unread (count; hidden when 0)  .leave-button
 *   #room-name                  the active room
 *   #members .member[data-user] users online in the active room; #member-count
 *   #older-button               loads earlier messages (also on scroll to the top)
 *   #messages                   the active room's messages, in id order:
 *        .message[data-id][data-state=sending|sent|failed][data-from] (.mine when own)
 *           .from .time .text .state     pending sends have no data-id until acked
 *        .system                 notes such as "some messages could not be recovered"
 *   #typing                     "alice is typing…", cleared ~3 s after the last notice
 *   #chat-error                 the last error, in words
 *   #message-input #send-button (Enter sends)
 *
 * sessionStorage: confab.username, confab.token, confab.rooms (JSON list), confab.active.
 */
import { ConfabClient, byteLength, isValidRoom } from "./confab-client.js";

const DEFAULT_ROOM = "general";
const PAGE = 50;                 // messages per join and per history page
const MAX_RENDERED = 1000;       // per room; older ones are dropped (and can be reloaded)
const MAX_MESSAGE_BYTES = 3900;  // the frame, with its JSON envelope, must fit in 4096
const TYPING_SHOWN_MS = 3000;
const NEAR_BOTTOM_PX = 48;
const NEAR_TOP_PX = 60;
const KEY_USER = "confab.username";
const KEY_TOKEN = "confab.token";
const KEY_ROOMS = "confab.rooms";
const KEY_ACTIVE = "confab.active";

const $ = (id) => document.getElementById(id);
const ui = {
  loginScreen: $("login-screen"), loginForm: $("login-form"), username: $("username"),
  loginButton: $("login-button"), loginError: $("login-error"), chat: $("chat"),
  sidebarToggle: $("sidebar-toggle"), sidebarClose: $("sidebar-close"), totalUnread: $("total-unread"), sidebar: $("sidebar"),
  roomName: $("room-name"), whoami: $("whoami"), status: $("status"), logoutButton: $("logout-button"),
  roomForm: $("room-form"), roomInput: $("room-input"), quickRooms: $("quick-rooms"),
  rooms: $("rooms"), noRooms: $("no-rooms"), members: $("members"), memberCount: $("member-count"),
  olderButton: $("older-button"), messages: $("messages"), typing: $("typing"),
  chatError: $("chat-error"), messageForm: $("message-form"), messageInput: $("message-input"),
  sendButton: $("send-button"),
};

/**
 * One joined room on screen.
 * @typedef {object} RoomView
 * @property {string} name
 * @property {HTMLElement} log        its messages (inside #messages while active)
 * @property {HTMLElement} item       its entry in #rooms
 * @property {Map<number, HTMLElement>} byId   message id → element
 * @property {Map<string, HTMLElement>} pending  send id → element not yet acked
 * @property {boolean} hasMore        older messages can be loaded
 * @property {boolean} loadingOlder
 * @property {number} unread
 * @property {Map<string, true>} members
 * @property {number} count
 * @property {Map<string, number>} typing  user → timer that clears them
 * @property {number|null} scrollTop  saved while another room is shown (null: at the bottom)
 */

/** @type {ConfabClient|null} */
let client = null;
/** @type {Map<string, RoomView>} */
const views = new Map();
let active = "";
let statusTimer = 0;
let loginBusy = false;

/* ------------------------------------------------------------ helpers */

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function parseDate(value) {
  const date = typeof value === "string" && value ? new Date(value) : new Date(NaN);
  return Number.isNaN(date.getTime()) ? new Date() : date;
}

function formatTime(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function validateUsername(name) {
  const length = [...name].length;
  if (length < 1) return "Please enter a username.";
  if (length > 32) return "Usernames can be at most 32 characters.";
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return "Usernames cannot contain control characters.";
  return "";
}

function validateRoom(name) {
  if (!name) return "Please enter a room name.";
  if (byteLength(name) > 64) return "Room names can be at most 64 characters.";
  if (!isValidRoom(name)) return "Room names may only use letters, digits and _ . : -";
  return "";
}

function storeRooms() {
  sessionStorage.setItem(KEY_ROOMS, JSON.stringify([...views.keys()]));
  if (active) sessionStorage.setItem(KEY_ACTIVE, active);
  else sessionStorage.removeItem(KEY_ACTIVE);
}

function storedRooms() {
  try {
    const list = JSON.parse(sessionStorage.getItem(KEY_ROOMS) ?? "null");
    if (Array.isArray(list)) return list.filter(isValidRoom);
  } catch { /* ignore */ }
  return null;
}

function isNarrow() {
  return window.matchMedia("(max-width: 760px)").matches;
}

/* ------------------------------------------------------------- screens */

function showLogin(message) {
  ui.chat.hidden = true;
  ui.loginScreen.hidden = false;
  ui.loginError.textContent = message || "";
  if (message) ui.username.setAttribute("aria-invalid", "true");
  else ui.username.removeAttribute("aria-invalid");
  ui.username.focus();
}

function showChat() {
  ui.loginScreen.hidden = true;
  ui.loginError.textContent = "";
  ui.chat.hidden = false;
  ui.whoami.textContent = client.username;
}

function setLoginBusy(busy) {
  loginBusy = busy;
  ui.loginButton.disabled = busy;
  ui.loginButton.textContent = busy ? "Logging in…" : "Log in";
}

function showChatError(text, input) {
  ui.chatError.textContent = text;
  ui.roomInput.removeAttribute("aria-invalid");
  ui.messageInput.removeAttribute("aria-invalid");
  if (text && input) input.setAttribute("aria-invalid", "true");
}

function setStatus(state, text) {
  if (ui.status.dataset.state !== state) ui.status.dataset.state = state;
  if (ui.status.textContent !== text) ui.status.textContent = text;
}

function onState({ state, retryAt }) {
  clearInterval(statusTimer);
  statusTimer = 0;
  if (state === "connected") {
    setStatus("connected", "connected");
    if (ui.chatError.dataset.kind === "connection") {
      showChatError("");
      delete ui.chatError.dataset.kind;
    }
  } else if (state === "connecting") {
    setStatus("connecting", "connecting…");
  } else if (state === "reconnecting") {
    const tick = () => {
      const seconds = Math.max(1, Math.ceil((retryAt - Date.now()) / 1000));
      setStatus("reconnecting", `reconnecting in ${seconds}s…`);
    };
    tick();
    statusTimer = setInterval(tick, 250);
  } else {
    setStatus("disconnected", "offline");
  }
}

/* ----------------------------------------------------------- rooms */

/** @returns {RoomView} */
function ensureView(name) {
  let view = views.get(name);
  if (view) return view;
  const item = el("li", "room");
  item.dataset.room = name;
  item.dataset.state = "joining";
  const button = el("button", "room-button");
  button.type = "button";
  button.append(el("span", "room-label", `#${name}`));
  const unread = el("span", "unread");
  unread.hidden = true;
  button.append(unread);
  const leave = el("button", "leave-button", "×");
  leave.type = "button";
  leave.setAttribute("aria-label", `Leave #${name}`);
  leave.title = `Leave #${name}`;
  item.append(button, leave);
  ui.rooms.append(item);
  const log = el("div", "room-log");
  log.dataset.room = name;
  view = {
    name, log, item, byId: new Map(), pending: new Map(), hasMore: false, loadingOlder: false,
    unread: 0, members: new Map(), count: 0, typing: new Map(), scrollTop: null,
  };
  views.set(name, view);
  ui.noRooms.hidden = true;
  return view;
}

function removeView(name) {
  const view = views.get(name);
  if (!view) return false;
  views.delete(name);
  view.item.remove();
  for (const timer of view.typing.values()) clearTimeout(timer);
  ui.noRooms.hidden = views.size > 0;
  if (active === name) switchTo(views.keys().next().value ?? "");
  updateTotalUnread();
  storeRooms();
  return true;
}

function switchTo(name) {
  const previous = views.get(active);
  if (previous && previous.name !== name) {
    const list = ui.messages;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight <= NEAR_BOTTOM_PX;
    previous.scrollTop = atBottom ? null : list.scrollTop;
  }
  active = name;
  const view = views.get(name);
  for (const v of views.values()) {
    if (v === view) v.item.setAttribute("aria-current", "true");
    else v.item.removeAttribute("aria-current");
  }
  ui.messages.setAttribute("aria-busy", "true");
  ui.messages.replaceChildren(...(view ? [view.log] : []));
  ui.messages.removeAttribute("aria-busy");
  ui.roomName.textContent = name;
  ui.messageInput.disabled = !view;
  ui.sendButton.disabled = !view;
  ui.messageInput.placeholder = view ? `Message #${name}` : "Join a room to chat";
  for (const btn of ui.quickRooms.querySelectorAll("button[data-room]")) {
    btn.setAttribute("aria-pressed", String(btn.dataset.room === name));
  }
  if (view) {
    view.unread = 0;
    renderUnread(view);
    if (view.scrollTop === null) scrollToBottom();
    else ui.messages.scrollTop = view.scrollTop;
  }
  renderMembers();
  renderTyping();
  renderOlderButton();
  updateTotalUnread();
  storeRooms();
}

function joinRoom(rawName, { focus = true } = {}) {
  const name = rawName.trim();
  const problem = validateRoom(name);
  if (problem) {
    showChatError(problem, ui.roomInput);
    ui.roomInput.focus();
    return;
  }
  showChatError("");
  ui.roomInput.value = "";
  if (!views.has(name)) {
    ensureView(name);
    client.join(name, { limit: PAGE }).catch((err) => {
      if (err.code !== "closed" && err.code !== "left" && removeView(name)) {
        showChatError(`Could not join #${name}: ${err.message}`);
      }
    });
  }
  switchTo(name);
  closeSidebar();
  if (focus) ui.messageInput.focus();
}

function leaveRoom(name) {
  client.leave(name).catch(() => {});
  removeView(name); // also done by the "left" event; whichever comes first
}

function renderUnread(view) {
  const badge = view.item.querySelector(".unread");
  badge.textContent = view.unread ? String(view.unread) : "";
  badge.hidden = view.unread === 0;
  const label = view.unread ? `#${view.name}, ${view.unread} unread` : `#${view.name}`;
  view.item.querySelector(".room-button").setAttribute("aria-label", label);
}

function updateTotalUnread() {
  let total = 0;
  for (const v of views.values()) total += v.unread;
  ui.totalUnread.textContent = total ? String(total) : "";
  ui.totalUnread.hidden = total === 0;
  document.title = `${total ? `(${total}) ` : ""}${active ? `#${active} · ` : ""}confab`;
}

/* --------------------------------------------------------- members */

function renderMembers() {
  const view = views.get(active);
  const names = view ? [...view.members.keys()].sort((a, b) => a.localeCompare(b)) : [];
  const items = names.map((user) => {
    const li = el("li", "member", user);
    li.dataset.user = user;
    if (client && user === client.username) li.append(el("span", "you", " (you)"));
    return li;
  });
  if (view && view.count > names.length) items.push(el("li", "more", `and ${view.count - names.length} more`));
  ui.members.replaceChildren(...items);
  ui.memberCount.textContent = view ? `(${Math.max(view.count, names.length)})` : "";
}

/* ---------------------------------------------------------- typing */

function renderTyping() {
  const view = views.get(active);
  const names = view ? [...view.typing.keys()] : [];
  let text = "";
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) text = "Several people are typing…";
  if (ui.typing.textContent !== text) ui.typing.textContent = text;
}

function stopTyping(view, user) {
  const timer = view.typing.get(user);
  if (timer === undefined) return;
  clearTimeout(timer);
  view.typing.delete(user);
  if (view.name === active) renderTyping();
}

/* -------------------------------------------------------- messages */

function nearBottom() {
  const list = ui.messages;
  return list.scrollHeight - list.scrollTop - list.clientHeight <= NEAR_BOTTOM_PX;
}

function scrollToBottom() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function setTime(node, sent) {
  const date = parseDate(sent);
  const time = node.querySelector(".time");
  time.textContent = formatTime(date);
  time.dateTime = date.toISOString();
  time.title = date.toLocaleString();
}

function setState(node, state, detail = "") {
  node.dataset.state = state;
  const label = node.querySelector(".state");
  if (!label) return;
  label.textContent = state === "sending" ? (detail || "sending…")
    : state === "failed" ? `not sent${detail ? `: ${detail}` : ""}` : "sent";
}

/** A message element; `clientId` marks an own send not acked yet. */
function renderMessage({ id, from, message, sent }, clientId) {
  const mine = client && from === client.username;
  const node = el("div", "message");
  node.dataset.from = from;
  if (id !== undefined) node.dataset.id = String(id);
  if (mine) node.classList.add("mine");
  const time = el("time", "time");
  node.append(el("span", "from", from || "unknown"), time);
  if (mine) node.append(el("span", "state"));
  node.append(el("span", "text", message));
  setTime(node, sent);
  if (clientId) {
    node.classList.add("pending");
    node.dataset.clientId = clientId;
    setState(node, "sending");
  } else {
    setState(node, "sent");
  }
  return node;
}

/**
 * Puts a message with an id in id order: after the last message with a
 * smaller id (or a system note), before the pending sends at the end.
 */
function placeMessage(view, node, id) {
  let ref = view.log.lastElementChild;
  while (ref && ref.classList.contains("pending")) ref = ref.previousElementSibling;
  while (ref && ref.classList.contains("message") && Number(ref.dataset.id) > id) ref = ref.previousElementSibling;
  if (ref) ref.after(node);
  else view.log.prepend(node);
}

function trim(view) {
  const all = view.log.querySelectorAll(".message[data-id]");
  for (let i = 0; i < all.length - MAX_RENDERED; i++) {
    view.byId.delete(Number(all[i].dataset.id));
    all[i].remove();
    view.hasMore = true;
  }
}

function addSystem(view, text) {
  const node = el("div", "system", text);
  view.log.append(node);
  for (const p of view.pending.values()) view.log.append(p); // pending sends stay last
}

/** Shows a message once: a second copy (same room and id) only updates the first. */
function showMessage(m) {
  const view = views.get(m.room);
  if (!view) return;
  const isActive = view.name === active;
  const stick = isActive && nearBottom();
  if (m.from) stopTyping(view, m.from);
  if (m.id !== undefined && view.byId.has(m.id)) return;
  let node = m.clientId ? view.pending.get(m.clientId) : undefined;
  if (node) {
    view.pending.delete(m.clientId);
    node.classList.remove("pending");
    node.dataset.id = String(m.id);
    setTime(node, m.sent);
    setState(node, "sent");
    node.remove();
  } else {
    node = renderMessage(m);
  }
  if (m.id !== undefined) {
    view.byId.set(m.id, node);
    placeMessage(view, node, m.id);
  } else {
    view.log.append(node);
    for (const p of view.pending.values()) view.log.append(p);
  }
  if (m.source !== "history" && !m.mine && !isActive) {
    view.unread += 1;
    renderUnread(view);
    updateTotalUnread();
  }
  trim(view);
  if (stick) scrollToBottom();
}

function onAck({ id, room, messageId, sent }) {
  const view = views.get(room);
  const node = view?.pending.get(id);
  if (!node) return;
  view.pending.delete(id);
  const existing = messageId !== undefined ? view.byId.get(messageId) : undefined;
  if (existing) {
    node.remove(); // its echo is already on screen
    return;
  }
  const stick = room === active && nearBottom();
  node.classList.remove("pending");
  setTime(node, sent);
  setState(node, "sent");
  node.remove();
  if (messageId === undefined) {
    view.log.append(node);
  } else {
    node.dataset.id = String(messageId);
    view.byId.set(messageId, node);
    placeMessage(view, node, messageId);
  }
  if (stick) scrollToBottom();
}

function onDelivery(d) {
  const node = views.get(d.room)?.pending.get(d.id);
  if (!node) return;
  if (d.state === "failed") {
    views.get(d.room).pending.delete(d.id);
    node.classList.remove("pending");
    setState(node, "failed", d.error?.message ?? "");
    node.title = d.error?.message ?? "";
    if (d.error && d.error.code !== "left" && d.error.code !== "closed") {
      showChatError(`Your message was not sent: ${d.error.message}`);
    }
  } else if (d.state === "sending") {
    setState(node, "sending", d.retryIn !== undefined ? "sending… (retrying)" : "");
  }
}

function onJoined(info) {
  const view = views.get(info.room);
  if (!view) return;
  view.item.dataset.state = "joined";
  if (info.reset) {
    for (const node of [...view.log.children]) if (!node.classList.contains("pending")) node.remove();
    view.byId.clear();
    if (info.rejoin) addSystem(view, "The room's history was reset on the server; showing it afresh.");
  } else if (info.gap) {
    addSystem(view, "Some messages sent while you were away could not be recovered.");
  }
  if (!info.rejoin || info.reset) {
    const oldest = info.messages.find((m) => m.id !== undefined)?.id;
    view.hasMore = info.messages.length >= PAGE && oldest !== undefined && oldest > 1;
  }
  view.members = new Map(info.members.map((m) => [m.user, true]));
  view.count = info.count;
  if (view.name === active) {
    renderMembers();
    renderOlderButton();
  }
}

function onPresence({ room, user, action, count }) {
  const view = views.get(room);
  if (!view) return;
  if (action === "join") view.members.set(user, true);
  else view.members.delete(user);
  if (action === "leave") stopTyping(view, user);
  view.count = count;
  if (room === active) renderMembers();
}

function onTyping({ room, user }) {
  const view = views.get(room);
  if (!view || user === client.username) return;
  clearTimeout(view.typing.get(user));
  view.typing.set(user, setTimeout(() => stopTyping(view, user), TYPING_SHOWN_MS));
  if (room === active) renderTyping();
}

function onLeft({ room, error }) {
  if (removeView(room) && error) showChatError(`You are no longer in #${room}: ${error.message}`);
}

function onError(err) {
  if (err.fatal) {
    logout(`Please log in again: ${err.message}`);
    return;
  }
  if (err.code === "gap") {
    console.warn(`confab: ${err.message}`);
    return;
  }
  if (err.code === "network" || err.code === "disconnected") {
    showChatError(`${err.message} Retrying…`);
    ui.chatError.dataset.kind = "connection";
    return;
  }
  const where = err.room ? ` (#${err.room})` : "";
  showChatError(`${err.message}${where}`);
}

/* ------------------------------------------------------ history */

function renderOlderButton() {
  const view = views.get(active);
  ui.olderButton.hidden = !view || !view.hasMore;
  ui.olderButton.disabled = Boolean(view?.loadingOlder);
  ui.olderButton.textContent = view?.loadingOlder ? "Loading…" : "Load earlier messages";
}

async function loadOlder(view) {
  if (!view || !view.hasMore || view.loadingOlder || !client) return;
  const first = view.log.querySelector(".message[data-id]");
  const before = first ? Number(first.dataset.id) : undefined;
  if (before === undefined || before <= 1) {
    view.hasMore = false;
    renderOlderButton();
    return;
  }
  view.loadingOlder = true;
  renderOlderButton();
  try {
    const res = await client.history(view.name, { before, limit: PAGE });
    if (views.get(view.name) !== view) return;
    const isActive = view.name === active;
    const height = ui.messages.scrollHeight;
    const top = ui.messages.scrollTop;
    for (const m of res.messages) {
      if (m.id === undefined || view.byId.has(m.id)) continue;
      const node = renderMessage(m);
      view.byId.set(m.id, node);
      placeMessage(view, node, m.id);
    }
    view.hasMore = res.hasMore && res.messages.length > 0;
    if (isActive) ui.messages.scrollTop = top + (ui.messages.scrollHeight - height);
  } catch (err) {
    if (err.code !== "disconnected") showChatError(`Could not load earlier messages: ${err.message}`);
  } finally {
    view.loadingOlder = false;
    if (view.name === active) renderOlderButton();
  }
}

/* -------------------------------------------------------- actions */

function sendMessage() {
  const view = views.get(active);
  const text = ui.messageInput.value.trim();
  if (!view || !client) return;
  if (!text) {
    showChatError("Type a message first.", ui.messageInput);
    return;
  }
  const bytes = byteLength(JSON.stringify(text));
  if (bytes > MAX_MESSAGE_BYTES) {
    showChatError(`Message is too long (${bytes} bytes once encoded; at most ${MAX_MESSAGE_BYTES}).`,
      ui.messageInput);
    return;
  }
  showChatError("");
  const id = client.newId();
  const node = renderMessage({ from: client.username, message: text, sent: new Date().toISOString() }, id);
  view.pending.set(id, node);
  view.log.append(node);
  ui.messageInput.value = "";
  scrollToBottom();
  client.send(view.name, text, { id }).catch(() => { /* shown by the "delivery" event */ });
}

function openSidebar() {
  ui.chat.classList.add("sidebar-open");
  ui.sidebarToggle.setAttribute("aria-expanded", "true");
  ui.roomInput.focus();
}

function closeSidebar() {
  if (!ui.chat.classList.contains("sidebar-open")) return;
  ui.chat.classList.remove("sidebar-open");
  ui.sidebarToggle.setAttribute("aria-expanded", "false");
}

/* --------------------------------------------------------- session */

function createClient(options) {
  const c = new ConfabClient({ baseUrl: location.origin, ...options });
  c.on("state", onState);
  c.on("message", showMessage);
  c.on("ack", onAck);
  c.on("delivery", onDelivery);
  c.on("joined", onJoined);
  c.on("presence", onPresence);
  c.on("typing", onTyping);
  c.on("left", onLeft);
  c.on("error", onError);
  c.on("token", ({ token, username }) => {
    sessionStorage.setItem(KEY_USER, username);
    sessionStorage.setItem(KEY_TOKEN, token);
  });
  return c;
}

async function performLogin(rawName) {
  if (loginBusy) return;
  const name = rawName.trim();
  const problem = validateUsername(name);
  if (problem) {
    showLogin(problem);
    return;
  }
  setLoginBusy(true);
  const c = createClient({ username: name });
  try {
    await c.login(name);
  } catch (err) {
    c.close();
    showLogin(err.code === "network" ? "Cannot reach the server. Please try again." : err.message);
    return;
  } finally {
    setLoginBusy(false);
  }
  startSession(c);
}

function startSession(c) {
  client = c;
  sessionStorage.setItem(KEY_USER, c.username);
  showChat();
  const rooms = storedRooms() ?? [DEFAULT_ROOM];
  const wanted = sessionStorage.getItem(KEY_ACTIVE);
  for (const name of rooms) joinRoom(name, { focus: false });
  if (wanted && views.has(wanted)) switchTo(wanted);
  ui.messageInput.focus();
  c.connect().catch(() => { /* reported by the "error" event */ });
}

function logout(message = "") {
  const c = client;
  client = null;
  c?.close();
  clearInterval(statusTimer);
  for (const name of [...views.keys()]) removeView(name);
  for (const key of [KEY_USER, KEY_TOKEN, KEY_ROOMS, KEY_ACTIVE]) sessionStorage.removeItem(key);
  setStatus("disconnected", "disconnected");
  showChatError("");
  ui.typing.textContent = "";
  ui.username.value = "";
  closeSidebar();
  showLogin(message);
}

/* ---------------------------------------------------------- wiring */

function bindEvents() {
  ui.loginForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    performLogin(ui.username.value);
  });
  ui.roomForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    joinRoom(ui.roomInput.value);
  });
  ui.quickRooms.addEventListener("click", (ev) => {
    const btn = ev.target.closest("button[data-room]");
    if (btn) joinRoom(btn.dataset.room);
  });
  ui.rooms.addEventListener("click", (ev) => {
    const item = ev.target.closest(".room[data-room]");
    if (!item) return;
    if (ev.target.closest(".leave-button")) {
      leaveRoom(item.dataset.room);
      (ui.rooms.querySelector(".room-button") ?? ui.roomInput).focus();
    } else if (ev.target.closest(".room-button")) {
      switchTo(item.dataset.room);
      closeSidebar();
      ui.messageInput.focus();
    }
  });
  ui.messageForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    sendMessage();
  });
  ui.messageInput.addEventListener("input", () => {
    if (ui.messageInput.hasAttribute("aria-invalid")) showChatError("");
    if (client && active && ui.messageInput.value.trim()) client.typing(active);
  });
  ui.roomInput.addEventListener("input", () => {
    if (ui.roomInput.hasAttribute("aria-invalid")) showChatError("");
  });
  ui.messages.addEventListener("scroll", () => {
    if (ui.messages.scrollTop < NEAR_TOP_PX) loadOlder(views.get(active));
  }, { passive: true });
  ui.olderButton.addEventListener("click", () => loadOlder(views.get(active)));
  ui.logoutButton.addEventListener("click", () => logout());
  ui.sidebarToggle.addEventListener("click", () => {
    if (ui.chat.classList.contains("sidebar-open")) closeSidebar();
    else openSidebar();
  });
  ui.sidebarClose.addEventListener("click", () => {
    closeSidebar();
    ui.sidebarToggle.focus();
  });
  document.addEventListener("click", (ev) => {
    // On a phone, a tap beside the open drawer closes it.
    if (ui.chat.classList.contains("sidebar-open") && isNarrow() &&
        !ui.sidebar.contains(ev.target) && !ui.sidebarToggle.contains(ev.target)) closeSidebar();
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && ui.chat.classList.contains("sidebar-open") && isNarrow()) {
      closeSidebar();
      ui.sidebarToggle.focus();
    }
  });
}

function boot() {
  bindEvents();
  const username = sessionStorage.getItem(KEY_USER);
  const token = sessionStorage.getItem(KEY_TOKEN);
  if (username && token) {
    // The client logs in again by itself if the token has expired meanwhile.
    startSession(createClient({ username, token }));
    return;
  }
  showLogin("");
}

boot();
