// Shared helpers of the browser tests: polling, the browser, and the UI's
// stable hooks (documented at the top of frontend/app.js).
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

export const ROOT = resolve(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "../..");
export const FRONTEND = join(ROOT, "frontend");
export const BUILD_DIR = process.env.CONFAB_BUILD_DIR ?? join(ROOT, "build");
export const ARTIFACTS = process.env.CONFAB_ARTIFACTS_DIR ?? join(BUILD_DIR, "artifacts");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
    s.on("error", rej);
  });
}

/** Polls `fn` until it returns something truthy; returns that. */
export async function until(what, fn, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
}

/**
 * Collects a page's errors: uncaught exceptions, console errors, and the
 * client's warnings (it warns when live message ids skipped one).
 */
export function watchErrors(page) {
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error" || (m.type() === "warning" && m.text().startsWith("confab:"))) errors.push(m.text());
  });
  return errors;
}

export async function login(page, user) {
  await page.fill("#username", user);
  await page.click("#login-button");
  await page.waitForSelector("#chat:not([hidden])");
  await until(`${user} connected`, async () =>
    (await page.getAttribute("#status", "data-state")) === "connected");
}

export async function send(page, text) {
  await page.fill("#message-input", text);
  await page.press("#message-input", "Enter");
}

/** The active room's messages, in screen order. */
export function messages(page) {
  return page.$$eval("#messages .message", (els) => els.map((e) => ({
    id: e.dataset.id === undefined ? null : Number(e.dataset.id),
    state: e.dataset.state,
    from: e.querySelector(".from").textContent,
    text: e.querySelector(".text").textContent,
    html: e.querySelector(".text").innerHTML,
  })));
}

export async function waitForText(page, text, timeoutMs) {
  return until(`"${text}" on screen`, async () =>
    (await messages(page)).find((m) => m.text === text), timeoutMs);
}

/** Waits until `text` is shown as sent (acked, with an id). */
export async function waitForSent(page, text, timeoutMs) {
  return until(`"${text}" sent`, async () =>
    (await messages(page)).find((m) => m.text === text && m.state === "sent" && m.id !== null), timeoutMs);
}

/** On a narrow screen the sidebar is a drawer: opens it. */
export async function openSidebar(page) {
  if (!(await page.isVisible("#sidebar"))) await page.click("#sidebar-toggle");
}

/** Joins (or switches to) a room through the sidebar form and waits for it. */
export async function joinRoom(page, room) {
  await openSidebar(page);
  await page.fill("#room-input", room);
  await page.click("#join-button");
  await until(`room ${room} joined`, async () =>
    (await page.textContent("#room-name")) === room &&
    (await page.getAttribute(`#rooms .room[data-room="${room}"]`, "data-state")) === "joined");
}

export async function switchRoom(page, room) {
  await openSidebar(page);
  await page.click(`#rooms .room[data-room="${room}"] .room-button`);
  await until(`switched to ${room}`, async () => (await page.textContent("#room-name")) === room);
}

export async function members(page) {
  return page.$$eval("#members .member", (els) => els.map((e) => e.dataset.user));
}

export async function unread(page, room) {
  return page.$eval(`#rooms .room[data-room="${room}"] .unread`, (e) => (e.hidden ? 0 : Number(e.textContent)));
}

/**
 * Asserts, on the active room, that every message shows exactly once, in id
 * order without gaps, all sent; returns the texts in screen order.
 */
export async function checkSequence(page, assert) {
  const list = await messages(page);
  const ids = list.map((m) => m.id);
  assert.ok(ids.every((id) => Number.isInteger(id)), `a message without id: ${JSON.stringify(list)}`);
  for (let i = 1; i < ids.length; i++) {
    assert.equal(ids[i], ids[i - 1] + 1, `ids not consecutive on screen: ${ids.join(",")}`);
  }
  assert.ok(list.every((m) => m.state === "sent"), `not all sent: ${JSON.stringify(list)}`);
  return list.map((m) => m.text);
}
