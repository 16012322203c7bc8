// The frontend's own behaviour in headless Chromium against the in-memory
// Protocol v1 server (mock-server.mjs): the session, what a screen reader
// is told, the phone-sized drawer, the unread count in the title, how many
// messages a room keeps, and pages of history from a reset room. Each test
// asserts on what the user sees (or hears).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { MockConfab } from "./mock-server.mjs";
import {
  FRONTEND, until, launch, watchErrors, login, send, messages, waitForText, joinRoom, switchRoom,
} from "./helpers.mjs";

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/**
 * A page of the app logged in as `user`. `clock`: a page clock the test can
 * move; `hideable`: document.hidden can be switched with window.__setHidden
 * (headless Chromium shows every page as visible, whatever is in front).
 */
async function open(mock, user, { viewport, clock = false, hideable = false } = {}) {
  const ctx = await browser.newContext(viewport ? { viewport } : {});
  await mock.attach(ctx);
  const page = await ctx.newPage();
  const errors = watchErrors(page);
  if (clock) await page.clock.install();
  if (hideable) {
    await page.addInitScript(() => {
      let hidden = false;
      Object.defineProperty(Document.prototype, "hidden", { configurable: true, get: () => hidden });
      Object.defineProperty(Document.prototype, "visibilityState", {
        configurable: true, get: () => (hidden ? "hidden" : "visible"),
      });
      window.__setHidden = (value) => {
        hidden = value;
        document.dispatchEvent(new Event("visibilitychange"));
      };
    });
  }
  await page.goto(`${mock.origin}/`);
  await login(page, user);
  return { page, errors, ctx, close: () => ctx.close() };
}

const announced = (page) => page.$$eval("#announcer > *", (els) => els.map((e) => e.textContent));
const joined = (page, room) => until(`${room} joined`, async () =>
  (await page.getAttribute(`#rooms .room[data-room="${room}"]`, "data-state")) === "joined");

test("logging out while a re-login is under way does not bring the session back", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  const alice = await open(mock, "alice", { clock: true });
  await joined(alice.page, "general");

  // The token has expired as far as the page can tell and the socket drops:
  // the client logs in again before reconnecting, and that login hangs.
  mock.loginsHeld = true;
  await alice.page.clock.fastForward("01:05:00");
  mock.kill("alice");
  await until("a re-login under way", () => mock.heldLogins.length === 1);
  await alice.page.click("#logout-button");
  await alice.page.waitForSelector("#login-screen:not([hidden])");

  // The login answers after the logout: nothing of the session is kept.
  const answered = alice.page.waitForResponse((r) => r.url().endsWith("/login"));
  await mock.releaseLogins();
  await answered;
  await alice.page.evaluate(() => new Promise((r) => setTimeout(r, 300)));
  assert.deepEqual(await alice.page.evaluate(() =>
    [sessionStorage.getItem("confab.username"), sessionStorage.getItem("confab.token")]), [null, null]);
  // Before the reload, which closes every socket of the page: the closed
  // client did not connect with the token it was given.
  assert.equal(mock.connectionsOf("alice"), 0, "the logged-out client connected");
  await alice.page.reload();
  await alice.page.waitForSelector("#login-screen:not([hidden])");
  assert.equal(await alice.page.isHidden("#chat"), true, "a reload brought the chat back");
  assert.deepEqual(alice.errors, []);
  await alice.close();
});

test("a message with a control character is refused with a readable error, never left sending", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  const alice = await open(mock, "alice");
  await joined(alice.page, "general");
  await send(alice.page, "colour \u001b[31mred\u001b[0m");
  await until("an error in words", async () => /control character/i.test(await alice.page.textContent("#chat-error")));
  assert.equal((await messages(alice.page)).filter((m) => m.state === "sending").length, 0);
  assert.equal(await alice.page.getAttribute("#message-input", "aria-invalid"), "true");
  assert.equal(await alice.page.inputValue("#message-input"), "colour \u001b[31mred\u001b[0m", "the text is kept to fix");
  assert.equal(mock.received.filter((f) => f.type === "send").length, 0);

  // Tabs are fine, and the next message goes out as usual.
  await send(alice.page, "tab\there");
  await until("sent", async () => (await messages(alice.page)).some((m) => m.text === "tab\there" && m.state === "sent"));
  assert.equal(await alice.page.textContent("#chat-error"), "");
  assert.deepEqual(alice.errors, []);
  await alice.close();
});

test("screen readers hear the live messages of others in the room on screen, and nothing else", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  for (let i = 1; i <= 60; i++) mock.publish("lobby", "carol", `old ${i}`);
  const alice = await open(mock, "alice");
  await joined(alice.page, "general");
  assert.equal(await alice.page.getAttribute("#messages", "aria-live"), null);
  assert.notEqual(await alice.page.getAttribute("#messages", "role"), "log");
  assert.equal(await alice.page.getAttribute("#announcer", "aria-live"), "polite");
  assert.equal(await alice.page.$eval("#announcer", (e) => e.getBoundingClientRect().width <= 1), true);

  // A join's history, "load earlier", switching rooms, one's own message:
  // all put into #messages, none of it read out.
  await joinRoom(alice.page, "lobby");
  await until("history", async () => (await messages(alice.page)).length === 50);
  await alice.page.click("#older-button");
  await until("all 60", async () => (await messages(alice.page)).length === 60);
  await switchRoom(alice.page, "general");
  await switchRoom(alice.page, "lobby");
  await send(alice.page, "mine");
  await until("acked", async () => (await messages(alice.page)).some((m) => m.text === "mine" && m.id !== null));
  // Nor what a rejoin replays.
  mock.joinsHeld = true;
  mock.kill("alice");
  mock.publish("lobby", "bob", "while away");
  await until("alice back", () => mock.heldJoins.length > 0);
  mock.releaseJoins();
  await waitForText(alice.page, "while away");
  assert.deepEqual(await announced(alice.page), []);

  // Live messages of others: in the room on screen only.
  mock.publish("general", "bob", "elsewhere");
  mock.publish("lobby", "bob", "hello alice");
  await waitForText(alice.page, "hello alice");
  assert.deepEqual(await announced(alice.page), ["bob: hello alice"]);
  mock.publish("lobby", "bob", "hello alice");
  await until("said twice", async () => (await announced(alice.page)).length === 2);
  assert.deepEqual(await announced(alice.page), ["bob: hello alice", "bob: hello alice"]);
  assert.deepEqual(alice.errors, []);
  await alice.close();
});

test("the reconnect countdown is shown but not announced every second", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  const alice = await open(mock, "alice");
  await joined(alice.page, "general");
  mock.refused.add("alice");
  mock.kill("alice");
  const status = alice.page.locator("#status");
  const sample = await until("a countdown on screen", async () => {
    const [state, text] = await status.evaluate((e) => [e.dataset.state, e.textContent]);
    const spoken = await status.ariaSnapshot();
    const still = await status.getAttribute("data-state");
    return state === "reconnecting" && still === "reconnecting" && /\d+s/.test(text) && { text, spoken };
  }, 30000);
  assert.match(sample.spoken, /reconnecting/);
  assert.doesNotMatch(sample.spoken, /\d/, `the seconds are in the status region's text: ${sample.spoken}`);
  mock.refused.delete("alice");
  await until("connected again", async () => (await status.getAttribute("data-state")) === "connected", 30000);
  assert.match(await status.ariaSnapshot(), /connected/);
  await alice.close();
});

test("messages given up on are shown as a note in the room", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  mock.publish("r5", "bob", "before");
  const alice = await open(mock, "alice");
  await joinRoom(alice.page, "r5");
  await waitForText(alice.page, "before");
  mock.loseIds("r5", 3); // ids 2-4 never arrive and are not in the history
  mock.publish("r5", "bob", "after");
  await waitForText(alice.page, "after");
  const order = await alice.page.$$eval("#messages .room-log > *", (els) => els.map((e) =>
    (e.classList.contains("system") ? `note: ${e.textContent}` : e.querySelector(".text").textContent)));
  assert.deepEqual(order, ["before", "note: 3 messages could not be loaded.", "after"]);
  assert.deepEqual(alice.errors.filter((e) => !/^confab: Messages 2–4 of #r5/.test(e)), []);
  await alice.close();
});

test("while the tab is hidden, new messages in the room on screen are counted in the title", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  const alice = await open(mock, "alice", { hideable: true });
  await joinRoom(alice.page, "r6");
  assert.equal(await alice.page.title(), "#r6 · confab");
  await alice.page.evaluate(() => window.__setHidden(true));
  mock.publish("r6", "bob", "one");
  mock.publish("r6", "bob", "two");
  await until("counted in the title", async () => (await alice.page.title()) === "(2) #r6 · confab");
  await alice.page.evaluate(() => window.__setHidden(false));
  await until("cleared when shown", async () => (await alice.page.title()) === "#r6 · confab");
  mock.publish("r6", "bob", "three");
  await waitForText(alice.page, "three");
  assert.equal(await alice.page.title(), "#r6 · confab");
  assert.deepEqual(alice.errors, []);
  await alice.close();
});

test("the drawer on a phone: focus, leaving a room, room name errors, long names", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  const alice = await open(mock, "alice", { viewport: { width: 375, height: 700 } });
  await joinRoom(alice.page, "r7a");
  await joinRoom(alice.page, "r7b");
  const focused = () => alice.page.evaluate(() => {
    const e = document.activeElement;
    return { tag: e.tagName, id: e.id, room: e.closest(".room")?.dataset.room ?? null, cls: e.className };
  });

  // Opening it focuses the room on screen, not the text field.
  await alice.page.click("#sidebar-toggle");
  assert.equal(await alice.page.isVisible("#sidebar"), true);
  assert.deepEqual(await focused(), { tag: "BUTTON", id: "", room: "r7b", cls: "room-button" });

  // A bad room name: the error is shown in the drawer, which stays open.
  await alice.page.fill("#room-input", "bad room!");
  await alice.page.click("#join-button");
  await until("the error beside the form", async () => /letters, digits/.test(await alice.page.textContent("#room-error")));
  assert.equal(await alice.page.isVisible("#room-error"), true);
  assert.equal(await alice.page.$eval("#room-error", (e) => e.closest("#sidebar") !== null), true);
  assert.equal(await alice.page.getAttribute("#room-input", "aria-invalid"), "true");
  assert.equal(await alice.page.isVisible("#sidebar"), true);
  await alice.page.fill("#room-input", "");
  await alice.page.keyboard.type("ok");
  assert.equal(await alice.page.textContent("#room-error"), "");
  await alice.page.fill("#room-input", "");

  // Leaving a room keeps the drawer open and the focus in it.
  await alice.page.click('#rooms .room[data-room="r7b"] .leave-button');
  await until("r7b gone", async () => (await alice.page.$('#rooms .room[data-room="r7b"]')) === null);
  assert.equal(await alice.page.isVisible("#sidebar"), true, "leaving a room closed the drawer");
  assert.deepEqual(await focused(), { tag: "BUTTON", id: "", room: "general", cls: "room-button" });

  // A 64-character name is cut short in the header, on one line.
  const long = "a-very-long-room-name-that-goes-on-and-on-and-on-0123456789.xyz:";
  assert.equal(long.length, 64);
  await joinRoom(alice.page, long);
  const title = await alice.page.$eval(".room-title", (h) => {
    const style = getComputedStyle(h);
    return {
      overflow: style.textOverflow, cut: h.scrollWidth > h.clientWidth,
      lines: Math.round(h.getBoundingClientRect().height / parseFloat(style.lineHeight)),
      right: h.getBoundingClientRect().right, pageWidth: document.documentElement.scrollWidth,
    };
  });
  assert.deepEqual({ overflow: title.overflow, cut: title.cut, lines: title.lines }, { overflow: "ellipsis", cut: true, lines: 1 });
  assert.ok(title.right <= 375 && title.pageWidth <= 375, JSON.stringify(title));
  assert.equal(await alice.page.getAttribute("#room-name", "title"), long);
  assert.deepEqual(alice.errors, []);
  await alice.close();
});

test("a room keeps at most 1000 nodes of any kind, and none are dropped while the user reads above", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  const alice = await open(mock, "alice");
  await joinRoom(alice.page, "r8");
  const nodes = () => alice.page.$eval("#messages .room-log", (l) => l.childElementCount);
  // Messages without ids (a backend publishing straight to Redis).
  for (let i = 0; i < 1010; i++) mock.publishWithoutId("r8", "bob", `n ${i}`);
  await waitForText(alice.page, "n 1009");
  assert.equal(await nodes(), 1000);
  assert.equal((await messages(alice.page))[0].text, "n 10");

  // Scrolled up, reading: what comes in is added, nothing above moves.
  const readingAt = await alice.page.$eval("#messages", (list) => {
    list.scrollTop = 2000;
    const top = list.getBoundingClientRect().top;
    const first = [...list.querySelectorAll(".message")].find((m) => m.getBoundingClientRect().bottom > top + 1);
    return { text: first.querySelector(".text").textContent, y: first.getBoundingClientRect().top };
  });
  for (let i = 1010; i < 1030; i++) mock.publishWithoutId("r8", "bob", `n ${i}`);
  mock.publish("r8", "bob", "with an id");
  await waitForText(alice.page, "with an id");
  assert.equal(await nodes(), 1021);
  const after = await alice.page.$eval("#messages", (list, text) => {
    const m = [...list.querySelectorAll(".message")].find((e) => e.querySelector(".text").textContent === text);
    return { y: m.getBoundingClientRect().top, scrollTop: list.scrollTop };
  }, readingAt.text);
  assert.ok(Math.abs(after.y - readingAt.y) <= 1, `the text moved from ${readingAt.y} to ${after.y}`);

  // Back at the bottom: trimmed again.
  await alice.page.$eval("#messages", (list) => { list.scrollTop = list.scrollHeight; });
  await until("trimmed", async () => (await nodes()) === 1000);
  assert.equal((await messages(alice.page)).at(-1).text, "with an id");
  assert.deepEqual(alice.errors, []);
  await alice.close();
});

test("a page of history read from the room's new epoch is not mixed into the old one", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  for (let i = 1; i <= 60; i++) mock.publish("r10", "carol", `old ${i}`);
  const alice = await open(mock, "alice");
  await joinRoom(alice.page, "r10");
  await until("50 of history", async () => (await messages(alice.page)).length === 50);
  const old = Array.from({ length: 50 }, (_, i) => `old ${i + 11}`);

  // The room's history is reset; its `joined` has not come yet when the
  // page of earlier messages is answered from the new history.
  mock.resetRoom("r10");
  for (let i = 1; i <= 5; i++) mock.publish("r10", "carol", `new ${i}`, { quiet: true });
  await alice.page.click("#older-button");
  await until("the page answered", async () => mock.received.some((f) => f.type === "history") &&
    (await alice.page.textContent("#older-button")) !== "Loading…");
  assert.deepEqual((await messages(alice.page)).map((m) => m.text), old);

  mock.resync("r10");
  await until("the room redrawn", async () => (await messages(alice.page)).length === 5);
  assert.deepEqual((await messages(alice.page)).map((m) => [m.id, m.text]),
    [1, 2, 3, 4, 5].map((i) => [i, `new ${i}`]));
  assert.deepEqual(alice.errors, []);
  await alice.close();
});
