// Two people chat through the real frontend in headless Chromium, against a
// whole node started with scripts/run-all.sh (private Redis, brokers,
// gateway). Run by `make test` through ctest; see run.sh.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const ROOT = resolve(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "../..");
const BUILD_DIR = process.env.CONFAB_BUILD_DIR ?? join(ROOT, "build");
const ARTIFACTS = process.env.CONFAB_ARTIFACTS_DIR ?? join(BUILD_DIR, "artifacts");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

let node, port, browser, log = "";

function freePort() {
  return new Promise((res) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
}

async function until(what, fn, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function healthPid() {
  const r = await fetch(`http://127.0.0.1:${port}/healthz`);
  if (r.status !== 200) return 0;
  return (await r.json()).pid;
}

before(async () => {
  port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "confab-browser-"));
  node = spawn("bash", [join(ROOT, "scripts/run-all.sh")], {
    env: {
      ...process.env, PORT: String(port), RUN_DIR: join(dir, "run"), BUILD_DIR,
      LISTEN_ADDR: "127.0.0.1", GATEWAY_WORKERS: "1", CONFAB_ENV_FILE: "/nonexistent",
      JWT_SECRET: "browser-test-secret-0123456789abcdefghij",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  node.stdout.on("data", (d) => (log += d));
  node.stderr.on("data", (d) => (log += d));
  await until("run-all to come up", () => log.includes("confab is up"), 30000);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
});

after(async () => {
  await browser?.close();
  if (node && node.exitCode === null) {
    const exited = new Promise((r) => node.once("exit", r));
    node.kill("SIGTERM");
    await exited;
  }
  if (process.exitCode) console.log(log.split("\n").slice(-60).join("\n"));
});

async function openChat(user, { clock = false } = {}) {
  const ctx = await browser.newContext(); // its own sessionStorage: a separate tab/person
  const page = await ctx.newPage();
  const errors = [];
  const logins = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("request", (r) => r.method() === "POST" && r.url().endsWith("/login") && logins.push(Date.now()));
  if (clock) await page.clock.install(); // a page clock the test can move forward
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.fill("#username", user);
  await page.click("#login-button");
  await page.waitForSelector("#chat:not([hidden])");
  await until(`${user} connected`, async () =>
    (await page.getAttribute("#status", "data-state")) === "connected");
  return { page, errors, logins };
}

async function send(page, text) {
  await page.fill("#message-input", text);
  await page.press("#message-input", "Enter");
}

async function lastMessages(page, n) {
  return page.$$eval("#messages .message", (els, n) => els.slice(-n).map((e) => ({
    from: e.querySelector(".from").textContent,
    text: e.querySelector(".text").textContent,
    html: e.querySelector(".text").innerHTML,
  })), n);
}

async function waitForText(page, text) {
  await until(`"${text}" on screen`, async () =>
    (await lastMessages(page, 50)).some((m) => m.text === text));
}

async function joinRoom(page, room) {
  await page.fill("#room-input", room);
  await page.click("#join-button");
  await until(`room ${room}`, async () => (await page.textContent("#room-name")).includes(room));
}

test("two people chat, switch rooms, and user text stays text", async () => {
  const alice = await openChat("alice");
  const bob = await openChat("bob");

  // Both start in "general". A message full of HTML must show as text.
  const evil = `<img src=x onerror="document.title='pwned'"><b>bold?</b>`;
  await until("bob's join to take effect", async () => {
    await send(bob.page, "bob is here");
    return (await lastMessages(alice.page, 50)).some((m) => m.text === "bob is here");
  });
  await send(alice.page, evil);
  await waitForText(bob.page, evil);
  const got = (await lastMessages(bob.page, 1))[0];
  assert.equal(got.from, "alice");
  assert.equal(got.text, evil);
  assert.ok(!got.html.includes("<img"), "rendered as markup: " + got.html);
  assert.notEqual(await bob.page.title(), "pwned");
  assert.equal(await bob.page.$$eval("#messages img, #messages b", (e) => e.length), 0);

  // Move both to another room; messages follow them there.
  await joinRoom(alice.page, "lobby");
  await joinRoom(bob.page, "lobby");
  await until("both in lobby", async () => {
    await send(alice.page, "anyone in lobby?");
    return (await lastMessages(bob.page, 50)).some((m) => m.text === "anyone in lobby?");
  });
  await send(bob.page, "yes, me");
  await waitForText(alice.page, "yes, me");

  mkdirSync(ARTIFACTS, { recursive: true });
  await alice.page.screenshot({ path: join(ARTIFACTS, "chat.png"), fullPage: true });
  assert.deepEqual(alice.errors, []);
  assert.deepEqual(bob.errors, []);
  await alice.page.context().close();
  await bob.page.context().close();
});

test("a page reconnects after its gateway dies, logging in again once its token expired", async () => {
  const alice = await openChat("alice", { clock: true });
  const bob = await openChat("bob");
  await joinRoom(alice.page, "after");
  await joinRoom(bob.page, "after");
  const oldToken = await alice.page.evaluate(() => sessionStorage.getItem("confab.token"));
  const loginsBefore = alice.logins.length;

  const victim = await healthPid();
  assert.ok(victim > 0);
  process.kill(victim, "SIGKILL"); // run-all restarts the gateway
  await until("the page to notice", async () =>
    (await alice.page.getAttribute("#status", "data-state")) !== "connected");
  // While it is down, an hour and more passes for alice: her token (JWT_TTL
  // is an hour) is now expired as far as her page can tell.
  await alice.page.clock.fastForward("01:05:00");
  await until("a new gateway process", async () => { const p = await healthPid(); return p && p !== victim; });
  for (const who of [alice, bob])
    await until("reconnected", async () =>
      (await who.page.getAttribute("#status", "data-state")) === "connected", 45000);

  // Alice logged in again before reconnecting, and holds a new token.
  assert.ok(alice.logins.length > loginsBefore, "no new POST /login after the token expired");
  const token = await alice.page.evaluate(() => sessionStorage.getItem("confab.token"));
  assert.notEqual(token, oldToken);
  const claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
  assert.equal(claims.sub, "alice");

  // Both went back to their room on their own.
  await until("chat flows again", async () => {
    await send(alice.page, "back again");
    return (await lastMessages(bob.page, 50)).some((m) => m.text === "back again");
  }, 15000);
  assert.equal((await alice.page.textContent("#room-name")).includes("after"), true);
  // Refused connections while the gateway was down are expected; nothing else.
  assert.deepEqual(alice.errors.filter((e) => !/WebSocket|Failed to load resource: net::ERR_/.test(e)), []);
  await alice.page.context().close();
  await bob.page.context().close();
});
