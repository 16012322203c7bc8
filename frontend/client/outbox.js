/**
 * client/outbox.js — the sends of a ConfabClient that are not acknowledged
 * yet: putting each on the wire when its room is joined on the current
 * connection, resending it with the SAME id (which the server deduplicates)
 * when its outcome is unknown, and settling it with its ack or an error.
 *
 * Ownership: one Outbox per ConfabClient, made by its constructor. It owns
 * the entries and their promises and timers. Of its owner it uses `emit`
 * (`delivery`, `ack`, `error`), `options`, `_conn` (gen, state and the
 * socket to send on) and `_rooms` (whether a room can take sends now,
 * remembering acked ids, releasing echoes held for an ack).
 *
 * Invariants:
 *  - a send is settled exactly once: resolved with its ack or rejected with a
 *    ConfabError whose code says why (never silently dropped), and it leaves
 *    the outbox then;
 *  - at most one copy of a send is in flight: it goes out again only once
 *    the copy on the wire is known lost (the socket dropped, or nothing came
 *    back within `ackTimeout`) or was refused with a retryable error;
 *  - a room's sends go on the wire in the order they were made (resends
 *    too): one waiting (to retry, for the room, or for the budget below), or
 *    resent after a refusal and not settled yet, holds back the later ones
 *    of its room; otherwise several of them can be in flight at once, but
 *    only one per room on a connection that refused a send with
 *    `rate_limited` or `too_many_requests` (so that, as the gateway turns
 *    sends away there, a later one is not stored before a refused one);
 *  - sends go on the wire no faster than the gateway takes them: each takes
 *    from the request budget the Connection counts (`rateMsgs` after a burst
 *    of `rateBurst`, a quarter of it kept for other frames), and sends in
 *    flight are at most a window that starts at 4 on each connection, grows
 *    by one per ack up to half of `maxPendingRequests` and is halved by a
 *    refusal for load, and never more than the requests awaited leave room
 *    for; a send that must wait for them holds back every later one, of any
 *    room (oldest first);
 *  - a send is resent only within `resendWindow` of the first attempt whose
 *    outcome is unknown (which the server may have stored): refusals that
 *    say nothing was done do not start that window, and are retried for as
 *    long as the send is in the outbox (with a capped backoff, and one
 *    retrying send per room at a time, as the ones behind it wait);
 *  - every state change of a send is emitted as `delivery`.
 *
 * @module confab-client/outbox
 */

import { ConfabError, NOTHING_DONE, RETRYABLE, byteLength, sendFrame, toId } from "./util.js";

/**
 * One unacknowledged send.
 * @typedef {object} OutboxEntry
 * @property {string} id the send id (idempotency key)
 * @property {string} room
 * @property {string} message
 * @property {"sending"|"sent"|"failed"} state
 * @property {number} attempts how many times it went on the wire
 * @property {number} sentAt when it last went on the wire (0: not yet), ms
 * @property {number} unknownSince when the first attempt that may have been stored went on the
 *   wire (0: none yet; every attempt was refused with nothing done), ms
 * @property {boolean} inflight a copy is on the wire, its outcome unknown
 * @property {boolean} refused an attempt drew an error: it is being retried
 * @property {number} gen the connection it last went out on
 * @property {*} timer the retry after a refusal
 * @property {*} watchdog gives the connection up when no answer came within `ackTimeout`
 * @property {number} [messageId]
 * @property {string} [sent]
 * @property {ConfabError} [error]
 * @property {number} [retryIn]
 * @property {Function} resolve
 * @property {Function} reject
 */

/** Sends in flight at most on a new connection, before acks widen the window. */
const INITIAL_WINDOW = 4;

export class Outbox {
  /** @param {import("../confab-client.js").ConfabClient} client the owner */
  constructor(client) {
    /** @private */ this._client = client;
    /** @private @type {Map<string, OutboxEntry>} send id → entry, in send order */
    this._entries = new Map();
    /** @private */ this._pumpTimer = 0; // pumps again once the budget has a token
    /** @private */ this._pumping = false;
    /** @private */ this._again = false; // pump() was called while pumping
    /** @private */ this._winGen = 0; // the connection `_win` is for
    /** @private */ this._win = 0; // sends in flight at most on that connection (before other requests)
    /** @private */ this._cutAt = 0; // when `_win` was last halved
    /** @private */ this._serialGen = 0; // a connection that refused a send for load: one per room there
  }

  has(id) {
    return this._entries.has(id);
  }

  /** How many sends wait (ConfabClient.send refuses one past `maxOutbox`). */
  get size() {
    return this._entries.size;
  }

  /** The entries as Delivery objects, oldest first. */
  snapshot() {
    return [...this._entries.values()].map(delivery);
  }

  /**
   * ConfabClient.send, once the message is checked: queues it and sends it
   * as soon as its room can take it.
   * @returns {Promise<import("../confab-client.js").Ack>}
   */
  add(room, message, id) {
    const entry = {
      id, room, message, state: "sending", attempts: 0, sentAt: 0, unknownSince: 0, inflight: false,
      refused: false, gen: 0, timer: 0, watchdog: 0, error: undefined, retryIn: undefined,
      resolve: null, reject: null,
    };
    const promise = new Promise((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
    });
    this._entries.set(id, entry);
    this._client.emit("delivery", delivery(entry));
    this.pump();
    return promise;
  }

  /**
   * Puts on the wire what can go now, oldest first. Within a room, up to
   * the first send that must wait on: the server stores a room's sends in
   * the order they reach it, so none may overtake an earlier one (a later
   * one would be stored before a resend of it). Those in flight hold nothing
   * back, but for one sent again after a refusal: until it is settled, the
   * ones behind it wait, which also keeps an outage to one retrying send per
   * room (and on a connection that refused a send for load, any send in
   * flight holds back the rest of its room). Across rooms, up to the first
   * send that finds the budget (rate, or requests in flight) spent: it goes
   * first once there is room, which a timer (rate) or an answer (requests)
   * tells. Called whenever that may have changed.
   */
  pump() {
    if (this._pumping) { // from a listener of an event emitted below
      this._again = true;
      return;
    }
    this._pumping = true;
    try {
      do {
        this._again = false;
        this._pumpOnce();
      } while (this._again);
    } finally {
      this._pumping = false;
    }
  }

  /** @private */
  _pumpOnce() {
    const client = this._client;
    const conn = client._conn;
    clearTimeout(this._pumpTimer);
    this._pumpTimer = 0;
    if (!conn.ws || conn.state !== "connected") return; // the rejoins pump again
    const serial = this._serialGen === conn.gen;
    let inflight = 0;
    for (const e of this._entries.values()) if (e.inflight) inflight += 1;
    const held = new Set(); // rooms whose later sends wait
    for (const e of [...this._entries.values()]) {
      if (held.has(e.room) || !this._entries.has(e.id)) continue;
      if (e.inflight) {
        if (e.refused || serial) held.add(e.room);
        continue;
      }
      if (!client._rooms.live(e.room) || e.timer) {
        held.add(e.room);
        continue;
      }
      if (inflight >= this._room()) return; // an answer pumps again
      const wait = conn.queueWait();
      if (wait > 0) {
        this._pumpTimer = setTimeout(() => {
          this._pumpTimer = 0;
          this.pump();
        }, wait);
        return;
      }
      this._transmit(e); // or fails it (too late to resend): its room goes on
      if (e.inflight) {
        inflight += 1;
        if (e.refused || serial) held.add(e.room);
      }
    }
  }

  /**
   * @private How many sends may be in flight now: a window that starts at
   * INITIAL_WINDOW on each connection (a gateway configured with a smaller
   * burst than `rateBurst` must not get a whole burst of sends at once),
   * grows by one with each ack up to half of the gateway's
   * MAX_PENDING_REQUESTS (joins and history fetches need the rest), and is
   * halved by a refusal for load; never more than the requests awaited
   * (joins, history, leaves) leave room for.
   */
  _room() {
    const client = this._client;
    const max = client.options.maxPendingRequests;
    if (!(max > 0)) return Infinity;
    this._window();
    return Math.min(this._win, max - client._pending.size);
  }

  /** @private `_win`, made afresh for a new connection. */
  _window() {
    const gen = this._client._conn.gen;
    if (this._winGen !== gen) {
      this._winGen = gen;
      this._win = Math.min(INITIAL_WINDOW, this._ceiling());
      this._cutAt = 0;
    }
  }

  /** @private The largest window: half of maxPendingRequests. */
  _ceiling() {
    const max = this._client.options.maxPendingRequests;
    return max > 0 ? Math.max(1, Math.floor(max / 2)) : Infinity;
  }

  /**
   * @private A send went out at `sentAt` and was refused for load: the
   * gateway's budget is smaller than counted. Sends go one per room from
   * now on this connection, and the window (and, for `rate_limited`, the
   * rate) is cut, once for all the refusals of frames that went out before
   * the cut.
   */
  _refusedForLoad(code, sentAt) {
    const conn = this._client._conn;
    this._serialGen = conn.gen;
    if (code === "rate_limited") conn.slowDown(sentAt);
    this._window();
    if (sentAt > this._cutAt) {
      this._win = Math.max(1, Math.floor(this._win / 2));
      this._cutAt = Date.now();
    }
  }

  /** True when a send of `room` with this text is not acked yet (so its echo is held). */
  awaitsEcho(room, message) {
    return [...this._entries.values()].some((e) => e.room === room && e.message === message);
  }

  /**
   * The connection is gone: what was in flight has an unknown outcome, to be
   * resent. Closed with 1009, the server found a frame over its
   * MAX_MESSAGE_BYTES, which may be lower than `maxFrameBytes`: resending it
   * would only close the next connection too. The largest send in flight is
   * that frame (joins and other requests are far smaller than any limit):
   * it fails with `too_big`, and sends that large are refused from then on.
   */
  lost(code) {
    clearTimeout(this._pumpTimer);
    this._pumpTimer = 0;
    let largest = null;
    let largestBytes = 0;
    for (const e of this._entries.values()) {
      if (code === 1009 && e.inflight) {
        const bytes = byteLength(sendFrame(e.room, e.message, e.id));
        if (bytes > largestBytes) [largest, largestBytes] = [e, bytes];
      }
      if (e.inflight) this._outcomeUnknown(e);
      e.inflight = false;
      clearTimeout(e.watchdog);
      e.watchdog = 0;
    }
    if (largest) {
      const options = this._client.options;
      options.maxFrameBytes = Math.min(options.maxFrameBytes, largestBytes - 1);
      this._fail(largest, new ConfabError("too_big", "The message is longer than the server takes.",
        { room: largest.room, ref: largest.id }), true);
    }
  }

  /** Fails the room's sends with `err` (their promises report it, no `error` event). */
  failRoom(room, err) {
    for (const e of [...this._entries.values()]) if (e.room === room) this._fail(e, err, false);
    this.pump(); // its sends in flight made room for others
  }

  /** Fails every send with `err`, as failRoom() does. */
  failAll(err) {
    for (const e of [...this._entries.values()]) this._fail(e, err, false);
  }

  onAck(p) {
    const client = this._client;
    const e = typeof p.id === "string" ? this._entries.get(p.id) : undefined;
    if (!e) return; // a late duplicate
    const messageId = toId(p.message_id);
    this._entries.delete(e.id);
    clearTimeout(e.timer);
    clearTimeout(e.watchdog);
    e.state = "sent";
    e.inflight = false;
    e.messageId = messageId;
    e.sent = typeof p.sent === "string" ? p.sent : undefined;
    e.error = undefined;
    e.retryIn = undefined;
    client._rooms.rememberAck(e.room, messageId, e.id);
    /** @type {import("../confab-client.js").Ack} */
    const ack = { id: e.id, room: e.room, messageId, sent: e.sent };
    if (e.gen === client._conn.gen) { // the gateway keeps up: one more may be in flight
      this._window();
      this._win = Math.min(this._win + 1, this._ceiling());
    }
    e.resolve(ack);
    client.emit("ack", ack);
    client.emit("delivery", delivery(e));
    client._rooms.releaseHeld(e.room);
    this.pump();
  }

  /**
   * An `error` whose `ref` may be a send id: retries or fails that send.
   * @returns {boolean} whether `ref` was a send of ours
   */
  onError(ref, err) {
    const e = this._entries.get(ref);
    if (!e) return false;
    const client = this._client;
    clearTimeout(e.watchdog);
    e.watchdog = 0;
    e.inflight = false;
    const inRoom = client._rooms.has(e.room);
    const retry = RETRYABLE.has(err.code) ||
      (err.code === "not_member" && inRoom && e.attempts < 5); // raced a rejoin
    if (!retry || !inRoom) {
      this._fail(e, err, true);
      this.pump();
      return true;
    }
    if ((err.code === "rate_limited" || err.code === "too_many_requests") && e.gen === client._conn.gen) {
      this._refusedForLoad(err.code, e.sentAt);
    }
    if (!NOTHING_DONE.has(err.code)) this._outcomeUnknown(e);
    e.refused = true;
    const { retryDelay, maxRetryDelay } = client.options;
    const ceiling = Math.min(maxRetryDelay, retryDelay * 2 ** Math.max(0, e.attempts - 1));
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    e.error = err;
    e.retryIn = delay;
    clearTimeout(e.timer);
    e.timer = setTimeout(() => {
      e.timer = 0;
      e.retryIn = undefined;
      this.pump();
    }, delay);
    client.emit("delivery", delivery(e));
    this.pump(); // a send in flight fewer
    return true;
  }

  /** @private The attempt on the wire may have been stored, or not: the resend window starts. */
  _outcomeUnknown(e) {
    if (!e.unknownSince) e.unknownSince = e.sentAt;
  }

  /**
   * @private Puts a send on the wire (pump() found its room joined on this
   * connection, and room in the budget), or fails it when it is too late to
   * resend.
   */
  _transmit(e) {
    const client = this._client;
    const conn = client._conn;
    if (e.unknownSince && Date.now() - e.unknownSince > client.options.resendWindow) {
      // The server takes a repeated id for the same send only within its
      // DEDUP_WINDOW (5 min by default): a copy that may have got through
      // that long ago would be stored twice. Say so rather than guess.
      this._fail(e, new ConfabError("unconfirmed",
        "Whether it was delivered could not be confirmed (no answer came, or the connection was lost), "
        + "and that was too long ago to send it again safely: it may or may not have been delivered.",
        { room: e.room, ref: e.id }), true);
      return;
    }
    e.sentAt = Date.now();
    e.inflight = true;
    e.gen = conn.gen;
    e.attempts += 1;
    conn.send(sendFrame(e.room, e.message, e.id));
    clearTimeout(e.watchdog);
    e.watchdog = setTimeout(() => {
      // The server answers every send within 10 s (an ack, or an error such
      // as `timeout`): silence means the link is dead without a close (a
      // sleep, a network change, a proxy that dropped it), and a resend on
      // it would go nowhere. Reconnect: the send goes out again, same id,
      // once its room is rejoined.
      e.watchdog = 0;
      const conn = client._conn;
      if (e.inflight && e.gen === conn.gen && conn.ws) {
        client.emit("error", new ConfabError("timeout", "No answer from the server; reconnecting.",
          { room: e.room, ref: e.id }));
        conn.abort(4000, "send timeout");
      }
    }, client.options.ackTimeout);
  }

  /** @private */
  _fail(e, err, report) {
    const client = this._client;
    this._entries.delete(e.id);
    clearTimeout(e.timer);
    clearTimeout(e.watchdog);
    e.state = "failed";
    e.error = err;
    e.retryIn = undefined;
    e.reject(err);
    client.emit("delivery", delivery(e));
    client._rooms.releaseHeld(e.room);
    if (report && err.code !== "left" && err.code !== "closed") client.emit("error", err);
  }
}

/** @returns {import("../confab-client.js").Delivery} the public view of an entry */
function delivery(e) {
  const d = { id: e.id, room: e.room, message: e.message, state: e.state, attempts: e.attempts };
  if (e.messageId !== undefined) d.messageId = e.messageId;
  if (e.sent !== undefined) d.sent = e.sent;
  if (e.error) d.error = e.error;
  if (e.retryIn !== undefined) d.retryIn = e.retryIn;
  return d;
}
