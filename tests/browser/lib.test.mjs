// confab-client.js driven directly in Node, without a browser or a server
// (lib-env.mjs has the fake WebSocket, fetch and clock): rooms, sends,
// connection, input. lib-gaps.test.mjs covers gaps in live ids.
// client.test.mjs covers the same library through the UI.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfabError } from "../../frontend/confab-client.js";
import {
  BASE, T0, TOKEN, answerJoin, dropAndReconnect, joinRoom, jwt, msg, settle, setup,
} from "./lib-env.mjs";

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

// A Redis back from an older copy of its data keeps the epoch but hands out
// the lost ids again, for other messages; the library used to take those
// for repeats of what it held, and dropped them.
test("a rejoin whose snapshot ends below the last id held is a reset, not a repeat", async (t) => {
  const env = await setup(t);
  await joinRoom(env, "lobby", { epoch: "e1", lastId: 5, messages: [msg("lobby", 4), msg("lobby", 5)] });
  const ws2 = await dropAndReconnect(env);
  ws2.open();
  assert.deepEqual(ws2.last("join", "lobby").payload.since, 5);
  answerJoin(env, "lobby", { epoch: "e1", lastId: 3, recovered: false, messages: [msg("lobby", 3, "carol", "kept")] });
  const joined = env.of("joined").at(-1);
  assert.equal(joined.reset, true);
  assert.deepEqual(joined.messages.map((m) => [m.id, m.message]), [[3, "kept"]]);
  env.ws.frame("new_message", msg("lobby", 4, "carol", "a new four"));
  assert.equal(env.of("message").at(-1).message, "a new four");
  assert.equal(env.client.room("lobby").lastId, 4);
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

// Any ack or failure in a room used to let every echo held there go: the
// echo of a send still unacked came without its clientId, so a UI showed it
// beside its own pending entry.
test("an ack lets only its own echo go, and a failed send the echo no other send waits for", async (t) => {
  const env = await setup(t, { echoHold: 1000 });
  await joinRoom(env, "lobby");
  const ids = [];
  const sends = ["first", "second", "third", "fourth"].map((text) => {
    const p = env.client.send("lobby", text);
    ids.push(env.ws.last("send").payload.id);
    return p;
  });
  sends[2].catch(() => {});
  const shown = () => env.of("message").map((m) => [m.id, m.clientId]);
  for (const [i, text] of ["first", "second", "third", "fourth"].entries()) {
    env.ws.frame("new_message", msg("lobby", i + 1, "alice", text)); // every echo beats its ack
  }
  env.ws.frame("ack", { id: ids[0], room: "lobby", message_id: 1, sent: "t1" });
  assert.deepEqual(shown(), [[1, ids[0]]], "the echo of `second` waits for its own ack");
  env.ws.frame("ack", { id: ids[1], room: "lobby", message_id: 2, sent: "t2" });
  assert.deepEqual(shown(), [[1, ids[0]], [2, ids[1]]]);

  env.ws.frame("error", { code: "bad_request", message: "no", ref: ids[2], room: "lobby" });
  assert.deepEqual(shown().slice(2), [[3, undefined]], "no send waits for `third` any more; `fourth` still waits");
  env.ws.frame("ack", { id: ids[3], room: "lobby", message_id: 4, sent: "t4" });
  assert.deepEqual(shown().slice(2), [[3, undefined], [4, ids[3]]]);
  await env.tick(1000);
  assert.equal(env.of("message").length, 4, "each once");
});

test("an echo held for its ack when the room's epoch resets is dropped with the old epoch", async (t) => {
  const env = await setup(t, { echoHold: 1000 });
  await joinRoom(env, "lobby", { epoch: "e1", lastId: 6 });
  env.client.send("lobby", "hello");
  env.ws.frame("new_message", msg("lobby", 7, "alice", "hello")); // held: no ack yet
  answerJoin(env, "lobby", { unasked: true, epoch: "e2", lastId: 0 }); // the history was reset
  env.ws.frame("new_message", msg("lobby", 7 - 6, "bob", "first of e2"));
  await env.tick(1000); // echoHold over: nothing of e1 comes out
  assert.deepEqual(env.of("message").map((m) => [m.id, m.message]), [[1, "first of e2"]]);
});

// A leave, a join and a second leave before the server's `left` (tap ×, tap
// the room, tap × again) used to leave the join waiting for that `left`, and
// then sent: the user was in a room no screen showed (present to others,
// rejoined after every reconnect, counted against the room limit).
test("a join made while its room's leave is under way goes out after `left`, and a leave before then cancels it", async (t) => {
  const env = await setup(t);
  await joinRoom(env, "random");
  const left = env.client.leave("random");
  let outcome = "pending";
  env.client.join("random").then(() => { outcome = "joined"; }, (err) => { outcome = err.code; });
  env.client.leave("random");
  env.ws.frame("left", { room: "random" });
  await left;
  await settle();
  assert.equal(env.ws.frames("join").length, 1, "the cancelled join never went out");
  assert.equal(env.ws.frames("leave").length, 1, "the server had nothing more to be told");
  assert.deepEqual(env.client.rooms, []);
  assert.equal(outcome, "left", "the cancelled join rejects as a join cut short by a leave does");
  assert.deepEqual(env.of("left").map((l) => l.room), ["random", "random"]);

  // Not cancelled, it waits for the server's `left` (before it, the join
  // would be refused as `already_joined`), and shows as joining meanwhile.
  await joinRoom(env, "random");
  const leaving = env.client.leave("random");
  const rejoined = env.client.join("random");
  assert.equal(env.ws.frames("join").length, 2, "not before the leave came back");
  assert.deepEqual([env.client.rooms, env.client.room("random").status], [["random"], "joining"]);
  env.ws.frame("left", { room: "random" });
  await leaving;
  assert.equal(env.ws.frames("join").length, 3, "asked once the leave came back");
  answerJoin(env, "random", { lastId: 2 });
  assert.equal((await rejoined).lastId, 2);
  assert.equal(env.client.room("random").status, "joined");
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
  // rateMsgs 0: no request budget to wait for after a `rate_limited` (the pacing tests below have it)
  const env = await setup(t, { rateMsgs: 0 });
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

// A send waiting to retry did not hold back the later sends of its room:
// after A was refused with `unavailable`, B (typed later) went out, was
// stored, and A was stored after it when resent.
test("a send being retried holds back the later ones of its room, which follow it in order", async (t) => {
  const env = await setup(t);
  t.mock.method(Math, "random", () => 0); // the shortest wait: half the ceiling
  await joinRoom(env, "lobby");
  await joinRoom(env, "other");
  const wire = () => env.ws.frames("send").map((f) => f.payload.message);
  const lastOf = (text) => env.ws.sent.findLast((f) => f.type === "send" && f.payload.message === text).payload;
  const refuse = (text) => {
    const { id, room } = lastOf(text);
    env.ws.frame("error", { code: "unavailable", message: "unavailable", ref: id, room });
  };
  let n = 0;
  const ack = (text) => {
    const { id, room } = lastOf(text);
    env.ws.frame("ack", { id, room, message_id: ++n, sent: "t" });
  };
  // None retried: sends go out at once, as many as the window takes (4 on
  // a new connection, one more with each ack; lib-flow.test.mjs has more).
  const burst = ["1", "2", "3", "4", "5"].map((text) => env.client.send("lobby", text));
  assert.deepEqual(wire(), ["1", "2", "3", "4"]);
  ack("1");
  assert.deepEqual(wire(), ["1", "2", "3", "4", "5"]);
  ["2", "3", "4", "5"].forEach(ack);
  await Promise.all(burst);
  env.ws.sent.length = 0;

  // A and B go out together; both are refused, B after A.
  const sent = ["A", "B"].map((text) => env.client.send("lobby", text));
  refuse("A"); // retried in 250 ms
  sent.push(env.client.send("lobby", "C"), env.client.send("other", "O"));
  refuse("B"); // retried in 250 ms too, after A
  assert.deepEqual(wire(), ["A", "B", "O"], "C waits behind A; another room does not");
  await env.tick(250);
  assert.deepEqual(wire(), ["A", "B", "O", "A"], "A again; B and C wait until it is stored");
  refuse("A"); // its second retry comes 500 ms later: B's timer does not let B overtake it
  await env.tick(499);
  assert.deepEqual(wire().slice(4), []);
  await env.tick(1);
  assert.deepEqual(wire().slice(4), ["A"]);
  ack("A");
  assert.deepEqual(wire().slice(5), ["B"], "then B, alone: it was refused too");
  ack("B");
  assert.deepEqual(wire().slice(6), ["C"]);
  ack("C");
  ack("O");
  assert.deepEqual((await Promise.all(sent)).map((a) => a.messageId), [n - 3, n - 2, n - 1, n]);
  assert.deepEqual(env.client.outbox, []);
});

// `unavailable`, `rate_limited` and `too_many_requests` say nothing was
// done; such a send used to fail after resendWindow as `unconfirmed`, "no
// answer came before the connection was lost", all of it untrue.
test("a send refused only by refusals that did nothing is retried past resendWindow; the window runs from the first attempt that may have been stored", async (t) => {
  // rateMsgs 0: each retry goes at its backoff, with no request budget to wait for
  const env = await setup(t, { resendWindow: 60000, maxRetryDelay: 8000, rateMsgs: 0 });
  t.mock.method(Math, "random", () => 0.999999); // the longest wait: the ceiling
  await joinRoom(env, "lobby", { lastId: 1 });
  const codes = ["unavailable", "rate_limited", "too_many_requests"];
  const refuse = (code) => {
    const { id } = env.ws.last("send").payload;
    env.ws.frame("error", { code, message: code, ref: id, room: "lobby" });
    return env.of("delivery").at(-1).retryIn;
  };
  let outcome = "pending";
  env.client.send("lobby", "hi").then((ack) => { outcome = ack; }, (err) => { outcome = err; });
  for (let i = 0; outcome === "pending" && Date.now() - T0 < 300000; i++) await env.tick(refuse(codes[i % 3]));
  assert.equal(outcome.code, undefined, `failed after ${Date.now() - T0} ms: ${outcome.message}`);
  assert.equal(env.client.outbox[0]?.state, "sending", "still being retried after 5 minutes");
  assert.ok(env.ws.frames("send").length > 40);
  assert.equal(env.of("error").length, 0);
  env.ws.frame("ack", { id: env.ws.last("send").payload.id, room: "lobby", message_id: 2, sent: "t" });
  await settle();
  assert.equal(outcome.messageId, 2);

  // A `timeout` says the attempt may have been stored: from when it went
  // out, the send is resent for resendWindow, whatever the refusals after.
  outcome = "pending";
  env.client.send("lobby", "again").then(() => { outcome = "sent"; }, (err) => { outcome = err; });
  await env.tick(refuse("unavailable"));
  const unknownAt = Date.now(); // when the attempt that draws the `timeout` went out
  await env.tick(refuse("timeout"));
  let last = 0;
  while (outcome === "pending" && Date.now() - unknownAt < 180000) {
    last = Date.now();
    await env.tick(refuse(codes[0]));
  }
  assert.equal(outcome.code, "unconfirmed");
  assert.match(outcome.message, /may or may not have been delivered/);
  assert.ok(last - unknownAt <= 60000 && Date.now() - unknownAt > 60000,
    `resent until ${last - unknownAt} ms, failed at ${Date.now() - unknownAt} ms after the attempt`);
});

test("a send with no answer within ackTimeout means a dead link: reconnect, then resend the same id", async (t) => {
  const env = await setup(t, { ackTimeout: 5000 });
  await joinRoom(env, "lobby", { lastId: 1 });
  const p = env.client.send("lobby", "hi");
  const old = env.ws;
  const { id } = old.last("send").payload;
  await env.tick(4999);
  assert.equal(env.client.state, "connected");
  assert.equal(old.frames("send").length, 1, "nothing resent on the silent socket");
  await env.tick(1);
  assert.equal(env.of("error").at(-1).code, "timeout");
  assert.equal(old.closedWith.code, 4000);
  assert.equal(old.frames("send").length, 1, "nor after it is given up");
  const s = env.lastState();
  assert.deepEqual([s.state, s.code], ["reconnecting", 4000]);

  await env.tick(s.delay);
  env.ws.open();
  answerJoin(env, "lobby", { lastId: 1, recovered: true });
  assert.deepEqual(env.ws.frames("send").map((f) => f.payload), [{ room: "lobby", message: "hi", id }]);
  env.ws.frame("ack", { id, room: "lobby", message_id: 2, sent: "t2" });
  assert.equal((await p).messageId, 2);
});

test("a quiet link is probed with a ping after idleProbe; one that answers nothing is given up", async (t) => {
  const env = await setup(t, { idleProbe: 30000, probeTimeout: 10000 });
  await joinRoom(env, "lobby", { lastId: 1 });
  const ws = env.ws;
  // frames from the server keep it from probing
  for (let k = 0; k < 3; k++) {
    await env.tick(20000);
    ws.frame("new_message", msg("lobby", 2 + k));
  }
  assert.equal(ws.frames("ping").length, 0);
  // quiet: a ping after 30 s, answered, and the next 30 s after that answer
  await env.tick(30000);
  assert.equal(ws.frames("ping").length, 1);
  assert.match(ws.last("ping").payload.id, /^ping-/);
  await env.tick(10000);
  assert.equal(env.client.state, "connected");
  await env.tick(20000);
  assert.equal(ws.frames("ping").length, 2);
  assert.equal(env.of("error").length, 0, "a pong is no error");

  // the link dies without a close: the next ping draws nothing
  ws.silent = true;
  await env.tick(30000);
  assert.equal(ws.frames("ping").length, 3);
  await env.tick(9999);
  assert.equal(env.client.state, "connected");
  await env.tick(1);
  assert.equal(env.of("error").at(-1).code, "timeout");
  assert.equal(ws.closedWith.code, 4000);
  assert.equal(env.lastState().state, "reconnecting");
});

test("a close with 1009 fails the largest send in flight with too_big and lowers maxFrameBytes", async (t) => {
  const env = await setup(t);
  await joinRoom(env, "lobby", { lastId: 1 });
  const small = env.client.send("lobby", "short");
  const big = assert.rejects(env.client.send("lobby", "x".repeat(2000)),
    (err) => err instanceof ConfabError && err.code === "too_big");
  const smallId = env.ws.frames("send")[0].payload.id;
  const ws2 = await dropAndReconnect(env, 1009); // the server's MAX_MESSAGE_BYTES is lower
  await big;
  assert.equal(env.of("error").at(-1).code, "too_big");
  ws2.open();
  answerJoin(env, "lobby", { lastId: 1, recovered: true });
  assert.deepEqual(ws2.frames("send").map((f) => f.payload.id), [smallId], "only the short one again");
  ws2.frame("ack", { id: smallId, room: "lobby", message_id: 2, sent: "t2" });
  assert.equal((await small).messageId, 2);
  // as large a message is refused at once now, a shorter one still goes
  await assert.rejects(env.client.send("lobby", "y".repeat(2000)), (err) => err.code === "too_big");
  env.client.send("lobby", "z".repeat(1000));
  assert.equal(ws2.frames("send").length, 2);
});

test("a rejoin refused with a retryable error keeps trying past a first join's 8 tries", async (t) => {
  const env = await setup(t);
  await joinRoom(env, "lobby", { lastId: 1 });
  const ws2 = await dropAndReconnect(env);
  ws2.open();
  // the room's broker is down for a while: every rejoin is refused
  for (let k = 0; k < 12; k++) {
    const req = ws2.last("join", "lobby");
    ws2.frame("error", { code: "unavailable", message: "down", ref: req.payload.id, room: "lobby" });
    const before = ws2.frames("join").length;
    await env.tick(15000); // the backoff's cap
    assert.equal(ws2.frames("join").length, before + 1, `retry ${k + 1}`);
  }
  assert.equal(env.of("left").length, 0, "still in the room");
  answerJoin(env, "lobby", { lastId: 1, recovered: true });
  assert.equal(env.client.room("lobby").status, "joined");
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

test("the outbox is bounded: a send past maxOutbox is refused at once with outbox_full, and taken again once one is acked", async (t) => {
  const env = await setup(t, { maxOutbox: 3 });
  await joinRoom(env, "lobby", { lastId: 0 });
  env.ws.drop(); // offline: sends wait in the outbox
  const waiting = ["one", "two", "three"].map((m) => env.client.send("lobby", m, { id: m }));
  await assert.rejects(env.client.send("lobby", "four", { id: "four" }),
    (err) => err instanceof ConfabError && err.code === "outbox_full" && err.room === "lobby");
  assert.deepEqual(env.client.outbox.map((d) => d.message), ["one", "two", "three"]);
  assert.equal(env.of("delivery").filter((d) => d.id === "four").length, 0, "the refused send never entered it");

  await env.tick(env.lastState().delay);
  env.ws.open();
  answerJoin(env, "lobby", { lastId: 0, recovered: true });
  assert.deepEqual(env.ws.frames("send").map((f) => f.payload.message), ["one", "two", "three"]);
  env.ws.frame("ack", { id: "one", room: "lobby", message_id: 1, sent: "t" });
  assert.equal((await waiting[0]).messageId, 1);
  const four = env.client.send("lobby", "four", { id: "four" });
  assert.deepEqual(env.ws.frames("send").map((f) => f.payload.message), ["one", "two", "three", "four"]);
  ["two", "three", "four"].forEach((id, i) => env.ws.frame("ack", { id, room: "lobby", message_id: 2 + i, sent: "t" }));
  assert.deepEqual((await Promise.all([...waiting.slice(1), four])).map((a) => a.messageId), [2, 3, 4]);
});

/* ------------------------------------------------------- connection */

// A /login that always works, for tests whose upgrades are refused (every
// second refusal in a row logs in again; loginOk answers the token check
// before it with a 200, which tells nothing, so it logs in as it did
// before there was a check).
const FRESH = jwt({ sub: "alice", iat: T0 / 1000, exp: T0 / 1000 + 3600 });
const loginOk = async () => ({ ok: true, status: 200, json: async () => ({ token: FRESH, username: "alice" }) });
// The gateway's answers to the token check (a plain GET of /ws, ws.h ws_check).
const CHECK = `http://confab.test/ws?token=`;
const isCheck = (url) => url.startsWith(CHECK);
const answer = (status) => ({ ok: status < 300, status, json: async () => ({}) });

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
  // ... over goingAwaySpread (3 s), as a draining gateway closes everyone
  // at once
  assert.equal(env.lastState().delay, 3000);
  await env.tick(3000);
  // and the next try's ceiling is above it (500 ms x 2^3), not back at 1 s
  env.ws.drop();
  assert.equal(env.lastState().delay, 4000);
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

test("sockets refused before opening lead to a fresh login once the gateway says the token is refused", async (t) => {
  const fresh = FRESH;
  const env = await setup(t, {
    connect: false, fetch: async (url) => (isCheck(url) ? answer(401) : loginOk()),
  });
  const connected = env.client.connect();
  assert.ok(env.ws.url.endsWith(`/ws?token=${TOKEN}`), "the stored token is used first");
  assert.deepEqual(env.ws.protocols, ["confab.v1"]);

  env.ws.drop(1006); // how a browser shows a 401 on the upgrade
  assert.equal(env.lastState().wasOpen, false);
  await env.tick(env.lastState().delay);
  assert.equal(env.fetches.length, 0, "one refusal may be a network blip");
  env.ws.drop(1006);
  await env.tick(env.lastState().delay);
  assert.equal(env.fetches.length, 2, "the second in a row asks, then logs in again");
  assert.equal(env.fetches[0].url, `${CHECK}${TOKEN}`, "the check is a plain GET of the WebSocket URL");
  assert.equal(env.fetches[0].init.method, "GET");
  assert.equal(env.fetches[0].init.mode, "no-cors", "no preflight; a cross-origin answer just cannot be read");
  env.fetches.shift();
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

// A page of another origin than the gateway's could not read the token
// check's answer ("no-cors": an opaque answer), so it logged in again after
// every two failed opens, an outage included. It asks in "cors" mode now
// (the gateway's CORS headers make the answer readable). A fetch that fails
// there is asked again without CORS: a server that answers that (a gateway
// or proxy without the headers) cannot tell, and the page logs in as
// before; one that fails again is out of reach, and the token is kept.
test("a page of another origin reads the token check through CORS; without CORS it logs in, out of reach it does not", async (t) => {
  const had = Object.getOwnPropertyDescriptor(globalThis, "location");
  Object.defineProperty(globalThis, "location", { value: { origin: "http://app.test" }, configurable: true });
  t.after(() => {
    if (had) Object.defineProperty(globalThis, "location", had);
    else delete globalThis.location;
  });
  let check = async () => answer(426);
  const env = await setup(t, { connect: false, fetch: async (url, init) => (isCheck(url) ? check(init) : loginOk()) });
  env.client.connect().catch(() => {});
  for (let i = 0; i < 2; i++) {
    env.ws.drop(1006);
    await env.tick(env.lastState().delay);
  }
  assert.equal(env.fetches.length, 1, "a 426 read across origins: the token is fine, no login");
  assert.equal(env.fetches[0].init.mode, "cors");
  check = async () => { throw new TypeError("Failed to fetch"); }; // out of reach
  for (let i = 0; i < 2; i++) {
    env.ws.drop(1006);
    await env.tick(env.lastState().delay);
  }
  assert.deepEqual(env.fetches.slice(1).map((f) => f.init.mode), ["cors", "no-cors"]);
  assert.equal(env.fetches.length, 3, "out of reach: the token is kept, no login");
  check = async (init) => { // no CORS headers: only an opaque answer comes
    if (init.mode === "cors") throw new TypeError("Failed to fetch");
    return { ok: false, status: 0, type: "opaque" };
  };
  for (let i = 0; i < 2; i++) {
    env.ws.drop(1006);
    await env.tick(env.lastState().delay);
  }
  assert.deepEqual(env.fetches.slice(3).map((f) => `${f.init.method} ${f.init.mode ?? ""}`.trim()),
    ["GET cors", "GET no-cors", "POST"], "reached, unreadable: cannot tell, logs in");
  env.client.close();
});

// A check that cannot tell (a proxy's 404 here; across origins, an answer
// without CORS headers) leads to a login; when that failed too, every later
// attempt was a check and a login, and no socket was tried: in an outage
// behind such a proxy the pages asked for logins until the gateways were
// back, then all logged in at once. They now open with the token they have
// again; a 401 still means a login at each attempt.
test("a login after a check that could not tell fails: the next attempts open with the token again", async (t) => {
  let check = answer(404);
  const env = await setup(t, {
    connect: false, fetch: async (url) => (isCheck(url) ? check : answer(502)),
  });
  env.client.connect().catch(() => {});
  for (let i = 0; i < 2; i++) {
    env.ws.drop(1006);
    await env.tick(env.lastState().delay);
  }
  assert.deepEqual(env.fetches.map((f) => f.init.method), ["GET", "POST"], "cannot tell: a login, which fails");
  assert.equal(env.of("error").at(-1).status, 502);
  const sockets = env.sockets.length;
  await env.tick(env.lastState().delay);
  assert.equal(env.sockets.length, sockets + 1, "the next attempt opens a socket");
  assert.ok(env.ws.url.endsWith(`/ws?token=${TOKEN}`), "with the token it has");
  assert.equal(env.fetches.length, 2);
  env.ws.drop(1006);
  await env.tick(env.lastState().delay);
  assert.equal(env.fetches.length, 2, "one failed open asks nothing");
  env.ws.drop(1006);
  await env.tick(env.lastState().delay);
  assert.deepEqual(env.fetches.slice(2).map((f) => f.init.method), ["GET", "POST"], "two ask again");

  // a 401 is no guess: after a failed login the next attempt logs in again
  check = answer(401);
  await env.tick(env.lastState().delay); // the attempt after that failed login: a socket
  for (let i = 0; i < 2; i++) {
    env.ws.drop(1006);
    await env.tick(env.lastState().delay);
  }
  assert.deepEqual(env.fetches.slice(4).map((f) => f.init.method), ["GET", "POST"]);
  const before = env.sockets.length;
  await env.tick(env.lastState().delay);
  assert.equal(env.sockets.length, before, "no socket with a refused token");
  assert.deepEqual(env.fetches.slice(6).map((f) => f.init.method), ["GET", "POST"]);
  env.client.close();
});

// The check's verdict was kept on the connection, where the late answer of
// an attempt given up (the page came back online meanwhile) overwrote that
// of the attempt after it: a 401 then read as a guess.
test("a late token check of an attempt given up does not change the verdict of the next", async (t) => {
  const pending = [];
  const env = await setup(t, { connect: false, fetch: (url) => new Promise((res) => pending.push({ url, res })) });
  env.client.connect().catch(() => {});
  for (let i = 0; i < 2; i++) {
    env.ws.drop(1006);
    await env.tick(env.lastState().delay);
  }
  assert.equal(pending.length, 1, "the first attempt's check, unanswered");
  env.client._conn._onOnline(); // back online: a new attempt at once
  await env.tick(0);
  assert.equal(pending.length, 2, "the new attempt's check");
  pending[1].res(answer(401));
  await env.tick(0);
  assert.ok(pending[2] && !isCheck(pending[2].url), "a 401: it logs in");
  pending[0].res(answer(404)); // the old check's answer, late
  await env.tick(0);
  pending[2].res(answer(502));
  await env.tick(0);
  const sockets = env.sockets.length;
  await env.tick(env.lastState().delay);
  assert.equal(env.sockets.length, sockets, "no socket with a refused token");
  assert.ok(isCheck(pending[3].url), "it checks (and logs in) again");
  env.client.close();
});

// A client with no username (its token has no `sub`) cannot log in; a check
// that could not tell ended its session as `unauthorized`, though only a 401
// says the token is refused. It now opens with the token it has.
test("without a username, a check that cannot tell keeps the token; a 401 ends the session", async (t) => {
  const bare = jwt({ exp: T0 / 1000 + 3600 }); // no sub
  let check = answer(404);
  const env = await setup(t, {
    connect: false, username: undefined, token: bare, fetch: async (url) => (isCheck(url) ? check : loginOk()),
  });
  const connected = env.client.connect();
  connected.catch(() => {}); // asserted below, once it has rejected
  for (let i = 0; i < 2; i++) {
    env.ws.drop(1006);
    await env.tick(env.lastState().delay);
  }
  assert.deepEqual(env.fetches.map((f) => f.init.method), ["GET"], "a check; no login");
  assert.equal(env.sockets.length, 3, "the attempt opens a socket");
  assert.ok(env.ws.url.endsWith(`/ws?token=${bare}`), "with the token it has");
  assert.notEqual(env.lastState().state, "disconnected");
  env.ws.drop(1006);
  await env.tick(env.lastState().delay);
  assert.equal(env.fetches.length, 1, "one failed open asks nothing");
  check = answer(401);
  env.ws.drop(1006);
  await env.tick(env.lastState().delay);
  await assert.rejects(connected, (err) => err.code === "unauthorized" && err.fatal);
  assert.equal(env.lastState().state, "disconnected");
  assert.equal(env.fetches.length, 2);
});

// The WebSocket URL was `new URL("/ws", baseUrl)`, which drops a path the
// login keeps (`${baseUrl}/login`); the token was put after `?` blindly.
test("the WebSocket is at {baseUrl}/ws, under the base's path as /login is; the token joins any query of wsUrl", async (t) => {
  const prefixed = await setup(t, { baseUrl: "https://example.test/chat/", connect: false });
  prefixed.client.connect().catch(() => {});
  assert.equal(prefixed.ws.url, `wss://example.test/chat/ws?token=${TOKEN}`);
  prefixed.client.close();

  const env = await setup(t, {
    wsUrl: "wss://edge.example.test/socket?region=eu", connect: false, fetch: async () => answer(426),
  });
  env.client.connect().catch(() => {});
  assert.equal(env.ws.url, `wss://edge.example.test/socket?region=eu&token=${TOKEN}`);
  for (let i = 0; i < 2; i++) {
    env.ws.drop(1006); // two upgrades in a row fail: the token is checked
    await env.tick(env.lastState().delay);
  }
  assert.deepEqual(env.fetches.map((f) => f.url), [`https://edge.example.test/socket?region=eu&token=${TOKEN}`]);
  env.client.close();
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

test("once connected, a 403 or 404 from /login during a reconnect is retried; a 400 still ends the session", async (t) => {
  const answers = [
    { ok: false, status: 404, json: async () => ({}) }, // a proxy in the middle of a deploy
    { ok: false, status: 403, json: async () => ({ error: "forbidden" }) },
    { ok: true, status: 200, json: async () => ({ token: FRESH, username: "alice" }) },
  ];
  const env = await setup(t, { fetch: async (url) => (isCheck(url) ? answer(401) : answers.shift()) });
  await joinRoom(env, "lobby", { lastId: 1 });
  for (let k = 0; k < 2; k++) { // two refused opens in a row: the next attempt logs in again
    env.ws.drop();
    await env.tick(env.lastState().delay);
  }
  env.ws.drop();
  await env.tick(env.lastState().delay); // logs in: 404
  await settle();
  assert.equal(env.of("error").at(-1).status, 404);
  assert.equal(env.of("error").at(-1).fatal, false);
  assert.equal(env.lastState().state, "reconnecting");
  await env.tick(env.lastState().delay); // 403
  await settle();
  assert.equal(env.of("error").at(-1).status, 403);
  assert.equal(env.lastState().state, "reconnecting");
  await env.tick(env.lastState().delay); // 200, and a socket
  await settle();
  env.ws.open();
  assert.equal(env.client.state, "connected");
  assert.deepEqual(env.client.rooms, ["lobby"], "still in the room");

  answers.push({ ok: false, status: 400, json: async () => ({ error: "bad username" }) });
  for (let k = 0; k < 2; k++) {
    env.ws.drop();
    await env.tick(env.lastState().delay);
  }
  env.ws.drop();
  await env.tick(env.lastState().delay);
  await settle();
  assert.equal(env.lastState().state, "disconnected");
  assert.equal(env.lastState().error.fatal, true);
});

// Before the check, two failed opens in a row always logged in again, so an
// outage ended in a login per client, and users sharing an address met its
// login limit (5/s against 20/s for upgrades).
test("an outage does not end in a login: upgrades that fail while the server cannot be reached keep the token", async (t) => {
  let reachable = false;
  const env = await setup(t, {
    fetch: async (url) => {
      if (!reachable) throw new TypeError("Failed to fetch");
      return isCheck(url) ? answer(426) : loginOk();
    },
  });
  await joinRoom(env, "lobby", { lastId: 1 });
  env.ws.drop();
  for (let k = 0; k < 7; k++) { // the server is down: every socket fails before opening
    await env.tick(env.lastState().delay);
    env.ws.drop();
  }
  assert.ok(env.fetches.length >= 2, "it asked after failed opens");
  assert.ok(env.fetches.every((f) => isCheck(f.url)), "and never logged in");
  reachable = true; // back: the next socket opens with the token it had
  await env.tick(env.lastState().delay);
  assert.ok(env.ws.url.endsWith(`/ws?token=${TOKEN}`));
  env.ws.open();
  assert.equal(env.client.state, "connected");
  assert.ok(env.fetches.every((f) => isCheck(f.url)));
  assert.deepEqual(env.of("token"), []);
});

test("a token the gateway still takes is kept when upgrades fail for another reason; a 5xx or 429 keeps it too", async (t) => {
  const statuses = [426, 503, 429, 502];
  const env = await setup(t, {
    fetch: async (url) => (isCheck(url) ? answer(statuses.shift()) : loginOk()),
  });
  env.ws.drop();
  for (let k = 0; k < 8; k++) { // refused (e.g. over the address' upgrade rate) every time
    await env.tick(env.lastState().delay);
    env.ws.drop();
  }
  await env.tick(env.lastState().delay);
  assert.equal(env.fetches.length, 4, "a check after every second failure in a row");
  assert.ok(env.fetches.every((f) => isCheck(f.url)), "none logs in");
  assert.ok(env.sockets.every((ws) => ws.url.endsWith(`/ws?token=${TOKEN}`)));
});

test("a check that tells nothing (a proxy's 404, a timeout) is handled: 404 logs in as before, a timeout does not", async (t) => {
  let mode = "hang";
  const env = await setup(t, {
    probeTimeout: 5000,
    fetch: (url) => {
      if (!isCheck(url)) return loginOk();
      if (mode === "hang") return new Promise(() => {});
      return answer(404);
    },
  });
  env.ws.drop(); // was open
  for (let k = 0; k < 2; k++) { // two failed opens in a row
    await env.tick(env.lastState().delay);
    env.ws.drop();
  }
  const before = env.sockets.length;
  await env.tick(env.lastState().delay); // asks; no answer
  assert.equal(env.sockets.length, before, "waiting for the check");
  await env.tick(5000);
  assert.equal(env.sockets.length, before + 1, "past probeTimeout it opens with the token it has");
  assert.ok(env.ws.url.endsWith(`/ws?token=${TOKEN}`));
  mode = "404";
  env.ws.drop();
  await env.tick(env.lastState().delay);
  env.ws.drop();
  await env.tick(env.lastState().delay);
  await settle();
  assert.equal(env.fetches.at(-1).url, `${BASE}/login`, "a 404 cannot say the token is fine: logs in");
  assert.ok(env.ws.url.endsWith(`/ws?token=${FRESH}`));
});

test("a send whose outcome is unknown is not sent again past resendWindow: it fails as unconfirmed", async (t) => {
  const env = await setup(t, { resendWindow: 60000, openTimeout: 0 }); // a socket may take 61 s to open
  await joinRoom(env, "lobby", { lastId: 1 });
  const p = assert.rejects(env.client.send("lobby", "hi"), (err) => err.code === "unconfirmed");
  env.ws.drop(); // its ack is lost with the connection
  const queued = env.client.send("lobby", "written offline"); // never on the wire: no risk
  await env.tick(61000); // the new socket takes longer than the window to open
  assert.equal(env.sockets.length, 2);
  env.ws.open();
  answerJoin(env, "lobby", { lastId: 1, recovered: true });
  await p;
  const sent = env.ws.frames("send").map((f) => f.payload.message);
  assert.deepEqual(sent, ["written offline"]);
  assert.equal(env.of("error").at(-1).code, "unconfirmed");
  env.ws.frame("ack", { id: env.ws.last("send").payload.id, room: "lobby", message_id: 2, sent: "t" });
  assert.equal((await queued).messageId, 2);
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
  for (const text of ["a\u0001b", "\u001b[31mred", "form\ffeed", "nul\u0000"]) {
    await refused(env.client.send(room, text), "bad_text");
  }
  await refused(env.client.send(room, "hi", { id: "" }), "bad_id");
  await refused(env.client.send(room, "hi", { id: "i".repeat(65) }), "bad_id");
  // The limit is on the whole frame in UTF-8 bytes (maxFrameBytes, 4096).
  const overhead = JSON.stringify({ type: "send", payload: { room, message: "", id: "k" } }).length;
  await refused(env.client.send(room, "x".repeat(4096 - overhead + 1), { id: "k" }), "too_big");
  await refused(env.client.send(room, "é".repeat(2100)), "too_big"); // 2100 characters, 4200 bytes
  await refused(env.client.history("lobby"), "not_joined");
  assert.equal(env.ws.frames("send").length, 0);
  assert.equal(env.of("delivery").length, 0, "refused sends never enter the outbox");

  // Of the control characters, tab and line breaks go out.
  const tabbed = env.client.send(room, "tab\there\r\nnext", { id: "t" });
  assert.equal(env.ws.frames("send").length, 1);
  env.ws.frame("ack", { id: "t", room, message_id: 1, sent: "t" });
  assert.equal((await tabbed).id, "t");

  // Just at the limit it goes out; a second send with a pending id is refused.
  const fits = env.client.send(room, "x".repeat(4096 - overhead), { id: "k" });
  await refused(env.client.send(room, "other", { id: "k" }), "bad_id");
  assert.equal(env.ws.frames("send").length, 2);
  env.ws.frame("ack", { id: "k", room, message_id: 2, sent: "t" });
  assert.equal((await fits).id, "k");
});
