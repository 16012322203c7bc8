// The fake environment of the lib*.test.mjs suites: confab-client.js driven
// directly in Node, without a browser or a server. A fake WebSocket the test
// answers frame by frame, a fake fetch for /login, and a fake clock (the
// library schedules everything with the global setTimeout and reads time
// with Date.now). Each test acts as the server at exactly the moment a
// failure matters, and asserts only on what a user of the library sees:
// events, promise results, frames sent.
import assert from "node:assert/strict";
import { ConfabClient } from "../../frontend/confab-client.js";

export const BASE = "http://confab.test";
// Typing is throttled against Date.now(), so the mock clock starts at a real date.
export const T0 = Date.UTC(2026, 0, 1);
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
export const jwt = (claims) => `${b64({ alg: "HS256" })}.${b64(claims)}.sig`;
// No `exp`: the client never thinks it stale, so it connects without logging in.
export const TOKEN = jwt({ sub: "alice" });

/** The server's end of one socket: what the client sent, and ways to answer. */
export class FakeSocket {
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.sent = []; // parsed frames, in order
    this.closedWith = null; // {code, reason} once the client closed it
    this.silent = false; // true: a dead link that answers no ping
  }
  send(data) {
    const f = JSON.parse(data);
    this.sent.push(f);
    // a live gateway answers a ping by itself, as it does
    if (f.type === "ping" && !this.silent) queueMicrotask(() => this.frame("pong", { id: f.payload.id }));
  }
  close(code, reason) { this.closedWith = { code, reason }; }
  // The server side. Handlers are looked up at call time, as a browser does.
  open() { this.onopen?.(); }
  frame(type, payload) { this.onmessage?.({ data: JSON.stringify({ type, payload }) }); }
  drop(code = 1006, reason = "") { this.onclose?.({ code, reason }); }
  frames(type) { return this.sent.filter((f) => f.type === type); }
  last(type, room) { return this.sent.findLast((f) => f.type === type && (!room || f.payload.room === room)); }
}

export const msg = (room, id, from = "bob", message = `m${id}`) => ({ room, id, message, from, sent: `t${id}` });
export const settle = () => new Promise((resolve) => setImmediate(resolve)); // runs every pending microtask

/**
 * Replaces setTimeout, clearTimeout and Date.now for the test (t.mock puts
 * them back). Not t.mock.timers: its Date mocking needs Node 20.11, and
 * run.sh asks only for Node 18. tick() fires due timers one by one, oldest
 * first, letting the promises each one starts settle before the next.
 */
export function fakeClock(t) {
  let now = T0;
  let seq = 0;
  const timers = new Map();
  t.mock.method(globalThis, "setTimeout", (fn, ms = 0) => {
    timers.set(++seq, { fn, at: now + Math.max(0, Number(ms) || 0) });
    return seq;
  });
  t.mock.method(globalThis, "clearTimeout", (id) => { timers.delete(id); });
  t.mock.method(Date, "now", () => now);
  return async (ms) => {
    const until = now + ms;
    for (;;) {
      let due = null;
      for (const [id, timer] of timers) if (timer.at <= until && (!due || timer.at < due[1].at)) due = [id, timer];
      if (!due) break;
      timers.delete(due[0]);
      now = due[1].at;
      due[1].fn();
      await settle();
    }
    now = until;
    await settle();
  };
}

/**
 * A client with a token, its event log and its sockets; mock clock on.
 * `connect: true` also opens the first socket and waits until connected.
 */
export async function setup(t, { connect = true, fetch, ...options } = {}) {
  const tick = fakeClock(t);
  const sockets = [];
  const fetches = [];
  const client = new ConfabClient({
    baseUrl: BASE, username: "alice", token: TOKEN,
    WebSocket: class extends FakeSocket {
      constructor(url, protocols) { super(url, protocols); sockets.push(this); }
    },
    fetch: async (url, init) => {
      fetches.push({ url, init });
      if (!fetch) throw new Error("this test expects no login");
      return fetch(url, init);
    },
    ...options,
  });
  const events = [];
  for (const name of ["state", "message", "joined", "left", "ack", "delivery", "token", "error"]) {
    client.on(name, (p) => events.push({ name, p }));
  }
  const env = {
    client, sockets, fetches, events,
    get ws() { return sockets.at(-1); },
    of: (name) => events.filter((e) => e.name === name).map((e) => e.p),
    lastState: () => env.of("state").at(-1),
    ids: (room) => env.of("message").filter((m) => m.room === room).map((m) => m.id),
    tick,
  };
  if (connect) {
    const done = client.connect();
    env.ws.open();
    await done;
  }
  return env;
}

/**
 * Answers the latest join of `room` on the current socket with `joined`; with
 * `unasked`, sends one the way the server does by itself (no request id).
 */
export function answerJoin(env, room, { epoch = "e1", lastId = 0, messages = [], recovered = false, unasked = false } = {}) {
  const ws = env.ws;
  const req = unasked ? null : ws.last("join", room);
  assert.ok(unasked || req, `a join of ${room} was sent`);
  ws.frame("joined", {
    room, epoch, last_id: lastId, messages, members: [{ user: "alice" }], count: 1, recovered,
    ...(req && { id: req.payload.id }),
  });
}

export async function joinRoom(env, room, snapshot) {
  const p = env.client.join(room);
  answerJoin(env, room, snapshot);
  return p;
}

/** Drops the current socket and lets the (jittered) reconnect timer fire: a new socket, not open yet. */
export async function dropAndReconnect(env, code = 1006) {
  const before = env.sockets.length;
  env.ws.drop(code);
  const { state, delay } = env.lastState();
  assert.equal(state, "reconnecting");
  await env.tick(delay);
  assert.equal(env.sockets.length, before + 1, "a new socket after the delay");
  return env.ws;
}

/** Answers the latest history request of `room` on the current socket. */
export function answerHistory(env, room, ids, hasMore = true) {
  const req = env.ws.last("history", room);
  assert.ok(req, `a history request for ${room} was sent`);
  env.ws.frame("history", { room, has_more: hasMore, id: req.payload.id, messages: ids.map((id) => msg(room, id)) });
  return req.payload;
}

/** The `gap` errors so far, as {from, to, lost}. */
export const gapErrors = (env) => env.of("error").filter((e) => e.code === "gap")
  .map((e) => ({ ...e.missing, lost: e.lost }));
