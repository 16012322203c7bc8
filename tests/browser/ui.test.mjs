// The frontend's own behaviour in headless Chromium against the in-memory
// Protocol v1 server (mock-server.mjs): the session, what a screen reader
// is told, the phone-sized drawer, the unread count in the title, how many
// messages a room keeps and where the user comes back to, "load earlier",
// pages of history from a reset room, unsent messages at a logout or a
// reload, and a room left and joined again quickly. Each test asserts on
// what the user sees (or hears).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { MockConfab } from "./mock-server.mjs";
import {
  FRONTEND, until, launch, watchErrors, login, send, messages, waitForText, joinRoom, switchRoom, unread,
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
    // the state cycles (every attempt is refused): a sample counts only when
    // the snapshot itself was taken during a countdown
    return state === "reconnecting" && still === "reconnecting" && /\d+s/.test(text) &&
      /reconnecting/.test(spoken) && { text, spoken };
  }, 30000);
  assert.match(sample.spoken, /reconnecting/);
  assert.doesNotMatch(sample.spoken, /\d/, `the seconds are in the status region's text: ${sample.spoken}`);
  mock.refused.delete("alice");
  await until("connected again", async () => (await status.getAttribute("data-state")) === "connected", 30000);
  assert.match(await status.ariaSnapshot(), /connected/);
  await alice.close();
});

test("messages given up on are shown as a note in the room, read out in the room on screen only", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  mock.publish("r5", "bob", "before");
  mock.publish("r5b", "bob", "before b");
  const alice = await open(mock, "alice");
  await joinRoom(alice.page, "r5b");
  await joinRoom(alice.page, "r5");
  await waitForText(alice.page, "before");
  const logOrder = () => alice.page.$$eval("#messages .room-log > *", (els) => els.map((e) =>
    (e.classList.contains("system") ? `note: ${e.textContent}` : e.querySelector(".text").textContent)));

  // In a room not on screen: noted there, not read out.
  mock.loseIds("r5b", 2);
  mock.publish("r5b", "bob", "after b");
  await until("counted unread", async () => (await unread(alice.page, "r5b")) === 1);
  assert.deepEqual(await announced(alice.page), []);

  // In the room on screen: noted, and read out before the message after it.
  mock.loseIds("r5", 3); // ids 2-4 never arrive and are not in the history
  mock.publish("r5", "bob", "after");
  await waitForText(alice.page, "after");
  assert.deepEqual(await logOrder(), ["before", "note: 3 messages could not be loaded.", "after"]);
  await until("read out", async () => (await announced(alice.page)).length === 2);
  assert.deepEqual(await announced(alice.page), ["3 messages could not be loaded.", "bob: after"]);

  await switchRoom(alice.page, "r5b");
  assert.deepEqual(await logOrder(), ["before b", "note: 2 messages could not be loaded.", "after b"]);
  assert.deepEqual(alice.errors.filter((e) => !/^confab: Messages (2–4 of #r5|2–3 of #r5b)\b/.test(e)), []);
  await alice.close();
});

test("\"load earlier\" puts older messages above a note at the bottom, and what the user reads stays put", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  for (let i = 1; i <= 60; i++) mock.publish("r11", "carol", `old ${i}`);
  const alice = await open(mock, "alice");
  await joinRoom(alice.page, "r11");
  await until("50 of history", async () => (await messages(alice.page)).length === 50);
  mock.loseIds("r11", 3);
  mock.publish("r11", "bob", "after");
  await waitForText(alice.page, "after");

  // Scrolled to the top, which loads the page before "old 11"; where it is
  // in the view is measured at once, in the same task (the page comes
  // later). In the view: the "load earlier" button above it goes when
  // there is nothing more to load, and takes its height with it.
  const before = await alice.page.$eval("#messages", (list) => {
    list.scrollTop = 0;
    return [...list.querySelectorAll(".message")].find((m) => m.querySelector(".text").textContent === "old 11")
      .getBoundingClientRect().top - list.getBoundingClientRect().top;
  });
  await until("all 60", async () => (await messages(alice.page)).length === 61);
  const order = await alice.page.$$eval("#messages .room-log > *", (els) => els.map((e) =>
    (e.classList.contains("system") ? `note: ${e.textContent}` : e.querySelector(".text").textContent)));
  assert.deepEqual(order, [
    ...Array.from({ length: 60 }, (_, i) => `old ${i + 1}`), "note: 3 messages could not be loaded.", "after",
  ]);
  const after = await alice.page.$eval("#messages", (list) => [...list.querySelectorAll(".message")]
    .find((m) => m.querySelector(".text").textContent === "old 11")
    .getBoundingClientRect().top - list.getBoundingClientRect().top);
  assert.ok(Math.abs(after - before) <= 1, `"old 11" moved from ${before} to ${after}`);
  assert.deepEqual(alice.errors.filter((e) => !/^confab: Messages 61–63 of #r11\b/.test(e)), []);
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

test("a burst of presence events redraws the member list once, not once each", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  const alice = await open(mock, "alice");
  await joinRoom(alice.page, "busy");
  await alice.page.evaluate(() => {
    window.memberRedraws = 0;
    new MutationObserver(() => { window.memberRedraws += 1; })
      .observe(document.getElementById("members"), { childList: true });
  });
  // in no order, some capitalised or accented: the 100 shown are the first
  // 100 of all in the page's collation order (its localeCompare)
  const users = [];
  for (let i = 0; i < 300; i++) {
    const n = (i * 37) % 300;
    users.push(n % 7 === 0 ? `Ü${n}` : n % 5 === 0 ? `A${n}` : n % 3 === 0 ? `é${n}` : `u${n}`);
  }
  users.forEach((user, i) => mock.toRoom("busy", "presence", { room: "busy", user, action: "join", count: 2 + i }));
  await until("all 301 listed", async () => (await alice.page.textContent("#member-count")) === "(301)");
  const redraws = await alice.page.evaluate(() => window.memberRedraws);
  assert.ok(redraws <= 3, `${redraws} redraws for 300 presence events`);
  assert.equal(await alice.page.textContent("#members li.more"), "and 201 more");
  const [shown, want] = await alice.page.evaluate((all) => [
    [...document.querySelectorAll("#members li.member")].map((li) => li.dataset.user),
    all.sort((a, b) => a.localeCompare(b)).slice(0, 100),
  ], [...users, "alice"]);
  assert.deepEqual(shown, want);
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
  // The conversation it covers is inert: Tab and screen readers stay out of it.
  const inert = () => alice.page.$eval("#message-form", (c) => c.inert);
  const liveInert = () => alice.page.$eval("#chat-error", (c) => c.inert || c.closest("[inert]") !== null);
  assert.equal(await inert(), true);
  assert.equal(await liveInert(), false, "an error raised now is still announced");
  await alice.page.keyboard.press("Escape");
  assert.equal(await inert(), false);
  assert.equal(await alice.page.isVisible("#sidebar"), false);
  await alice.page.click("#sidebar-toggle");
  // on a wide screen the drawer is a sidebar that covers nothing
  await alice.page.setViewportSize({ width: 1200, height: 700 });
  await until("the conversation usable beside the sidebar", async () => (await inert()) === false);
  await alice.page.setViewportSize({ width: 375, height: 700 });
  await until("covered again", async () => (await inert()) === true);

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

test("when the room on screen drops its oldest messages, \"load earlier\" is offered and brings them back", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  const alice = await open(mock, "alice");
  await joinRoom(alice.page, "r12");
  assert.equal(await alice.page.isHidden("#older-button"), true);
  for (let i = 1; i <= 1001; i++) mock.publish("r12", "bob", `m ${i}`);
  await waitForText(alice.page, "m 1001");
  let list = await messages(alice.page);
  assert.deepEqual([list.length, list[0].text], [1000, "m 2"]);
  assert.equal(await alice.page.isVisible("#older-button"), true, "no way to see \"m 1\" again");
  // Scrolled up a little (at the bottom, what comes in is trimmed again),
  // the user asks for the earlier messages.
  await alice.page.$eval("#messages", (list) => { list.scrollTop = list.scrollHeight / 2; });
  await alice.page.click("#older-button");
  await waitForText(alice.page, "m 1");
  list = await messages(alice.page);
  assert.deepEqual([list.length, list[0].text, list[1].text], [1001, "m 1", "m 2"]);
  await until("nothing more to load", () => alice.page.isHidden("#older-button"));
  assert.deepEqual(alice.errors, []);
  await alice.close();
});

test("a room read scrolled up is bounded: to 1000 nodes off screen, 5000 on screen, and the user comes back to what they read", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  const alice = await open(mock, "alice");
  await joinRoom(alice.page, "r13");
  const publish = async (from, to) => {
    for (let i = from; i <= to; i++) mock.publish("r13", "bob", `m ${i}`);
  };
  await publish(1, 1000);
  await waitForText(alice.page, "m 1000");
  const nodes = () => alice.page.$eval("#messages .room-log", (l) => l.childElementCount);
  // Where "m 900" is in the view (px below its top), for the eyes of the user.
  const place = () => alice.page.$eval("#messages", (list) => {
    const m = [...list.querySelectorAll(".message")].find((e) => e.querySelector(".text").textContent === "m 900");
    return m ? m.getBoundingClientRect().top - list.getBoundingClientRect().top : null;
  });
  // The user scrolls up and reads from "m 900" (its top a little cut off).
  await alice.page.$eval("#messages", (list) => {
    const m = [...list.querySelectorAll(".message")].find((e) => e.querySelector(".text").textContent === "m 900");
    list.scrollTop += m.getBoundingClientRect().top - list.getBoundingClientRect().top + 7;
  });
  const reading = await place();
  assert.ok(reading > -20 && reading < 0, String(reading));

  // Another room for a while; what comes into this one meanwhile is bounded.
  await alice.page.evaluate(() => { window.r13log = document.querySelector("#messages .room-log"); });
  await joinRoom(alice.page, "r13b");
  await publish(1001, 1500);
  await until("counted unread", async () => (await unread(alice.page, "r13")) === 500);
  assert.deepEqual(await alice.page.evaluate(() =>
    [window.r13log.childElementCount, window.r13log.querySelector(".text").textContent]), [1000, "m 501"]);

  // Back: where they were, with the earlier messages a click away.
  await switchRoom(alice.page, "r13");
  assert.equal(await nodes(), 1000);
  const back = await place();
  assert.ok(Math.abs(back - reading) <= 2, `"m 900" at ${back}, was at ${reading}`);
  assert.equal(await alice.page.isVisible("#older-button"), true);

  // Reading above in a busy room on screen: nothing is dropped up to 5000
  // nodes, then the oldest go, and what the user reads stays put.
  await publish(1501, 5600);
  // (The last node only: reading all 5000 every 50 ms would slow the page.)
  await until("m 5600 in", async () => (await alice.page.$eval("#messages .room-log", (l) =>
    l.lastElementChild.querySelector(".text")?.textContent)) === "m 5600", 180000);
  assert.equal(await nodes(), 5000);
  assert.equal((await messages(alice.page))[0].text, "m 601");
  const still = await place();
  assert.ok(Math.abs(still - reading) <= 2, `"m 900" at ${still}, was at ${reading}`);

  // At the bottom again: 1000.
  await alice.page.$eval("#messages", (list) => { list.scrollTop = list.scrollHeight; });
  await until("trimmed", async () => (await nodes()) === 1000);
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

// The outbox lives in the page: a logout or a reload used to drop what it
// held without a word.
test("with messages not sent yet, a logout asks first and closing the page is held by the browser", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  const alice = await open(mock, "alice");
  await joined(alice.page, "general");
  const dialogs = [];
  let answer = "dismiss";
  alice.page.on("dialog", (d) => {
    dialogs.push([d.type(), d.message()]);
    d[answer]();
  });

  // Reconnected, but the rejoin is not answered: the message waits in the outbox.
  mock.joinsHeld = true;
  mock.kill("alice");
  await until("rejoining", () => mock.heldJoins.length === 1);
  await send(alice.page, "not yet");
  await alice.page.click("#logout-button");
  assert.deepEqual(dialogs, [["confirm",
    "1 message has not been sent yet and will be lost if you log out now. Log out anyway?"]]);
  assert.equal(await alice.page.isVisible("#chat"), true, "declined: still logged in");
  assert.deepEqual((await messages(alice.page)).map((m) => [m.text, m.state]), [["not yet", "sending"]]);

  const closing = new Promise((resolve) => {
    alice.page.once("dialog", (d) => resolve(d.type()));
    alice.page.once("close", () => resolve("closed"));
  });
  await alice.page.close({ runBeforeUnload: true });
  assert.equal(await closing, "beforeunload");
  assert.equal(alice.page.isClosed(), false, "declined: the page stays");

  // Sent: nothing to lose, nothing asked.
  mock.releaseJoins();
  await until("sent", async () => (await messages(alice.page)).some((m) => m.state === "sent"));
  await alice.page.click("#logout-button");
  await alice.page.waitForSelector("#login-screen:not([hidden])");
  assert.equal(dialogs.length, 2);

  // And asked, the user can go: a queued message is dropped on purpose.
  await login(alice.page, "alice");
  await joined(alice.page, "general");
  mock.joinsHeld = true;
  mock.kill("alice");
  await until("rejoining", () => mock.heldJoins.length === 1);
  await send(alice.page, "never mind");
  answer = "accept";
  await alice.page.click("#logout-button");
  await alice.page.waitForSelector("#login-screen:not([hidden])");
  assert.equal(dialogs.length, 3);
  const closed = new Promise((resolve) => alice.page.once("close", resolve));
  await alice.page.close({ runBeforeUnload: true });
  await closed;
  assert.equal(dialogs.length, 3, "logged out: nothing held the page");
  assert.deepEqual(alice.errors, []);
  await alice.close();
});

// Three taps within one round trip (× on #random, #random, × again) used to
// join the room once the first leave came back: the user was in a room the
// page did not show, to others present and rejoined after every reconnect.
test("leaving, joining and leaving a room again before the server answers leaves the user out of it", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  const alice = await open(mock, "alice");
  await joinRoom(alice.page, "random");
  await alice.page.evaluate(() => {
    const leave = () => document.querySelector('#rooms .room[data-room="random"] .leave-button').click();
    leave();
    document.querySelector('#quick-rooms button[data-room="random"]').click();
    leave();
  });
  await until("the leave answered", () =>
    mock.received.some((f) => f.user === "alice" && f.type === "leave" && f.payload.room === "random"));
  await alice.page.evaluate(() => new Promise((r) => setTimeout(r, 300)));
  const joins = mock.received.filter((f) => f.user === "alice" && f.type === "join" && f.payload.room === "random");
  assert.equal(joins.length, 1, "no join after the leave");
  assert.deepEqual(mock.membersOf("random"), []);
  assert.equal(await alice.page.$('#rooms .room[data-room="random"]'), null);

  await joinRoom(alice.page, "random"); // and it can be joined for real
  assert.deepEqual(mock.membersOf("random"), ["alice"]);
  assert.deepEqual(alice.errors, []);
  await alice.close();
});

// A join of a room the client is in already resolves with what it knows and
// emits no `joined`: the page's entry used to stay "joining" for ever.
test("a room the client is in already is drawn when joined from the page, its messages loaded as earlier ones", async () => {
  const mock = new MockConfab({ frontendDir: FRONTEND });
  for (let i = 1; i <= 3; i++) mock.publish("r12", "bob", `old ${i}`);
  const alice = await open(mock, "alice");
  await alice.page.evaluate(async () => {
    const { current } = await import("/current.js");
    await current.client.join("r12");
  });
  await joinRoom(alice.page, "r12");
  assert.deepEqual(await messages(alice.page), []);
  await alice.page.click("#older-button");
  await until("its messages", async () => (await messages(alice.page)).length === 3);
  assert.deepEqual((await messages(alice.page)).map((m) => [m.id, m.text]), [[1, "old 1"], [2, "old 2"], [3, "old 3"]]);
  mock.publish("r12", "bob", "new");
  await waitForText(alice.page, "new");
  assert.deepEqual(alice.errors, []);
  await alice.close();
});
