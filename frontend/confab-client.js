/**
 * confab-client.js — a dependency-free client for confab's Protocol v1
 * (WebSocket subprotocol `confab.v1`, JSON text frames). See docs/protocol.md,
 * "Protocol v1" for the wire contract and "Using frontend/confab-client.js"
 * for a walk-through.
 *
 * What it does for you:
 *  - logs in (`POST /login`) and logs in again when the token has expired or
 *    the server refuses it (a 401 shows as a socket that closes before it
 *    ever opened, as an unreachable server does: after two, a plain GET of
 *    the WebSocket URL asks the gateway which it was);
 *  - reconnects with exponential backoff and full jitter;
 *  - remembers, per joined room, the epoch and the last message id up to
 *    which it delivered everything, and on every reconnect rejoins each room
 *    with `since`/`epoch`, so the missed messages are replayed (those of a
 *    gap still being fetched too); anything already seen is dropped, so a
 *    message is delivered to you once (deduplicated by room and id);
 *  - delivers each room's messages in id order (but for held echoes, see
 *    `echoHold`): when live ids skip some, it fetches the missing ones from
 *    the history and holds the later live ones until they are in (at most
 *    `maxGapHeld` messages for `gapTimeout` ms); ids it gives up on are
 *    reported as a `gap` error with `lost: true`;
 *  - keeps every send in an outbox until it is acknowledged: sends made while
 *    offline go out once the room is joined again, a send whose outcome is
 *    unknown (dropped connection, `timeout`) is resent with the SAME id, which
 *    the server deduplicates, and so is one refused for now (`unavailable`…);
 *    a room's sends go out in the order they were made, resends too, and no
 *    faster than the gateway's request rate allows, with no more of them
 *    awaiting an answer than it takes (a backlog typed offline is paced);
 *  - gives up a login or a socket that gets no answer (`loginTimeout`,
 *    `openTimeout`) and tries again on the backoff;
 *  - throttles typing notifications to one per room every 2 s.
 *
 * This file is the whole public API: the ConfabClient class, and
 * SUBPROTOCOL, ROOM_PATTERN, ConfabError, isValidRoom, byteLength,
 * decodeToken and randomId. Import only this file; the modules in client/
 * are its parts, not meant to be used on their own (their exports may
 * change). Each ConfabClient makes and owns one of each of the first three:
 *  - client/connection.js: login, token, the socket, reconnecting;
 *  - client/rooms.js: joined rooms, dedupe, gaps, held echoes, members;
 *  - client/outbox.js: unacknowledged sends, resends, acks, failures;
 *  - client/emitter.js, client/util.js: the event emitter, the error type,
 *    pure helpers.
 * ConfabClient itself checks the arguments of its methods, matches answers
 * to its requests, and routes each frame to the part that handles it.
 *
 * Invariants, and the module that keeps each:
 *  - a room's `lastId` is the last id up to which every message was delivered
 *    (or reported lost); it only moves forward within an epoch; a
 *    `new_message` at or below it is a duplicate and is dropped; messages are
 *    delivered in id order per room, with bounded waiting, except for an echo
 *    held for its ack (client/rooms.js);
 *  - frames from a socket that is no longer the current one are ignored
 *    (client/connection.js);
 *  - a send is settled exactly once: resolved with its ack or rejected with a
 *    ConfabError whose code says why, never silently dropped (client/outbox.js);
 *  - a history() or leave() promise settles once: with its answer, with its
 *    error, or when its socket is dropped (this file).
 *
 * Works in browsers; in other runtimes pass `WebSocket` and `fetch` options.
 *
 * @module confab-client
 */

import { Connection } from "./client/connection.js";
import { Emitter } from "./client/emitter.js";
import { Outbox } from "./client/outbox.js";
import { Rooms } from "./client/rooms.js";
import {
  ConfabError, byteLength, clampLimit, isValidRoom, normalizeMessages, randomId, sendFrame,
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
 * @property {number} [goingAwaySpread=3000] after a close with 1001 (a gateway draining), the
 *   first reconnect waits a random delay up to this, ms.
 * @property {number} [retryDelay=500] base of the backoff for resending a refused send (or
 *   gap fetch), ms.
 * @property {number} [maxRetryDelay=15000] its cap, ms.
 * @property {number} [ackTimeout=15000] reconnect (the send goes out again, same id, after the
 *   rejoin) when a send got no answer within this, ms: the server answers within 10 s.
 * @property {number} [joinTimeout=20000] reconnect when a join got no answer within this, ms.
 * @property {number} [idleProbe=30000] after this long without a frame from the server, ms, send a
 *   `ping` (also at once when the page comes back online or into view); 0: never.
 * @property {number} [probeTimeout=10000] reconnect when a `ping` drew nothing within this, ms;
 *   also how long the token check after two failed opens waits for its answer.
 * @property {number} [resendWindow=270000] a send whose outcome is unknown is sent again (same id)
 *   only within this long of the first attempt that may have been stored (one dropped in flight,
 *   unanswered, or answered `timeout` or `internal`), ms; later it fails with `unconfirmed`.
 *   Keep it under the server's DEDUP_WINDOW (300 s by default), which deduplicates only that
 *   long. Refusals that say nothing was done (`unavailable`, `rate_limited`,
 *   `too_many_requests`) do not count: such a send is retried until acked, left or closed.
 * @property {number} [typingInterval=2000] at most one typing notification per room per this, ms.
 * @property {number} [tokenMargin=30] log in again when the token expires within this, s.
 * @property {number} [maxFrameBytes=4096] the server's `MAX_MESSAGE_BYTES`; lowered when the server
 *   closes with 1009 (it was set above the server's).
 * @property {number} [echoHold=3000] how long an echo of one's own unacknowledged send
 *   is held back waiting for its ack (so a UI can match it to the pending message), ms.
 * @property {number} [gapTimeout=5000] when live ids skip some, the live messages past the
 *   gap wait (so that messages come in id order) while the client fetches the missing ones;
 *   a fetch refused for a passing reason (`unavailable`…) is retried with backoff, and the
 *   client gives up on one not answered within this, ms.
 * @property {number} [maxGapHeld=100] at most this many live messages wait for a gap; one
 *   more and the client gives up on the gap.
 * @property {number} [maxOutbox=1000] at most this many sends wait in the outbox (unacknowledged,
 *   e.g. typed while offline); one more is refused at once with `outbox_full`, so the page's
 *   memory stays bounded (at most ~4 MB of text at the default `maxFrameBytes`).
 * @property {number} [rateMsgs=20] the gateway's `RATE_MSGS`: frames per second it takes from one
 *   connection on average (0: no limit). Queued sends go out no faster (see `rateBurst`).
 * @property {number} [rateBurst=40] the gateway's `RATE_BURST`: frames it takes at once above
 *   `rateMsgs`. The client counts every frame it sends against both, and puts a queued send
 *   on the wire only while a quarter of the burst is left for everything else; a `rate_limited`
 *   refusal halves both for the rest of the connection.
 * @property {number} [maxPendingRequests=64] the gateway's `MAX_PENDING_REQUESTS`: requests of
 *   one connection awaiting an answer. At most half of it are sends (and never more than the
 *   requests awaited leave room for); a `too_many_requests` refusal halves that for the rest
 *   of the connection.
 * @property {number} [loginTimeout=10000] a `POST /login` with no answer within this, ms, is
 *   given up (`network` error) and tried again on the reconnect backoff; 0: never.
 * @property {number} [openTimeout=10000] a WebSocket neither open nor closed within this, ms, is
 *   given up (`timeout` error) and another tried on the reconnect backoff; 0: never.
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
 * @property {boolean} gap a rejoin that could not recover everything and has nothing to fetch
 *   it by (same epoch; the ids between are lost). A rejoin whose snapshot starts past a hole
 *   is no `gap`: its messages wait while the hole is fetched (see Gaps in docs/protocol.md).
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
 * A connection to confab that survives disconnects.
 *
 * Events (subscribe with `on(name, fn)`):
 *  - `state` `{state, previous, attempt?, delay?, retryAt?, code?, reason?, wasOpen?, error?}`:
 *    `connecting`, `connected`, `reconnecting` (waiting `delay` ms), `disconnected`;
 *  - `message` {@link ChatMessage}: each message once, in id order per room (live
 *    messages past a gap wait for it, up to `gapTimeout`/`maxGapHeld`), except
 *    that the echo of one's own send held for its ack (`echoHold`) can come after
 *    later messages of others;
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
      goingAwaySpread: 3000,
      retryDelay: 500, maxRetryDelay: 15000, ackTimeout: 15000, joinTimeout: 20000,
      idleProbe: 30000, probeTimeout: 10000, resendWindow: 270000,
      typingInterval: 2000, tokenMargin: 30, maxFrameBytes: 4096, echoHold: 3000,
      gapTimeout: 5000, maxGapHeld: 100, maxOutbox: 1000,
      rateMsgs: 20, rateBurst: 40, maxPendingRequests: 64, loginTimeout: 10000, openTimeout: 10000,
      ...options,
    };
    /** @type {string} */ this.username = options.username ?? "";
    /** @type {string} */ this.token = "";
    /** @private */
    this._conn = new Connection(this, base ? String(base).replace(/\/+$/, "") : "", options.wsUrl);
    if (options.token) this._conn.setToken(options.token, false);
    /** @private */ this._rooms = new Rooms(this);
    /** @private */ this._outbox = new Outbox(this);
    /** @private */ this._seq = 0; // numbers the ids of requests and typing notifications
    /** @private @type {Map<string, Promise<void>>} rooms whose `left` is awaited */
    this._leaving = new Map();
    /** @private @type {Map<string, {type: string, room: string, gen: number, sentAt: number,
     *   resolve?: Function, reject?: Function}>} request id → pending request */
    this._pending = new Map();
  }

  /* ------------------------------------------------------------------ API */

  /** The connection state: `disconnected`, `connecting`, `connected` or `reconnecting`. */
  get state() {
    return this._conn.state;
  }

  /** Names of the rooms this client is in (or joining), in join order. */
  get rooms() {
    return this._rooms.names();
  }

  /**
   * What the client knows about a room, or null when it is not in it.
   * @param {string} name
   */
  room(name) {
    return this._rooms.info(name);
  }

  /** The sends not yet acknowledged, oldest first, as {@link Delivery} objects. */
  get outbox() {
    return this._outbox.snapshot();
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
    return this._conn.login(username);
  }

  /**
   * Connects, and keeps reconnecting until `disconnect()` or `close()`.
   * Logs in first when there is no usable token.
   * @returns {Promise<void>} resolves once connected; rejects when the client
   *   gives up (the login was refused) or is closed first
   */
  connect() {
    return this._conn.connect();
  }

  /**
   * Closes the connection but keeps rooms and outbox: `connect()` resumes
   * with recovery.
   */
  disconnect() {
    this._conn.disconnect();
  }

  /** Disconnects and forgets everything: rooms, and the outbox (its sends reject with `closed`). */
  close() {
    this.disconnect();
    const err = new ConfabError("closed", "the client was closed");
    this._rooms.removeAll(err);
    this._outbox.failAll(err);
  }

  /**
   * Joins a room. Joining a room already joined resolves with what is known
   * (no `joined` event). While connected, and after every reconnect, the room
   * is (re)joined with recovery; `joined` and `message` events follow. A room
   * left a moment ago is asked for once the server confirmed the leave; it is
   * in `rooms` (joining) meanwhile, and a `leave()` before then cancels the
   * join, which rejects with `left` as any join cut short by a leave does.
   * @param {string} name
   * @param {{limit?: number}} [opts] recent messages to fetch on the first join (0–100)
   * @returns {Promise<JoinedInfo>}
   */
  async join(name, { limit } = {}) {
    if (!isValidRoom(name)) {
      throw new ConfabError("bad_room", "Room names are 1–64 characters of A–Z a–z 0–9 _ . : -",
        { room: name });
    }
    // Asked before the server has our leave, the join would be refused
    // (`already_joined`) and the leave then taken for it.
    return this._rooms.join(name, limit, !this._leaving.has(name));
  }

  /**
   * Leaves a room: stops recovering it, fails its unsent messages and its
   * join if not answered yet (`left`), and emits `left` right away.
   * @param {string} name
   * @returns {Promise<void>} resolves when the server confirmed (or there was no connection)
   */
  leave(name) {
    const r = this._rooms.get(name);
    if (!r) return this._leaving.get(name) ?? Promise.resolve();
    this._rooms.remove(r, new ConfabError("left", `You left #${name}.`, { room: name }));
    this._forgetRequests("join", name); // its `joined` is ignored
    // A join made while an earlier leave was under way was not asked for
    // yet: the server has nothing more to be told.
    let done = this._leaving.get(name) ?? Promise.resolve();
    if (this._conn.state === "connected" && r.gen === this._conn.gen) {
      done = new Promise((resolve) => {
        this._request("leave", { room: name }, { room: name, resolve, reject: resolve });
      }).finally(() => {
        this._leaving.delete(name);
        this._rooms.joinAfterLeave(name);
      });
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
    if (!this._rooms.has(room)) return Promise.reject(new ConfabError("not_joined", `Join #${room} first.`, { room }));
    if (typeof text !== "string" || !text.trim()) {
      return Promise.reject(new ConfabError("empty_message", "The message is empty.", { room }));
    }
    // The server refuses these (JSON would carry each as six bytes).
    if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(text)) {
      return Promise.reject(new ConfabError("bad_text",
        "The message holds a control character (only tab and line breaks are allowed).", { room }));
    }
    if (typeof id !== "string" || id.length < 1 || id.length > 64 || this._outbox.has(id)) {
      return Promise.reject(new ConfabError("bad_id", "A send id is 1–64 characters and unique.", { room }));
    }
    if (byteLength(sendFrame(room, text, id)) > this.options.maxFrameBytes) {
      return Promise.reject(new ConfabError("too_big", "The message is too long.", { room }));
    }
    if (this._outbox.size >= this.options.maxOutbox) {
      return Promise.reject(new ConfabError("outbox_full",
        `${this._outbox.size} messages are still waiting to be sent; try again once some have gone out.`,
        { room }));
    }
    return this._outbox.add(room, text, id);
  }

  /**
   * Fetches older messages of a joined room (oldest first).
   * @param {string} room
   * @param {{before?: number, limit?: number}} [opts] `before` is exclusive
   * @returns {Promise<{room: string, messages: ChatMessage[], hasMore: boolean, epoch?: string}>}
   *   `epoch`: the epoch of the page's ids, when the server says; another than the
   *   room's means its history was reset meanwhile (a `joined` with `reset` follows)
   */
  history(room, { before, limit } = {}) {
    const r = this._rooms.get(room);
    if (!r) return Promise.reject(new ConfabError("not_joined", `Join #${room} first.`, { room }));
    if (this._conn.state !== "connected" || r.status !== "joined") {
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
    if (!this._rooms.typingSlot(room)) return false;
    // Typing has no answer; its id (prefix "t") only lets us ignore its errors.
    this._conn.send(JSON.stringify({ type: "typing", payload: { room, id: `t${(++this._seq).toString(36)}` } }));
    return true;
  }

  /* ------------------------------------------- for the client/ modules */

  /**
   * @private Sends one request frame, remembering it by id for the answer.
   * @returns {boolean} whether it went out
   */
  _request(type, payload, pending = {}) {
    const conn = this._conn;
    if (!conn.ws || conn.state !== "connected") return false;
    const id = `r${(++this._seq).toString(36)}`;
    this._pending.set(id, { type, room: payload.room, gen: conn.gen, sentAt: Date.now(), ...pending });
    conn.send(JSON.stringify({ type, payload: { ...payload, id } }));
    return true;
  }

  /** @private Stops waiting for the answers to the `type` requests about `room`. */
  _forgetRequests(type, room) {
    for (const [ref, q] of this._pending) {
      if (q.type === type && q.room === room) this._pending.delete(ref);
    }
  }

  /** @private The Connection's socket opened: (re)join every room. */
  _onOpened() {
    this._rooms.rejoinAll();
  }

  /**
   * @private The Connection gave up its socket (closed with `code`, when it
   * closed): pending requests end, sends in flight become "outcome unknown"
   * (resent after the rejoin; one that drew 1009 fails), rooms wait for
   * their rejoin.
   */
  _onDropped(code) {
    const gone = new ConfabError("disconnected", "The connection was lost.");
    for (const [ref, p] of this._pending) {
      this._pending.delete(ref);
      if (p.type === "leave") p.resolve?.(); // the server forgets our rooms anyway
      else if (p.type === "history") p.reject?.(new ConfabError(gone.code, gone.message, { room: p.room }));
    }
    // rooms first: a `too_big` failure below emits events, and a listener
    // that sends again must find its room waiting for the rejoin
    this._rooms.lost();
    this._outbox.lost(code);
  }

  /* --------------------------------------------------------- frames */

  /** @private A frame from the current socket. */
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
      case "joined": this._rooms.onJoined(p); break;
      case "new_message": this._rooms.onNewMessage(p); break;
      case "ack": this._outbox.onAck(p); break;
      case "history": this._onHistory(p); break;
      case "left": this._onLeft(p); break;
      case "presence": this._rooms.onPresence(p); break;
      case "typing": this._rooms.onTyping(p); break;
      case "error": this._onError(p); break;
      default: break; // newer servers may add events
    }
    // An answered request may leave room for a queued send (maxPendingRequests).
    if (type === "history" || type === "left" || type === "error") this._outbox.pump();
  }

  /**
   * @private A history page, matched to its request by the `id` the server
   * echoes. Servers older than that echo send none: their answers are taken
   * in the order of the room's requests, the only thing left to go by.
   */
  _onHistory(p) {
    let ref = typeof p.id === "string" ? p.id : undefined;
    if (ref === undefined) {
      for (const [r, q] of this._pending) {
        if (q.type === "history" && q.room === p.room) {
          ref = r;
          break;
        }
      }
    }
    const q = ref !== undefined ? this._pending.get(ref) : undefined;
    // An answer nobody waits for (any more) must not settle another request.
    if (!q || q.type !== "history" || q.room !== p.room) return;
    this._pending.delete(ref);
    const page = {
      room: p.room,
      messages: normalizeMessages(p.messages, p.room),
      hasMore: Boolean(p.has_more),
    };
    if (typeof p.epoch === "string") page.epoch = p.epoch; // servers older than it send none
    q.resolve(page);
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
    if (ref !== undefined && this._outbox.onError(ref, err)) return;
    // over the gateway's rate: its budget is empty (and smaller than counted?)
    if (code === "rate_limited") this._conn.slowDown(ref !== undefined ? this._pending.get(ref)?.sentAt : undefined);
    if (ref !== undefined && ref.startsWith("t")) return; // a dropped typing notification
    // a ping refused (rate-limited; unknown to a server older than ping):
    // an answer all the same, which is all a ping asks for
    if (ref !== undefined && ref.startsWith("ping-")) return;
    const q = ref !== undefined ? this._pending.get(ref) : undefined;
    if (!q) {
      this.emit("error", err);
      return;
    }
    this._pending.delete(ref);
    switch (q.type) {
      case "join": this._rooms.onJoinError(q.room, err); break;
      case "history": q.reject(err); break;
      default: q.resolve(); break; // leave: not a member any more either way
    }
  }
}
