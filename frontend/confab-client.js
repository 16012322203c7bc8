/**
 * confab-client.js — a dependency-free client for confab's Protocol v1
 * (WebSocket subprotocol `confab.v1`, JSON text frames). See docs/protocol.md,
 * "Protocol v1" for the wire contract and "Using frontend/confab-client.js"
 * for a walk-through.
 *
 * What it does for you:
 *  - logs in (`POST /login`) and logs in again when the token has expired or
 *    the server keeps refusing the upgrade (a 401 shows as a socket that closes
 *    before it ever opened);
 *  - reconnects with exponential backoff and full jitter;
 *  - remembers, per joined room, the epoch and the last message id seen, and
 *    on every reconnect rejoins each room with `since`/`epoch`, so the missed
 *    messages are replayed; anything already seen is dropped, so a message is
 *    delivered to you once (deduplicated by room and id);
 *  - keeps every send in an outbox until it is acknowledged: sends made while
 *    offline go out once the room is joined again, and a send whose outcome is
 *    unknown (dropped connection, `timeout`, `unavailable`) is resent with the
 *    SAME id, which the server deduplicates;
 *  - throttles typing notifications to one per room every 2 s.
 *
 * Invariants kept by this module:
 *  - a room's `lastId` only moves forward within an epoch; a `new_message` at
 *    or below it is a duplicate and is dropped;
 *  - frames from a socket that is no longer the current one are ignored;
 *  - a send is settled exactly once: resolved with its ack or rejected with a
 *    ConfabError whose code says why (never silently dropped).
 *
 * Works in browsers; in other runtimes pass `WebSocket` and `fetch` options.
 *
 * This file is the public API; client/util.js (the error type, pure helpers)
 * and client/emitter.js are its parts, not meant to be imported on their own.
 *
 * @module confab-client
 */

import { Emitter } from "./client/emitter.js";
import {
  ConfabError, RETRYABLE, SUBPROTOCOL, byteLength, clampLimit, decodeToken, isValidRoom,
  normalizeMessages, randomId, toId, wsUrlFor,
} from "./client/util.js";

export {
  SUBPROTOCOL, ROOM_PATTERN, ConfabError, isValidRoom, byteLength, decodeToken, randomId,
} from "./client/util.js";

/**
 * @typedef {object} ConfabOptions
 * @property {string} [baseUrl] where the gateway is, e.g. `https://chat.example.com`
 *   (default: the page's origin). `POST {baseUrl}/login`, WebSocket `{baseUrl}/ws`.
 * @property {string} [wsUrl] the WebSocket URL, when it is not `{baseUrl}/ws` with ws(s):.
 * @property {string} [username] who to log in as (needed to log in again by itself).
 * @property {string} [token] a JWT from an earlier login (its `sub` also gives the username).
 * @property {number} [joinLimit=50] how many recent messages a first join asks for.
 * @property {number} [reconnectDelay=500] base of the reconnect backoff, ms.
 * @property {number} [maxReconnectDelay=15000] cap of the reconnect backoff, ms.
 * @property {number} [stableAfter=10000] a connection open this long resets the backoff, ms.
 * @property {number} [retryDelay=500] base of the backoff for resending a refused send, ms.
 * @property {number} [maxRetryDelay=15000] its cap, ms.
 * @property {number} [ackTimeout=15000] resend (same id) when no answer came within this, ms.
 * @property {number} [joinTimeout=20000] reconnect when a join got no answer within this, ms.
 * @property {number} [typingInterval=2000] at most one typing notification per room per this, ms.
 * @property {number} [tokenMargin=30] log in again when the token expires within this, s.
 * @property {number} [maxFrameBytes=4096] the server's `MAX_MESSAGE_BYTES`.
 * @property {number} [echoHold=3000] how long an echo of one's own unacknowledged send
 *   is held back waiting for its ack (so a UI can match it to the pending message), ms.
 * @property {typeof WebSocket} [WebSocket] WebSocket implementation (default: the global one).
 * @property {typeof fetch} [fetch] fetch implementation (default: the global one).
 */

/**
 * A chat message, as delivered by the `message` event, `joined.messages` and `history`.
 * @typedef {object} ChatMessage
 * @property {string} room
 * @property {number} [id] the room's message id (gapless, increasing); absent for
 *   messages a backend published straight to Redis
 * @property {string} message the text
 * @property {string} from the sender's username
 * @property {string} sent UTC RFC 3339 with milliseconds
 * @property {"history"|"recovery"|"live"|"gap"} source how it reached us: recent history
 *   of a first join, replayed on a rejoin, live, or fetched to fill a gap in live ids
 * @property {boolean} mine sent by this client's user (from any of their connections)
 * @property {string} [clientId] the send id, when this client sent it and it was acked
 */

/**
 * @typedef {object} JoinedInfo
 * @property {string} room
 * @property {string} epoch
 * @property {number} lastId the last message id seen in the room
 * @property {{user: string}[]} members online users (at most 100)
 * @property {number} count how many distinct users are online
 * @property {boolean} recovered the server replayed everything after our last id
 * @property {boolean} rejoin this is a rejoin after a reconnect (not the first join)
 * @property {boolean} reset the epoch changed: earlier ids mean nothing any more
 * @property {boolean} gap a rejoin that could not recover everything (same epoch)
 * @property {ChatMessage[]} messages the messages not seen before, oldest first
 */

/**
 * @typedef {object} Ack
 * @property {string} id the send id
 * @property {string} room
 * @property {number} messageId the room's id of the message
 * @property {string} sent
 */

/**
 * The state of one send, as given by the `delivery` event.
 * @typedef {object} Delivery
 * @property {string} id the send id (idempotency key)
 * @property {string} room
 * @property {string} message
 * @property {"sending"|"sent"|"failed"} state
 * @property {number} attempts how many times it went on the wire
 * @property {number} [messageId] once sent
 * @property {string} [sent] once sent
 * @property {ConfabError} [error] why it failed, or why it is being retried
 * @property {number} [retryIn] ms until the next attempt, when retrying after an error
 */

/**
 * Per-room bookkeeping.
 * @typedef {object} RoomRecord
 * @property {string} name
 * @property {"joining"|"joined"} status
 * @property {number} limit
 * @property {string|null} epoch
 * @property {number} lastId
 * @property {Map<string, {user: string}>} members
 * @property {number} count
 * @property {boolean} joinedOnce
 * @property {number} gen the connection the room is joined (or being joined) on
 * @property {Array<object>} buffer live events that came before `joined`
 * @property {Array<object>} held echoes of own sends waiting for their ack
 * @property {*} holdTimer
 * @property {*} joinTimer
 * @property {number} joinAttempts
 * @property {number} lastTypingAt
 * @property {Promise<JoinedInfo>} joined resolves on the first `joined`
 * @property {(info: JoinedInfo) => void} resolveJoin
 * @property {(err: Error) => void} rejectJoin
 * @property {Map<number, string>} ackedIds message id → send id, for recent acks
 */

/**
 * A connection to confab that survives disconnects.
 *
 * Events (subscribe with `on(name, fn)`):
 *  - `state` `{state, previous, attempt?, delay?, code?, reason?}`: `connecting`,
 *    `connected`, `reconnecting` (waiting `delay` ms), `disconnected`;
 *  - `message` {@link ChatMessage}: each message once, in id order per room;
 *  - `joined` {@link JoinedInfo}: before that join's messages are delivered;
 *  - `left` `{room, error?}`: left (by `leave()`, or because a rejoin was refused);
 *  - `presence` `{room, user, action, count}`; `typing` `{room, user}`;
 *  - `ack` {@link Ack}; `delivery` {@link Delivery} on each state change of a send;
 *  - `token` `{token, username}` after each login (store it if you like);
 *  - `error` {@link ConfabError}: anything refused or failed that no promise reports;
 *  - `event` `{type, payload}`: every frame received, for debugging or extensions.
 */
export class ConfabClient extends Emitter {
  /** @param {ConfabOptions} [options] */
  constructor(options = {}) {
    super();
    const base = options.baseUrl ?? globalThis.location?.origin;
    if (!base && !options.wsUrl) throw new TypeError("ConfabClient: baseUrl is required here");
    this.options = {
      joinLimit: 50, reconnectDelay: 500, maxReconnectDelay: 15000, stableAfter: 10000,
      retryDelay: 500, maxRetryDelay: 15000, ackTimeout: 15000, joinTimeout: 20000,
      typingInterval: 2000, tokenMargin: 30, maxFrameBytes: 4096, echoHold: 3000,
      ...options,
    };
    /** @private */ this._baseUrl = base ? String(base).replace(/\/+$/, "") : "";
    /** @private */ this._wsUrl = options.wsUrl ?? wsUrlFor(this._baseUrl);
    /** @type {string} */ this.username = options.username ?? "";
    /** @type {string} */ this.token = "";
    /** @private */ this._tokenExpiresAt = 0;
    if (options.token) this._setToken(options.token, false);

    /** @private @type {"disconnected"|"connecting"|"connected"|"reconnecting"} */
    this._state = "disconnected";
    /** @private */ this._wanted = false; // connect() called and not disconnect()ed
    /** @private @type {WebSocket|null} */ this._ws = null;
    /** @private */ this._gen = 0; // bumped for every socket
    /** @private */ this._openedAt = 0;
    /** @private */ this._attempt = 0;
    /** @private */ this._failedOpens = 0;
    /** @private */ this._reconnectTimer = 0;
    /** @private */ this._seq = 0;
    /** @private @type {Promise<object>|null} */ this._loginPromise = null;
    /** @private @type {Map<string, RoomRecord>} */ this._rooms = new Map();
    /** @private @type {Map<string, Promise<void>>} rooms whose `left` is awaited */
    this._leaving = new Map();
    /** @private @type {Map<string, object>} send id → outbox entry, in send order */
    this._outbox = new Map();
    /** @private @type {Map<string, {type: string, room: string, gen: number,
     *   resolve?: Function, reject?: Function}>} request id → pending request */
    this._pending = new Map();
    /** @private @type {Array<(v: void) => void>} */ this._connectWaiters = [];
    /** @private */ this._onOnline = () => {
      if (this._state === "reconnecting") this._reconnectNow();
    };
  }

  /* ------------------------------------------------------------------ API */

  /** The connection state: `disconnected`, `connecting`, `connected` or `reconnecting`. */
  get state() {
    return this._state;
  }

  /** Names of the rooms this client is in (or joining), in join order. */
  get rooms() {
    return [...this._rooms.keys()];
  }

  /**
   * What the client knows about a room, or null when it is not in it.
   * @param {string} name
   */
  room(name) {
    const r = this._rooms.get(name);
    if (!r) return null;
    return {
      room: r.name, status: r.status, epoch: r.epoch, lastId: r.lastId,
      members: [...r.members.values()], count: r.count,
    };
  }

  /** The sends not yet acknowledged, oldest first, as {@link Delivery} objects. */
  get outbox() {
    return [...this._outbox.values()].map((e) => this._delivery(e));
  }

  /** A new send id (the idempotency key of `send`). */
  newId() {
    return randomId();
  }

  /**
   * Logs in as a guest: `POST /login`. Emits `token`.
   * @param {string} [username] default: the current username
   * @returns {Promise<{token: string, username: string}>}
   * @throws {ConfabError} `login_failed` (HTTP 4xx/5xx, `status` set) or `network`
   */
  login(username = this.username) {
    if (this._loginPromise) return this._loginPromise;
    const doFetch = this.options.fetch ?? globalThis.fetch.bind(globalThis);
    const attempt = (async () => {
      let res;
      try {
        res = await doFetch(`${this._baseUrl}/login`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ username }),
          cache: "no-store",
        });
      } catch {
        throw new ConfabError("network", "Cannot reach the server.");
      }
      const body = await res.json().catch(() => null);
      if (!res.ok) {
        const why = body && typeof body.error === "string" && body.error
          ? body.error : `login failed (HTTP ${res.status})`;
        throw new ConfabError("login_failed", why, { status: res.status });
      }
      if (!body || typeof body.token !== "string") {
        throw new ConfabError("login_failed", "unexpected login response", { status: res.status });
      }
      this.username = typeof body.username === "string" && body.username ? body.username : username;
      this._setToken(body.token, true);
      this._failedOpens = 0;
      const result = { token: this.token, username: this.username };
      this.emit("token", result);
      return result;
    })();
    this._loginPromise = attempt;
    const clear = () => { if (this._loginPromise === attempt) this._loginPromise = null; };
    attempt.then(clear, clear);
    return attempt;
  }

  /**
   * Connects, and keeps reconnecting until `disconnect()` or `close()`.
   * Logs in first when there is no usable token.
   * @returns {Promise<void>} resolves once connected; rejects when the client
   *   gives up (the login was refused) or is closed first
   */
  connect() {
    const wait = new Promise((resolve, reject) => {
      if (this._state === "connected") resolve();
      else this._connectWaiters.push({ resolve, reject });
    });
    if (!this._wanted) {
      this._wanted = true;
      globalThis.addEventListener?.("online", this._onOnline);
      this._attempt = 0;
      this._open();
    }
    return wait;
  }

  /**
   * Closes the connection but keeps rooms and outbox: `connect()` resumes
   * with recovery.
   */
  disconnect() {
    this._wanted = false;
    globalThis.removeEventListener?.("online", this._onOnline);
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = 0;
    const ws = this._ws;
    if (ws) {
      this._dropSocket();
      try { ws.close(1000, "bye"); } catch { /* already closing */ }
    }
    this._rejectConnectWaiters(new ConfabError("closed", "disconnected by the application"));
    this._setState("disconnected");
  }

  /** Disconnects and forgets everything: rooms, and the outbox (its sends reject with `closed`). */
  close() {
    this.disconnect();
    const err = new ConfabError("closed", "the client was closed");
    for (const r of this._rooms.values()) this._forgetRoom(r, err);
    this._rooms.clear();
    for (const e of [...this._outbox.values()]) this._failSend(e, err, false);
  }

  /**
   * Joins a room. Joining a room already joined resolves with what is known.
   * While connected, and after every reconnect, the room is (re)joined with
   * recovery; `joined` and `message` events follow.
   * @param {string} name
   * @param {{limit?: number}} [opts] recent messages to fetch on the first join (0–100)
   * @returns {Promise<JoinedInfo>}
   */
  async join(name, { limit } = {}) {
    if (!isValidRoom(name)) {
      throw new ConfabError("bad_room", "Room names are 1–64 characters of A–Z a–z 0–9 _ . : -",
        { room: name });
    }
    const leaving = this._leaving.get(name);
    if (leaving) await leaving;
    const known = this._rooms.get(name);
    if (known) return known.status === "joined" ? this._joinedSnapshot(known) : known.joined;
    /** @type {RoomRecord} */
    const r = {
      name, status: "joining", limit: clampLimit(limit ?? this.options.joinLimit),
      epoch: null, lastId: 0, members: new Map(), count: 0, joinedOnce: false, gen: 0,
      buffer: [], held: [], holdTimer: 0, joinTimer: 0, joinAttempts: 0, lastTypingAt: 0,
      ackedIds: new Map(),
    };
    r.joined = new Promise((resolve, reject) => {
      r.resolveJoin = resolve;
      r.rejectJoin = reject;
    });
    r.joined.catch(() => {}); // a rejection is reported by the returned promise
    this._rooms.set(name, r);
    if (this._state === "connected") this._sendJoin(r);
    return r.joined;
  }

  /**
   * Leaves a room: stops recovering it, fails its unsent messages (`left`)
   * and emits `left` right away.
   * @param {string} name
   * @returns {Promise<void>} resolves when the server confirmed (or there was no connection)
   */
  leave(name) {
    const r = this._rooms.get(name);
    if (!r) return this._leaving.get(name) ?? Promise.resolve();
    this._rooms.delete(name);
    this._forgetRoom(r, new ConfabError("left", `You left #${name}.`, { room: name }));
    for (const [ref, q] of this._pending) {
      if (q.type === "join" && q.room === name) this._pending.delete(ref); // its `joined` is ignored
    }
    let done = Promise.resolve();
    if (this._state === "connected" && r.gen === this._gen) {
      done = new Promise((resolve) => {
        this._request("leave", { room: name }, { room: name, resolve, reject: resolve });
      }).finally(() => this._leaving.delete(name));
      this._leaving.set(name, done);
    }
    this.emit("left", { room: name });
    return done;
  }

  /**
   * Sends a message. Resolves with the ack once the server stored it; until
   * then it stays in the outbox and is resent (same id) after reconnects and
   * retryable errors. Rejects with a ConfabError for a refused message.
   * @param {string} room a room joined with `join()`
   * @param {string} text
   * @param {{id?: string}} [opts] `id`: the idempotency key (default: `newId()`)
   * @returns {Promise<Ack>}
   */
  send(room, text, { id = randomId() } = {}) {
    const r = this._rooms.get(room);
    if (!r) return Promise.reject(new ConfabError("not_joined", `Join #${room} first.`, { room }));
    if (typeof text !== "string" || !text.trim()) {
      return Promise.reject(new ConfabError("empty_message", "The message is empty.", { room }));
    }
    if (typeof id !== "string" || id.length < 1 || id.length > 64 || this._outbox.has(id)) {
      return Promise.reject(new ConfabError("bad_id", "A send id is 1–64 characters and unique.", { room }));
    }
    const frame = JSON.stringify({ type: "send", payload: { room, message: text, id } });
    if (byteLength(frame) > this.options.maxFrameBytes) {
      return Promise.reject(new ConfabError("too_big", "The message is too long.", { room }));
    }
    const entry = {
      id, room, message: text, state: "sending", attempts: 0, inflight: false, gen: 0,
      timer: 0, watchdog: 0, error: undefined, retryIn: undefined, resolve: null, reject: null,
    };
    const promise = new Promise((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
    });
    this._outbox.set(id, entry);
    this.emit("delivery", this._delivery(entry));
    this._transmit(entry);
    return promise;
  }

  /**
   * Fetches older messages of a joined room (oldest first).
   * @param {string} room
   * @param {{before?: number, limit?: number}} [opts] `before` is exclusive
   * @returns {Promise<{room: string, messages: ChatMessage[], hasMore: boolean}>}
   */
  history(room, { before, limit } = {}) {
    const r = this._rooms.get(room);
    if (!r) return Promise.reject(new ConfabError("not_joined", `Join #${room} first.`, { room }));
    if (this._state !== "connected" || r.status !== "joined") {
      return Promise.reject(new ConfabError("disconnected", "Not connected; try again shortly.", { room }));
    }
    const payload = { room };
    if (Number.isInteger(before)) payload.before = before;
    if (Number.isInteger(limit)) payload.limit = clampLimit(limit);
    return new Promise((resolve, reject) => {
      this._request("history", payload, { room, resolve, reject });
    });
  }

  /**
   * Tells the room's other members this user is typing. Throttled: at most
   * one per room every `typingInterval` ms; extra calls do nothing.
   * @param {string} room
   * @returns {boolean} whether a notification went out
   */
  typing(room) {
    const r = this._rooms.get(room);
    if (!r || r.status !== "joined" || this._state !== "connected") return false;
    const now = Date.now();
    if (now - r.lastTypingAt < this.options.typingInterval) return false;
    r.lastTypingAt = now;
    // Typing has no answer; its id (prefix "t") only lets us ignore its errors.
    this._ws.send(JSON.stringify({ type: "typing", payload: { room, id: `t${(++this._seq).toString(36)}` } }));
    return true;
  }

  /* ----------------------------------------------------- connection */

  /** @private */
  _setState(state, extra = {}) {
    const previous = this._state;
    this._state = state;
    if (previous !== state || state === "reconnecting") this.emit("state", { state, previous, ...extra });
  }

  /** @private */
  _setToken(token, fromLogin) {
    this.token = token;
    const claims = decodeToken(token);
    if (!this.username && claims && typeof claims.sub === "string") this.username = claims.sub;
    this._tokenExpiresAt = 0;
    if (claims && typeof claims.exp === "number") {
      // Judge a fresh token by its lifetime on our own clock, so that a page
      // whose clock is off does not log in again and again.
      this._tokenExpiresAt = fromLogin && typeof claims.iat === "number"
        ? Date.now() + (claims.exp - claims.iat) * 1000
        : claims.exp * 1000;
    }
  }

  /** @private */
  _tokenStale() {
    if (!this.token) return true;
    if (!this._tokenExpiresAt) return false;
    return Date.now() >= this._tokenExpiresAt - this.options.tokenMargin * 1000;
  }

  /** @private Opens a socket, logging in first when needed. */
  async _open() {
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = 0;
    const gen = ++this._gen;
    this._setState("connecting", { attempt: this._attempt });
    if (this._tokenStale() || this._failedOpens >= 2) {
      if (!this.username) {
        this._giveUp(new ConfabError("unauthorized", "No valid token and no username to log in with.",
          { fatal: true }));
        return;
      }
      try {
        await this.login(this.username);
      } catch (err) {
        if (gen !== this._gen || !this._wanted) return;
        const permanent = err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429;
        if (permanent) {
          err.fatal = true;
          this._giveUp(err);
          return;
        }
        this.emit("error", err);
        this._scheduleReconnect();
        return;
      }
      if (gen !== this._gen || !this._wanted) return;
    }
    const WS = this.options.WebSocket ?? globalThis.WebSocket;
    let ws;
    try {
      ws = new WS(`${this._wsUrl}?token=${encodeURIComponent(this.token)}`, [SUBPROTOCOL]);
    } catch (err) {
      this._failedOpens += 1;
      this.emit("error", new ConfabError("network", `Cannot open a WebSocket: ${err.message}`));
      this._scheduleReconnect();
      return;
    }
    this._ws = ws;
    this._openedAt = 0;
    ws.onopen = () => { if (ws === this._ws) this._onOpen(); };
    ws.onmessage = (ev) => { if (ws === this._ws) this._onFrame(ev.data); };
    ws.onclose = (ev) => { if (ws === this._ws) this._onClose(ev); };
    ws.onerror = () => {}; // a close event follows
  }

  /** @private */
  _onOpen() {
    this._openedAt = Date.now();
    this._failedOpens = 0;
    this._setState("connected");
    const waiters = this._connectWaiters;
    this._connectWaiters = [];
    for (const w of waiters) w.resolve();
    for (const r of this._rooms.values()) {
      r.status = "joining";
      r.joinAttempts = 0;
      this._sendJoin(r);
    }
  }

  /** @private */
  _onClose(ev) {
    const wasOpen = this._openedAt > 0;
    this._dropSocket();
    if (!this._wanted) return;
    if (wasOpen) {
      const stable = Date.now() - this._openedAt >= this.options.stableAfter;
      if (stable || ev.code === 1001) this._attempt = 0;
    } else {
      this._failedOpens += 1; // a refused upgrade (401) looks just like this
    }
    this._scheduleReconnect({ code: ev.code, reason: ev.reason, wasOpen });
  }

  /**
   * @private Forgets the current socket: pending requests end, sends in
   * flight become "outcome unknown" (resent after the rejoin), rooms wait
   * for their rejoin.
   */
  _dropSocket() {
    const ws = this._ws;
    if (!ws) return;
    this._ws = null;
    ws.onopen = ws.onmessage = ws.onclose = null;
    this._openedAt = 0;
    const gone = new ConfabError("disconnected", "The connection was lost.");
    for (const [ref, p] of this._pending) {
      this._pending.delete(ref);
      if (p.type === "leave") p.resolve?.(); // the server forgets our rooms anyway
      else if (p.type === "history") p.reject?.(new ConfabError(gone.code, gone.message, { room: p.room }));
    }
    for (const e of this._outbox.values()) {
      e.inflight = false;
      clearTimeout(e.watchdog);
      e.watchdog = 0;
    }
    for (const r of this._rooms.values()) {
      r.status = "joining";
      r.buffer = [];
      clearTimeout(r.joinTimer);
      r.joinTimer = 0;
    }
  }

  /** @private */
  _scheduleReconnect(extra = {}) {
    clearTimeout(this._reconnectTimer);
    const { reconnectDelay, maxReconnectDelay } = this.options;
    const ceiling = Math.min(maxReconnectDelay, reconnectDelay * 2 ** this._attempt);
    this._attempt = Math.min(this._attempt + 1, 30);
    const delay = Math.round(Math.random() * ceiling); // full jitter
    this._reconnectTimer = setTimeout(() => this._open(), delay);
    this._setState("reconnecting", { ...extra, attempt: this._attempt, delay, retryAt: Date.now() + delay });
  }

  /** @private */
  _reconnectNow() {
    if (!this._wanted || this._ws) return;
    this._open();
  }

  /** @private */
  _giveUp(err) {
    this._wanted = false;
    clearTimeout(this._reconnectTimer);
    this._setState("disconnected", { error: err });
    this._rejectConnectWaiters(err);
    this.emit("error", err);
  }

  /** @private */
  _rejectConnectWaiters(err) {
    const waiters = this._connectWaiters;
    this._connectWaiters = [];
    for (const w of waiters) w.reject(err);
  }

  /**
   * @private Sends one request frame, remembering it by id for the answer.
   * @returns {boolean} whether it went out
   */
  _request(type, payload, pending = {}) {
    if (!this._ws || this._state !== "connected") return false;
    const id = `r${(++this._seq).toString(36)}`;
    this._pending.set(id, { type, room: payload.room, gen: this._gen, ...pending });
    this._ws.send(JSON.stringify({ type, payload: { ...payload, id } }));
    return true;
  }

  /* ---------------------------------------------------------- rooms */

  /** @private */
  _sendJoin(r) {
    const payload = { room: r.name, limit: r.limit };
    if (r.epoch !== null) {
      payload.since = r.lastId;
      payload.epoch = r.epoch;
    }
    r.gen = this._gen;
    clearTimeout(r.joinTimer);
    r.joinTimer = setTimeout(() => {
      // The server always answers a join; silence means the link is wedged.
      if (r.status === "joining" && r.gen === this._gen && this._ws) {
        this.emit("error", new ConfabError("timeout", `No answer joining #${r.name}; reconnecting.`,
          { room: r.name }));
        const ws = this._ws;
        this._onClose({ code: 4000, reason: "join timeout" });
        try { ws.close(4000, "join timeout"); } catch { /* closing */ }
      }
    }, this.options.joinTimeout);
    this._request("join", payload, { room: r.name });
  }

  /** @private */
  _joinedSnapshot(r) {
    return {
      room: r.name, epoch: r.epoch, lastId: r.lastId, members: [...r.members.values()],
      count: r.count, recovered: true, rejoin: false, reset: false, gap: false, messages: [],
    };
  }

  /** @private Stops everything about a room this client is no longer in. */
  _forgetRoom(r, err) {
    clearTimeout(r.joinTimer);
    clearTimeout(r.holdTimer);
    r.held = [];
    r.buffer = [];
    if (!r.joinedOnce) r.rejectJoin(err);
    // Their promises report it; the caller reports the error itself.
    for (const e of [...this._outbox.values()]) if (e.room === r.name) this._failSend(e, err, false);
  }

  /**
   * @private The answer to our join, or a `joined` the server sends by itself
   * to a live member: after a broker restart (the missed messages, as for a
   * recovering join) or when the room's epoch changed (a fresh snapshot).
   * Both are handled like a rejoin.
   */
  _onJoined(p) {
    const r = this._rooms.get(p.room);
    if (!r) return;
    for (const [ref, q] of this._pending) {
      if (q.type === "join" && q.room === p.room) this._pending.delete(ref);
    }
    clearTimeout(r.joinTimer);
    r.joinTimer = 0;
    const first = !r.joinedOnce;
    const epoch = typeof p.epoch === "string" ? p.epoch : String(p.epoch ?? "");
    const reset = r.epoch !== null && epoch !== r.epoch;
    if (reset) {
      r.lastId = 0;
      r.ackedIds.clear();
    }
    const seen = r.lastId;
    const fresh = normalizeMessages(p.messages, r.name).filter((m) => !(m.id <= seen));
    r.epoch = epoch;
    r.lastId = Math.max(seen, toId(p.last_id) ?? 0, ...fresh.map((m) => m.id ?? 0));
    r.members = new Map();
    for (const m of Array.isArray(p.members) ? p.members : []) {
      if (m && typeof m.user === "string") r.members.set(m.user, { user: m.user });
    }
    r.count = Number.isInteger(p.count) ? p.count : r.members.size;
    r.status = "joined";
    r.joinedOnce = true;
    const source = first || reset ? "history" : "recovery";
    const messages = fresh.map((m) => this._decorate(r, m, source));
    /** @type {JoinedInfo} */
    const info = {
      room: r.name, epoch, lastId: r.lastId, members: [...r.members.values()], count: r.count,
      recovered: Boolean(p.recovered), rejoin: !first, reset, gap: !first && !reset && !p.recovered,
      messages,
    };
    this.emit("joined", info);
    for (const m of messages) this._deliver(r, m);
    r.resolveJoin(info);
    const buffered = r.buffer;
    r.buffer = [];
    for (const ev of buffered) this._onFrameEvent(ev);
    for (const e of this._outbox.values()) if (e.room === r.name) this._transmit(e);
  }

  /** @private */
  _onNewMessage(p) {
    const r = this._rooms.get(p.room);
    if (!r) return;
    if (r.status === "joining") {
      r.buffer.push({ type: "new_message", payload: p });
      return;
    }
    const [m] = normalizeMessages([p], r.name);
    if (!m) return;
    if (m.id !== undefined) {
      if (m.id <= r.lastId) return; // seen already
      const missing = r.lastId > 0 ? m.id - r.lastId - 1 : 0;
      const from = r.lastId;
      r.lastId = m.id;
      if (missing > 0) this._fillGap(r, from, m.id);
    }
    this._deliver(r, this._decorate(r, m, "live"));
  }

  /**
   * @private Live ids jumped (they are gapless, so a message was lost on the
   * way): fetch what is missing from the history and deliver it.
   */
  _fillGap(r, after, before) {
    const gen = this._gen;
    const epoch = r.epoch;
    this.emit("error", new ConfabError("gap",
      `Messages ${after + 1}–${before - 1} of #${r.name} did not arrive live; fetching them.`,
      { room: r.name }));
    this.history(r.name, { before, limit: Math.min(100, before - after - 1) }).then((res) => {
      if (this._rooms.get(r.name) !== r || r.epoch !== epoch || gen !== this._gen) return;
      for (const m of res.messages) {
        if (m.id !== undefined && m.id > after && m.id < before) this._deliver(r, this._decorate(r, m, "gap"));
      }
    }, () => { /* the rejoin after a reconnect recovers them */ });
  }

  /** @private Adds `source`, `mine` and (for own acked sends) `clientId`. */
  _decorate(r, m, source) {
    const out = { ...m, source, mine: m.from === this.username };
    const clientId = m.id !== undefined ? r.ackedIds.get(m.id) : undefined;
    if (clientId) out.clientId = clientId;
    return out;
  }

  /**
   * @private Emits a message, except an echo of one's own send that has not
   * been acked yet: that one waits (up to `echoHold` ms) for its ack, so the
   * ack and the message arrive at the application in that order.
   */
  _deliver(r, m) {
    if (m.mine && !m.clientId) {
      const waiting = [...this._outbox.values()].some((e) => e.room === r.name && e.message === m.message);
      if (waiting) {
        r.held.push(m);
        if (!r.holdTimer) r.holdTimer = setTimeout(() => this._releaseHeld(r), this.options.echoHold);
        return;
      }
    }
    this.emit("message", m);
  }

  /** @private */
  _releaseHeld(r) {
    clearTimeout(r.holdTimer);
    r.holdTimer = 0;
    const held = r.held.sort((a, b) => (a.id ?? 0) - (b.id ?? 0));
    r.held = [];
    for (const m of held) {
      const clientId = m.id !== undefined ? r.ackedIds.get(m.id) : undefined;
      this.emit("message", clientId ? { ...m, clientId } : m);
    }
  }

  /** @private */
  _onPresence(p) {
    const r = this._rooms.get(p.room);
    if (!r || r.status !== "joined" || typeof p.user !== "string") return;
    if (p.action === "join") r.members.set(p.user, { user: p.user });
    else if (p.action === "leave") r.members.delete(p.user);
    else return;
    r.count = Number.isInteger(p.count) ? p.count : r.members.size;
    this.emit("presence", { room: r.name, user: p.user, action: p.action, count: r.count });
  }

  /* ---------------------------------------------------------- sends */

  /** @private Puts a send on the wire when its room is joined on this connection. */
  _transmit(e) {
    const r = this._rooms.get(e.room);
    if (!r || r.status !== "joined" || r.gen !== this._gen || this._state !== "connected") return;
    if (e.inflight || e.timer || !this._outbox.has(e.id)) return;
    e.inflight = true;
    e.gen = this._gen;
    e.attempts += 1;
    this._ws.send(JSON.stringify({ type: "send", payload: { room: e.room, message: e.message, id: e.id } }));
    clearTimeout(e.watchdog);
    e.watchdog = setTimeout(() => {
      // No ack nor error: the outcome is unknown, so resend with the same id.
      e.watchdog = 0;
      if (e.inflight && e.gen === this._gen) {
        e.inflight = false;
        this._transmit(e);
      }
    }, this.options.ackTimeout);
  }

  /** @private */
  _onAck(p) {
    const e = typeof p.id === "string" ? this._outbox.get(p.id) : undefined;
    if (!e) return; // a late duplicate
    const messageId = toId(p.message_id);
    this._outbox.delete(e.id);
    clearTimeout(e.timer);
    clearTimeout(e.watchdog);
    e.state = "sent";
    e.inflight = false;
    e.messageId = messageId;
    e.sent = typeof p.sent === "string" ? p.sent : undefined;
    e.error = undefined;
    e.retryIn = undefined;
    const r = this._rooms.get(e.room);
    if (r && messageId !== undefined) {
      r.ackedIds.set(messageId, e.id);
      if (r.ackedIds.size > 500) r.ackedIds.delete(r.ackedIds.keys().next().value);
    }
    /** @type {Ack} */
    const ack = { id: e.id, room: e.room, messageId, sent: e.sent };
    e.resolve(ack);
    this.emit("ack", ack);
    this.emit("delivery", this._delivery(e));
    if (r && r.held.length) this._releaseHeld(r);
  }

  /** @private */
  _onSendError(e, err) {
    clearTimeout(e.watchdog);
    e.watchdog = 0;
    e.inflight = false;
    const r = this._rooms.get(e.room);
    const retry = RETRYABLE.has(err.code) ||
      (err.code === "not_member" && r && e.attempts < 5); // raced a rejoin
    if (!retry || !r) {
      this._failSend(e, err, true);
      return;
    }
    const { retryDelay, maxRetryDelay } = this.options;
    const ceiling = Math.min(maxRetryDelay, retryDelay * 2 ** Math.max(0, e.attempts - 1));
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    e.error = err;
    e.retryIn = delay;
    clearTimeout(e.timer);
    e.timer = setTimeout(() => {
      e.timer = 0;
      e.retryIn = undefined;
      this._transmit(e);
    }, delay);
    this.emit("delivery", this._delivery(e));
  }

  /** @private */
  _failSend(e, err, report) {
    this._outbox.delete(e.id);
    clearTimeout(e.timer);
    clearTimeout(e.watchdog);
    e.state = "failed";
    e.error = err;
    e.retryIn = undefined;
    e.reject(err);
    this.emit("delivery", this._delivery(e));
    const r = this._rooms.get(e.room);
    if (r && r.held.length) this._releaseHeld(r);
    if (report && err.code !== "left" && err.code !== "closed") this.emit("error", err);
  }

  /** @private @returns {Delivery} */
  _delivery(e) {
    const d = { id: e.id, room: e.room, message: e.message, state: e.state, attempts: e.attempts };
    if (e.messageId !== undefined) d.messageId = e.messageId;
    if (e.sent !== undefined) d.sent = e.sent;
    if (e.error) d.error = e.error;
    if (e.retryIn !== undefined) d.retryIn = e.retryIn;
    return d;
  }

  /* --------------------------------------------------------- frames */

  /** @private */
  _onFrame(data) {
    if (typeof data !== "string") return; // confab.v1 is text only
    let ev;
    try {
      ev = JSON.parse(data);
    } catch {
      return;
    }
    if (!ev || typeof ev.type !== "string" || !ev.payload || typeof ev.payload !== "object") return;
    this.emit("event", ev);
    this._onFrameEvent(ev);
  }

  /** @private */
  _onFrameEvent({ type, payload: p }) {
    switch (type) {
      case "joined": this._onJoined(p); break;
      case "new_message": this._onNewMessage(p); break;
      case "ack": this._onAck(p); break;
      case "history": this._onHistory(p); break;
      case "left": this._onLeft(p); break;
      case "presence": this._onPresence(p); break;
      case "typing":
        if (this._rooms.get(p.room)?.status === "joined" && typeof p.user === "string") {
          this.emit("typing", { room: p.room, user: p.user });
        }
        break;
      case "error": this._onError(p); break;
      default: break; // newer servers may add events
    }
  }

  /** @private */
  _onHistory(p) {
    for (const [ref, q] of this._pending) {
      if (q.type === "history" && q.room === p.room) {
        this._pending.delete(ref);
        q.resolve({
          room: p.room,
          messages: normalizeMessages(p.messages, p.room),
          hasMore: Boolean(p.has_more),
        });
        return;
      }
    }
  }

  /** @private */
  _onLeft(p) {
    for (const [ref, q] of this._pending) {
      if (q.type === "leave" && q.room === p.room) {
        this._pending.delete(ref);
        q.resolve();
        return;
      }
    }
  }

  /** @private */
  _onError(p) {
    const code = typeof p.code === "string" ? p.code : "internal";
    const ref = typeof p.ref === "string" ? p.ref : undefined;
    const room = typeof p.room === "string" ? p.room : undefined;
    const err = new ConfabError(code, typeof p.message === "string" && p.message ? p.message : code,
      { ref, room });
    const entry = ref !== undefined ? this._outbox.get(ref) : undefined;
    if (entry) {
      this._onSendError(entry, err);
      return;
    }
    if (ref !== undefined && ref.startsWith("t")) return; // a dropped typing notification
    const q = ref !== undefined ? this._pending.get(ref) : undefined;
    if (!q) {
      this.emit("error", err);
      return;
    }
    this._pending.delete(ref);
    switch (q.type) {
      case "join": this._onJoinError(q.room, err); break;
      case "history": q.reject(err); break;
      default: q.resolve(); break; // leave: not a member any more either way
    }
  }

  /** @private */
  _onJoinError(name, err) {
    const r = this._rooms.get(name);
    if (!r || r.status !== "joining") return;
    clearTimeout(r.joinTimer);
    r.joinTimer = 0;
    if (RETRYABLE.has(err.code) && r.joinAttempts < 8) {
      const gen = this._gen;
      r.joinAttempts += 1;
      const delay = Math.min(this.options.maxRetryDelay, this.options.retryDelay * 2 ** r.joinAttempts);
      r.joinTimer = setTimeout(() => {
        if (this._rooms.get(name) === r && r.status === "joining" && gen === this._gen) this._sendJoin(r);
      }, delay / 2 + (Math.random() * delay) / 2);
      return;
    }
    this._rooms.delete(name);
    this._forgetRoom(r, err);
    this.emit("left", { room: name, error: err });
    if (r.joinedOnce) this.emit("error", err); // a first join reports through its promise
  }
}
