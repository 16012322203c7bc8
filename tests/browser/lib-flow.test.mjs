// confab-client.js in Node (lib-env.mjs): how fast it puts frames on the
// wire, and how long it waits for a server that does not answer. The
// gateway charges every frame to a per-connection budget (RATE_MSGS per
// second after a burst of RATE_BURST), refuses frames past it with
// `rate_limited`, closes with 1008 once its refusals pass 4 × RATE_BURST,
// and refuses requests past MAX_PENDING_REQUESTS awaiting an answer with
// `too_many_requests` (gateway/ws.c take_rate, gateway/session.c
// sess_rate_take, gateway/reqs.c). FakeGateway below plays that on the
// fake sockets, with a network delay each way.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfabError } from "../../frontend/confab-client.js";
import { BASE, T0, jwt, settle, setup } from "./lib-env.mjs";

/** A token bucket as common/tbucket.c keeps it: full at first, `rate` per second, at most `burst`. */
class Bucket {
  constructor(rate, burst) {
    Object.assign(this, { rate, burst, level: burst, at: Date.now() });
  }
  take() {
    const now = Date.now();
    this.level = Math.min(this.burst, this.level + ((now - this.at) * this.rate) / 1000);
    this.at = now;
    if (this.level < 1) return false;
    this.level -= 1;
    return true;
  }
}

/**
 * The gateway's side of the fake sockets: rate limit, refusal budget,
 * pending-request cap, a room history, and `oneWay` ms of network each way.
 */
class FakeGateway {
  constructor({ rate = 20, burst = 40, pending = 64, oneWay = 20 } = {}) {
    Object.assign(this, { rate, burst, pending, oneWay });
    this.history = new Map(); // room -> messages, in the order stored
    this.refused = { rate_limited: 0, too_many_requests: 0 };
    this.closed = []; // close codes the gateway sent
    this.maxPending = 0;
    this.frames = 0;
  }

  /** Takes over a socket the client made: what it sends reaches the gateway `oneWay` ms later. */
  attach(ws) {
    const conn = { ws, tokens: new Bucket(this.rate, this.burst), refusals: new Bucket(this.rate, 4 * this.burst), pending: 0, open: true };
    const send = ws.send.bind(ws);
    ws.send = (data) => {
      send(data);
      setTimeout(() => this.receive(conn, JSON.parse(data)), this.oneWay);
    };
    return conn;
  }

  reply(conn, type, payload, done) {
    setTimeout(() => {
      done?.();
      if (conn.open && conn.ws.onmessage) conn.ws.frame(type, payload);
    }, this.oneWay);
  }

  receive(conn, { type, payload: p }) {
    if (!conn.open) return;
    this.frames += 1;
    if (!conn.tokens.take()) {
      if (!conn.refusals.take()) { // kept sending over the rate after being told
        conn.open = false;
        this.closed.push(1008);
        setTimeout(() => conn.ws.drop(1008, "rate limit exceeded"), this.oneWay);
        return;
      }
      this.refused.rate_limited += 1;
      return this.reply(conn, "error", { code: "rate_limited", message: "slow down", ref: p.id, room: p.room });
    }
    if (type === "ping" || type === "typing") return;
    if (conn.pending >= this.pending) {
      this.refused.too_many_requests += 1;
      return this.reply(conn, "error", { code: "too_many_requests", message: "busy", ref: p.id, room: p.room });
    }
    conn.pending += 1;
    this.maxPending = Math.max(this.maxPending, conn.pending);
    const done = () => { conn.pending -= 1; };
    const list = this.history.get(p.room) ?? [];
    this.history.set(p.room, list);
    if (type === "join") {
      return this.reply(conn, "joined", {
        room: p.room, epoch: "e1", last_id: list.length, messages: [], members: [{ user: "alice" }],
        count: 1, recovered: true, id: p.id,
      }, done);
    }
    if (type === "send") {
      let i = list.findIndex((m) => m.sendId === p.id); // deduplicated by id
      if (i < 0) i = list.push({ sendId: p.id, message: p.message }) - 1;
      return this.reply(conn, "ack", { id: p.id, room: p.room, message_id: i + 1, sent: "t" }, done);
    }
    this.reply(conn, "error", { code: "bad_request", message: type, ref: p.id }, done);
  }

  texts(room) {
    return (this.history.get(room) ?? []).map((m) => m.message);
  }
}

/**
 * A client in `rooms`, cut off while `count` sends are typed (round-robin
 * over the rooms), then reconnected to `gw`: the backlog goes out on the
 * new connection. Returns the env and the sends' promises.
 */
async function backlog(t, gw, { rooms = ["lobby"], count = 200, options = {} } = {}) {
  const env = await setup(t, options);
  gw.attach(env.ws);
  for (const room of rooms) env.client.join(room);
  await env.tick(2 * gw.oneWay);
  assert.deepEqual(rooms.map((r) => env.client.room(r).status), rooms.map(() => "joined"));
  env.ws.drop(1006); // offline
  const texts = new Map(rooms.map((r) => [r, []]));
  const sends = [];
  for (let i = 0; i < count; i++) {
    const room = rooms[i % rooms.length];
    texts.get(room).push(`${room} ${i}`);
    sends.push(env.client.send(room, `${room} ${i}`));
  }
  assert.equal(env.client.outbox.length, count);
  await env.tick(env.lastState().delay);
  gw.attach(env.ws);
  env.ws.open();
  return { env, sends, texts };
}

test("a backlog of 200 sends reaches a gateway with the default limits at its rate, in order, with nothing refused", async (t) => {
  const gw = new FakeGateway(); // RATE_MSGS 20, RATE_BURST 40, MAX_PENDING_REQUESTS 64
  const { env, sends, texts } = await backlog(t, gw, { rooms: ["lobby", "dev"] });
  let acked = 0;
  for (const p of sends) p.then(() => { acked += 1; });
  await env.tick(5000);
  assert.ok(acked > 80 && acked < 200, `paced, not all at once nor stalled: ${acked} acked after 5 s`);
  await env.tick(6000); // 30 at once, then 20 a second: 8.5 s
  assert.equal(acked, 200, "all acked within 11 s");
  for (const [room, list] of texts) assert.deepEqual(gw.texts(room), list, `${room}: stored once each, in order`);
  assert.deepEqual(gw.refused, { rate_limited: 0, too_many_requests: 0 });
  assert.deepEqual(gw.closed, []);
  assert.equal(env.sockets.length, 2, "never reconnected");
  assert.equal(env.client.state, "connected");
  assert.deepEqual(env.of("error"), []);
  assert.deepEqual(env.client.outbox, []);
});

test("sends in flight stay within MAX_PENDING_REQUESTS, however slow the answers: a window from 4, one more per ack, up to half of it", async (t) => {
  // Answers take 4 s each way: at 20 a second the whole backlog would be in flight.
  const gw = new FakeGateway({ oneWay: 4000 });
  const { env, sends, texts } = await backlog(t, gw, { count: 100, options: { ackTimeout: 60000, joinTimeout: 60000 } });
  let acked = 0;
  for (const p of sends) p.then(() => { acked += 1; });
  const inFlight = () => env.client.outbox.filter((d) => d.attempts > 0).length;
  await env.tick(8000); // the rejoin's answer
  assert.equal(inFlight(), 4, "a new connection starts with 4");
  await env.tick(8000); // their acks: 4 + 4
  assert.equal(inFlight(), 8);
  let most = 0;
  for (let k = 0; k < 1200 && acked < 100; k++) {
    most = Math.max(most, inFlight());
    await env.tick(100);
  }
  assert.equal(acked, 100);
  assert.equal(most, 32, "half of MAX_PENDING_REQUESTS: room left for joins and history");
  assert.ok(gw.maxPending <= 32);
  assert.deepEqual(gw.texts("lobby"), texts.get("lobby"));
  assert.deepEqual(gw.refused, { rate_limited: 0, too_many_requests: 0 });
});

// The client assumes the default limits; these gateways were configured
// stricter: RATE_MSGS 5, RATE_BURST 10 and MAX_PENDING_REQUESTS 8; and a
// RATE_BURST of 4, which a whole burst of sends at once would overrun past
// its 16 refusals (a close with 1008, again on every reconnect).
for (const limits of [{ rate: 5, burst: 10, pending: 8, oneWay: 30 }, { rate: 2, burst: 4, pending: 64, oneWay: 100 }]) {
  test(`a gateway with stricter limits than the client's (${JSON.stringify(limits)}): refused sends are resent later, in order, and the client slows down instead of being closed`, async (t) => {
    const gw = new FakeGateway(limits);
    const { env, sends, texts } = await backlog(t, gw, { rooms: ["lobby", "dev"], count: 200 });
    let settled = 0;
    const outcomes = sends.map((p) => p.then(() => "acked", (err) => err.code).finally(() => { settled += 1; }));
    for (let k = 0; k < 400 && settled < 200; k++) await env.tick(1000);
    assert.deepEqual(new Set(await Promise.all(outcomes)), new Set(["acked"]), "none dropped");
    for (const [room, list] of texts) assert.deepEqual(gw.texts(room), list, `${room}: stored once each, in order`);
    assert.deepEqual(gw.closed, [], "never closed with 1008");
    assert.equal(env.sockets.length, 2);
    const refusals = gw.refused.rate_limited + gw.refused.too_many_requests;
    assert.ok(refusals > 0, "the stricter limits were met");
    assert.ok(refusals < 4 * gw.burst, `it slowed down well before the close budget: ${JSON.stringify(gw.refused)}`);
    // at most 1.7 times the gateway's own rate's time
    assert.ok(Date.now() - T0 < (1700 * 200) / gw.rate, `took ${Date.now() - T0} ms`);
  });
}

test("a send refused with rate_limited or too_many_requests waits, is resent with the same id, and holds back the later ones of its room", async (t) => {
  const env = await setup(t);
  t.mock.method(Math, "random", () => 0.999999);
  env.client.join("lobby");
  env.ws.frame("joined", { room: "lobby", epoch: "e1", last_id: 0, messages: [], members: [], count: 1, id: env.ws.last("join").payload.id });
  const wire = () => env.ws.frames("send").map((f) => f.payload.message);
  const sends = ["a", "b", "c"].map((m) => env.client.send("lobby", m, { id: m }));
  assert.deepEqual(wire(), ["a", "b", "c"]);
  // a is refused, b and c (on the wire already) are acked: as the gateway refused
  // a, the client sends one per room from now on
  env.ws.frame("error", { code: "rate_limited", message: "slow down", ref: "a", room: "lobby" });
  env.ws.frame("ack", { id: "b", room: "lobby", message_id: 1, sent: "t" });
  env.ws.frame("ack", { id: "c", room: "lobby", message_id: 2, sent: "t" });
  const later = ["d", "e"].map((m) => env.client.send("lobby", m, { id: m }));
  assert.deepEqual(wire(), ["a", "b", "c"], "d and e wait behind a");
  const { retryIn } = env.client.outbox[0];
  assert.ok(retryIn >= 250 && retryIn <= 500);
  await env.tick(retryIn);
  // The gateway's budget is empty: the client's count of it too, at half the rate
  // (10/s, burst 20, of which 5 are kept for other frames): a waits for 6 tokens.
  await env.tick(599 - retryIn);
  assert.deepEqual(wire(), ["a", "b", "c"]);
  await env.tick(1);
  assert.deepEqual(wire(), ["a", "b", "c", "a"], "a again, same id, alone");
  env.ws.frame("error", { code: "too_many_requests", message: "busy", ref: "a", room: "lobby" });
  await env.tick(1000);
  assert.deepEqual(wire().slice(4), ["a"]);
  env.ws.frame("ack", { id: "a", room: "lobby", message_id: 3, sent: "t" });
  assert.deepEqual(wire().slice(5), ["d"], "then d, alone: one send per room in flight after a refusal");
  env.ws.frame("ack", { id: "d", room: "lobby", message_id: 4, sent: "t" });
  await env.tick(100);
  assert.deepEqual(wire().slice(6), ["e"]);
  env.ws.frame("ack", { id: "e", room: "lobby", message_id: 5, sent: "t" });
  assert.deepEqual((await Promise.all([...sends, ...later])).map((a) => a.id), ["a", "b", "c", "d", "e"]);
  assert.deepEqual(env.of("error"), [], "nothing reported: the refusals were retried");
});

/* ------------------------------------------------------- connecting */

const FRESH = jwt({ sub: "alice", iat: T0 / 1000, exp: T0 / 1000 + 3600 });
const loginOk = () => ({ ok: true, status: 200, json: async () => ({ token: FRESH, username: "alice" }) });

test("a login with no answer is given up after loginTimeout and tried again on the backoff", async (t) => {
  const signals = [];
  let hang = true;
  const env = await setup(t, {
    connect: false, token: undefined, loginTimeout: 10000,
    fetch: (url, init) => {
      signals.push(init.signal);
      return hang ? new Promise(() => {}) : loginOk();
    },
  });
  t.mock.method(Math, "random", () => 0.999999);
  const connected = env.client.connect();
  const direct = env.client.login("alice"); // the app's own call shares the attempt
  await settle();
  assert.equal(env.fetches.length, 1);
  await env.tick(9999);
  assert.equal(env.client.state, "connecting");
  await env.tick(1);
  await assert.rejects(direct, (err) => err instanceof ConfabError && err.code === "network");
  assert.equal(signals[0].aborted, true, "the fetch is aborted");
  assert.equal(env.of("error").at(-1).code, "network");
  assert.equal(env.lastState().state, "reconnecting");
  assert.equal(env.lastState().delay, 500);
  await env.tick(500);
  assert.equal(env.fetches.length, 2, "a new login: the hung one no longer blocks it");
  await env.tick(10000); // no answer again: the backoff grows
  assert.equal(env.lastState().delay, 1000);
  hang = false;
  await env.tick(1000);
  assert.equal(env.fetches.length, 3);
  assert.ok(env.ws.url.endsWith(`token=${FRESH}`));
  env.ws.open();
  await connected;
  assert.deepEqual(env.of("token").map((p) => p.token), [FRESH]);
});

test("a WebSocket neither open nor closed after openTimeout is closed and another tried on the backoff", async (t) => {
  const env = await setup(t, { connect: false, openTimeout: 10000 });
  t.mock.method(Math, "random", () => 0.999999);
  const connected = env.client.connect();
  const first = env.ws;
  await env.tick(9999);
  assert.equal(env.client.state, "connecting");
  assert.equal(first.closedWith, null);
  await env.tick(1);
  assert.deepEqual(first.closedWith, { code: 4000, reason: "open timeout" });
  assert.equal(env.of("error").at(-1).code, "timeout");
  const s = env.lastState();
  assert.deepEqual([s.state, s.wasOpen, s.code, s.delay], ["reconnecting", false, 4000, 500]);
  await env.tick(500);
  assert.equal(env.sockets.length, 2);
  first.open(); // too late: the old socket is ignored
  assert.equal(env.client.state, "connecting");
  env.ws.open();
  await connected;
  await env.tick(60000);
  assert.equal(env.sockets.length, 2, "an open socket is not timed out");
  assert.equal(env.client.state, "connected");
});

test("a 429 from /login is retried no sooner than its Retry-After", async (t) => {
  const answers = [
    { ok: false, status: 429, headers: new Headers({ "Retry-After": "7" }), json: async () => ({ error: "slow down" }) },
    { ok: false, status: 429, headers: new Headers({ "Retry-After": new Date(T0 + 20000).toUTCString() }), json: async () => ({}) },
    { ok: false, status: 429, headers: new Headers(), json: async () => ({}) },
    loginOk(),
  ];
  const env = await setup(t, { connect: false, token: undefined, fetch: async () => answers.shift() });
  let random = 0;
  t.mock.method(Math, "random", () => random);
  env.client.connect();
  await settle();
  assert.equal(env.of("error").at(-1).status, 429);
  assert.equal(env.of("error").at(-1).retryAfter, 7000);
  assert.equal(env.lastState().delay, 7000, "Retry-After: 7, and no jitter on top (random 0)");
  await env.tick(6999);
  assert.equal(env.fetches.length, 1);
  await env.tick(1);
  assert.equal(env.fetches.length, 2);
  await settle();
  assert.equal(env.lastState().delay, 20000 - 7000, "an HTTP date: until then");
  random = 0.999999;
  await env.tick(13000);
  await settle();
  assert.equal(env.lastState().delay, 2000, "no Retry-After: the backoff alone (third attempt)");
  await env.tick(2000);
  await settle();
  assert.equal(env.fetches.length, 4);
  assert.equal(env.sockets.length, 1);
  assert.equal(env.fetches[0].url, `${BASE}/login`);
});
