/**
 * client/connection.js — the socket of a ConfabClient and what keeps it up:
 * logging in, judging the token, opening the WebSocket, and reconnecting
 * with exponential backoff and full jitter until told to stop.
 *
 * Ownership: one Connection per ConfabClient, made by its constructor and
 * never shared. The Connection owns the socket and every field below; the
 * other modules only read `state`, `gen` and `ws` (and send on `ws`). It
 * writes two public fields of its owner, `username` and `token`, after a
 * login, and tells its owner about the socket through three calls:
 * `_onOpened()` once it is open, `_onFrame(data)` for each frame, and
 * `_onDropped(code)` when it is given up, for whatever hung on it.
 *
 * A browser answers WebSocket pings itself and never tells the page, so a
 * link that died without a close (a laptop that slept, a network change, a
 * proxy that dropped it) looks open to a client that only listens. After
 * `idleProbe` ms without a frame, and at once when the page comes back
 * online or into view, the Connection sends a `ping` (answered by the
 * gateway itself); with no frame at all back within `probeTimeout` ms it
 * gives the socket up and reconnects. Getting there is bounded too: a login
 * with no answer within `loginTimeout`, or a socket not open within
 * `openTimeout` (a proxy that takes the TCP connection and says nothing), is
 * given up and tried again on the backoff; coming back online gives up an
 * attempt under way and starts another at once.
 *
 * The gateway charges every frame a client sends to a per-connection budget
 * (`RATE_MSGS` per second after a burst of `RATE_BURST`), refuses frames past
 * it with `rate_limited` and closes a connection that keeps going with 1008.
 * The Connection counts that budget as the gateway does (`rateMsgs`,
 * `rateBurst`): every frame sent through send() takes from it, and the outbox
 * asks queueWait() before each send it puts on the wire. A `rate_limited`
 * refusal says the gateway's budget is smaller than counted: slowDown()
 * empties the count and halves the rate and burst for the rest of the
 * socket.
 *
 * Invariants:
 *  - `gen` is bumped for every attempt to open a socket, and handlers of a
 *    socket that is no longer `ws` do nothing: frames from an old socket are
 *    ignored, and a login that finishes after a newer attempt started is not
 *    acted on;
 *  - while `wanted` (connect() called, and neither disconnect() since nor
 *    giving up on a login refused for good), it is always logging in,
 *    opening, open, or waiting for its reconnect timer;
 *  - every connect() promise settles: resolved on open, rejected on
 *    disconnect() or when the client gives up;
 *  - no attempt hangs: a login settles within `loginTimeout` and a socket
 *    opens or is given up within `openTimeout` (unless set to 0).
 *
 * @module confab-client/connection
 */

import { ConfabError, SUBPROTOCOL, decodeToken, httpUrlOf, withToken, wsUrlFor } from "./util.js";

export class Connection {
  /**
   * @param {import("../confab-client.js").ConfabClient} client the owner
   * @param {string} baseUrl where the gateway is ("" when only `wsUrl` is known)
   * @param {string|undefined} wsUrl the WebSocket URL, when not `{baseUrl}/ws`
   */
  constructor(client, baseUrl, wsUrl) {
    /** @private */ this._client = client;
    /** @private */ this._baseUrl = baseUrl;
    /** @private */ this._wsUrl = wsUrl ?? wsUrlFor(baseUrl);
    /** @private */ this._tokenExpiresAt = 0;
    /** @type {"disconnected"|"connecting"|"connected"|"reconnecting"} read-only outside */
    this.state = "disconnected";
    /** @type {WebSocket|null} the current socket; read-only outside */
    this.ws = null;
    /** @type {number} bumped for every socket; read-only outside */
    this.gen = 0;
    /** @private */ this._wanted = false; // connect() called and not disconnect()ed
    /** @private */ this._openedAt = 0;
    /** @private */ this._everOpened = false; // a socket opened since connect()
    /** @private */ this._attempt = 0;
    /** @private */ this._failedOpens = 0;
    /** @private */ this._reconnectTimer = 0;
    /** @private @type {Promise<object>|null} */ this._loginPromise = null;
    /** @private @type {Array<{resolve: Function, reject: Function}>} */ this._connectWaiters = [];
    /** @private */ this._probeTimer = 0;
    /** @private */ this._heardAt = 0; // the last frame from the current socket
    /** @private */ this._probeSeq = 0;
    /** @private */ this._probeOut = false; // a ping went and nothing came back yet
    /** @private */ this._openTimer = 0; // gives up a socket that does not open
    /** @private @type {((err: Error) => void)|null} ends the login under way */
    this._stopLogin = null;
    // The gateway's request budget of the current socket, as counted here.
    /** @private */ this._rate = 0; // tokens per second (0: no limit)
    /** @private */ this._burst = 1;
    /** @private */ this._tokens = 0;
    /** @private */ this._tokensAt = 0;
    /** @private */ this._slowedAt = 0; // the last slowDown() that halved the rate
    /** @private */ this._onOnline = () => {
      if (this.state === "reconnecting") this._reconnectNow();
      else if (this.state === "connecting") this._restart(); // begun on the network just left
      else this.probe();
    };
    /** @private */ this._onVisible = () => {
      if (globalThis.document?.visibilityState === "visible") this.probe();
    };
  }

  /**
   * ConfabClient.login: `POST /login`, one at a time. Settles within
   * `loginTimeout` (a `network` error when nothing came back: the fetch is
   * aborted). A 429 carries the `Retry-After` it came with, in ms, as the
   * error's `retryAfter`.
   */
  login(username) {
    if (this._loginPromise) return this._loginPromise;
    const client = this._client;
    const doFetch = client.options.fetch ?? globalThis.fetch.bind(globalThis);
    const abort = typeof AbortController === "function" ? new AbortController() : null;
    let over = false; // timed out or given up: a late answer is not taken
    let stop;
    const stopped = new Promise((resolve, reject) => {
      stop = (err) => {
        over = true;
        abort?.abort();
        reject(err);
      };
    });
    stopped.catch(() => {});
    const wait = client.options.loginTimeout;
    const timer = wait > 0 ? setTimeout(() => stop(new ConfabError("network",
      "The server did not answer the login; it may be unreachable.")), wait) : 0;
    const request = (async () => {
      let res;
      let body;
      try {
        res = await doFetch(`${this._baseUrl}/login`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ username }),
          cache: "no-store",
          signal: abort?.signal,
        });
        body = await res.json().catch(() => null);
      } catch {
        throw new ConfabError("network", "Cannot reach the server.");
      }
      if (over) throw new ConfabError("network", "The login was given up.");
      if (!res.ok) {
        const why = body && typeof body.error === "string" && body.error
          ? body.error : `login failed (HTTP ${res.status})`;
        throw new ConfabError("login_failed", why, { status: res.status, retryAfter: retryAfterOf(res) });
      }
      if (!body || typeof body.token !== "string") {
        throw new ConfabError("login_failed", "unexpected login response", { status: res.status });
      }
      client.username = typeof body.username === "string" && body.username ? body.username : username;
      this.setToken(body.token, true);
      this._failedOpens = 0;
      const result = { token: client.token, username: client.username };
      client.emit("token", result);
      return result;
    })();
    request.catch(() => {}); // when the timeout won, nobody waits for it
    const attempt = Promise.race([request, stopped]);
    this._loginPromise = attempt;
    this._stopLogin = stop;
    const clear = () => {
      clearTimeout(timer);
      if (this._loginPromise === attempt) {
        this._loginPromise = null;
        this._stopLogin = null;
      }
    };
    attempt.then(clear, clear);
    return attempt;
  }

  /** ConfabClient.connect: resolves once connected. */
  connect() {
    const wait = new Promise((resolve, reject) => {
      if (this.state === "connected") resolve();
      else this._connectWaiters.push({ resolve, reject });
    });
    if (!this._wanted) {
      this._wanted = true;
      this._everOpened = false;
      globalThis.addEventListener?.("online", this._onOnline);
      globalThis.document?.addEventListener?.("visibilitychange", this._onVisible);
      this._attempt = 0;
      this._open();
    }
    return wait;
  }

  /** ConfabClient.disconnect: closes the socket and stops reconnecting. */
  disconnect() {
    this._wanted = false;
    globalThis.removeEventListener?.("online", this._onOnline);
    globalThis.document?.removeEventListener?.("visibilitychange", this._onVisible);
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = 0;
    const ws = this.ws;
    if (ws) {
      this._dropSocket();
      try { ws.close(1000, "bye"); } catch { /* already closing */ }
    }
    this._rejectConnectWaiters(new ConfabError("closed", "disconnected by the application"));
    this._setState("disconnected");
  }

  /**
   * Gives up the current socket as if it had closed with `code`, then closes
   * it: for a link that looks wedged (a join nobody answers).
   */
  abort(code, reason) {
    const ws = this.ws;
    this._onClose({ code, reason });
    try { ws.close(code, reason); } catch { /* closing */ }
  }

  /**
   * Checks that the open socket still reaches the server: a `ping`, which
   * must draw a frame (any) within `probeTimeout`, else the socket is given
   * up. Does nothing while not connected or while a ping is out.
   */
  probe() {
    const ws = this.ws;
    if (!ws || this.state !== "connected" || this._probeOut) return;
    this._probeOut = true;
    this._probeSeq += 1;
    this.send(JSON.stringify({ type: "ping", payload: { id: `ping-${this._probeSeq}` } }));
    this._armProbe(this._client.options.probeTimeout);
  }

  /**
   * Sends a frame on the current socket, taking it from the request budget
   * (which it may overdraw: only the outbox waits for the budget).
   */
  send(frame) {
    this._refill();
    this._tokens -= 1;
    this.ws.send(frame);
  }

  /**
   * How long, in ms, a queued send must wait for the request budget (0: it
   * can go now). A quarter of the burst is kept back for the frames that do
   * not wait (joins, history, typing, pings) and for frames that bunch up on
   * their way to the gateway.
   */
  queueWait() {
    if (!this._rate) return 0;
    this._refill();
    const short = 1 + Math.floor(this._burst / 4) - this._tokens;
    return short > 0 ? Math.ceil((short * 1000) / this._rate) : 0;
  }

  /**
   * The gateway refused a frame sent at `sentAt` (ms) with `rate_limited`:
   * its budget is empty, and smaller than counted here unless that frame
   * went out before the last slowdown. The count is emptied, and the rate and
   * burst halved (down to 1) for the rest of this socket.
   * @param {number} [sentAt] unknown: the count is only emptied
   */
  slowDown(sentAt) {
    if (!this._rate) return;
    this._refill();
    this._tokens = Math.min(this._tokens, 0);
    if (sentAt === undefined || sentAt <= this._slowedAt) return;
    this._slowedAt = Date.now();
    this._rate = Math.max(1, this._rate / 2);
    this._burst = Math.max(1, Math.floor(this._burst / 2));
  }

  /** @private A new socket: the gateway's budget for it is full. */
  _resetBudget() {
    const { rateMsgs, rateBurst } = this._client.options;
    this._rate = rateMsgs > 0 ? rateMsgs : 0;
    this._burst = Math.max(1, Math.floor(rateBurst) || 1);
    this._tokens = this._burst;
    this._tokensAt = Date.now();
    this._slowedAt = 0;
  }

  /** @private */
  _refill() {
    const now = Date.now();
    if (this._rate) this._tokens = Math.min(this._burst, this._tokens + ((now - this._tokensAt) * this._rate) / 1000);
    this._tokensAt = now;
  }

  /**
   * Takes a token: the owner's `token`, its username when it has none, and
   * when it expires.
   * @param {boolean} fromLogin just issued, so its lifetime is known
   */
  setToken(token, fromLogin) {
    const client = this._client;
    client.token = token;
    const claims = decodeToken(token);
    if (!client.username && claims && typeof claims.sub === "string") client.username = claims.sub;
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
  _setState(state, extra = {}) {
    const previous = this.state;
    this.state = state;
    if (previous !== state || state === "reconnecting") this._client.emit("state", { state, previous, ...extra });
  }

  /** @private */
  _tokenStale() {
    const client = this._client;
    if (!client.token) return true;
    if (!this._tokenExpiresAt) return false;
    return Date.now() >= this._tokenExpiresAt - client.options.tokenMargin * 1000;
  }

  /**
   * @private After two upgrades in a row failed: whether the server refuses
   * the token, so that logging in again would help. A browser shows neither
   * an upgrade's status nor whether the server was reached, so this asks the
   * gateway with a plain GET of the WebSocket URL: 401 for a token it would
   * refuse, 426 for one it takes. An outage (no answer, or a 5xx from a
   * proxy) or a rate limit (429) is not the token's fault: logging every
   * client in again after each outage would double the reconnect storm, and
   * per-address login limits, much tighter than the upgrade's, would then
   * hold back users who share an address. Any other answer (a proxy that
   * does not route the check) cannot tell, and logs in as before. A page of
   * another origin than the gateway's reads the answer through the
   * gateway's CORS headers (its origin in ALLOWED_ORIGINS); a fetch that
   * fails there may be a gateway or proxy that sends none, which cannot
   * tell either. Returns "refused" (a 401), "unknown" (cannot tell: log in
   * as well, or with no username to log in with, keep the token) or ""
   * (keep the token).
   */
  async _tokenRefused() {
    const client = this._client;
    const doFetch = client.options.fetch ?? globalThis.fetch.bind(globalThis);
    const abort = typeof AbortController === "function" ? new AbortController() : null;
    let timer = 0;
    let timedOut = false;
    const wait = client.options.probeTimeout > 0 ? client.options.probeTimeout : 10000; // 0 turns pings off, not this
    const timeout = new Promise((resolve, reject) => {
      timer = setTimeout(() => { timedOut = true; abort?.abort(); reject(new Error("timeout")); }, wait);
    });
    const url = withToken(httpUrlOf(this._wsUrl), client.token);
    const across = crossOrigin(url);
    const check = (mode) => doFetch(url, { method: "GET", cache: "no-store", mode, credentials: "omit", signal: abort?.signal });
    let res;
    try {
      // same origin: readable in either mode, and "no-cors" asks no preflight
      res = await Promise.race([check(across ? "cors" : "no-cors"), timeout]);
    } catch {
      if (!across || timedOut) return ""; // not reached: the token is not to blame
      // Across origins a server out of reach and one that sends no CORS
      // headers fail alike: asked again without CORS, only the first fails
      try {
        await Promise.race([check("no-cors"), timeout]);
      } catch {
        return "";
      }
      return "unknown"; // reached, but its answer cannot be read
    } finally {
      clearTimeout(timer);
    }
    const status = res.status;
    if (status === 401) return "refused";
    return status === 426 || status === 429 || status >= 500 ? "" : "unknown";
  }

  /** @private Opens a socket, logging in first when needed. */
  async _open() {
    const client = this._client;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = 0;
    const gen = ++this.gen;
    this._setState("connecting", { attempt: this._attempt });
    let relogin = this._tokenStale();
    let guessed = false; // logging in on a check that could not tell
    if (!relogin && this._failedOpens >= 2) {
      const verdict = await this._tokenRefused();
      if (gen !== this.gen || !this._wanted) return;
      relogin = verdict !== "";
      guessed = verdict === "unknown";
      if (!relogin) this._failedOpens = 0; // ask again after two more
    }
    if (relogin && !client.username) {
      if (!guessed) {
        this._giveUp(new ConfabError("unauthorized", "No valid token and no username to log in with.",
          { fatal: true }));
        return;
      }
      // A check that could not tell is no reason to end the session: with
      // no name to log in with, open with the token it has, and ask again
      // after two more failed opens.
      relogin = false;
      this._failedOpens = 0;
    }
    if (relogin) {
      try {
        await client.login(client.username);
      } catch (err) {
        if (gen !== this.gen || !this._wanted) return;
        // A 4xx ends the session when the name itself is refused (400), or
        // on a first connect. Once connected, a 403 or 404 is more likely a
        // proxy in the middle of a deploy than a verdict on this user: keep
        // trying, with the backoff, rather than log them out and drop their
        // rooms.
        const refusedName = err.status === 400 || err.status === 422;
        const fourxx = err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429;
        const permanent = refusedName || (fourxx && !this._everOpened);
        if (permanent) {
          err.fatal = true;
          this._giveUp(err);
          return;
        }
        // A check that could not tell sent us here (a proxy's answer, or one
        // unreadable across origins) and the login failed too: the gateway
        // may take the token once it is back, so the next attempts open with
        // it again, rather than ask for a login at each attempt and all log
        // in at once when it is back. Two more failed opens ask again.
        if (guessed) this._failedOpens = 0;
        client.emit("error", err);
        this._scheduleReconnect({}, err.retryAfter ?? 0); // a 429's Retry-After, at least
        return;
      }
      if (gen !== this.gen || !this._wanted) return;
    }
    const WS = client.options.WebSocket ?? globalThis.WebSocket;
    let ws;
    try {
      ws = new WS(withToken(this._wsUrl, client.token), [SUBPROTOCOL]);
    } catch (err) {
      this._failedOpens += 1;
      client.emit("error", new ConfabError("network", `Cannot open a WebSocket: ${err.message}`));
      this._scheduleReconnect();
      return;
    }
    this.ws = ws;
    this._openedAt = 0;
    const openTimeout = client.options.openTimeout;
    clearTimeout(this._openTimer);
    this._openTimer = openTimeout > 0 ? setTimeout(() => {
      // Neither open nor closed: something took the TCP connection and says
      // nothing (a proxy whose backend is gone, a captive portal). Browsers
      // wait minutes before they give such a socket up.
      this._openTimer = 0;
      if (ws !== this.ws || this._openedAt) return;
      client.emit("error", new ConfabError("timeout", "The server did not answer; reconnecting."));
      this.abort(4000, "open timeout");
    }, openTimeout) : 0;
    ws.onopen = () => { if (ws === this.ws) this._onOpen(); };
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      this._heardAt = Date.now();
      if (this._probeOut) { // answered: anything at all will do
        this._probeOut = false;
        this._armProbe(client.options.idleProbe);
      }
      client._onFrame(ev.data);
    };
    ws.onclose = (ev) => { if (ws === this.ws) this._onClose(ev); };
    ws.onerror = () => {}; // a close event follows
  }

  /** @private */
  _onOpen() {
    clearTimeout(this._openTimer);
    this._openTimer = 0;
    this._resetBudget();
    this._openedAt = Date.now();
    this._everOpened = true;
    this._heardAt = this._openedAt;
    this._probeOut = false;
    this._armProbe(this._client.options.idleProbe);
    this._failedOpens = 0;
    this._setState("connected");
    const waiters = this._connectWaiters;
    this._connectWaiters = [];
    for (const w of waiters) w.resolve();
    this._client._onOpened();
  }

  /** @private */
  _onClose(ev) {
    const openedAt = this._openedAt; // read first: _dropSocket() zeroes it
    const wasOpen = openedAt > 0;
    this._dropSocket(ev.code);
    if (!this._wanted) return;
    if (wasOpen) {
      // Only a connection that stayed up (or a server going away) starts the
      // backoff again; one that opens and closes at once keeps backing off.
      const stable = Date.now() - openedAt >= this._client.options.stableAfter;
      if (stable || ev.code === 1001) this._attempt = 0;
    } else {
      this._failedOpens += 1; // a refused upgrade (401) looks just like this
    }
    // A gateway going away (1001: a drain) closes all its users at once:
    // spread over goingAwaySpread, not reconnectDelay, lest they all come
    // back within half a second (and meet a proxy's per-address limit).
    const spread = wasOpen && ev.code === 1001 ? this._client.options.goingAwaySpread : 0;
    this._scheduleReconnect({ code: ev.code, reason: ev.reason, wasOpen }, 0, spread);
    if (spread > 0) {
      // and the backoff goes on from above it: a second try must not come sooner
      const { reconnectDelay } = this._client.options;
      const past = Math.ceil(Math.log2(Math.max(1, spread / Math.max(1, reconnectDelay))));
      this._attempt = Math.max(this._attempt, Math.min(past, 30));
    }
  }

  /**
   * @private Forgets the current socket, then lets the owner settle what hung
   * on it. `code`: the close code, when it closed.
   */
  _dropSocket(code) {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    ws.onopen = ws.onmessage = ws.onclose = null;
    this._openedAt = 0;
    clearTimeout(this._openTimer);
    this._openTimer = 0;
    clearTimeout(this._probeTimer);
    this._probeTimer = 0;
    this._probeOut = false;
    this._client._onDropped(code);
  }

  /** @private The liveness check fires in `ms` (0: never). */
  _armProbe(ms) {
    clearTimeout(this._probeTimer);
    this._probeTimer = ms > 0 ? setTimeout(() => this._onProbeTimer(), ms) : 0;
  }

  /** @private */
  _onProbeTimer() {
    this._probeTimer = 0;
    if (!this.ws || this.state !== "connected") return;
    if (this._probeOut) {
      this._client.emit("error", new ConfabError("timeout", "The server stopped answering; reconnecting."));
      this.abort(4000, "no answer to ping");
      return;
    }
    const idle = this._client.options.idleProbe;
    const quiet = Date.now() - this._heardAt;
    if (quiet >= idle) this.probe();
    else this._armProbe(idle - quiet);
  }

  /**
   * @private The next attempt after the backoff, and no sooner than `atLeast`
   * ms; the backoff's ceiling is at least `spread` ms.
   */
  _scheduleReconnect(extra = {}, atLeast = 0, spread = 0) {
    clearTimeout(this._reconnectTimer);
    const { reconnectDelay, maxReconnectDelay } = this._client.options;
    const ceiling = Math.max(spread, Math.min(maxReconnectDelay, reconnectDelay * 2 ** this._attempt));
    this._attempt = Math.min(this._attempt + 1, 30);
    // full jitter, on top of a wait the server asked for (so that the clients
    // it turned away together do not all come back at the same moment)
    const delay = atLeast + Math.round(Math.random() * ceiling);
    this._reconnectTimer = setTimeout(() => this._open(), delay);
    this._setState("reconnecting", { ...extra, attempt: this._attempt, delay, retryAt: Date.now() + delay });
  }

  /** @private */
  _reconnectNow() {
    if (!this._wanted || this.ws) return;
    this._open();
  }

  /**
   * @private Gives up the attempt under way (a login, a token check, a
   * socket not open yet) and starts another at once: back online, the one
   * begun on the network just left may never be answered.
   */
  _restart() {
    if (!this._wanted || this.state !== "connecting") return;
    this._stopLogin?.(new ConfabError("network", "The login was given up: the network changed."));
    this._loginPromise = null; // the next attempt logs in afresh
    this._stopLogin = null;
    const ws = this.ws;
    if (ws) {
      this._dropSocket();
      try { ws.close(4000, "network changed"); } catch { /* closing */ }
    }
    this._open(); // the old attempt sees `gen` moved on and does nothing more
  }

  /** @private */
  _giveUp(err) {
    this._wanted = false;
    clearTimeout(this._reconnectTimer);
    this._setState("disconnected", { error: err });
    this._rejectConnectWaiters(err);
    this._client.emit("error", err);
  }

  /** @private */
  _rejectConnectWaiters(err) {
    const waiters = this._connectWaiters;
    this._connectWaiters = [];
    for (const w of waiters) w.reject(err);
  }
}

/** Longest Retry-After honoured, ms: a longer one is taken as this. */
const MAX_RETRY_AFTER = 300000;

/**
 * The `Retry-After` of a 429 or 503 answer, in ms (delay-seconds or an HTTP
 * date), or undefined. A cross-origin answer shows it only when the server
 * lists it in `Access-Control-Expose-Headers`.
 */
function retryAfterOf(res) {
  if (res.status !== 429 && res.status !== 503) return undefined;
  const v = res.headers?.get?.("Retry-After");
  if (typeof v !== "string" || !v.trim()) return undefined;
  const ms = /^\s*\d+\s*$/.test(v) ? Number(v) * 1000 : Date.parse(v) - Date.now();
  return Number.isFinite(ms) ? Math.min(MAX_RETRY_AFTER, Math.max(0, ms)) : undefined;
}

/** Whether `url` is of another origin than the page's (false outside a page). */
function crossOrigin(url) {
  const here = globalThis.location?.origin;
  return typeof here === "string" && here !== "null" && new URL(url).origin !== here;
}
