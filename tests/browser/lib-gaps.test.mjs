// confab-client.js in Node (lib-env.mjs): gaps in live ids. Live ids have no
// gaps, so a jump means messages were lost on the way; the client fetches
// them from the history, holds the live messages past the gap meanwhile so
// that everything comes in id order, and gives up (reporting what it gave up
// on) when that takes too long or holds too much.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfabError } from "../../frontend/confab-client.js";
import {
  answerHistory, answerJoin, dropAndReconnect, gapErrors, joinRoom, msg, settle, setup,
} from "./lib-env.mjs";

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

// A refused gap fetch used to be given up at once, though `unavailable` and
// the like say nothing was done and the messages were still fetchable.
test("a gap fetch refused with a retryable code is retried after a backoff and fills the gap", async (t) => {
  const env = await setup(t);
  t.mock.method(Math, "random", () => 0); // the shortest wait: half the ceiling
  await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 3)] });
  let last = 3;
  for (const code of ["unavailable", "too_many_requests", "rate_limited", "timeout", "internal"]) {
    env.ws.frame("new_message", msg("lobby", last + 3)); // skips two
    const req = env.ws.last("history", "lobby");
    env.ws.frame("error", { code, message: code, ref: req.payload.id, room: "lobby" });
    await settle();
    const count = env.ws.frames("history").length;
    await env.tick(249); // retryDelay 500: a first retry after 250–500 ms
    assert.equal(env.ws.frames("history").length, count, `${code}: not before the backoff`);
    await env.tick(1);
    const again = env.ws.last("history", "lobby").payload;
    assert.equal(env.ws.frames("history").length, count + 1, `${code}: asked again`);
    assert.notEqual(again.id, req.payload.id);
    assert.deepEqual([again.before, again.limit], [last + 3, 2], `${code}: the same ids`);
    answerHistory(env, "lobby", [last + 1, last + 2]);
    await settle();
    last += 3;
  }
  assert.deepEqual(env.ids("lobby"), Array.from({ length: 16 }, (_, i) => 3 + i));
  assert.deepEqual(env.of("message").slice(1, 4).map((m) => m.source), ["gap", "gap", "live"]);
  assert.ok(gapErrors(env).every((g) => !g.lost), "nothing given up");
});

test("a gap fetch refused until gapTimeout runs out: retries back off, then a `gap` error names the lost ids before the held messages", async (t) => {
  const env = await setup(t);
  t.mock.method(Math, "random", () => 0.999999); // the longest wait: the ceiling
  await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 3)] });
  env.ws.frame("new_message", msg("lobby", 6));
  env.ws.frame("new_message", msg("lobby", 7));
  const refuse = () => {
    const req = env.ws.last("history", "lobby");
    assert.deepEqual([req.payload.before, req.payload.limit], [6, 2]);
    env.ws.frame("error", { code: "unavailable", message: "history unavailable", ref: req.payload.id, room: "lobby" });
  };
  // Refused at once every time: waits of 500, 1000 and 2000 ms. The next
  // one (4000) would end past gapTimeout (5000), so the client stops there.
  const at = [];
  let elapsed = 0;
  for (;;) {
    const n = env.ws.frames("history").length;
    at.push(elapsed);
    refuse();
    await settle();
    if (gapErrors(env).some((g) => g.lost)) break;
    assert.deepEqual(env.ids("lobby"), [3], "held while retrying");
    while (env.ws.frames("history").length === n) {
      assert.ok(elapsed < 10000, "a retry or the give-up");
      await env.tick(100);
      elapsed += 100;
    }
  }
  assert.deepEqual(at, [0, 500, 1500, 3500]);
  assert.deepEqual(env.ids("lobby"), [3, 6, 7]);
  assert.deepEqual(gapErrors(env), [{ from: 4, to: 5, lost: false }, { from: 4, to: 5, lost: true }]);
  const lost = env.of("error").at(-1);
  assert.ok(lost instanceof ConfabError && lost.room === "lobby" && !lost.fatal);
  assert.match(lost.message, /4–5.*history unavailable/);
  const order = env.events.filter((e) => e.name === "message" || e.name === "error")
    .map((e) => (e.name === "error" ? `error:${e.p.lost}` : e.p.id));
  assert.deepEqual(order, [3, "error:false", "error:true", 6, 7], "the report comes before what follows the gap");
  await env.tick(60000);
  assert.equal(env.ws.frames("history").length, 4, "no retry after giving up");
  env.ws.frame("new_message", msg("lobby", 8));
  assert.deepEqual(env.ids("lobby"), [3, 6, 7, 8]);
  // Given up and reported: a rejoin asks after the last id delivered.
  const ws2 = await dropAndReconnect(env);
  ws2.open();
  assert.equal(ws2.last("join", "lobby").payload.since, 8);
});

test("a gap fetch refused for good is given up at once; one not answered after a retry is given up at gapTimeout", async (t) => {
  const env = await setup(t, { gapTimeout: 2000 });
  t.mock.method(Math, "random", () => 0);
  await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 3)] });
  env.ws.frame("new_message", msg("lobby", 6));
  let req = env.ws.last("history", "lobby");
  env.ws.frame("error", { code: "not_member", message: "join the room first", ref: req.payload.id, room: "lobby" });
  await settle();
  assert.deepEqual(env.ids("lobby"), [3, 6]);
  assert.deepEqual(gapErrors(env).at(-1), { from: 4, to: 5, lost: true });
  await env.tick(60000);
  assert.equal(env.ws.frames("history").length, 1);

  // Refused, retried after 250 ms, then silence: gapTimeout counts from the
  // first attempt, not from the retry.
  env.ws.frame("new_message", msg("lobby", 9));
  req = env.ws.last("history", "lobby");
  env.ws.frame("error", { code: "unavailable", message: "unavailable", ref: req.payload.id, room: "lobby" });
  await settle();
  await env.tick(250);
  assert.equal(env.ws.frames("history").length, 3);
  await env.tick(1749);
  assert.deepEqual(env.ids("lobby"), [3, 6]);
  await env.tick(1);
  assert.deepEqual(env.ids("lobby"), [3, 6, 9]);
  assert.match(env.of("error").at(-1).message, /7–8.*did not answer within 2000 ms/);
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
    // has_more: whether ids older than the page's oldest are kept
    const { id, ...p } = answerHistory(env, "lobby", range(from, to), from > 60);
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

test("a gap page cut to the server's byte budget is followed by a fetch of the rest, not taken for lost ids", async (t) => {
  const env = await setup(t);
  await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 3)] });
  env.ws.frame("new_message", msg("lobby", 10));
  // 4–9 asked; the page keeps the newest that fit (7–9) and says older exist
  const { id, ...first } = answerHistory(env, "lobby", [7, 8, 9], true);
  assert.deepEqual(first, { room: "lobby", before: 10, limit: 6 });
  await settle();
  assert.deepEqual(env.ids("lobby"), [3], "7–10 wait for 4–6");
  const { id: id2, ...second } = answerHistory(env, "lobby", [4, 5, 6], true);
  assert.deepEqual(second, { room: "lobby", before: 7, limit: 3 });
  await settle();
  assert.deepEqual(env.ids("lobby"), [3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(gapErrors(env), [{ from: 4, to: 9, lost: false }], "nothing reported lost");
});

test("a rejoin's snapshot past a hole does not count against maxGapHeld", async (t) => {
  const env = await setup(t, { maxGapHeld: 5 });
  await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 3)] });
  const ws2 = await dropAndReconnect(env);
  ws2.open();
  const snapshot = Array.from({ length: 20 }, (_, i) => msg("lobby", 30 + i)); // 30–49
  answerJoin(env, "lobby", { lastId: 49, recovered: false, messages: snapshot });
  await settle();
  env.ws.frame("new_message", msg("lobby", 50)); // and a live one while the hole is fetched
  assert.equal(gapErrors(env).filter((g) => g.lost).length, 0, "not given up");
  answerHistory(env, "lobby", Array.from({ length: 26 }, (_, i) => 4 + i), true); // 4–29
  await settle();
  assert.deepEqual(env.ids("lobby"), Array.from({ length: 48 }, (_, i) => 3 + i)); // 3–50
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

// lastId used to move past a gap before the gap fetch was answered, so when
// a reconnect cut the fetch off the rejoin asked since=6 and 4–5 were lost.
test("messages of a gap whose fetch was cut off by a reconnect are recovered by the rejoin", async (t) => {
  const env = await setup(t, { gapTimeout: 2000 });
  await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 3)] });
  env.ws.frame("new_message", msg("lobby", 6));
  assert.ok(env.ws.last("history", "lobby"), "the gap fetch went out");
  const ws2 = await dropAndReconnect(env); // before the history answer
  await env.tick(9000); // the socket takes long to open (within openTimeout): no gapTimeout while offline
  assert.deepEqual(env.ids("lobby"), [3]);
  ws2.open();
  const since = ws2.last("join", "lobby").payload.since;
  assert.equal(since, 3, "the last id delivered in order");
  const all = [3, 4, 5, 6].map((id) => msg("lobby", id));
  answerJoin(env, "lobby", { lastId: 6, recovered: true, messages: all.filter((m) => m.id > since) });
  await settle();
  assert.deepEqual(env.ids("lobby"), [3, 4, 5, 6]);
  assert.deepEqual(env.of("joined").at(-1).messages.map((m) => `${m.id}:${m.source}`), ["4:recovery", "5:recovery", "6:recovery"]);
  assert.deepEqual(gapErrors(env), [{ from: 4, to: 5, lost: false }], "nothing given up");
  env.ws.frame("new_message", msg("lobby", 7));
  assert.deepEqual(env.ids("lobby"), [3, 4, 5, 6, 7]);
  assert.equal(ws2.frames("history").length, 0, "the rejoin filled the gap; no fetch needed");
});

test("a rejoin that cannot recover everything fetches the hole from the history, holding the snapshot and what was held past a gap", async (t) => {
  const env = await setup(t);
  await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 3)] });
  env.ws.frame("new_message", msg("lobby", 6));
  const ws2 = await dropAndReconnect(env);
  ws2.open();
  assert.equal(ws2.last("join", "lobby").payload.since, 3);
  // The server's replay does not reach back to 3: it sends its latest
  // messages. 4, 5 and 7 may still be in the history.
  answerJoin(env, "lobby", { lastId: 9, recovered: false, messages: [msg("lobby", 8), msg("lobby", 9)] });
  await settle();
  const joined = env.of("joined").at(-1);
  assert.equal(joined.gap, false, "nothing given up yet");
  assert.deepEqual(joined.messages, [], "the snapshot waits past the hole");
  assert.deepEqual(env.ids("lobby"), [3]);
  assert.deepEqual(gapErrors(env).at(-1), { from: 4, to: 5, lost: false });
  const { id, ...first } = answerHistory(env, "lobby", [4, 5]);
  assert.deepEqual(first, { room: "lobby", before: 6, limit: 2 });
  await settle();
  assert.deepEqual(env.ids("lobby"), [3, 4, 5, 6]);
  // 7 is no longer kept: reported, then the rest in order
  const { id: id2, ...second } = answerHistory(env, "lobby", [], false);
  assert.deepEqual(second, { room: "lobby", before: 8, limit: 1 });
  await settle();
  assert.deepEqual(env.ids("lobby"), [3, 4, 5, 6, 8, 9]);
  assert.deepEqual(gapErrors(env).at(-1), { from: 7, to: 7, lost: true });
  assert.equal(env.client.room("lobby").lastId, 9);
  const sources = env.of("message").map((m) => `${m.id}:${m.source}`);
  assert.deepEqual(sources, ["3:history", "4:gap", "5:gap", "6:live", "8:recovery", "9:recovery"]);
  env.ws.frame("new_message", msg("lobby", 10));
  assert.deepEqual(env.ids("lobby").at(-1), 10);
});

test("a rejoin whose snapshot is empty past the last id held says `gap`: nothing to wait past, the ids are lost", async (t) => {
  const env = await setup(t);
  await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 3)] });
  const ws2 = await dropAndReconnect(env);
  ws2.open();
  answerJoin(env, "lobby", { lastId: 9, recovered: false, messages: [] }); // HISTORY_SIZE=0
  await settle();
  const joined = env.of("joined").at(-1);
  assert.equal(joined.gap, true);
  assert.equal(env.client.room("lobby").lastId, 9);
  assert.equal(ws2.frames("history").length, 0);
});

test("a rejoin not recovered but with no hole (the snapshot starts right after the last id) is no gap", async (t) => {
  const env = await setup(t);
  await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 3)] });
  const ws2 = await dropAndReconnect(env);
  ws2.open();
  answerJoin(env, "lobby", { lastId: 5, recovered: false, messages: [msg("lobby", 4), msg("lobby", 5)] });
  await settle();
  const joined = env.of("joined").at(-1);
  assert.equal(joined.gap, false);
  assert.deepEqual(joined.messages.map((m) => m.id), [4, 5]);
  assert.equal(ws2.frames("history").length, 0);
});

/* ------------------------------------------- matching history answers */

// Answers used to be matched to requests by their order in the room, so a
// scrollback page answered after a gap fetch went to the fetch (the gap was
// reported lost) and the fetch's page to the scrollback.
test("history answers go to their requests by the id the server echoes, whatever their order", async (t) => {
  const env = await setup(t);
  await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 3)] });
  const older = env.client.history("lobby", { before: 3, limit: 2 }); // scrollback
  const scroll = env.ws.last("history", "lobby").payload;
  env.ws.frame("new_message", msg("lobby", 6)); // a gap: 4–5 are fetched too
  const fetch = env.ws.last("history", "lobby").payload;
  assert.notEqual(fetch.id, scroll.id);
  // The fetch is answered first.
  env.ws.frame("history", { room: "lobby", has_more: false, id: fetch.id, messages: [msg("lobby", 4), msg("lobby", 5)] });
  env.ws.frame("history", { room: "lobby", has_more: false, id: scroll.id, messages: [msg("lobby", 1), msg("lobby", 2)] });
  const page = await older;
  assert.deepEqual(page.messages.map((m) => m.id), [1, 2]);
  assert.deepEqual(env.of("message").map((m) => `${m.id}:${m.source}`), ["3:history", "4:gap", "5:gap", "6:live"]);
  assert.deepEqual(gapErrors(env), [{ from: 4, to: 5, lost: false }], "nothing given up");
  // An answer to no request of ours settles nothing.
  const next = env.client.history("lobby", { before: 1 });
  const req = env.ws.last("history", "lobby").payload;
  env.ws.frame("history", { room: "lobby", has_more: true, id: "r-not-ours", messages: [msg("lobby", 9)] });
  env.ws.frame("history", { room: "lobby", has_more: false, id: req.id, messages: [] });
  assert.deepEqual(await next, { room: "lobby", messages: [], hasMore: false });
});

test("with a server that does not echo the id, history answers are taken in the order of the requests", async (t) => {
  const env = await setup(t);
  await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 3)] });
  const older = env.client.history("lobby", { before: 3, limit: 2 });
  env.ws.frame("new_message", msg("lobby", 6));
  env.ws.frame("history", { room: "lobby", has_more: false, messages: [msg("lobby", 1), msg("lobby", 2)] });
  env.ws.frame("history", { room: "lobby", has_more: true, messages: [msg("lobby", 4), msg("lobby", 5)] });
  assert.deepEqual((await older).messages.map((m) => m.id), [1, 2]);
  await settle();
  assert.deepEqual(env.ids("lobby"), [3, 4, 5, 6]);
});

/* ------------------------------------- a new epoch while a gap is open */

// The events a user saw, as "id:text:source", "gap:from-to:lost" and
// "joined:epoch".
const story = (env) => env.events.flatMap(({ name, p }) => {
  if (name === "message") return [`${p.id}:${p.message}:${p.source}`];
  if (name === "error" && p.code === "gap") return [`gap:${p.missing.from}-${p.missing.to}:${p.lost}`];
  if (name === "joined") return [`joined:${p.epoch}`];
  return [];
});
const fresh = (id) => msg("lobby", id, "carol", `new ${id}`); // of the room's new epoch

// The unasked `joined` of a new epoch used to drop what was held past the
// gap (6, which did arrive) without a word, and leave the gap's notice
// without its end: neither its messages nor a `lost: true`.
test("a new epoch while a gap fetch is out: the old gap is reported lost, the held messages come before the new `joined`, the late answer is ignored", async (t) => {
  const env = await setup(t);
  await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 3)] });
  env.ws.frame("new_message", msg("lobby", 6));
  const req = env.ws.last("history", "lobby");
  // Redis lost the room; the server re-syncs it in a new epoch.
  answerJoin(env, "lobby", { unasked: true, epoch: "e2", lastId: 2, messages: [fresh(1), fresh(2)] });
  // The old fetch's answer comes after it: its ids are of the old epoch.
  env.ws.frame("history", { room: "lobby", has_more: true, id: req.payload.id, epoch: "e1", messages: [msg("lobby", 4), msg("lobby", 5)] });
  await settle();
  env.ws.frame("new_message", fresh(3));
  assert.deepEqual(story(env), [
    "joined:e1", "3:m3:history", "gap:4-5:false", "gap:4-5:true", "6:m6:live",
    "joined:e2", "1:new 1:history", "2:new 2:history", "3:new 3:live",
  ]);
  assert.match(env.of("error").at(-1).message, /4–5.*reset/);
  assert.deepEqual(env.of("joined").at(-1).messages.map((m) => m.message), ["new 1", "new 2"]);
  const { epoch, lastId } = env.client.room("lobby");
  assert.deepEqual({ epoch, lastId }, { epoch: "e2", lastId: 3 });
  assert.equal(env.ws.frames("history").length, 1, "the old gap is not fetched in the new epoch");
});

// The fetch's answer can be read from the new epoch's history before the
// server's `joined` of that epoch arrives: its 4 and 5 were delivered as the
// old epoch's 4 and 5 (source "gap"), then again with the `joined`.
test("a gap fetch answered from the room's new epoch before its `joined` is not applied to the old epoch", async (t) => {
  const env = await setup(t);
  await joinRoom(env, "lobby", { lastId: 3, messages: [msg("lobby", 3)] });
  env.ws.frame("new_message", msg("lobby", 6));
  env.ws.frame("new_message", msg("lobby", 7));
  // Redis lost the room and the new epoch already holds 1–5.
  const { id } = env.ws.last("history", "lobby").payload;
  env.ws.frame("history", { room: "lobby", has_more: true, id, epoch: "e2", messages: [fresh(4), fresh(5)] });
  await settle();
  assert.deepEqual(story(env), ["joined:e1", "3:m3:history", "gap:4-5:false", "gap:4-5:true", "6:m6:live", "7:m7:live"]);
  assert.match(env.of("error").at(-1).message, /4–5.*reset/);
  answerJoin(env, "lobby", { unasked: true, epoch: "e2", lastId: 5, messages: [1, 2, 3, 4, 5].map(fresh) });
  env.ws.frame("new_message", fresh(6));
  assert.deepEqual(story(env).slice(6), [
    "joined:e2", "1:new 1:history", "2:new 2:history", "3:new 3:history", "4:new 4:history",
    "5:new 5:history", "6:new 6:live",
  ]);
  assert.equal(env.of("message").filter((m) => m.message === "new 4").length, 1, "each message once");
  // A page of the room's own epoch (or one without any) fills a gap as before.
  env.ws.frame("new_message", fresh(9));
  answerHistory(env, "lobby", [7, 8]);
  await settle();
  assert.deepEqual(env.ids("lobby").slice(-3), [7, 8, 9]);
});
