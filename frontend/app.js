"use strict";
/*
 * confab browser client — "legacy" protocol (no WebSocket subprotocol).
 *
 * Protocol
 *   POST /login {"username"} -> 200 {"token","username"} | 4xx {"error"}
 *   WebSocket ws(s)://<host>/ws?token=<JWT>; a new connection starts in "general".
 *   client -> server  {"type":"send_message","payload":{"message","from"}}
 *                     {"type":"change_room","payload":{"name"}}
 *   server -> client  {"type":"new_message","payload":{"message","from","sent","room"?}}
 *   Any other event type is ignored; messages for another room are dropped.
 *
 * Reconnect policy
 *   Exponential backoff with full jitter: wait random(0, min(30 s, 500 ms * 2^n)).
 *   n resets once a connection has stayed open for 10 s. Before every attempt the
 *   JWT "exp" is checked and we POST /login again (same username) when it expires
 *   within 30 s, or when two consecutive attempts failed without opening (the token
 *   may have been rejected). After reconnecting, change_room is re-sent unless the
 *   room is "general". Logging out cancels everything; nothing reconnects after it.
 *
 * All user-provided text is rendered with textContent only.
 */
(() => {
  const DEFAULT_ROOM = "general";
  const ROOM_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
  const MAX_MESSAGE_BYTES = 3000; // messages must stay under this many UTF-8 bytes
  const MAX_FRAME_BYTES = 4000;   // the server closes with 1009 above 4096
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_CAP_MS = 30000;
  const STABLE_AFTER_MS = 10000;
  const TOKEN_MARGIN_S = 30;
  const MAX_RENDERED = 500;
  const NEAR_BOTTOM_PX = 48;
  const KEY_USER = "confab.username";
  const KEY_TOKEN = "confab.token";
  const CLOSE_REASONS = {
    1001: "the server is going away",
    1007: "the server received invalid UTF-8",
    1008: "policy violation (the connection may have been too slow)",
    1009: "a message was too big",
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    loginScreen: $("login-screen"), loginForm: $("login-form"), username: $("username"),
    loginButton: $("login-button"), loginError: $("login-error"), chat: $("chat"),
    roomName: $("room-name"), whoami: $("whoami"), roomForm: $("room-form"),
    roomInput: $("room-input"), quickRooms: $("quick-rooms"), messages: $("messages"),
    messageForm: $("message-form"), messageInput: $("message-input"), status: $("status"),
    logoutButton: $("logout-button"), chatError: $("chat-error"),
  };

  const encoder = new TextEncoder();
  const state = {
    session: 0,        // bumped on login/logout so stale async work can bail out
    username: "",
    token: "",
    room: DEFAULT_ROOM,
    ws: null,
    openedAt: 0,       // 0 until the current socket fires "open"
    attempt: 0,        // backoff exponent
    failedOpens: 0,    // consecutive attempts that never opened
    retryTimer: 0,
    countdownTimer: 0,
    loginBusy: false,
  };

  /* ---------- small helpers ---------- */

  const byteLength = (text) => encoder.encode(text).length;

  function decodeJwtPayload(token) {
    try {
      let b64 = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      b64 += "=".repeat((4 - (b64.length % 4)) % 4);
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return null;
    }
  }

  function tokenIsFresh(token) {
    const payload = token ? decodeJwtPayload(token) : null;
    return Boolean(payload) && typeof payload.exp === "number" &&
      payload.exp - TOKEN_MARGIN_S > Date.now() / 1000;
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
    if (!ROOM_RE.test(name)) return "Room names may only use letters, digits and _ . : -";
    return "";
  }

  function formatTime(date) {
    const pad = (n) => String(n).padStart(2, "0");
    return `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  }

  function parseDate(value) {
    const date = typeof value === "string" ? new Date(value) : new Date(NaN);
    return Number.isNaN(date.getTime()) ? new Date() : date;
  }

  /* ---------- login / session ---------- */

  class LoginError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  async function requestToken(username) {
    let res;
    try {
      res = await fetch("/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username }),
        cache: "no-store",
      });
    } catch {
      throw new LoginError("Cannot reach the server. Please try again.", 0);
    }
    const body = await res.json().catch(() => null);
    if (!res.ok) {
      const text = body && typeof body.error === "string" && body.error
        ? body.error : `Login failed (HTTP ${res.status}).`;
      throw new LoginError(text, res.status);
    }
    if (!body || typeof body.token !== "string") {
      throw new LoginError("The server sent an unexpected login response.", res.status);
    }
    const name = typeof body.username === "string" && body.username ? body.username : username;
    return { token: body.token, username: name };
  }

  function storeToken(token) {
    state.token = token;
    sessionStorage.setItem(KEY_TOKEN, token);
  }

  async function performLogin(rawName) {
    if (state.loginBusy) return;
    const name = rawName.trim();
    const problem = validateUsername(name);
    if (problem) {
      showLogin(problem);
      return;
    }
    setLoginBusy(true);
    try {
      const result = await requestToken(name);
      startSession(result.username, result.token);
    } catch (err) {
      showLogin(err.message);
    } finally {
      setLoginBusy(false);
    }
  }

  function startSession(username, token) {
    state.session += 1;
    state.username = username;
    state.room = DEFAULT_ROOM;
    state.attempt = 0;
    state.failedOpens = 0;
    sessionStorage.setItem(KEY_USER, username);
    storeToken(token);
    showChat();
    enterRoom(DEFAULT_ROOM);
    connect();
  }

  function logout(message = "") {
    state.session += 1;
    clearRetry();
    const ws = state.ws;
    state.ws = null;
    if (ws) ws.close(1000, "logout");
    sessionStorage.removeItem(KEY_USER);
    sessionStorage.removeItem(KEY_TOKEN);
    state.username = "";
    state.token = "";
    state.room = DEFAULT_ROOM;
    setStatus("disconnected", "disconnected");
    ui.messages.replaceChildren();
    showChatError("");
    ui.username.value = "";
    showLogin(message);
  }

  /* ---------- connection ---------- */

  async function ensureToken(session) {
    const forced = state.failedOpens >= 2;
    if (!forced && tokenIsFresh(state.token)) return;
    const result = await requestToken(state.username);
    if (session !== state.session) return;
    state.failedOpens = 0;
    storeToken(result.token);
  }

  async function connect() {
    const session = state.session;
    clearRetry();
    setStatus("connecting", "connecting…");
    try {
      await ensureToken(session);
    } catch (err) {
      if (session !== state.session) return;
      const permanent = err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429;
      if (permanent) {
        logout(err.message);
        return;
      }
      showChatError(`Could not refresh login: ${err.message}`);
      scheduleReconnect();
      return;
    }
    if (session === state.session) openSocket();
  }

  function openSocket() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}/ws?token=${encodeURIComponent(state.token)}`;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      state.failedOpens += 1;
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    state.openedAt = 0;
    ws.addEventListener("open", () => { if (ws === state.ws) onOpen(); });
    ws.addEventListener("message", (ev) => { if (ws === state.ws) onMessage(ev.data); });
    ws.addEventListener("close", (ev) => { if (ws === state.ws) onClose(ev); });
  }

  function onOpen() {
    state.openedAt = Date.now();
    state.failedOpens = 0;
    setStatus("connected", "connected");
    if (ui.chatError.textContent.startsWith("Could not refresh login")) showChatError("");
    if (state.room !== DEFAULT_ROOM) sendFrame("change_room", { name: state.room });
  }

  function onClose(ev) {
    const wasOpen = state.openedAt > 0;
    state.ws = null;
    if (wasOpen) {
      if (Date.now() - state.openedAt >= STABLE_AFTER_MS) state.attempt = 0;
      addSystemLine(describeClose(ev));
    } else {
      state.failedOpens += 1;
    }
    scheduleReconnect();
  }

  function describeClose(ev) {
    const why = CLOSE_REASONS[ev.code] || `connection lost (code ${ev.code})`;
    return ev.reason ? `Disconnected: ${why} — ${ev.reason}` : `Disconnected: ${why}.`;
  }

  function scheduleReconnect() {
    clearRetry();
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** state.attempt);
    state.attempt = Math.min(state.attempt + 1, 20);
    const delay = Math.random() * ceiling;
    const due = Date.now() + delay;
    const tick = () => {
      const seconds = Math.max(1, Math.ceil((due - Date.now()) / 1000));
      setStatus("reconnecting", `reconnecting in ${seconds}s…`);
    };
    tick();
    state.countdownTimer = setInterval(tick, 250);
    state.retryTimer = setTimeout(connect, delay);
  }

  function clearRetry() {
    clearTimeout(state.retryTimer);
    clearInterval(state.countdownTimer);
    state.retryTimer = 0;
    state.countdownTimer = 0;
  }

  /** Returns "" on success, "too-big" or "offline" otherwise. */
  function sendFrame(type, payload) {
    const frame = JSON.stringify({ type, payload });
    if (byteLength(frame) > MAX_FRAME_BYTES) return "too-big";
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return "offline";
    state.ws.send(frame);
    return "";
  }

  function onMessage(data) {
    if (typeof data !== "string") return;
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return;
    }
    if (!event || event.type !== "new_message") return;
    const p = event.payload;
    if (!p || typeof p !== "object" || typeof p.message !== "string") return;
    if (p.room !== undefined && p.room !== null && p.room !== state.room) return;
    addMessage(p);
  }

  /* ---------- rendering ---------- */

  function setStatus(name, text) {
    if (ui.status.dataset.state !== name) ui.status.dataset.state = name;
    if (ui.status.textContent !== text) ui.status.textContent = text;
  }

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
    ui.whoami.textContent = state.username;
    ui.messageInput.focus();
  }

  function setLoginBusy(busy) {
    state.loginBusy = busy;
    ui.loginButton.disabled = busy;
    ui.loginButton.textContent = busy ? "Logging in…" : "Log in";
  }

  function showChatError(text, input) {
    ui.chatError.textContent = text;
    ui.roomInput.removeAttribute("aria-invalid");
    ui.messageInput.removeAttribute("aria-invalid");
    if (text && input) input.setAttribute("aria-invalid", "true");
  }

  function appendToList(node) {
    const list = ui.messages;
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight <= NEAR_BOTTOM_PX;
    list.append(node);
    while (list.children.length > MAX_RENDERED) list.firstElementChild.remove();
    if (nearBottom) list.scrollTop = list.scrollHeight;
  }

  function makeEl(tag, className, text) {
    const node = document.createElement(tag);
    node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function addMessage({ from, message, sent }) {
    const sender = typeof from === "string" && from ? from : "unknown";
    const date = parseDate(sent);
    const item = makeEl("div", "message");
    if (sender === state.username) item.classList.add("mine");
    const time = makeEl("time", "time", formatTime(date));
    time.dateTime = date.toISOString();
    time.title = date.toLocaleString();
    item.append(makeEl("span", "from", sender), time, makeEl("span", "text", message));
    appendToList(item);
  }

  function addSystemLine(text) {
    appendToList(makeEl("div", "system", text));
  }

  function enterRoom(name) {
    state.room = name;
    ui.roomName.textContent = name;
    ui.messageInput.placeholder = `Message #${name}`;
    document.title = `#${name} · confab`;
    for (const btn of ui.quickRooms.querySelectorAll("button[data-room]")) {
      btn.setAttribute("aria-pressed", String(btn.dataset.room === name));
    }
    ui.messages.replaceChildren();
    addSystemLine(`You joined #${name}`);
  }

  /* ---------- user actions ---------- */

  function joinRoom(rawName) {
    const name = rawName.trim();
    const problem = validateRoom(name);
    if (problem) {
      showChatError(problem, ui.roomInput);
      ui.roomInput.focus();
      return;
    }
    showChatError("");
    ui.roomInput.value = "";
    if (name === state.room) {
      showChatError(`You are already in #${name}.`);
      return;
    }
    // When offline the room is remembered and sent right after the reconnect.
    sendFrame("change_room", { name });
    enterRoom(name);
  }

  function sendMessage() {
    const text = ui.messageInput.value.trim();
    if (!text) {
      showChatError("Type a message first.", ui.messageInput);
      return;
    }
    const bytes = byteLength(text);
    if (bytes >= MAX_MESSAGE_BYTES) {
      showChatError(`Message is too long (${bytes} bytes; it must be under ${MAX_MESSAGE_BYTES}).`, ui.messageInput);
      return;
    }
    const result = sendFrame("send_message", { message: text, from: state.username });
    if (result === "too-big") {
      showChatError("Message is too long once encoded; please shorten it.", ui.messageInput);
    } else if (result === "offline") {
      showChatError("Not connected: your message was not sent. Try again once connected.", ui.messageInput);
    } else {
      ui.messageInput.value = "";
      showChatError("");
    }
  }

  function clearErrorOnInput(ev) {
    if (ev.target.hasAttribute("aria-invalid")) showChatError("");
  }

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
    ui.messageForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      sendMessage();
    });
    ui.roomInput.addEventListener("input", clearErrorOnInput);
    ui.messageInput.addEventListener("input", clearErrorOnInput);
    ui.logoutButton.addEventListener("click", () => logout());
  }

  /* ---------- boot ---------- */

  function boot() {
    bindEvents();
    const username = sessionStorage.getItem(KEY_USER);
    if (!username) {
      showLogin("");
      return;
    }
    const token = sessionStorage.getItem(KEY_TOKEN);
    if (tokenIsFresh(token)) {
      startSession(username, token);
      return;
    }
    ui.username.value = username;
    showLogin("");
    performLogin(username);
  }

  boot();
})();
