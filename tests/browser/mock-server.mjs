// An in-memory stand-in for a confab gateway speaking Protocol v1
// (docs/protocol.md), for testing frontend/ in a real browser without the C
// server: Playwright's context.route serves the frontend and POST /login, and
// context.routeWebSocket plays the WebSocket server. It keeps ids, history,
// epochs, recovery, idempotent sends, presence and typing like the real one,
// and can be told to misbehave in the ways the client must survive: a send
// answered with `timeout`, an ack lost with the connection, a room whose
// history was reset, a connection cut, joins or logins held back, sockets
// refused, ids lost on the way, messages without ids, and (`limits`) the
// gateway's per-connection request rate: frames past it refused with
// `rate_limited`, and a close with 1008 once the refusals pass 4 × burst.
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css" };
const b64url = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64url");

export class MockConfab {
  constructor({ frontendDir, origin = "http://confab.test", tokenTtl = 3600 }) {
    this.frontendDir = frontendDir;
    this.origin = origin;
    this.tokenTtl = tokenTtl;
    this.rooms = new Map();
    this.conns = new Set();
    this.dedup = new Map(); // user \0 room \0 id -> ack payload
    this.faults = [];       // {type: "send", user?, action: "timeout"|"rate_limited"|"lose-ack-and-close"}
    this.received = [];     // every frame received: {user, type, payload}
    this.logins = [];
    this.joinsHeld = false;
    this.heldJoins = [];
    this.loginsHeld = false;
    this.heldLogins = [];   // functions that answer a held login
    this.refused = new Set(); // users whose sockets are closed as soon as they open
    this.echoFirst = false; // new_message before ack (both orders are legal)
    this.snapshotBytes = Infinity; // a join's messages cut to this many bytes, newest kept, as the gateway's budget does
    this.epochs = 0;
    this.limits = null;     // {rate, burst}: RATE_MSGS and RATE_BURST, per connection, as the gateway counts them
    this.rateRefusals = 0;  // frames refused with rate_limited
    this.rateCloses = 0;    // connections closed with 1008 for going on over the rate
  }

  /** Routes a browser context's page loads, logins and WebSockets to this mock. */
  async attach(context) {
    await context.route(`${this.origin}/**`, (route) => this.http(route));
    await context.routeWebSocket(/\/ws(\?|$)/, (ws) => this.accept(ws));
  }

  async http(route) {
    const req = route.request();
    const path = new URL(req.url()).pathname;
    if (path === "/login") {
      const { username } = JSON.parse(req.postData() || "{}");
      const name = typeof username === "string" ? username.trim() : "";
      if (!name || [...name].length > 32) {
        return route.fulfill({ status: 400, contentType: "application/json", body: '{"error":"invalid username"}' });
      }
      if (this.loginsHeld) {
        return new Promise((res) => this.heldLogins.push(() => res(this.http(route))));
      }
      const now = Math.floor(Date.now() / 1000);
      const token = `${b64url({ alg: "HS256", typ: "JWT" })}.${b64url({ sub: name, iat: now, nbf: now, exp: now + this.tokenTtl })}.c2ln`;
      this.logins.push(name);
      return route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify({ token, username: name }) });
    }
    const file = normalize(path === "/" ? "/index.html" : path);
    try {
      const body = await readFile(join(this.frontendDir, file));
      return route.fulfill({ status: 200, contentType: TYPES[extname(file)] ?? "application/octet-stream", body });
    } catch {
      return route.fulfill({ status: 404, body: "not found" });
    }
  }

  /** Answers the logins held meanwhile (loginsHeld), and holds no more. */
  async releaseLogins() {
    this.loginsHeld = false;
    await Promise.all(this.heldLogins.splice(0).map((answer) => answer()));
  }

  room(name) {
    let r = this.rooms.get(name);
    if (!r) {
      r = { name, epoch: `e${++this.epochs}`, lastId: 0, history: [] };
      this.rooms.set(name, r);
    }
    return r;
  }

  /** Forgets a room's history and ids, as when Redis lost it. */
  resetRoom(name) {
    const r = this.room(name);
    r.epoch = `e${++this.epochs}`;
    r.lastId = 0;
    r.history = [];
  }

  /**
   * Sends every live member of a room a `joined` of its own accord, as the
   * gateway does after a broker restart or when the room's epoch changed.
   */
  resync(name) {
    for (const c of this.conns) {
      if (!c.rooms.has(name)) continue;
      c.rooms.delete(name);
      this.join(c, { room: name }, { quiet: true });
    }
  }

  accept(ws) {
    const token = new URL(ws.url()).searchParams.get("token") ?? "";
    let user = "";
    try {
      user = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString()).sub;
    } catch { /* unauthorized */ }
    if (this.refused.has(user)) {
      ws.close({ code: 1011, reason: "refused" }).catch(() => {});
      return;
    }
    const conn = { ws, user, rooms: new Set(), protocols: ws.protocols(), open: true };
    if (this.limits) {
      const { rate, burst } = this.limits;
      conn.tokens = bucket(rate, burst);
      conn.refusals = bucket(rate, 4 * burst);
    }
    this.conns.add(conn);
    ws.onMessage((data) => this.handle(conn, data));
    ws.onClose(() => this.drop(conn));
  }

  /** Cuts every connection of `user` (the page sees a close 1006-like drop). */
  kill(user) {
    for (const c of [...this.conns]) {
      if (c.user === user) {
        c.ws.close({ code: 1011, reason: "killed" }).catch(() => {});
        this.drop(c);
      }
    }
  }

  connectionsOf(user) {
    return [...this.conns].filter((c) => c.user === user).length;
  }

  releaseJoins() {
    this.joinsHeld = false;
    for (const [conn, p] of this.heldJoins.splice(0)) if (conn.open) this.join(conn, p);
  }

  out(conn, type, payload) {
    if (conn.open) conn.ws.send(JSON.stringify({ type, payload }));
  }

  error(conn, code, p, extra = {}) {
    const payload = { code, message: code.replace(/_/g, " "), ...extra };
    if (typeof p?.id === "string") payload.ref = p.id;
    if (typeof p?.room === "string") payload.room = p.room;
    this.out(conn, "error", payload);
  }

  membersOf(name) {
    const users = new Set();
    for (const c of this.conns) if (c.rooms.has(name)) users.add(c.user);
    return [...users];
  }

  toRoom(name, type, payload, except) {
    for (const c of this.conns) if (c.rooms.has(name) && c !== except) this.out(c, type, payload);
  }

  handle(conn, data) {
    let ev;
    try {
      ev = JSON.parse(String(data));
    } catch {
      return this.error(conn, "bad_json");
    }
    const p = ev.payload ?? {};
    this.received.push({ user: conn.user, type: ev.type, payload: p });
    if (conn.tokens && !conn.tokens.take()) { // gateway/ws.c take_rate
      if (!conn.refusals.take()) {
        this.rateCloses += 1;
        conn.ws.close({ code: 1008, reason: "rate limit exceeded" }).catch(() => {});
        return this.drop(conn);
      }
      this.rateRefusals += 1;
      return this.error(conn, "rate_limited", p);
    }
    const joined = typeof p.room === "string" && conn.rooms.has(p.room);
    switch (ev.type) {
      case "join":
        if (conn.rooms.has(p.room)) return this.error(conn, "already_joined", p);
        if (this.joinsHeld) return void this.heldJoins.push([conn, p]);
        return this.join(conn, p);
      case "leave":
        if (!joined) return this.error(conn, "not_member", p);
        this.leave(conn, p.room);
        return this.out(conn, "left", { room: p.room });
      case "send":
        if (!joined) return this.error(conn, "not_member", p);
        return this.send(conn, p);
      case "history": {
        if (!joined) return this.error(conn, "not_member", p);
        const r = this.room(p.room);
        const before = Number.isInteger(p.before) ? p.before : Infinity;
        const limit = Math.min(100, p.limit ?? 50);
        const older = r.history.filter((m) => m.id < before);
        const page = older.slice(-limit);
        return this.out(conn, "history", {
          room: p.room, messages: page, has_more: page.length < older.length,
          ...(typeof p.id === "string" && { id: p.id }), // echoed, as the gateway does
          ...(page.length && { epoch: r.epoch }), // the epoch of the page's ids
        });
      }
      case "typing":
        if (!joined) return this.error(conn, "not_member", p);
        for (const c of this.conns) {
          if (c.rooms.has(p.room) && c.user !== conn.user) this.out(c, "typing", { room: p.room, user: conn.user });
        }
        return;
      case "ping": // answered by the gateway itself
        return this.out(conn, "pong", typeof p.id === "string" ? { id: p.id } : {});
      default:
        return this.error(conn, "unknown_type", p);
    }
  }

  join(conn, p, { quiet = false } = {}) {
    const r = this.room(p.room);
    const firstOfUser = !quiet && !this.membersOf(r.name).includes(conn.user);
    conn.rooms.add(r.name);
    const limit = Math.min(100, p.limit ?? 50);
    let recovered = false;
    let messages = limit === 0 ? [] : r.history.slice(-limit);
    let bytes = 0;
    for (let i = messages.length - 1; i >= 0; i--) {
      bytes += JSON.stringify(messages[i]).length;
      if (bytes > this.snapshotBytes && i < messages.length - 1) { // the newest goes even alone over it
        messages = messages.slice(i + 1);
        break;
      }
    }
    if (Number.isInteger(p.since) && p.epoch === r.epoch) {
      const oldest = r.history.length ? r.history[0].id : r.lastId + 1;
      if (p.since >= oldest - 1) {
        recovered = true;
        messages = r.history.filter((m) => m.id > p.since);
      }
    }
    const members = this.membersOf(r.name);
    this.out(conn, "joined", {
      room: r.name, epoch: r.epoch, last_id: r.lastId, members: members.map((user) => ({ user })),
      count: members.length, recovered, messages,
    });
    if (firstOfUser) {
      this.toRoom(r.name, "presence", { room: r.name, user: conn.user, action: "join", count: members.length }, conn);
    }
  }

  leave(conn, name) {
    conn.rooms.delete(name);
    if (!this.membersOf(name).includes(conn.user)) {
      const count = this.membersOf(name).length;
      this.toRoom(name, "presence", { room: name, user: conn.user, action: "leave", count });
    }
  }

  drop(conn) {
    if (!conn.open) return;
    conn.open = false;
    this.conns.delete(conn);
    for (const name of [...conn.rooms]) this.leave(conn, name);
  }

  send(conn, p) {
    if (typeof p.message !== "string" || !p.message.trim()) return this.error(conn, "empty_message", p);
    const key = `${conn.user}\0${p.room}\0${p.id}`;
    if (p.id !== undefined && this.dedup.has(key)) return this.out(conn, "ack", this.dedup.get(key));
    const i = this.faults.findIndex((f) => f.type === "send" && (!f.user || f.user === conn.user));
    const fault = i >= 0 ? this.faults.splice(i, 1)[0] : null;
    if (fault?.action === "timeout" || fault?.action === "rate_limited") return this.error(conn, fault.action, p);
    const r = this.room(p.room);
    const msg = { room: r.name, id: ++r.lastId, message: p.message, from: conn.user, sent: new Date().toISOString() };
    r.history.push(msg);
    if (r.history.length > 100) r.history.shift();
    const ack = { id: p.id, room: r.name, message_id: msg.id, sent: msg.sent };
    if (p.id !== undefined) this.dedup.set(key, ack);
    if (fault?.action === "lose-ack-and-close") {
      this.toRoom(r.name, "new_message", msg, conn);
      conn.ws.close({ code: 1011, reason: "lost" }).catch(() => {});
      return this.drop(conn);
    }
    if (!this.echoFirst) this.out(conn, "ack", ack);
    this.toRoom(r.name, "new_message", msg);
    if (this.echoFirst) this.out(conn, "ack", ack);
  }

  /**
   * A message posted by someone without a browser (like POST /api/publish);
   * `quiet`: stored in the history only, delivered to nobody.
   */
  publish(name, from, message, { quiet = false } = {}) {
    const r = this.room(name);
    const msg = { room: r.name, id: ++r.lastId, message, from, sent: new Date().toISOString() };
    r.history.push(msg);
    if (!quiet) this.toRoom(r.name, "new_message", msg);
    return msg;
  }

  /** A message without an id, as a backend publishing straight to Redis sends it: live only. */
  publishWithoutId(name, from, message) {
    this.toRoom(name, "new_message", { room: name, message, from, sent: new Date().toISOString() });
  }

  /** Uses up `n` ids of a room whose messages never reach anyone, nor the history. */
  loseIds(name, n) {
    this.room(name).lastId += n;
  }
}

/** A token bucket as common/tbucket.c keeps one: full at first, `rate` a second, at most `burst`. */
function bucket(rate, burst) {
  let level = burst;
  let at = Date.now();
  return {
    take() {
      const now = Date.now();
      level = Math.min(burst, level + ((now - at) * rate) / 1000);
      at = now;
      if (level < 1) return false;
      level -= 1;
      return true;
    },
  };
}
