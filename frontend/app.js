/*
 * confab browser UI, built on confab-client.js (Protocol v1, `confab.v1`).
 *
 * The protocol work — login and re-login, reconnect with backoff, rejoin with
 * recovery, the outbox of unacknowledged sends, deduplication — lives in
 * confab-client.js. The UI only turns its events into DOM and user actions
 * into calls. All user-provided text is rendered with textContent only.
 *
 * This file is the entry point (index.html loads it as an ES module): the
 * session (login, the client and its listeners, logout), the user's actions
 * (join, leave, send) and the wiring of the page. Its parts:
 *  - dom.js: the page's elements, small helpers, the two error lines;
 *  - current.js: the client of the session on screen;
 *  - room-views.js: the rooms, the room on screen, unread counts, members;
 *  - message-view.js: a room's messages: rendering, order, scrolling, trimming;
 *  - chat-events.js: the client's events turned into DOM; loading earlier messages;
 *  - drawer.js: the sidebar as a drawer on narrow screens;
 *  - status.js: the connection status line;
 *  - announcer.js: what screen readers hear of the conversation.
 *
 * Stable hooks for tests and styling (keep them):
 *   #login-screen #login-form #username #login-button #login-error
 *   #chat                       the chat screen (hidden until logged in)
 *   #status[data-state]         connecting | connected | reconnecting | disconnected
 *        .status-text (announced) .status-seconds (the countdown, aria-hidden)
 *   #whoami #logout-button
 *   #sidebar-toggle[aria-expanded]  opens the sidebar on narrow screens; #sidebar
 *   #sidebar-close              closes it again (narrow screens only)
 *   #total-unread               unread count of all rooms, on the toggle
 *   #room-form #room-input #join-button   join (or switch to) a room
 *   #room-error                 what is wrong with the room name typed
 *   #quick-rooms button[data-room]
 *   #rooms .room[data-room][data-state=joining|joined][aria-current]
 *        .room-button (switch)  .unread (count; hidden when 0)  .leave-button
 *   #room-name                  the active room
 *   #members .member[data-user] users online in the active room; #member-count
 *   #older-button               loads earlier messages (also on scroll to the top)
 *   #messages                   the active room's messages, in id order (not a live region):
 *        .message[data-id][data-state=sending|sent|failed][data-from] (.mine when own)
 *           .from .time .text .state     pending sends have no data-id until acked
 *        .system                 notes such as "some messages could not be recovered"
 *   #announcer                  visually hidden live region: "user: message" of others, and the
 *                               .system notes of the room on screen
 *   #typing                     "alice is typing…", cleared ~3 s after the last notice
 *   #chat-error                 the last error, in words
 *   #message-input #send-button (Enter sends)
 *
 * sessionStorage: confab.username, confab.token, confab.rooms (JSON list), confab.active.
 * While the client's outbox holds sends, #logout-button asks with confirm() and a reload or
 * a closed tab is held by the browser (beforeunload): the outbox does not outlive the page.
 */
import { ConfabClient, byteLength, isValidRoom } from "./confab-client.js";
import { ui, isNarrow, showChatError, showRoomError } from "./dom.js";
import { current } from "./current.js";
import { clearAnnouncements } from "./announcer.js";
import { showLoggedOut, showState } from "./status.js";
import { bindDrawer, closeDrawer } from "./drawer.js";
import { renderMessage, scrollToBottom, nearBottom } from "./message-view.js";
import {
  views, activeView, boundRoom, ensureView, removeView, removeAllViews, switchTo, seenActive, storedRooms,
} from "./room-views.js";
import {
  PAGE, onMessage, onAck, onDelivery, onJoined, onPresence, onTyping, onLeft, onError, onConnected,
  failPending, loadOlder,
} from "./chat-events.js";

const DEFAULT_ROOM = "general";
const MAX_MESSAGE_BYTES = 3900;  // the frame, with its JSON envelope, must fit in 4096
const NEAR_TOP_PX = 60;
const KEY_USER = "confab.username";
const KEY_TOKEN = "confab.token";

let loginBusy = false;

/* ------------------------------------------------------------ checks */

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

/** What the server (and client.send) would refuse, said before anything is shown as sending. */
function validateMessage(text) {
  if (!text) return "Type a message first.";
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(text)) {
    return "Messages cannot contain control characters (tabs and line breaks are fine).";
  }
  const bytes = byteLength(JSON.stringify(text));
  if (bytes > MAX_MESSAGE_BYTES) return `Message is too long (${bytes} bytes once encoded; at most ${MAX_MESSAGE_BYTES}).`;
  return "";
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
  ui.whoami.textContent = current.client.username;
}

function setLoginBusy(busy) {
  loginBusy = busy;
  ui.loginButton.disabled = busy;
  ui.loginButton.textContent = busy ? "Logging in…" : "Log in";
}

/* -------------------------------------------------------- actions */

function joinRoom(rawName, { focus = true } = {}) {
  const client = current.client;
  const name = rawName.trim();
  const problem = validateRoom(name);
  if (problem) {
    showRoomError(problem);
    ui.roomInput.focus();
    return;
  }
  showRoomError("");
  showChatError("");
  ui.roomInput.value = "";
  if (!views.has(name)) {
    ensureView(name);
    client.join(name, { limit: PAGE }).then((info) => {
      // A room the client is in already brings no `joined` event: it is
      // drawn from what the client knows (its messages load as earlier ones).
      if (current.client === client && views.get(name)?.item.dataset.state === "joining") onJoined(info);
    }, (err) => {
      if (err.code !== "closed" && err.code !== "left" && current.client === client && removeView(name)) {
        showChatError(`Could not join #${name}: ${err.message}`);
      }
    });
  }
  switchTo(name);
  closeDrawer();
  if (focus) ui.messageInput.focus();
}

function leaveRoom(name) {
  current.client?.leave(name).catch(() => {});
  removeView(name); // also done by the "left" event; whichever comes first
  // Focus stays in the sidebar (the drawer stays open on a phone); a phone
  // gets no text field, whose keyboard would cover the screen.
  const next = ui.rooms.querySelector('.room[aria-current="true"] .room-button')
    ?? (isNarrow() ? ui.quickRooms.querySelector("button") : ui.roomInput);
  next.focus();
}

function sendMessage() {
  const client = current.client;
  const view = activeView();
  const text = ui.messageInput.value.trim();
  if (!view || !client) return;
  const problem = validateMessage(text);
  if (problem) {
    showChatError(problem, ui.messageInput);
    return;
  }
  showChatError("");
  const id = client.newId();
  const node = renderMessage({ from: client.username, message: text, sent: new Date().toISOString() }, id);
  view.pending.set(id, node);
  view.log.append(node);
  ui.messageInput.value = "";
  scrollToBottom();
  // A refusal through the outbox was shown by its `delivery` event already
  // (then this finds nothing pending); one before it (send() rejects at
  // once, no `delivery` follows) is shown here.
  client.send(view.name, text, { id }).catch((err) => failPending(view, id, err));
}

/* --------------------------------------------------------- session */

/** How many sends the session still holds unacknowledged: lost if it ends now. */
function unsent() {
  return current.client?.outbox.length ?? 0;
}

/** Asks before a logout that would drop unsent messages; true: go ahead. */
function confirmLogout() {
  const n = unsent();
  if (!n) return true;
  const what = n === 1 ? "1 message has" : `${n} messages have`;
  return window.confirm(`${what} not been sent yet and will be lost if you log out now. Log out anyway?`);
}

/**
 * The outbox lives in the page: a reload or a closed tab drops its sends,
 * so the browser asks first, in its own words (it shows no text of ours).
 */
function warnBeforeUnload(ev) {
  if (!unsent()) return;
  ev.preventDefault();
  ev.returnValue = true; // what browsers before 2024 look for: any non-empty value
}

/** Each client's unsubscribe functions (what `on()` returned). */
const subscriptions = new WeakMap();

function createClient(options) {
  const c = new ConfabClient({ baseUrl: location.origin, ...options });
  subscriptions.set(c, [
    c.on("state", (s) => {
      showState(s);
      if (s.state === "connected") onConnected();
    }),
    c.on("message", onMessage),
    c.on("ack", onAck),
    c.on("delivery", onDelivery),
    c.on("joined", onJoined),
    c.on("presence", onPresence),
    c.on("typing", onTyping),
    c.on("left", onLeft),
    c.on("error", (err) => {
      if (err.fatal) logout(`Please log in again: ${err.message}`);
      else onError(err);
    }),
    c.on("token", ({ token, username }) => {
      sessionStorage.setItem(KEY_USER, username);
      sessionStorage.setItem(KEY_TOKEN, token);
    }),
  ]);
  return c;
}

/**
 * Ends a client for good. Its listeners go first: close() does not stop a
 * login already under way, whose `token` event would otherwise store the
 * session again after a logout (and a reload would bring it back).
 */
function endClient(c) {
  for (const off of subscriptions.get(c) ?? []) off();
  subscriptions.delete(c);
  c.close();
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
    endClient(c);
    showLogin(err.code === "network" ? "Cannot reach the server. Please try again." : err.message);
    return;
  } finally {
    setLoginBusy(false);
  }
  startSession(c);
}

function startSession(c) {
  current.client = c;
  sessionStorage.setItem(KEY_USER, c.username);
  showChat();
  const { rooms, active } = storedRooms();
  for (const name of rooms ?? [DEFAULT_ROOM]) joinRoom(name, { focus: false });
  if (active && views.has(active)) switchTo(active);
  ui.messageInput.focus();
  c.connect().catch(() => { /* reported by the "error" event */ });
}

function logout(message = "") {
  const c = current.client;
  current.client = null;
  if (c) endClient(c);
  clearAnnouncements();
  removeAllViews();
  sessionStorage.removeItem(KEY_USER);
  sessionStorage.removeItem(KEY_TOKEN);
  showLoggedOut();
  showChatError("");
  showRoomError("");
  ui.username.value = "";
  closeDrawer();
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
    } else if (ev.target.closest(".room-button")) {
      switchTo(item.dataset.room);
      closeDrawer();
      ui.messageInput.focus();
    }
  });
  ui.messageForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    sendMessage();
  });
  ui.messageInput.addEventListener("input", () => {
    if (ui.messageInput.hasAttribute("aria-invalid")) showChatError("");
    const room = activeView()?.name;
    if (current.client && room && ui.messageInput.value.trim()) current.client.typing(room);
  });
  ui.roomInput.addEventListener("input", () => {
    if (ui.roomInput.hasAttribute("aria-invalid")) showRoomError("");
  });
  ui.messages.addEventListener("scroll", () => {
    if (ui.messages.scrollTop < NEAR_TOP_PX) loadOlder(activeView());
    else if (nearBottom() && activeView()) boundRoom(activeView(), true); // what came while the user read above
  }, { passive: true });
  ui.olderButton.addEventListener("click", () => loadOlder(activeView()));
  ui.logoutButton.addEventListener("click", () => {
    if (confirmLogout()) logout();
  });
  window.addEventListener("beforeunload", warnBeforeUnload);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) seenActive();
  });
  bindDrawer();
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
