// The frontend and confab-client.js in headless Chromium against an in-memory
// Protocol v1 server (mock-server.mjs): the failure cases the client must
// survive, made to happen exactly when wanted. chat.test.mjs runs the same UI
// against the real system.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import { join } from "node:path";
import { MockConfab } from "./mock-server.mjs";
import {
  FRONTEND, until, launch, watchErrors, login, send, messages, waitForText, waitForSent,
  joinRoom, switchRoom, members, unread, checkSequence,
} from "./helpers.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

async function open(mock, user, { viewport } = {}) {
  const ctx = await browser.newContext(viewport ? { viewport } : {});
  await mock.attach(ctx);
  const page = await ctx.newPage();
  const errors = watchErrors(page);
  await page.goto(`${mock.origin}/`);
  await login(page, user);
  return { page, errors, close: () => ctx.close() };
}

const sentFrames = (mock, user, type) => mock.received.filter((f) => f.user === user && f.type === type);

test("rooms, history, presence, typing, unread counts and text-only rendering", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  for (let i = 1; i <= 60; i++) mock.publish("lobby", "carol", `old ${i}`);
  const alice = await open(mock, "alice");
  // The first login joins #general; the frames speak confab.v1.
  await until("alice in general", async () =>
    (await alice.page.getAttribute('#rooms .room[data-room="general"]', "data-state")) === "joined");
  assert.deepEqual(mock.conns.values().next().value.protocols, ["confab.v1"]);

  // History on join: the latest 50, then older ones on demand, in id order.
  await joinRoom(alice.page, "lobby");
  await until("50 messages of history", async () => (await messages(alice.page)).length === 50);
  assert.equal((await messages(alice.page))[0].text, "old 11");
  await alice.page.click("#older-button");
  await until("all 60", async () => (await messages(alice.page)).length === 60);
  assert.deepEqual(await checkSequence(alice.page, assert), Array.from({ length: 60 }, (_, i) => `old ${i + 1}`));
  assert.equal(await alice.page.isHidden("#older-button"), true);

  // Presence both ways, typing, and HTML shown as text.
  const bob = await open(mock, "bob");
  await joinRoom(bob.page, "lobby");
  await until("alice sees bob", async () => (await members(alice.page)).includes("bob"));
  assert.deepEqual((await members(bob.page)).sort(), ["alice", "bob"]);
  await bob.page.fill("#message-input", "typing away");
  await until("typing shown", async () => (await alice.page.textContent("#typing")) === "bob is typing…");
  const evil = `<img src=x onerror="document.title='pwned'"><b>bold?</b>`;
  await send(bob.page, evil);
  const got = await waitForText(alice.page, evil);
  assert.equal(got.from, "bob");
  assert.ok(!got.html.includes("<img"));
  assert.equal(await alice.page.$$eval("#messages img, #messages b", (e) => e.length), 0);
  assert.equal(await alice.page.textContent("#typing"), "", "a message ends its sender's typing");

  // Unread counts for a room in the background; cleared on switching to it.
  await switchRoom(alice.page, "general");
  await send(bob.page, "one");
  await send(bob.page, "two");
  await until("2 unread", async () => (await unread(alice.page, "lobby")) === 2);
  await switchRoom(alice.page, "lobby");
  assert.equal(await unread(alice.page, "lobby"), 0);

  // Leaving: the room goes away here and bob sees alice leave.
  await alice.page.click('#rooms .room[data-room="lobby"] .leave-button');
  await until("lobby gone", async () => (await alice.page.$('#rooms .room[data-room="lobby"]')) === null);
  await until("bob sees alice leave", async () => !(await members(bob.page)).includes("alice"));
  assert.equal(await alice.page.textContent("#room-name"), "general");
  assert.deepEqual([...alice.errors, ...bob.errors], []);
  await alice.close();
  await bob.close();
});

test("sends are acked in either order, shown once, and go out after a reconnect", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  const alice = await open(mock, "alice");
  const bob = await open(mock, "bob");
  await joinRoom(alice.page, "r1");
  await joinRoom(bob.page, "r1");

  mock.echoFirst = true; // new_message before ack: still one message, "sent"
  await send(alice.page, "echo first");
  await waitForSent(alice.page, "echo first");
  mock.echoFirst = false;
  await send(alice.page, "ack first");
  await waitForSent(alice.page, "ack first");

  // An ack lost with the connection: the recovered join brings the message,
  // the resend with the same id gets the original ack, nothing is doubled.
  mock.faults.push({ type: "send", user: "alice", action: "lose-ack-and-close" });
  await send(alice.page, "lost ack");
  await until("alice reconnected", async () => sentFrames(mock, "alice", "join").filter((f) => f.payload.room === "r1").length === 2);
  await waitForSent(alice.page, "lost ack");
  const resends = sentFrames(mock, "alice", "send").filter((f) => f.payload.message === "lost ack");
  assert.equal(resends.length, 2);
  assert.equal(resends[0].payload.id, resends[1].payload.id, "a resend must reuse the id");
  const rejoin = sentFrames(mock, "alice", "join").filter((f) => f.payload.room === "r1")[1].payload;
  assert.equal(rejoin.since, 2);
  assert.equal(rejoin.epoch, mock.room("r1").epoch);

  // A send answered with `timeout` is retried with the same id.
  mock.faults.push({ type: "send", user: "alice", action: "timeout" });
  await send(alice.page, "timed out once");
  await waitForSent(alice.page, "timed out once");
  const tries = sentFrames(mock, "alice", "send").filter((f) => f.payload.message === "timed out once");
  assert.equal(tries.length, 2);
  assert.equal(tries[0].payload.id, tries[1].payload.id);

  // Over the gateway's request rate (RATE_MSGS): nothing was done, so the
  // client waits and resends with the same id.
  mock.faults.push({ type: "send", user: "alice", action: "rate_limited" });
  await send(alice.page, "slowed down");
  await waitForSent(alice.page, "slowed down");
  const paced = sentFrames(mock, "alice", "send").filter((f) => f.payload.message === "slowed down");
  assert.equal(paced.length, 2);
  assert.equal(paced[0].payload.id, paced[1].payload.id);

  // Cut off while bob talks and alice types: after the reconnect alice has
  // everything once, in order, and her queued messages reach bob once.
  mock.joinsHeld = true;
  mock.kill("alice");
  await until("alice notices", async () => (await alice.page.getAttribute("#status", "data-state")) !== "connected");
  for (let i = 1; i <= 5; i++) await send(bob.page, `while away ${i}`);
  await send(alice.page, "queued 1");
  await send(alice.page, "queued 2");
  assert.equal((await messages(alice.page)).filter((m) => m.state === "sending").length, 2);
  await until("alice reconnects", async () => mock.connectionsOf("alice") === 1);
  mock.releaseJoins();
  await waitForSent(alice.page, "queued 2");
  await waitForText(bob.page, "queued 2");
  const expected = ["echo first", "ack first", "lost ack", "timed out once", "slowed down",
    ...[1, 2, 3, 4, 5].map((i) => `while away ${i}`), "queued 1", "queued 2"];
  assert.deepEqual(await checkSequence(alice.page, assert), expected);
  assert.deepEqual(await checkSequence(bob.page, assert), expected);
  assert.deepEqual(mock.room("r1").history.map((m) => m.message), expected);
  assert.deepEqual([...alice.errors, ...bob.errors], []);
  await alice.close();
  await bob.close();
});

test("\"load earlier\" is offered when a join's history was cut to the server's byte budget", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  for (let i = 1; i <= 20; i++) mock.publish("long", "carol", `long ${i} ${"x".repeat(900)}`);
  mock.snapshotBytes = 5 * 1000; // five of them fit
  const alice = await open(mock, "alice");
  await joinRoom(alice.page, "long");
  await until("the snapshot", async () => (await messages(alice.page)).length === 5);
  assert.equal(await alice.page.isVisible("#older-button"), true, "15 older messages out of reach");
  await alice.page.click("#older-button");
  await until("all 20", async () => (await messages(alice.page)).length === 20);
  await until("nothing more to load", () => alice.page.isHidden("#older-button"));
  assert.deepEqual(alice.errors, []);
  await alice.close();
});

test("a crowded room lists at most 100 members and says how many more", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  const alice = await open(mock, "alice");
  await joinRoom(alice.page, "crowd");
  for (let i = 0; i < 150; i++) {
    const user = `u${String(i).padStart(3, "0")}`;
    mock.toRoom("crowd", "presence", { room: "crowd", user, action: "join", count: i + 2 });
  }
  await until("151 counted", async () => (await alice.page.textContent("#member-count")) === "(151)");
  assert.equal((await members(alice.page)).length, 100);
  assert.equal(await alice.page.textContent("#members .more"), "and 51 more");
  assert.deepEqual(alice.errors, []);
  await alice.close();
});

test("back online or back in view, the page checks its link with a ping, and a pong is no error", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  const alice = await open(mock, "alice");
  await joinRoom(alice.page, "r1");
  const pings = () => sentFrames(mock, "alice", "ping").length;
  assert.equal(pings(), 0, "a link in use is not probed");
  await alice.page.evaluate(() => window.dispatchEvent(new Event("online")));
  await until("a ping once back online", async () => pings() === 1);
  await alice.page.evaluate(() => document.dispatchEvent(new Event("visibilitychange")));
  await until("a ping once back in view", async () => pings() === 2);
  await send(alice.page, "still here");
  await waitForSent(alice.page, "still here");
  assert.deepEqual(alice.errors, []);
  await alice.close();
});

test("a room whose history was reset starts afresh; a phone-sized screen works", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  const alice = await open(mock, "alice", { viewport: { width: 375, height: 700 } });
  // The sidebar is a drawer on a phone.
  assert.equal(await alice.page.isVisible("#sidebar"), false);
  await alice.page.click("#sidebar-toggle");
  assert.equal(await alice.page.isVisible("#sidebar"), true);
  assert.equal(await alice.page.getAttribute("#sidebar-toggle", "aria-expanded"), "true");
  await joinRoom(alice.page, "r2"); // closes the drawer
  assert.equal(await alice.page.isVisible("#sidebar"), false);
  await send(alice.page, "before reset");
  await waitForSent(alice.page, "before reset");

  mock.resetRoom("r2");
  mock.publish("r2", "bob", "after reset");
  mock.kill("alice");
  await waitForText(alice.page, "after reset");
  assert.deepEqual((await messages(alice.page)).map((m) => [m.id, m.text]), [[1, "after reset"]]);

  // Reset again while connected: the server sends a fresh `joined` by itself.
  mock.resetRoom("r2");
  mock.publish("r2", "bob", "reset while live");
  mock.resync("r2");
  await waitForText(alice.page, "reset while live");
  assert.deepEqual((await messages(alice.page)).map((m) => [m.id, m.text]), [[1, "reset while live"]]);
  await send(alice.page, "still here");
  await waitForSent(alice.page, "still here");
  assert.deepEqual(await checkSequence(alice.page, assert), ["reset while live", "still here"]);
  assert.deepEqual(alice.errors, []);
  await alice.close();
});

test("a backlog typed while the rooms wait for their rejoin reaches a rate-limiting gateway in order, and the page is not closed", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  mock.limits = { rate: 20, burst: 40 }; // the gateway's defaults (RATE_MSGS, RATE_BURST)
  const alice = await open(mock, "alice");
  await joinRoom(alice.page, "r1");
  mock.joinsHeld = true;
  mock.kill("alice");
  await until("alice back, her rejoins held", async () => mock.connectionsOf("alice") === 1 && mock.heldJoins.length === 2);
  const texts = Array.from({ length: 200 }, (_, i) => `queued ${i + 1}`);
  await alice.page.evaluate((list) => {
    const input = document.querySelector("#message-input");
    const form = document.querySelector("#message-form");
    for (const text of list) {
      input.value = text;
      form.requestSubmit();
    }
  }, texts);
  assert.equal((await messages(alice.page)).filter((m) => m.state === "sending").length, 200);
  const started = Date.now();
  mock.releaseJoins(); // all 200 may go now: at the gateway's rate
  await until("all 200 sent", async () => (await messages(alice.page)).filter((m) => m.state === "sent").length === 200, 30000);
  const took = Date.now() - started;
  // stored once each, in order: the ids shown (the mock keeps the last 100)
  assert.deepEqual(await checkSequence(alice.page, assert), texts);
  assert.equal(mock.room("r1").lastId, 200);
  assert.deepEqual(mock.room("r1").history.map((m) => m.message), texts.slice(100));
  assert.equal(mock.rateRefusals, 0, "nothing over the rate");
  assert.equal(mock.rateCloses, 0);
  assert.equal(sentFrames(mock, "alice", "join").filter((f) => f.payload.room === "r1").length, 2, "no reconnect");
  assert.ok(took > 6000, `paced at 20 a second after a burst: ${took} ms`);
  assert.deepEqual(alice.errors, []);
  await alice.close();
});

/** A page of the mock origin with a ConfabClient of its own (window.chat), its events in window.log. */
async function clientPage(mock, options) {
  const ctx = await browser.newContext();
  await mock.attach(ctx);
  const page = await ctx.newPage();
  const errors = watchErrors(page);
  await page.goto(`${mock.origin}/`);
  await startClient(page, options);
  return { page, errors, log: () => page.evaluate(() => window.log), close: () => ctx.close() };
}

/** A ConfabClient of the page's own (window.chat), connecting, its events in window.log. */
async function startClient(page, options) {
  await page.evaluate(async (opts) => {
    const { ConfabClient } = await import("/confab-client.js");
    const chat = new ConfabClient(opts);
    window.log = [];
    chat.on("state", (s) => window.log.push(s.state));
    chat.on("error", (e) => window.log.push(`error:${e.code}`));
    window.chat = chat;
    chat.connect().catch(() => {});
  }, options);
}

test("a /login that never answers is aborted after loginTimeout and asked again; back online, at once", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  mock.loginsHeld = true;
  const alice = await clientPage(mock, { username: "alice", loginTimeout: 1000, reconnectDelay: 100, maxReconnectDelay: 200 });
  await until("the first login", async () => mock.heldLogins.length === 1);
  const t0 = Date.now();
  await until("a second login", async () => mock.heldLogins.length === 2, 5000);
  assert.ok(Date.now() - t0 > 700, "not before the timeout");
  assert.ok((await alice.log()).includes("error:network"));
  // A long timeout now: coming back online gives the login under way up at once.
  await alice.page.evaluate(() => { window.chat.options.loginTimeout = 60000; });
  await until("a third login", async () => mock.heldLogins.length === 3, 5000);
  await alice.page.evaluate(() => window.dispatchEvent(new Event("online")));
  await until("a fourth login, at once", async () => mock.heldLogins.length === 4, 2000);
  mock.loginsHeld = false;
  await alice.page.evaluate(() => window.dispatchEvent(new Event("online")));
  await until("connected", async () => (await alice.page.evaluate(() => window.chat.state)) === "connected");
  assert.deepEqual(mock.logins, ["alice"]);
  assert.deepEqual(alice.errors, []);
  await alice.close();
});

test("a WebSocket server that takes the connection and never answers the upgrade is given up after openTimeout", async () => {
  // A real HTTP server on the loopback address (Chromium lets a page reach a
  // local address only from one): it serves the frontend, and takes every
  // upgrade's connection without a word, as a proxy whose backend is gone.
  const upgrades = [];
  let closed = 0;
  const server = createHttpServer(async (req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    if (path === "/hang") return res.writeHead(426, { Upgrade: "websocket" }).end(); // the token check: fine
    try {
      const body = await readFile(join(FRONTEND, path === "/" ? "index.html" : path));
      res.writeHead(200, { "Content-Type": path.endsWith(".js") ? "text/javascript" : "text/html" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  server.on("upgrade", (req, sock) => {
    upgrades.push(sock);
    sock.on("end", () => { // the client hung up
      closed += 1;
      sock.destroy();
    });
    sock.on("error", () => {});
    sock.resume(); // read, so that the hang-up is seen
  });
  await new Promise((res) => server.listen(0, "127.0.0.1", res));
  const base = `http://127.0.0.1:${server.address().port}`;
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  try {
    await page.goto(`${base}/`);
    await startClient(page, {
      token: `${b64({ alg: "HS256" })}.${b64({ sub: "alice" })}.sig`, // no exp: no login first
      wsUrl: `ws://127.0.0.1:${server.address().port}/hang`, openTimeout: 1000, reconnectDelay: 100, maxReconnectDelay: 200,
    });
    await until("an upgrade", async () => upgrades.length === 1);
    const t0 = Date.now();
    await until("the socket given up and another tried", async () => upgrades.length === 2 && closed >= 1, 5000);
    assert.ok(Date.now() - t0 > 700, "not before the timeout");
    const log = await page.evaluate(() => window.log);
    assert.ok(log.includes("error:timeout") && log.includes("reconnecting"), log.join(" "));
    assert.equal(await page.evaluate(() => window.chat.state), "connecting", "the next socket waits its turn");
  } finally {
    await ctx.close();
    for (const sock of upgrades) sock.destroy();
    server.close();
  }
});
