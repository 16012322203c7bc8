/**
 * client/rooms.js — the rooms a ConfabClient is in, and the delivery of
 * their messages: (re)joining with `since`/`epoch`, taking in a `joined`
 * snapshot, dropping `new_message`s already seen, fetching the ones a gap in
 * live ids says were lost (holding the live ones past the gap meanwhile),
 * holding back the echo of one's own unacknowledged send, and keeping the
 * member lists.
 *
 * Ownership: one Rooms per ConfabClient, made by its constructor. It owns
 * the RoomRecords: other modules may read a record (`get`) but change it only
 * through these methods. Of its owner it uses `emit`, `options`, `username`,
 * `history()` (to fill gaps), `_request()`/`_forgetRequests()` (the join
 * requests), `_conn` (state, gen, the socket, `abort`) and `_outbox`
 * (sends waiting for a room, and echoes waiting for an ack).
 *
 * Invariants:
 *  - a room's `lastId` is the last id delivered in order (every id up to it
 *    was delivered, or reported missing with a `gap` error); it only moves
 *    forward within an epoch; a `new_message` at or below it is a duplicate
 *    and is dropped; a new epoch resets it to 0;
 *  - messages with ids are delivered in id order (except a held echo, below,
 *    which others are not held behind): a live one past a gap waits
 *    in `ahead` (at most `maxGapHeld` of them) while the gap is fetched from
 *    the history, one fetch at a time (a refusal that left the messages
 *    fetchable is retried with backoff); when the fetch fails for good or is
 *    not answered within `gapTimeout`, or `ahead` overflows, the client
 *    gives up on the gap: it reports the missing ids (`gap` error, `lost:
 *    true`) and delivers what it holds, in order. A lost connection is not
 *    a reason to give up: what `ahead` holds waits (without a timeout) for
 *    the rejoin, which asks from `lastId` and so replays the gap, and goes
 *    out with its snapshot; when that snapshot starts past a hole (the
 *    server could not replay everything), it waits in `ahead` too while the
 *    hole is fetched (`maxGapHeld` counts live messages only). A page
 *    the server cut to its byte budget (`hasMore` with its oldest id above
 *    the ids asked) is followed by a fetch of the rest, not taken for ids
 *    the history lost. A new epoch is: the gap went with the old
 *    history, so it is reported and what `ahead` holds delivered before the
 *    new epoch's `joined`, and a page read from another epoch than the
 *    room's is not taken for the ids asked. Presence and typing are never
 *    held;
 *  - `joined` is emitted before the messages it brings, and live messages
 *    that came before it wait in `buffer` and follow them;
 *  - a join is answered or the connection is given up: no answer within
 *    `joinTimeout` means the link is wedged, and the client reconnects;
 *  - a held echo is delivered once, in id order, when its own send is acked
 *    (the ack's `message_id` is its id) or fails (no send with its text is
 *    left) or `echoHold` ms have passed, whichever is first (or never, when
 *    the room is left first); another send's ack does not let it go.
 *
 * @module confab-client/rooms
 */

import { ConfabError, RETRYABLE, clampLimit, normalizeMessages, toId } from "./util.js";

/** Retries of one gap fetch refused with a RETRYABLE code, at most (gapTimeout bounds them too). */
const GAP_RETRIES = 8;

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
 * @property {Array<object>} buffer `new_message` payloads that came before `joined`
 * @property {Array<object>} held echoes of own sends waiting for their ack
 * @property {Array<{m: object, source: string}>} ahead messages past a gap, by id, waiting for it
 * @property {number} gapSeq numbers the gap fetches; an answer to an older one is ignored
 * @property {*} gapTimer gives up on the gap fetch in flight (0: none in flight)
 * @property {*} gapRetryTimer sends the gap fetch in flight again after a refusal
 * @property {*} holdTimer
 * @property {*} joinTimer
 * @property {number} joinAttempts
 * @property {number} lastTypingAt
 * @property {Promise<import("../confab-client.js").JoinedInfo>} joined resolves on the first `joined`
 * @property {(info: import("../confab-client.js").JoinedInfo) => void} resolveJoin
 * @property {(err: Error) => void} rejectJoin
 * @property {Map<number, string>} ackedIds message id → send id, for recent acks
 */

export class Rooms {
  /** @param {import("../confab-client.js").ConfabClient} client the owner */
  constructor(client) {
    /** @private */ this._client = client;
    /** @private @type {Map<string, RoomRecord>} in join order */
    this._map = new Map();
  }

  /** @private */
  get _conn() {
    return this._client._conn;
  }

  /** Names of the rooms, in join order. */
  names() {
    return [...this._map.keys()];
  }

  /** @returns {RoomRecord|undefined} read-only outside this module */
  get(name) {
    return this._map.get(name);
  }

  has(name) {
    return this._map.has(name);
  }

  /** What ConfabClient.room() returns. */
  info(name) {
    const r = this._map.get(name);
    if (!r) return null;
    return {
      room: r.name, status: r.status, epoch: r.epoch, lastId: r.lastId,
      members: [...r.members.values()], count: r.count,
    };
  }

  /**
   * ConfabClient.join, once the name is checked: what is known of a room
   * already joined, or the promise of the first `joined`. `ask`: false while
   * the room's leave is under way, whose end asks (joinAfterLeave).
   */
  join(name, limit, ask = true) {
    const known = this._map.get(name);
    if (known) return known.status === "joined" ? joinedSnapshot(known) : known.joined;
    /** @type {RoomRecord} */
    const r = {
      name, status: "joining", limit: clampLimit(limit ?? this._client.options.joinLimit),
      epoch: null, lastId: 0, members: new Map(), count: 0, joinedOnce: false, gen: 0,
      buffer: [], held: [], holdTimer: 0, joinTimer: 0, joinAttempts: 0, lastTypingAt: 0,
      ahead: [], gapSeq: 0, gapTimer: 0, gapRetryTimer: 0,
      ackedIds: new Map(),
    };
    r.joined = new Promise((resolve, reject) => {
      r.resolveJoin = resolve;
      r.rejectJoin = reject;
    });
    r.joined.catch(() => {}); // a rejection is reported by the returned promise
    this._map.set(name, r);
    if (ask && this._conn.state === "connected") this._sendJoin(r);
    return r.joined;
  }

  /**
   * The room's leave was answered (or its connection dropped): a join made
   * meanwhile goes out now, unless asked on this connection already.
   */
  joinAfterLeave(name) {
    const r = this._map.get(name);
    const conn = this._conn;
    if (r && r.status === "joining" && r.gen !== conn.gen && conn.state === "connected") this._sendJoin(r);
  }

  /** Drops a room: its timers, its first join (rejected) and its unsent messages (failed, unreported). */
  remove(r, err) {
    this._map.delete(r.name);
    this._forget(r, err);
  }

  /** Drops every room, as remove() does. */
  removeAll(err) {
    for (const r of this._map.values()) this._forget(r, err);
    this._map.clear();
  }

  /** A connection opened: rejoin every room on it, with recovery. */
  rejoinAll() {
    for (const r of this._map.values()) {
      r.status = "joining";
      r.joinAttempts = 0;
      this._sendJoin(r);
    }
  }

  /**
   * The connection is gone: every room waits for its rejoin. A gap fetch cut
   * off is not given up: the messages held past the gap wait for the rejoin,
   * which asks from `lastId` (before the gap), so it replays the gap too.
   */
  lost() {
    for (const r of this._map.values()) {
      r.status = "joining";
      r.buffer = [];
      clearTimeout(r.joinTimer);
      r.joinTimer = 0;
      this._endFetch(r);
    }
  }

  /** True when sends to the room can go out: it is joined on the current, open connection. */
  live(name) {
    const r = this._map.get(name);
    const conn = this._conn;
    return Boolean(r) && r.status === "joined" && r.gen === conn.gen && conn.state === "connected";
  }

  /**
   * Takes the room's typing slot: true (and the slot is used) when the room
   * is joined, the client connected, and none went out within `typingInterval`.
   */
  typingSlot(name) {
    const r = this._map.get(name);
    if (!r || r.status !== "joined" || this._conn.state !== "connected") return false;
    const now = Date.now();
    if (now - r.lastTypingAt < this._client.options.typingInterval) return false;
    r.lastTypingAt = now;
    return true;
  }

  /** One's own send was stored as `messageId`: its echo gets `clientId: sendId`. */
  rememberAck(name, messageId, sendId) {
    const r = this._map.get(name);
    if (!r || messageId === undefined) return;
    r.ackedIds.set(messageId, sendId);
    if (r.ackedIds.size > 500) r.ackedIds.delete(r.ackedIds.keys().next().value);
  }

  /**
   * A send of the room was settled: the held echoes it settles can go. That
   * is the echo of an acked send (its id is known now) and any echo that no
   * send in the outbox may be waiting for any more (its own failed, or it
   * came from another connection); the others wait on for their own acks.
   */
  releaseHeld(name) {
    const r = this._map.get(name);
    if (!r || !r.held.length) return;
    const outbox = this._client._outbox;
    this._releaseHeld(r, (m) => r.ackedIds.has(m.id) || !outbox.awaitsEcho(r.name, m.message));
  }

  /* ------------------------------------------------------- frames */

  /**
   * The answer to our join, or a `joined` the server sends by itself to a
   * live member: after a broker restart (the missed messages, as for a
   * recovering join) or when the room's epoch changed (a fresh snapshot).
   * Both are handled like a rejoin.
   */
  onJoined(p) {
    const client = this._client;
    const r = this._map.get(p.room);
    if (!r) return;
    client._forgetRequests("join", p.room);
    clearTimeout(r.joinTimer);
    r.joinTimer = 0;
    const first = !r.joinedOnce;
    const epoch = typeof p.epoch === "string" ? p.epoch : String(p.epoch ?? "");
    // The same epoch ending below the last id this client holds means the
    // server lost messages it had given out (Redis back from an older copy of
    // its data): the ids above the new last one will be handed out again, for
    // other messages, so it is a reset like a new epoch, not a repeat.
    const wentBack = r.epoch !== null && epoch === r.epoch && (toId(p.last_id) ?? 0) < r.lastId;
    const reset = (r.epoch !== null && epoch !== r.epoch) || wentBack;
    if (reset) {
      // The old epoch's history is gone, and with it the gap being fetched:
      // that is reported and what was held past it delivered, before the
      // new epoch starts over (its fetch's answer will be ignored).
      this._giveUpGap(r, wentBack ? "the room's history went back" : "the room's history was reset");
      r.lastId = 0;
      r.ackedIds.clear();
      // Echoes held for their acks carry the old epoch's ids too: released
      // later, one would take the place of the new epoch's message with that
      // id. The sends themselves still settle by their acks.
      clearTimeout(r.holdTimer);
      r.holdTimer = 0;
      r.held = [];
    }
    const seen = r.lastId;
    // Live messages held past a gap go out with the snapshot (unless it has them).
    const ahead = r.ahead;
    r.ahead = [];
    this._endFetch(r);
    const source = first || reset ? "history" : "recovery";
    const fresh = normalizeMessages(p.messages, r.name).filter((m) => !(m.id <= seen));
    const inSnapshot = new Set(fresh.map((m) => m.id));
    const items = fresh.map((m) => ({ m, source }))
      .concat(ahead.filter((a) => a.m.id > seen && !inSnapshot.has(a.m.id)))
      .sort((a, b) => (a.m.id ?? 0) - (b.m.id ?? 0));
    r.epoch = epoch;
    // A rejoin the server could not recover in full (it missed more than
    // the snapshot holds, or the snapshot was cut to its byte budget) leaves
    // a hole between what this client had and the snapshot. The history may
    // still have those messages: the snapshot waits past the hole, as live
    // messages past a gap do, while the hole is fetched; what the history
    // no longer has is reported lost.
    const firstId = items.length ? items[0].m.id ?? 0 : (toId(p.last_id) ?? 0) + 1;
    const missed = !first && !reset && !p.recovered && firstId > seen + 1;
    const hole = missed && items.length > 0;
    if (hole) {
      for (const i of items) insertAhead(r, i.m, i.source);
    } else {
      r.lastId = Math.max(seen, toId(p.last_id) ?? 0, ...items.map((i) => i.m.id ?? 0));
    }
    r.members = new Map();
    for (const m of Array.isArray(p.members) ? p.members : []) {
      if (m && typeof m.user === "string") r.members.set(m.user, { user: m.user });
    }
    r.count = Number.isInteger(p.count) ? p.count : r.members.size;
    r.status = "joined";
    r.joinedOnce = true;
    const messages = hole ? [] : items.map((i) => this._decorate(r, i.m, i.source));
    /** @type {import("../confab-client.js").JoinedInfo} */
    const info = {
      room: r.name, epoch, lastId: r.lastId, members: [...r.members.values()], count: r.count,
      recovered: Boolean(p.recovered), rejoin: !first, reset, gap: missed && !hole,
      messages,
    };
    client.emit("joined", info);
    for (const m of messages) this._deliver(r, m);
    if (hole) {
      client.emit("error", gapError(r, seen + 1, firstId - 1, false, "were missed while disconnected; fetching them"));
      this._fetchGap(r);
    }
    r.resolveJoin(info);
    const buffered = r.buffer;
    r.buffer = [];
    for (const payload of buffered) this.onNewMessage(payload);
    client._outbox.pump(); // the room's sends can go now
  }

  onNewMessage(p) {
    const r = this._map.get(p.room);
    if (!r) return;
    if (r.status === "joining") {
      r.buffer.push(p);
      return;
    }
    const [m] = normalizeMessages([p], r.name);
    if (!m) return;
    if (m.id === undefined) {
      this._deliver(r, this._decorate(r, m, "live")); // no id, no order to keep
      return;
    }
    if (m.id <= r.lastId || r.ahead.some((a) => a.m.id === m.id)) return; // seen already
    // (a first id is taken as it comes, unless a snapshot waits past a hole)
    if ((r.lastId === 0 && !r.ahead.length) || m.id === r.lastId + 1) {
      r.lastId = m.id;
      this._deliver(r, this._decorate(r, m, "live"));
      this._drainAhead(r); // it may have closed a gap
      return;
    }
    this._holdAhead(r, m);
  }

  onPresence(p) {
    const r = this._map.get(p.room);
    if (!r || r.status !== "joined" || typeof p.user !== "string") return;
    if (p.action === "join") r.members.set(p.user, { user: p.user });
    else if (p.action === "leave") r.members.delete(p.user);
    else return;
    r.count = Number.isInteger(p.count) ? p.count : r.members.size;
    this._client.emit("presence", { room: r.name, user: p.user, action: p.action, count: r.count });
  }

  onTyping(p) {
    if (this._map.get(p.room)?.status === "joined" && typeof p.user === "string") {
      this._client.emit("typing", { room: p.room, user: p.user });
    }
  }

  /**
   * The server refused our join: retry a retryable refusal with backoff, or
   * leave the room (`left` with the error).
   */
  onJoinError(name, err) {
    const client = this._client;
    const r = this._map.get(name);
    if (!r || r.status !== "joining") return;
    clearTimeout(r.joinTimer);
    r.joinTimer = 0;
    // A first join gives up after 8 tries (its promise says why); a rejoin
    // keeps trying at the capped backoff: an outage of a minute must not
    // take the user out of their rooms for good.
    if (RETRYABLE.has(err.code) && (r.joinedOnce || r.joinAttempts < 8)) {
      const gen = this._conn.gen;
      r.joinAttempts += 1;
      const delay = Math.min(client.options.maxRetryDelay,
        client.options.retryDelay * 2 ** Math.min(r.joinAttempts, 20));
      r.joinTimer = setTimeout(() => {
        if (this._map.get(name) === r && r.status === "joining" && gen === this._conn.gen) this._sendJoin(r);
      }, delay / 2 + (Math.random() * delay) / 2);
      return;
    }
    this.remove(r, err);
    client.emit("left", { room: name, error: err });
    if (r.joinedOnce) client.emit("error", err); // a first join reports through its promise
  }

  /* ------------------------------------------------------ private */

  /** @private */
  _sendJoin(r) {
    const payload = { room: r.name, limit: r.limit };
    if (r.epoch !== null) {
      payload.since = r.lastId;
      payload.epoch = r.epoch;
    }
    r.gen = this._conn.gen;
    clearTimeout(r.joinTimer);
    r.joinTimer = setTimeout(() => {
      // The server always answers a join; silence means the link is wedged.
      const conn = this._conn;
      if (r.status === "joining" && r.gen === conn.gen && conn.ws) {
        this._client.emit("error", new ConfabError("timeout", `No answer joining #${r.name}; reconnecting.`,
          { room: r.name }));
        conn.abort(4000, "join timeout");
      }
    }, this._client.options.joinTimeout);
    this._client._request("join", payload, { room: r.name });
  }

  /** @private Stops everything about a room this client is no longer in. */
  _forget(r, err) {
    clearTimeout(r.joinTimer);
    clearTimeout(r.holdTimer);
    this._endFetch(r);
    r.held = [];
    r.ahead = [];
    r.buffer = [];
    if (!r.joinedOnce) r.rejectJoin(err);
    // Their promises report it; the caller reports the error itself.
    this._client._outbox.failRoom(r.name, err);
  }

  /**
   * @private Live ids jumped past `lastId + 1` (they are gapless, so messages
   * were lost on the way): `m` waits in `ahead` while the gap is fetched.
   */
  _holdAhead(r, m) {
    const top = r.ahead.length ? r.ahead[r.ahead.length - 1].m.id : r.lastId;
    insertAhead(r, m, "live");
    const max = this._client.options.maxGapHeld;
    // live messages only: a rejoin's snapshot and fetched pages wait there too
    if (r.ahead.reduce((n, a) => n + (a.source === "live"), 0) > max) {
      this._giveUpGap(r, `more than ${max} messages were waiting for them`);
      return;
    }
    if (m.id > top + 1) {
      this._client.emit("error", gapError(r, top + 1, m.id - 1, false, "did not arrive live; fetching them"));
    }
    if (!r.gapTimer) this._fetchGap(r);
  }

  /**
   * @private Fetches the oldest part of the gap below `ahead` (at most 100
   * ids, one fetch at a time), or gives up on it after `gapTimeout` ms.
   */
  _fetchGap(r) {
    const conn = this._conn;
    if (r.status !== "joined" || conn.state !== "connected" || !r.ahead.length) return;
    const seq = ++r.gapSeq;
    const timeout = this._client.options.gapTimeout;
    r.gapTimer = setTimeout(() => {
      if (r.gapSeq === seq) this._giveUpGap(r, `the history did not answer within ${timeout} ms`);
    }, timeout);
    this._askGap(r, seq, Date.now() + timeout, 0);
  }

  /**
   * @private One attempt of the gap fetch `seq`. A refusal that says nothing
   * was done (`unavailable`, `too_many_requests`…) leaves the messages
   * fetchable, so it is retried after a backoff: a ceiling doubling from
   * `retryDelay` up to `maxRetryDelay`, the wait drawn at random from its
   * upper half so that clients refused together do not all come back
   * together. Only while the retry can go out before `deadline`, and at most
   * GAP_RETRIES times, so that a tiny `retryDelay` cannot make it a flood.
   * Any other refusal gives up at once.
   */
  _askGap(r, seq, deadline, attempt) {
    const current = () => r.gapSeq === seq && this._map.get(r.name) === r;
    const limit = Math.min(100, r.ahead[0].m.id - r.lastId - 1);
    const before = r.lastId + limit + 1;
    this._client.history(r.name, { before, limit }).then((res) => {
      if (!current()) return;
      if (res.epoch !== undefined && res.epoch !== r.epoch) {
        // Read from the room's new epoch, whose `joined` is on its way: its
        // ids are not the ones asked for, which went with the old history.
        this._giveUpGap(r, "the room's history was reset");
        return;
      }
      this._endFetch(r);
      let oldest = before;
      for (const m of res.messages) {
        if (m.id !== undefined && m.id > r.lastId && m.id < before) {
          insertAhead(r, m, "gap");
          oldest = Math.min(oldest, m.id);
        }
      }
      if (res.hasMore && oldest < before && oldest > r.lastId + 1) {
        // Cut to the server's byte budget (it keeps the newest): a history
        // holds its ids without holes, so older ones exist and those below
        // the page are still there. Fetch on; the page made progress.
        this._drainAhead(r);
        return;
      }
      // The page holds every id of its range that the history still has.
      this._release(r, before - 1, "they are no longer in the room's history");
      this._drainAhead(r);
    }, (err) => {
      if (!current()) return;
      const { retryDelay, maxRetryDelay } = this._client.options;
      const ceiling = Math.min(maxRetryDelay, retryDelay * 2 ** attempt);
      const delay = ceiling / 2 + (Math.random() * ceiling) / 2;
      if (RETRYABLE.has(err.code) && attempt < GAP_RETRIES && Date.now() + delay < deadline) {
        r.gapRetryTimer = setTimeout(() => {
          if (current() && r.ahead.length) this._askGap(r, seq, deadline, attempt + 1);
        }, delay);
        return;
      }
      this._giveUpGap(r, `fetching them failed: ${err.message}`);
    });
  }

  /** @private Stops waiting for the gap fetch in flight, if any: its answer will be ignored. */
  _endFetch(r) {
    clearTimeout(r.gapTimer);
    clearTimeout(r.gapRetryTimer);
    r.gapTimer = 0;
    r.gapRetryTimer = 0;
    r.gapSeq += 1;
  }

  /** @private Gives up on every gap below what `ahead` holds: reports them, delivers the rest in order. */
  _giveUpGap(r, why) {
    this._endFetch(r);
    if (r.ahead.length) this._release(r, r.ahead[r.ahead.length - 1].m.id, why);
  }

  /**
   * @private Delivers, in order, what `ahead` holds up to id `upTo`; the ids
   * up to it that it does not hold are reported missing (`why`) and skipped.
   */
  _release(r, upTo, why) {
    while (r.ahead.length && r.ahead[0].m.id <= upTo) {
      const { m, source } = r.ahead.shift();
      if (m.id <= r.lastId) continue;
      if (m.id > r.lastId + 1) this._client.emit("error", gapError(r, r.lastId + 1, m.id - 1, true, why));
      r.lastId = m.id;
      this._deliver(r, this._decorate(r, m, source));
    }
    if (r.lastId < upTo) {
      this._client.emit("error", gapError(r, r.lastId + 1, upTo, true, why));
      r.lastId = upTo;
    }
  }

  /**
   * @private Delivers what `ahead` holds that follows `lastId` without a gap;
   * when a gap is left below the rest, fetches it.
   */
  _drainAhead(r) {
    while (r.ahead.length && r.ahead[0].m.id <= r.lastId + 1) {
      const { m, source } = r.ahead.shift();
      if (m.id <= r.lastId) continue;
      r.lastId = m.id;
      this._deliver(r, this._decorate(r, m, source));
    }
    if (!r.ahead.length) this._endFetch(r);
    else if (!r.gapTimer) this._fetchGap(r);
  }

  /** @private Adds `source`, `mine` and (for own acked sends) `clientId`. */
  _decorate(r, m, source) {
    const out = { ...m, source, mine: m.from === this._client.username };
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
    if (m.mine && !m.clientId && this._client._outbox.awaitsEcho(r.name, m.message)) {
      r.held.push(m);
      if (!r.holdTimer) r.holdTimer = setTimeout(() => this._releaseHeld(r), this._client.options.echoHold);
      return;
    }
    this._client.emit("message", m);
  }

  /** @private Delivers, in id order, the held echoes `go` picks (all of them by default). */
  _releaseHeld(r, go = () => true) {
    const held = r.held.sort((a, b) => (a.id ?? 0) - (b.id ?? 0));
    const out = held.filter(go);
    r.held = held.filter((m) => !out.includes(m));
    if (!r.held.length) {
      clearTimeout(r.holdTimer);
      r.holdTimer = 0;
    }
    for (const m of out) {
      const clientId = m.id !== undefined ? r.ackedIds.get(m.id) : undefined;
      this._client.emit("message", clientId ? { ...m, clientId } : m);
    }
  }
}

/**
 * Puts `m` in the room's `ahead`, in id order. A copy fetched to fill the gap
 * replaces one that came live meanwhile; a second live copy is dropped.
 */
function insertAhead(r, m, source) {
  let i = r.ahead.length;
  while (i > 0 && r.ahead[i - 1].m.id > m.id) i -= 1;
  if (i > 0 && r.ahead[i - 1].m.id === m.id) {
    if (source === "gap") r.ahead[i - 1] = { m, source };
    return;
  }
  r.ahead.splice(i, 0, { m, source });
}

/** The `gap` error about ids `from`–`to` of a room: a notice, or (`lost`) that they were given up on. */
function gapError(r, from, to, lost, why) {
  const ids = from === to ? `Message ${from}` : `Messages ${from}–${to}`;
  const text = lost
    ? `${ids} of #${r.name} could not be fetched (${why}); they are missing.`
    : `${ids} of #${r.name} ${why}.`;
  return new ConfabError("gap", text, { room: r.name, missing: { from, to }, lost });
}

/** What join() resolves with for a room joined already. */
function joinedSnapshot(r) {
  return {
    room: r.name, epoch: r.epoch, lastId: r.lastId, members: [...r.members.values()],
    count: r.count, recovered: true, rejoin: false, reset: false, gap: false, messages: [],
  };
}
