// confab-client.js driven directly in Node, without a browser or a server:
// a fake WebSocket the test answers frame by frame, a fake fetch for /login,
// and a fake clock (the library schedules everything with the global
// setTimeout and reads time with Date.now). Each test acts
// as the server at exactly the moment a failure matters, and asserts only on
// what a user of the library sees: events, promise results, frames sent.
// client.test.mjs covers the same library through the UI.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfabClient, ConfabError } from "../../frontend/confab-client.js";

const BASE = "http://confab.test";
// Typing is throttled against Date.now(), so the mock clock starts at a real date.
const T0 = Date.UTC(2026, 0, 1);
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
const jwt = (claims) => `${b64({ alg: "HS256" })}.${b64(claims)}.sig`;
// No `exp`: the client never thinks it stale, so it connects without logging in.
const TOKEN = jwt({ sub: "alice" });

/** The server's end of one socket: what the client sent, and ways to answer. */
class FakeSocket {
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.sent = []; // parsed frames, in order
    this.closedWith = null; // {code, reason} once the client closed it
  }
  send(data) { this.sent.push(JSON.parse(data)); }
  close(code, reason) { this.closedWith = { code, reason }; }
  // The server side. Handlers are looked up at call time, as a browser does.
  open() { this.onopen?.(); }
  frame(type, payload) { this.onmessage?.({ data: JSON.stringify({ type, payload }) }); }
  drop(code = 1006, reason = "") { this.onclose?.({ code, reason }); }
  frames(type) { return this.sent.filter((f) => f.type === type); }
  last(type, room) { return this.sent.findLast((f) => f.type === type && (!room || f.payload.room === room)); }
}

const msg = (room, id, from = "bob", message = `m${id}`) => ({ room, id, message, from, sent: `t${id}` });
const settle = () => new Promise((resolve) => setImmediate(resolve)); // runs every pending microtask

/**
 * Replaces setTimeout, clearTimeout and Date.now for the test (t.mock puts
 * them back). Not t.mock.timers: its Date mocking needs Node 20.11, and
 * run.sh asks only for Node 18. tick() fires due timers one by one, oldest
 * first, letting the promises each one starts settle before the next.
 */
function fakeClock(t) {
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
async function setup(t, { connect = true, fetch, ...options } = {}) {
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
function answerJoin(env, room, { epoch = "e1", lastId = 0, messages = [], recovered = false, unasked = false } = {}) {
  const ws = env.ws;
  const req = unasked ? null : ws.last("join", room);
  assert.ok(unasked || req, `a join of ${room} was sent`);
  ws.frame("joined", {
    room, epoch, last_id: lastId, messages, members: [{ user: "alice" }], count: 1, recovered,
    ...(req && { id: req.payload.id }),
  });
}

async function joinRoom(env, room, snapshot) {
  const p = env.client.join(room);
  answerJoin(env, room, snapshot);
  return p;
}

/** Drops the current socket and lets the (jittered) reconnect timer fire: a new socket, not open yet. */
async function dropAndReconnect(env, code = 1006) {
  const before = env.sockets.length;
  env.ws.drop(code);
  const { state, delay } = env.lastState();
  assert.equal(state, "reconnecting");
  await env.tick(delay);
  assert.equal(env.sockets.length, before + 1, "a new socket after the delay");
  return env.ws;
}

/* ------------------------------------------------------------ rooms */

test("a new_message at or below the room's lastId is dropped; a new epoch starts over", async (t) => {
  const env = await setup(t);
  const info = await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 1), msg("lobby", 2), msg("lobby", 3)] });
  assert.equal(info.lastId, 3);
  assert.deepEqual(env.ids("lobby"), [1, 2, 3]);

  // The live copy of a message the join already brought, and a repeat: once each.
  env.ws.frame("new_message", msg("lobby", 3));
  env.ws.frame("new_message", msg("lobby", 4));
  env.ws.frame("new_message", msg("lobby", 4));
  env.ws.frame("new_message", msg("lobby", 2));
  assert.deepEqual(env.ids("lobby"), [1, 2, 3, 4]);
  assert.equal(env.of("message").at(-1).source, "live");
  assert.equal(env.client.room("lobby").lastId, 4);

  // The server lost the room's history and says so with an unasked `joined`
  // in a new epoch: ids start again, so 1 and 2 are new messages.
  answerJoin(env, "lobby", { unasked: true, epoch: "e2", lastId: 1, messages: [msg("lobby", 1, "carol", "again")] });
  const joined = env.of("joined").at(-1);
  assert.equal(joined.reset, true);
  assert.equal(joined.rejoin, true);
  env.ws.frame("new_message", msg("lobby", 1, "carol", "again"));
  env.ws.frame("new_message", msg("lobby", 2, "carol"));
  assert.deepEqual(env.ids("lobby"), [1, 2, 3, 4, 1, 2]);
  assert.equal(env.of("message").at(-2).message, "again");
  const { epoch, lastId } = env.client.room("lobby");
  assert.deepEqual({ epoch, lastId }, { epoch: "e2", lastId: 2 });
});

test("a gap in live ids is filled from the history, each message once", async (t) => {
  const env = await setup(t);
  await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 3)] });
  env.ws.frame("new_message", msg("lobby", 6)); // 4 and 5 were lost on the way

  const gap = env.of("error").find((e) => e.code === "gap");
  assert.ok(gap instanceof ConfabError);
  assert.equal(gap.room, "lobby");
  const req = env.ws.last("history", "lobby");
  const { id, ...asked } = req.payload;
  assert.deepEqual(asked, { room: "lobby", before: 6, limit: 2 });

  // 5 also turns up live while the fetch is out; the page overlaps what we
  // have on both sides. None of it may be delivered twice.
  env.ws.frame("new_message", msg("lobby", 5));
  env.ws.frame("history", {
    room: "lobby", has_more: true, id,
    messages: [msg("lobby", 3), msg("lobby", 4), msg("lobby", 5), msg("lobby", 6)],
  });
  await settle(); // history() resolves, then the gap is delivered
  env.ws.frame("new_message", msg("lobby", 7));
  const got = env.of("message").map((m) => `${m.id}:${m.source}`);
  assert.deepEqual(got, ["3:history", "4:gap", "5:gap", "6:live", "7:live"]);
});

// The todo tests hold behaviour the library documents but does not have
// today: node:test runs them and lists them as todo without failing the run.
// Drop the `todo` once the library is fixed.

// The live message that revealed a gap used to be delivered before the
// fetched ones (6, then 4, 5): now it waits for them.
test("gap-filled messages come in id order, as the `message` event promises", async (t) => {
  const env = await setup(t);
  await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 3)] });
  env.ws.frame("new_message", msg("lobby", 6));
  assert.deepEqual(env.ids("lobby"), [3], "6 waits for the gap to be filled");
  const req = env.ws.last("history", "lobby");
  env.ws.frame("history", { room: "lobby", has_more: true, id: req.payload.id, messages: [msg("lobby", 4), msg("lobby", 5)] });
  await settle();
  assert.deepEqual(env.ids("lobby"), [3, 4, 5, 6]);
});

/** Answers the latest history request of `room` on the current socket. */
function answerHistory(env, room, ids, hasMore = true) {
  const req = env.ws.last("history", room);
  assert.ok(req, `a history request for ${room} was sent`);
  env.ws.frame("history", { room, has_more: hasMore, id: req.payload.id, messages: ids.map((id) => msg(room, id)) });
  return req.payload;
}

const gapErrors = (env) => env.of("error").filter((e) => e.code === "gap")
  .map((e) => ({ ...e.missing, lost: e.lost }));

test("several gaps, one fetch at a time; a gap filled live needs no fetch answer", async (t) => {
  const env = await setup(t);
  await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 3)] });
  env.ws.frame("new_message", msg("lobby", 6)); // 4–5 missing
  env.ws.frame("new_message", msg("lobby", 9)); // 7–8 missing too
  env.ws.frame("new_message", msg("lobby", 8));
  assert.deepEqual(gapErrors(env), [{ from: 4, to: 5, lost: false }, { from: 7, to: 8, lost: false }]);
  assert.equal(env.ws.frames("history").length, 1, "one fetch at a time");
  const { id, ...first } = answerHistory(env, "lobby", [4, 5]);
  assert.deepEqual(first, { room: "lobby", before: 6, limit: 2 });
  await settle();
  assert.deepEqual(env.ids("lobby"), [3, 4, 5, 6], "8 and 9 still wait for 7");
  const { id: id2, ...second } = env.ws.last("history", "lobby").payload;
  assert.deepEqual(second, { room: "lobby", before: 8, limit: 1 });
  env.ws.frame("new_message", msg("lobby", 7)); // turns up live before the fetch answers
  assert.deepEqual(env.ids("lobby"), [3, 4, 5, 6, 7, 8, 9]);
  answerHistory(env, "lobby", [7]);
  await settle();
  await env.tick(60000);
  assert.deepEqual(env.ids("lobby"), [3, 4, 5, 6, 7, 8, 9], "nothing twice, nothing given up");
  assert.equal(gapErrors(env).length, 2);
  assert.equal(env.client.room("lobby").lastId, 9);
});

test("a gap fetch that is refused: the held messages come in order after a `gap` error naming the lost ids", async (t) => {
  const env = await setup(t);
  await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 3)] });
  env.ws.frame("new_message", msg("lobby", 6));
  env.ws.frame("new_message", msg("lobby", 7));
  const req = env.ws.last("history", "lobby");
  env.ws.frame("error", { code: "unavailable", message: "history unavailable", ref: req.payload.id, room: "lobby" });
  await settle();
  assert.deepEqual(env.ids("lobby"), [3, 6, 7]);
  assert.deepEqual(gapErrors(env), [{ from: 4, to: 5, lost: false }, { from: 4, to: 5, lost: true }]);
  const lost = env.of("error").at(-1);
  assert.ok(lost instanceof ConfabError && lost.room === "lobby" && !lost.fatal);
  assert.match(lost.message, /4–5.*history unavailable/);
  const order = env.events.filter((e) => e.name === "message" || e.name === "error")
    .map((e) => (e.name === "error" ? `error:${e.p.lost}` : e.p.id));
  assert.deepEqual(order, [3, "error:false", "error:true", 6, 7], "the report comes before what follows the gap");
  env.ws.frame("new_message", msg("lobby", 8));
  assert.deepEqual(env.ids("lobby"), [3, 6, 7, 8]);
  // Given up and reported: a rejoin asks after the last id delivered.
  const ws2 = await dropAndReconnect(env);
  ws2.open();
  assert.equal(ws2.last("join", "lobby").payload.since, 8);
});

test("a gap fetch not answered within gapTimeout is given up; its late answer is ignored", async (t) => {
  const env = await setup(t, { gapTimeout: 2000 });
  await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 3)] });
  env.ws.frame("new_message", msg("lobby", 6));
  await env.tick(1999);
  assert.deepEqual(env.ids("lobby"), [3]);
  await env.tick(1);
  assert.deepEqual(env.ids("lobby"), [3, 6]);
  assert.deepEqual(gapErrors(env).at(-1), { from: 4, to: 5, lost: true });
  answerHistory(env, "lobby", [4, 5]);
  await settle();
  env.ws.frame("new_message", msg("lobby", 7));
  assert.deepEqual(env.ids("lobby"), [3, 6, 7]);
});

test("at most maxGapHeld live messages wait for a gap; one more gives it up", async (t) => {
  const env = await setup(t, { maxGapHeld: 3 });
  await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 3)] });
  for (const id of [6, 7, 8]) env.ws.frame("new_message", msg("lobby", id));
  assert.deepEqual(env.ids("lobby"), [3]);
  env.ws.frame("new_message", msg("lobby", 10)); // a fourth, past a second gap (9)
  assert.deepEqual(env.ids("lobby"), [3, 6, 7, 8, 10]);
  assert.deepEqual(gapErrors(env), [{ from: 4, to: 5, lost: false }, { from: 4, to: 5, lost: true }, { from: 9, to: 9, lost: true }]);
  answerHistory(env, "lobby", [4, 5]); // too late: ignored
  await settle();
  env.ws.frame("new_message", msg("lobby", 11));
  assert.deepEqual(env.ids("lobby"), [3, 6, 7, 8, 10, 11]);
  assert.equal(env.ws.frames("history").length, 1);
  assert.equal(env.client.room("lobby").lastId, 11);
});

test("a gap wider than a history page is fetched oldest part first; ids no longer kept are reported", async (t) => {
  const env = await setup(t);
  await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 3)] });
  env.ws.frame("new_message", msg("lobby", 250));
  const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
  // The history keeps only from 60 on.
  const asked = [];
  for (const [from, to] of [[60, 103], [104, 203], [204, 249]]) {
    const { id, ...p } = answerHistory(env, "lobby", range(from, to));
    asked.push(p);
    await settle();
  }
  assert.deepEqual(asked, [
    { room: "lobby", before: 104, limit: 100 },
    { room: "lobby", before: 204, limit: 100 },
    { room: "lobby", before: 250, limit: 46 },
  ]);
  assert.deepEqual(env.ids("lobby"), [3, ...range(60, 250)]);
  assert.deepEqual(gapErrors(env), [{ from: 4, to: 249, lost: false }, { from: 4, to: 59, lost: true }]);
});

test("presence and typing are not held behind a gap", async (t) => {
  const env = await setup(t);
  const seen = [];
  env.client.on("presence", (p) => seen.push(`presence:${p.user}`));
  env.client.on("typing", (p) => seen.push(`typing:${p.user}`));
  await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 3)] });
  env.ws.frame("new_message", msg("lobby", 6));
  env.ws.frame("presence", { room: "lobby", user: "carol", action: "join", count: 2 });
  env.ws.frame("typing", { room: "lobby", user: "carol" });
  assert.deepEqual(seen, ["presence:carol", "typing:carol"]);
  assert.deepEqual(env.client.room("lobby").members.map((m) => m.user), ["alice", "carol"]);
  assert.deepEqual(env.ids("lobby"), [3]);
});

test("messages of a gap whose fetch was cut off by a reconnect are recovered by the rejoin", {
  todo: "lastId has already moved past the gap, so the rejoin asks since=6 and 4–5 are never delivered",
}, async (t) => {
  const env = await setup(t);
  await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 3)] });
  env.ws.frame("new_message", msg("lobby", 6));
  assert.ok(env.ws.last("history", "lobby"), "the gap fetch went out");
  const ws2 = await dropAndReconnect(env); // before the history answer
  ws2.open();
  const since = ws2.last("join", "lobby").payload.since;
  const all = [3, 4, 5, 6].map((id) => msg("lobby", id));
  answerJoin(env, "lobby", { lastId: 6, recovered: true, messages: all.filter((m) => m.id > since) });
  await settle();
  assert.deepEqual(env.ids("lobby").sort(), [3, 4, 5, 6]);
});

test("on reconnect every room is rejoined with since/epoch of the last id seen", async (t) => {
  const env = await setup(t);
  await joinRoom(env, "lobby", { epoch: "e1", lastId: 5, messages: [msg("lobby", 5)] });
  await joinRoom(env, "dev", { epoch: "e7", lastId: 2 });
  env.ws.frame("new_message", msg("dev", 3)); // live messages move lastId too
  const first = env.sockets[0].frames("join").map((f) => f.payload);
  assert.ok(first.every((p) => !("since" in p) && !("epoch" in p)), "a first join has no since/epoch");

  const ws2 = await dropAndReconnect(env);
  assert.equal(ws2.sent.length, 0, "nothing is sent before the socket opens");
  ws2.open();
  const rejoins = ws2.frames("join").map(({ payload: { id, ...p } }) => p);
  assert.deepEqual(rejoins, [
    { room: "lobby", limit: 50, since: 5, epoch: "e1" },
    { room: "dev", limit: 50, since: 3, epoch: "e7" },
  ]);

  // The replay overlaps what was seen: only the new ones are delivered, as recovery.
  answerJoin(env, "lobby", { lastId: 7, recovered: true, messages: [msg("lobby", 5), msg("lobby", 6), msg("lobby", 7)] });
  const joined = env.of("joined").at(-1);
  assert.deepEqual([joined.rejoin, joined.recovered, joined.gap, joined.reset], [true, true, false, false]);
  assert.deepEqual(joined.messages.map((m) => m.id), [6, 7]);
  assert.deepEqual(env.ids("lobby"), [5, 6, 7]);
  assert.equal(env.of("message").at(-1).source, "recovery");
});

test("typing notifications: at most one per room per 2 s", async (t) => {
  const env = await setup(t);
  assert.equal(env.client.typing("lobby"), false, "not in the room");
  await joinRoom(env, "lobby");
  await joinRoom(env, "dev");
  assert.equal(env.client.typing("lobby"), true);
  assert.equal(env.client.typing("lobby"), false);
  assert.equal(env.client.typing("dev"), true, "each room has its own slot");
  await env.tick(1999);
  assert.equal(env.client.typing("lobby"), false);
  await env.tick(1);
  assert.equal(env.client.typing("lobby"), true);
  assert.deepEqual(env.ws.frames("typing").map((f) => f.payload.room), ["lobby", "dev", "lobby"]);
});

test("the echo of one's own send waits for its ack, at most echoHold ms", async (t) => {
  const env = await setup(t, { echoHold: 1000 });
  await joinRoom(env, "lobby");
  const acked = env.client.send("lobby", "hello");
  const { id } = env.ws.last("send").payload;
  env.ws.frame("new_message", msg("lobby", 1, "alice", "hello")); // the echo beats the ack
  assert.deepEqual(env.ids("lobby"), []);
  env.ws.frame("ack", { id, room: "lobby", message_id: 1, sent: "t1" });
  assert.equal((await acked).messageId, 1);
  const order = env.events.filter((e) => e.name === "ack" || e.name === "message").map((e) => e.name);
  assert.deepEqual(order, ["ack", "message"], "ack first, so a UI can match the echo");
  assert.equal(env.of("message")[0].clientId, id);

  // No ack at all: the echo is let go after echoHold.
  env.client.send("lobby", "again");
  env.ws.frame("new_message", msg("lobby", 2, "alice", "again"));
  await env.tick(999);
  assert.deepEqual(env.ids("lobby"), [1]);
  await env.tick(1);
  assert.deepEqual(env.ids("lobby"), [1, 2]);
  assert.equal(env.of("message")[1].clientId, undefined);
});

/* ------------------------------------------------------------ sends */

test("a send cut off before its ack is resent after the rejoin with the same id, settled once", async (t) => {
  const env = await setup(t);
  await joinRoom(env, "lobby", { lastId: 1 });
  let settled = 0;
  const p = env.client.send("lobby", "hi").finally(() => { settled += 1; });
  const { id } = env.ws.last("send").payload;

  const ws2 = await dropAndReconnect(env);
  ws2.open();
  assert.equal(ws2.frames("send").length, 0, "not before the room is joined again");
  answerJoin(env, "lobby", { lastId: 1, recovered: true });
  assert.deepEqual(ws2.frames("send").map((f) => f.payload), [{ room: "lobby", message: "hi", id }]);

  // The first copy got through after all: the server answers both with the same ack.
  ws2.frame("ack", { id, room: "lobby", message_id: 2, sent: "t2" });
  ws2.frame("ack", { id, room: "lobby", message_id: 2, sent: "t2" });
  assert.deepEqual(await p, { id, room: "lobby", messageId: 2, sent: "t2" });
  assert.equal(settled, 1);
  assert.equal(env.of("ack").length, 1);
  assert.deepEqual(env.of("delivery").map((d) => d.state), ["sending", "sent"]);
  assert.equal(env.of("delivery").at(-1).attempts, 2);
  assert.deepEqual(env.client.outbox, []);
});

test("a send refused with a non-retryable error rejects with that code", async (t) => {
  const env = await setup(t);
  await joinRoom(env, "lobby");
  const p = env.client.send("lobby", "hi");
  const { id } = env.ws.last("send").payload;
  env.ws.frame("error", { code: "bad_request", message: "no", ref: id, room: "lobby" });
  await assert.rejects(p, (err) => err instanceof ConfabError && err.code === "bad_request" && err.ref === id);
  assert.equal(env.of("delivery").at(-1).state, "failed");
  assert.deepEqual(env.client.outbox, []);
  await env.tick(60000); // and it is never resent
  assert.equal(env.ws.frames("send").length, 1);
});

test("sends refused with a retryable error are resent with the same id after a backoff", async (t) => {
  const env = await setup(t);
  await joinRoom(env, "lobby");
  for (const code of ["timeout", "unavailable", "internal", "too_many_requests", "rate_limited"]) {
    const p = env.client.send("lobby", `about ${code}`);
    const { id } = env.ws.last("send").payload;
    env.ws.frame("error", { code, message: code, ref: id, room: "lobby" });
    const d = env.of("delivery").at(-1);
    assert.equal(d.state, "sending", code);
    assert.equal(d.error.code, code);
    assert.ok(d.retryIn >= 250 && d.retryIn <= 500, `${code}: retryIn ${d.retryIn}`);
    const count = env.ws.frames("send").length;
    await env.tick(d.retryIn - 1);
    assert.equal(env.ws.frames("send").length, count, `${code}: not before retryIn`);
    await env.tick(1);
    assert.equal(env.ws.last("send").payload.id, id, `${code}: resent with the same id`);
    assert.equal(env.ws.frames("send").length, count + 1);
    env.ws.frame("ack", { id, room: "lobby", message_id: 1, sent: "t" });
    assert.equal((await p).id, id);
  }
});

test("sends made while offline go out once the room is rejoined", async (t) => {
  const env = await setup(t);
  await joinRoom(env, "lobby", { lastId: 4 });
  env.ws.drop();
  assert.equal(env.client.state, "reconnecting");
  const p1 = env.client.send("lobby", "one");
  const p2 = env.client.send("lobby", "two");
  assert.deepEqual(env.client.outbox.map((d) => [d.message, d.state, d.attempts]), [["one", "sending", 0], ["two", "sending", 0]]);
  await env.tick(env.lastState().delay);
  const ws2 = env.ws;
  ws2.open();
  assert.equal(ws2.frames("send").length, 0);
  answerJoin(env, "lobby", { lastId: 4, recovered: true });
  const sends = ws2.frames("send").map((f) => f.payload);
  assert.deepEqual(sends.map((s) => s.message), ["one", "two"]);
  sends.forEach((s, i) => ws2.frame("ack", { id: s.id, room: "lobby", message_id: 5 + i, sent: "t" }));
  assert.deepEqual([(await p1).messageId, (await p2).messageId], [5, 6]);
});

/* ------------------------------------------------------- connection */

// A /login that always works, for tests whose upgrades are refused (every
// second refusal in a row logs in again).
const FRESH = jwt({ sub: "alice", iat: T0 / 1000, exp: T0 / 1000 + 3600 });
const loginOk = async () => ({ ok: true, status: 200, json: async () => ({ token: FRESH, username: "alice" }) });

test("reconnect delays grow exponentially up to the cap, with full jitter", async (t) => {
  const env = await setup(t, { connect: false, fetch: loginOk, reconnectDelay: 500, maxReconnectDelay: 15000 });
  let random = 0.999999; // the top of the jitter range: the delay is the ceiling itself
  t.mock.method(Math, "random", () => random);
  env.client.connect();
  const delays = [];
  for (let i = 0; i < 7; i++) {
    const n = env.sockets.length;
    env.ws.drop(); // refused: closed without opening
    const s = env.lastState();
    delays.push(s.delay);
    assert.equal(s.wasOpen, false);
    await env.tick(s.delay - 1);
    assert.equal(env.sockets.length, n, "no reconnect before the delay");
    await env.tick(1);
    assert.equal(env.sockets.length, n + 1);
  }
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 15000, 15000]);
  const attempts = env.of("state").filter((s) => s.state === "reconnecting").map((s) => s.attempt);
  assert.deepEqual(attempts, [1, 2, 3, 4, 5, 6, 7]);
  assert.ok(env.fetches.length >= 3, "logging in again does not reset the backoff");

  // Full jitter: the delay is uniform in [0, ceiling].
  random = 0.25;
  env.ws.drop();
  assert.equal(env.lastState().delay, 3750);
  await env.tick(3750);
  random = 0;
  env.ws.drop();
  assert.equal(env.lastState().delay, 0);
  await env.tick(0);

  // A connection that stayed up stableAfter (10 s) starts the backoff again;
  // so does a server going away (1001).
  random = 0.999999;
  env.ws.open();
  await env.tick(10000);
  env.ws.drop();
  assert.equal(env.lastState().delay, 500);
  await env.tick(500);
  env.ws.drop();
  assert.equal(env.lastState().delay, 1000);
  await env.tick(1000);
  env.ws.open();
  env.ws.drop(1001);
  assert.equal(env.lastState().delay, 500);
});

// connection.js _onClose used to judge `stable` after _dropSocket() had
// zeroed _openedAt, so every socket that opened reset the backoff.
test("a connection that closes right after opening keeps backing off", async (t) => {
  const env = await setup(t, { connect: false });
  t.mock.method(Math, "random", () => 0.999999);
  env.client.connect();
  const delays = [];
  for (let i = 0; i < 3; i++) {
    env.ws.open(); // e.g. a gateway that accepts, then closes at once
    env.ws.drop(1011);
    delays.push(env.lastState().delay);
    await env.tick(env.lastState().delay);
  }
  assert.deepEqual(delays, [500, 1000, 2000]);

  // Up for just under stableAfter (10 s) is not stable either; up for it is.
  env.ws.open();
  await env.tick(9999);
  env.ws.drop(1011);
  assert.equal(env.lastState().delay, 4000);
  await env.tick(4000);
  env.ws.open();
  await env.tick(10000);
  env.ws.drop(1011);
  assert.equal(env.lastState().delay, 500);
});

test("sockets refused before opening lead to a fresh login", async (t) => {
  const fresh = FRESH;
  const env = await setup(t, { connect: false, fetch: loginOk });
  const connected = env.client.connect();
  assert.ok(env.ws.url.endsWith(`/ws?token=${TOKEN}`), "the stored token is used first");
  assert.deepEqual(env.ws.protocols, ["confab.v1"]);

  env.ws.drop(1006); // how a browser shows a 401 on the upgrade
  assert.equal(env.lastState().wasOpen, false);
  await env.tick(env.lastState().delay);
  assert.equal(env.fetches.length, 0, "one refusal may be a network blip");
  env.ws.drop(1006);
  await env.tick(env.lastState().delay);
  assert.equal(env.fetches.length, 1, "the second in a row logs in again");
  assert.equal(env.fetches[0].url, `${BASE}/login`);
  assert.equal(env.fetches[0].init.method, "POST");
  assert.deepEqual(JSON.parse(env.fetches[0].init.body), { username: "alice" });
  assert.deepEqual(env.of("token"), [{ token: fresh, username: "alice" }]);
  assert.equal(env.sockets.length, 3);
  assert.ok(env.ws.url.endsWith(`/ws?token=${fresh}`));
  env.ws.open();
  await connected;

  // Having opened resets the count: the next single refusal does not log in.
  env.ws.drop();
  await env.tick(env.lastState().delay);
  env.ws.drop();
  await env.tick(env.lastState().delay);
  assert.equal(env.fetches.length, 1);
  assert.equal(env.sockets.length, 5);
});

test("a login refused with a 4xx stops the client: state `disconnected` with the fatal error", async (t) => {
  const answers = [
    { ok: false, status: 503, json: async () => ({ error: "busy" }) },
    { ok: false, status: 403, json: async () => ({ error: "banned" }) },
  ];
  const env = await setup(t, { connect: false, token: undefined, fetch: async () => answers.shift() });
  const connected = env.client.connect();
  connected.catch(() => {}); // asserted below, once it has rejected
  await settle();
  // A 503 is worth retrying.
  assert.equal(env.of("error")[0].code, "login_failed");
  assert.equal(env.of("error")[0].fatal, false);
  assert.equal(env.lastState().state, "reconnecting");
  await env.tick(env.lastState().delay);
  await assert.rejects(connected, (err) => err.code === "login_failed" && err.status === 403 && err.fatal);
  const last = env.lastState();
  assert.equal(last.state, "disconnected");
  assert.equal(last.error.code, "login_failed");
  assert.equal(last.error.fatal, true);
  assert.equal(env.sockets.length, 0);
  await env.tick(60000);
  assert.equal(env.fetches.length, 2, "no more tries");
});

test("a join nobody answers within joinTimeout reconnects; the old socket is ignored from then on", async (t) => {
  const env = await setup(t, { joinTimeout: 5000 });
  const joined = env.client.join("lobby");
  const old = env.ws;
  await env.tick(4999);
  assert.equal(env.client.state, "connected");
  await env.tick(1);
  assert.equal(env.of("error").at(-1).code, "timeout");
  assert.equal(old.closedWith.code, 4000);
  const s = env.lastState();
  assert.deepEqual([s.state, s.code, s.wasOpen], ["reconnecting", 4000, true]);

  // Too late: the old socket's answers, live messages and close change nothing.
  const eventsBefore = env.events.length;
  old.frame("joined", { room: "lobby", epoch: "e1", last_id: 9, messages: [msg("lobby", 9)], members: [], count: 0 });
  old.frame("new_message", msg("lobby", 10));
  old.drop();
  assert.equal(env.events.length, eventsBefore);
  assert.equal(env.client.room("lobby").status, "joining");

  await env.tick(s.delay);
  env.ws.open();
  const p = env.ws.last("join", "lobby").payload;
  assert.equal("since" in p, false, "never joined, so nothing to recover");
  answerJoin(env, "lobby", { lastId: 2, messages: [msg("lobby", 2)] });
  assert.equal((await joined).lastId, 2);

  // A send answered on the old socket is not settled by it either.
  const sent = env.client.send("lobby", "hi");
  const { id } = env.ws.last("send").payload;
  old.frame("ack", { id, room: "lobby", message_id: 3, sent: "t" });
  old.frame("new_message", msg("lobby", 3));
  assert.equal(env.of("ack").length, 0);
  assert.deepEqual(env.ids("lobby"), [2]);
  env.ws.frame("ack", { id, room: "lobby", message_id: 3, sent: "t" });
  assert.equal((await sent).messageId, 3);
});

/* ------------------------------------------------------------ input */

test("bad input is refused at once with the documented codes, and nothing is sent", async (t) => {
  const env = await setup(t);
  const refused = (p, code) => assert.rejects(p, (err) => err instanceof ConfabError && err.code === code);
  for (const name of ["", "bad room!", "x".repeat(65), "ünï", "a/b", 42, undefined]) {
    await refused(env.client.join(name), "bad_room");
  }
  assert.deepEqual(env.client.rooms, []);
  await joinRoom(env, "x".repeat(64));
  await joinRoom(env, "A-z_0.9:x");
  assert.deepEqual(env.client.rooms, ["x".repeat(64), "A-z_0.9:x"]);

  const room = "A-z_0.9:x";
  await refused(env.client.send("lobby", "hi"), "not_joined");
  await refused(env.client.send(room, " \n\t"), "empty_message");
  await refused(env.client.send(room, "hi", { id: "" }), "bad_id");
  await refused(env.client.send(room, "hi", { id: "i".repeat(65) }), "bad_id");
  // The limit is on the whole frame in UTF-8 bytes (maxFrameBytes, 4096).
  const overhead = JSON.stringify({ type: "send", payload: { room, message: "", id: "k" } }).length;
  await refused(env.client.send(room, "x".repeat(4096 - overhead + 1), { id: "k" }), "too_big");
  await refused(env.client.send(room, "é".repeat(2100)), "too_big"); // 2100 characters, 4200 bytes
  await refused(env.client.history("lobby"), "not_joined");
  assert.equal(env.ws.frames("send").length, 0);
  assert.equal(env.of("delivery").length, 0, "refused sends never enter the outbox");

  // Just at the limit it goes out; a second send with a pending id is refused.
  const fits = env.client.send(room, "x".repeat(4096 - overhead), { id: "k" });
  await refused(env.client.send(room, "other", { id: "k" }), "bad_id");
  assert.equal(env.ws.frames("send").length, 1);
  env.ws.frame("ack", { id: "k", room, message_id: 1, sent: "t" });
  assert.equal((await fits).id, "k");
});
