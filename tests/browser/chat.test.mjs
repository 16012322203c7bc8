// Two people chat through the real frontend in headless Chromium, against a
// real two-node cluster started with scripts/run-all.sh: node A (private
// Redis, brokers, one gateway process) and node B (its own brokers and
// gateway process on another port, sharing A's Redis). Alice's page is served
// by A's gateway, Bob's by B's. Run by `make test` through ctest; see run.sh.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ROOT, FRONTEND, BUILD_DIR, ARTIFACTS, freePort, until, launch, watchErrors, login, send, messages,
  waitForText, waitForSent, joinRoom, switchRoom, members, unread, checkSequence,
} from "./helpers.mjs";

const SECRET = "browser-test-secret-0123456789abcdefghij";
let browser, dir, redisOfA;
const nodes = {};

/** Starts one node with run-all.sh; resolves once it says it is up. */
async function startNode(name, env, port) {
  port ??= await freePort();
  const node = { name, port, log: "" };
  node.proc = spawn("bash", [join(ROOT, "scripts/run-all.sh")], {
    env: {
      ...process.env, PORT: String(port), RUN_DIR: join(dir, `run-${name}`), BUILD_DIR,
      LISTEN_ADDR: "127.0.0.1", GATEWAY_WORKERS: "1", CONFAB_ENV_FILE: "/dev/null",
      JWT_SECRET: SECRET, ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  node.proc.stdout.on("data", (d) => (node.log += d));
  node.proc.stderr.on("data", (d) => (node.log += d));
  nodes[name] = node;
  return node;
}

/** The processes below pid (pid, ppid, args), children first. */
function descendants(pid) {
  const rows = execFileSync("ps", ["-eo", "pid=,ppid=,args="]).toString().trim().split("\n")
    .map((l) => l.trim().split(/\s+/)).map(([pid, ppid, ...args]) => ({ pid: Number(pid), ppid: Number(ppid), args: args.join(" ") }));
  const below = (p) => rows.filter((r) => r.ppid === p).flatMap((r) => [r, ...below(r.pid)]);
  return below(pid);
}

async function stopNode(node) {
  if (!node?.proc || node.proc.exitCode !== null) return;
  const exited = new Promise((r) => node.proc.once("exit", r));
  node.proc.kill("SIGTERM");
  const done = await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 15000))]);
  if (!done) { // a node that hangs must not outlive the test: its whole tree goes
    for (const pid of [node.proc.pid, ...descendants(node.proc.pid).map((r) => r.pid)]) {
      try { process.kill(pid, "SIGKILL"); } catch { /* gone already */ }
    }
    await exited;
  }
}

/** Pids of a node's broker shard processes (children of its broker supervisor). */
function brokerShards(node) {
  const brokers = descendants(node.proc.pid).filter((r) => /confab-broker/.test(r.args));
  const supervisors = new Set(brokers.map((r) => r.pid));
  return brokers.filter((r) => supervisors.has(r.ppid)).map((r) => r.pid);
}

async function healthPid(port) {
  const r = await fetch(`http://127.0.0.1:${port}/healthz`);
  if (r.status !== 200) return 0;
  return (await r.json()).pid;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "confab-browser-"));
  const a = await startNode("a", {});
  redisOfA = await until("node A's Redis", () => /private Redis at (\S+)/.exec(a.log)?.[1], 30000);
  const b = await startNode("b", { REDIS_ADDR: redisOfA });
  await until("node A up", () => a.log.includes("confab is up"), 30000);
  await until("node B up", () => b.log.includes("confab is up"), 30000);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await stopNode(nodes.c);
  await stopNode(nodes.x);
  await stopNode(nodes.b);
  await stopNode(nodes.a);
  if (process.exitCode) {
    for (const node of Object.values(nodes)) {
      console.log(`--- node ${node.name} (last lines)\n${node.log.split("\n").slice(-40).join("\n")}`);
    }
    console.log(`--- kept for inspection: ${dir}`);
  } else if (dir) {
    rmSync(dir, { recursive: true, force: true }); // each run made one and left it behind
  }
});

/** A person in their own browser context, logged in on a node's gateway. */
async function person(user, node, { clock = false } = {}) {
  const ctx = await browser.newContext(); // its own sessionStorage: a separate tab/person
  const page = await ctx.newPage();
  const errors = watchErrors(page);
  const logins = [];
  page.on("request", (r) => r.method() === "POST" && r.url().endsWith("/login") && logins.push(Date.now()));
  const frames = []; // {dir: "in"|"out", type, payload} of every WebSocket of the page
  page.on("websocket", (ws) => {
    const keep = (dir) => ({ payload }) => {
      try {
        frames.push({ dir, ...JSON.parse(payload) });
      } catch { /* not JSON */ }
    };
    ws.on("framesent", keep("out"));
    ws.on("framereceived", keep("in"));
  });
  if (clock) await page.clock.install(); // a page clock the test can move forward
  await page.goto(`http://127.0.0.1:${node.port}/`);
  await login(page, user);
  return { page, errors, logins, frames, close: () => ctx.close() };
}

// While a gateway is down, refused connections and logins are expected.
// 426 is the token check's "this token would be taken" (a plain GET of /ws
// made after two failed opens): when the node is back by the time it goes,
// Chromium logs that answer as a failed load.
// Only Chromium's own line about a socket that failed to connect is expected:
// a page error that names WebSocket (a send on a socket not open) is not.
const unexpected = (errors) =>
  errors.filter((e) => !/^WebSocket connection to |Failed to load resource: net::ERR_|status of 426/.test(e));

test("two people chat in two rooms across two gateways: history, presence, typing, text stays text", async () => {
  const alice = await person("alice", nodes.a);
  await joinRoom(alice.page, "lobby");
  for (const text of ["history 1", "history 2", "history 3"]) {
    await send(alice.page, text);
    await waitForSent(alice.page, text);
  }

  // Bob, on the other gateway, sees the history when he joins.
  const bob = await person("bob", nodes.b);
  await joinRoom(bob.page, "lobby");
  await until("history on bob's screen", async () => (await messages(bob.page)).length === 3);
  assert.deepEqual(await checkSequence(bob.page, assert), ["history 1", "history 2", "history 3"]);
  assert.deepEqual((await messages(bob.page)).map((m) => [m.id, m.from]), [[1, "alice"], [2, "alice"], [3, "alice"]]);

  // Presence both ways, and typing.
  await until("alice sees bob online", async () => (await members(alice.page)).includes("bob"));
  assert.deepEqual((await members(bob.page)).sort(), ["alice", "bob"]);
  await bob.page.fill("#message-input", "I am typ");
  await until("bob typing on alice's screen", async () =>
    (await alice.page.textContent("#typing")) === "bob is typing…");

  // HTML in a message is shown as text.
  const evil = `<img src=x onerror="document.title='pwned'"><b>bold?</b>`;
  await send(bob.page, evil);
  const got = await waitForText(alice.page, evil);
  assert.equal(got.from, "bob");
  assert.ok(!got.html.includes("<img"), `rendered as markup: ${got.html}`);
  assert.notEqual(await alice.page.title(), "pwned");
  assert.equal(await alice.page.$$eval("#messages img, #messages b", (e) => e.length), 0);
  await until("typing cleared by bob's message", async () => (await alice.page.textContent("#typing")) === "");

  // A second room: bob looks at the lobby while alice writes in "second".
  await joinRoom(alice.page, "second");
  await joinRoom(bob.page, "second");
  await switchRoom(bob.page, "lobby");
  await send(alice.page, "over here");
  await waitForSent(alice.page, "over here");
  await until("an unread message for bob", async () => (await unread(bob.page, "second")) === 1);
  await send(alice.page, "and again");
  await until("2 unread", async () => (await unread(bob.page, "second")) === 2);
  await switchRoom(bob.page, "second");
  assert.equal(await unread(bob.page, "second"), 0);
  assert.deepEqual(await checkSequence(bob.page, assert), ["over here", "and again"]);
  await send(bob.page, "got it");
  await waitForText(alice.page, "got it");
  await switchRoom(alice.page, "lobby");
  assert.deepEqual(await checkSequence(alice.page, assert), ["history 1", "history 2", "history 3", evil]);

  // Bob leaves "second": alice sees him go.
  await switchRoom(alice.page, "second");
  await until("bob in second", async () => (await members(alice.page)).includes("bob"));
  await bob.page.click('#rooms .room[data-room="second"] .leave-button');
  await until("bob gone from second", async () => !(await members(alice.page)).includes("bob"));
  await switchRoom(alice.page, "lobby");

  mkdirSync(ARTIFACTS, { recursive: true });
  await alice.page.screenshot({ path: join(ARTIFACTS, "chat.png") });
  assert.deepEqual(alice.errors, []);
  assert.deepEqual(bob.errors, []);
  await alice.close();
  await bob.close();
});

test("the gateway serving a page is killed: after the reconnect nothing is missing or doubled", async () => {
  const alice = await person("alice", nodes.a, { clock: true });
  const bob = await person("bob", nodes.b);
  await joinRoom(alice.page, "resil");
  await joinRoom(bob.page, "resil");
  await send(alice.page, "a1");
  await waitForText(bob.page, "a1");
  await send(bob.page, "b1");
  await waitForText(alice.page, "b1");
  const firstJoined = alice.frames.find((f) => f.type === "joined" && f.payload.room === "resil").payload;
  const oldToken = await alice.page.evaluate(() => sessionStorage.getItem("confab.token"));
  const loginsBefore = alice.logins.length;

  const victim = await healthPid(nodes.a.port);
  assert.ok(victim > 0);
  process.kill(victim, "SIGKILL"); // run-all restarts the gateway after a second
  await until("alice's page to notice", async () =>
    (await alice.page.getAttribute("#status", "data-state")) !== "connected");

  // Bob talks on while alice is cut off; alice writes too, offline.
  const during = [1, 2, 3, 4, 5].map((i) => `during ${i}`);
  for (const text of during) {
    await send(bob.page, text);
    await waitForSent(bob.page, text);
  }
  await send(alice.page, "queued 1");
  await send(alice.page, "queued 2");
  assert.deepEqual((await messages(alice.page)).filter((m) => m.state === "sending").map((m) => m.text),
    ["queued 1", "queued 2"]);
  // An hour and more passes for alice: her token (JWT_TTL is an hour) has
  // expired as far as her page can tell, so it must log in again.
  await alice.page.clock.fastForward("01:05:00");

  await until("a new gateway process", async () => {
    const pid = await healthPid(nodes.a.port);
    return pid && pid !== victim;
  }, 30000);
  await until("alice reconnected", async () =>
    (await alice.page.getAttribute("#status", "data-state")) === "connected", 45000);
  await waitForSent(alice.page, "queued 2", 20000);
  await waitForText(bob.page, "queued 2");

  // Exactly once each, in one order, on both screens; ids without gaps.
  const expected = ["a1", "b1", ...during, "queued 1", "queued 2"];
  await until("alice's screen settled", async () => (await messages(alice.page)).length >= expected.length);
  assert.deepEqual(await checkSequence(alice.page, assert), expected);
  assert.deepEqual(await checkSequence(bob.page, assert), expected);
  assert.equal(await alice.page.$$eval("#messages .system", (e) => e.length), 0,
    "the rejoin did not recover everything");
  const aliceIds = (await messages(alice.page)).map((m) => m.id);
  assert.deepEqual((await messages(bob.page)).map((m) => m.id), aliceIds);

  // On the wire: the rejoin asked for what came after b1 in the same epoch,
  // and got exactly bob's five, recovered; each message went out under one id.
  const joins = alice.frames.filter((f) => f.dir === "out" && f.type === "join" && f.payload.room === "resil");
  assert.equal(joins.length, 2);
  assert.equal(joins[1].payload.since, aliceIds[1]);
  assert.equal(joins[1].payload.epoch, firstJoined.epoch);
  const rejoined = alice.frames.filter((f) => f.type === "joined" && f.payload.room === "resil")[1].payload;
  assert.equal(rejoined.recovered, true);
  assert.deepEqual(rejoined.messages.map((m) => m.message), during);
  // Each message went out under one id: a resend (after a timeout, or an
  // answer lost with a connection) reuses it, so the server makes it once.
  const sendFrames = alice.frames.filter((f) => f.dir === "out" && f.type === "send");
  assert.deepEqual([...new Set(sendFrames.map((f) => f.payload.message))], ["a1", "queued 1", "queued 2"]);
  for (const text of ["a1", "queued 1", "queued 2"]) {
    const ids = new Set(sendFrames.filter((f) => f.payload.message === text).map((f) => f.payload.id));
    assert.equal(ids.size, 1, `"${text}" was sent under more than one id`);
  }

  // Alice logged in again before reconnecting, and holds a new token.
  assert.ok(alice.logins.length > loginsBefore, "no new POST /login after the token expired");
  const token = await alice.page.evaluate(() => sessionStorage.getItem("confab.token"));
  assert.notEqual(token, oldToken);
  const claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
  assert.equal(claims.sub, "alice");
  assert.equal(await alice.page.textContent("#room-name"), "resil");
  assert.deepEqual(unexpected(alice.errors), []);
  assert.deepEqual(bob.errors, []);
  await alice.close();
  await bob.close();
});

test("a page whose token the gateway refuses (401 on the upgrade) logs in again", async () => {
  // A token that looks valid to the page (exp an hour ahead) but is not
  // signed with the gateway's key: every upgrade is refused with 401.
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const errors = watchErrors(page);
  const now = Math.floor(Date.now() / 1000);
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const forged = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub: "carol", iat: now, nbf: now, exp: now + 3600 })}.AAAA`;
  await page.addInitScript((token) => {
    if (!sessionStorage.getItem("confab.token")) {
      sessionStorage.setItem("confab.username", "carol");
      sessionStorage.setItem("confab.token", token);
    }
  }, forged);
  await page.goto(`http://127.0.0.1:${nodes.a.port}/`);
  await until("carol connected", async () => (await page.getAttribute("#status", "data-state")) === "connected", 30000);
  const token = await page.evaluate(() => sessionStorage.getItem("confab.token"));
  assert.notEqual(token, forged);
  await until("carol in general", async () =>
    (await page.getAttribute('#rooms .room[data-room="general"]', "data-state")) === "joined");
  // the page asked, and the gateway said 401, which Chromium logs
  const refused = "Failed to load resource: the server responded with a status of 401 (Unauthorized)";
  assert.ok(errors.includes(refused), "the page checked the token before logging in");
  assert.deepEqual(unexpected(errors).filter((e) => e !== refused), []);
  await ctx.close();
});

// A browser cannot tell a refused upgrade from a server it cannot reach, so
// the page used to log in again after any two failed opens: after an outage
// every page did, and pages sharing an address met its login limit. Now it
// asks the gateway first (a plain GET of /ws with its token), and a server
// that does not answer is not the token's fault.
test("a whole node is down for a while: the page comes back with the token it had, without logging in", async () => {
  const port = await freePort();
  let c = await startNode("c", { REDIS_ADDR: redisOfA }, port);
  await until("node C up", () => c.log.includes("confab is up"), 30000);
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const errors = watchErrors(page);
  const logins = [];
  const checks = [];
  page.on("request", (r) => {
    if (r.method() === "POST" && r.url().endsWith("/login")) logins.push(r.url());
    if (r.method() === "GET" && /\/ws\?token=/.test(r.url())) checks.push(r.url());
  });
  await page.goto(`http://127.0.0.1:${port}/`);
  await login(page, "dave");
  const connected = async () => (await page.getAttribute("#status", "data-state")) === "connected";
  await until("dave connected", connected, 30000);
  const token = await page.evaluate(() => sessionStorage.getItem("confab.token"));
  assert.equal(logins.length, 1);

  await stopNode(c);
  await until("the page asked whether its token is refused", () => checks.length >= 1, 30000);
  assert.equal(logins.length, 1, "no login while the server cannot be reached");
  c = await startNode("c", { REDIS_ADDR: redisOfA }, port);
  await until("node C up again", () => c.log.includes("confab is up"), 30000);
  await until("dave reconnected", connected, 45000);
  assert.equal(logins.length, 1, "no POST /login after the outage");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("confab.token")), token);
  await until("dave in general", async () =>
    (await page.getAttribute('#rooms .room[data-room="general"]', "data-state")) === "joined");
  assert.deepEqual(unexpected(errors), []);
  await ctx.close();
  await stopNode(c);
});

// A page of another origin than the gateway's (an app embedding the chat)
// logs in with POST /login, which needs the gateway's CORS answers (a
// preflight for its JSON body, and the answer readable by the page), and
// opens its WebSocket: both for the origins ALLOWED_ORIGINS lists, and
// neither for another. The app is a plain web server of the client's files
// on this machine (Chromium lets a loopback page reach loopback servers
// only): http://localhost:P is listed, http://127.0.0.1:P is not.
test("a page on another origin listed in ALLOWED_ORIGINS logs in and chats; an unlisted one cannot log in", async () => {
  const app = createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    if (path === "/") {
      res.writeHead(200, { "Content-Type": "text/html" }).end('<!doctype html><link rel="icon" href="data:,"><title>an app</title>');
      return;
    }
    if (!/^\/(confab-client|client\/[a-z-]+)\.js$/.test(path)) {
      res.writeHead(404).end();
      return;
    }
    readFile(join(FRONTEND, path)).then(
      (body) => res.writeHead(200, { "Content-Type": "text/javascript" }).end(body),
      () => res.writeHead(404).end());
  });
  await new Promise((r) => app.listen(0, "127.0.0.1", r));
  const appPort = app.address().port;
  const x = await startNode("x", { REDIS_ADDR: redisOfA, ALLOWED_ORIGINS: `http://localhost:${appPort}` });
  await until("node X up", () => x.log.includes("confab is up"), 30000);
  const ctx = await browser.newContext();
  const chatFrom = async (origin) => {
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    await page.goto(`${origin}/`);
    const got = await page.evaluate(async (baseUrl) => {
      const { ConfabClient } = await import("/confab-client.js");
      const chat = new ConfabClient({ baseUrl, loginTimeout: 5000 });
      try {
        const { username } = await chat.login("faraway");
        await chat.connect();
        await chat.join("embedded");
        const ack = await chat.send("embedded", "hello from another origin");
        return { username, messageId: ack.messageId };
      } catch (e) {
        return { error: String(e?.code ?? e) };
      } finally {
        chat.close();
      }
    }, `http://127.0.0.1:${x.port}`);
    await page.close();
    return { got, errors };
  };
  try {
    const listed = await chatFrom(`http://localhost:${appPort}`);
    assert.equal(listed.got.username, "faraway", JSON.stringify(listed));
    assert.ok(listed.got.messageId >= 1);
    assert.deepEqual(listed.errors, []);
    const unlisted = await chatFrom(`http://127.0.0.1:${appPort}`);
    assert.ok(unlisted.got.error, `an unlisted origin logged in: ${JSON.stringify(unlisted.got)}`);
    assert.ok(unlisted.errors.some((e) => /CORS policy/.test(e)), unlisted.errors.join("\n"));
  } finally {
    await ctx.close();
    app.close();
    await stopNode(x);
  }
});

test("node A's brokers are killed under the pages: sends are retried until acked, nothing lost or doubled", async () => {
  const alice = await person("alice", nodes.a);
  const bob = await person("bob", nodes.b);
  const rooms = ["shard-x", "shard-y", "shard-z"]; // whichever shard: both are killed
  for (const room of rooms) {
    await joinRoom(alice.page, room);
    await joinRoom(bob.page, room);
  }
  const shards = brokerShards(nodes.a);
  assert.equal(shards.length, 2);
  for (const pid of shards) process.kill(pid, "SIGKILL"); // restarted by their supervisor
  for (const room of rooms) {
    await switchRoom(alice.page, room);
    await send(alice.page, `${room} from alice`);
    await switchRoom(bob.page, room);
    await send(bob.page, `${room} from bob`);
  }
  for (const room of rooms) {
    for (const [who, other] of [[alice, bob], [bob, alice]]) {
      await switchRoom(who.page, room);
      await waitForSent(who.page, `${room} from ${who === alice ? "alice" : "bob"}`, 30000);
      await waitForText(who.page, `${room} from ${other === alice ? "alice" : "bob"}`, 30000);
    }
  }
  for (const room of rooms) {
    const seen = [];
    for (const who of [alice, bob]) {
      await switchRoom(who.page, room);
      seen.push(await checkSequence(who.page, assert));
    }
    assert.deepEqual([...seen[0]].sort(), [`${room} from alice`, `${room} from bob`]);
    assert.deepEqual(seen[1], seen[0], "both see one order");
  }
  assert.deepEqual(unexpected(alice.errors), []);
  assert.deepEqual(bob.errors, []);
  await alice.close();
  await bob.close();
});
