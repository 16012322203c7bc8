/*
 * chat-events.js — what the UI does with each event of the ConfabClient
 * (message, ack, delivery, joined, presence, typing, left, error), and the
 * loading of earlier messages. app.js subscribes these to the current
 * client; every handler looks the room up in room-views.js and ignores
 * rooms the UI no longer shows.
 */
import { ui, showChatError } from "./dom.js";
import { current } from "./current.js";
import { announceMessage, announceNote } from "./announcer.js";
import {
  addSystem, appendUnordered, markFailed, markSent, nearBottom, placeBefore, placeMessage, renderMessage,
  scrollToBottom, setState,
} from "./message-view.js";
import {
  views, activeName, boundRoom, countUnread, removeView, renderMembers, scheduleMembers, renderOlderButton, startTyping,
  stopTyping,
} from "./room-views.js";

/** Messages per join and per history page. */
export const PAGE = 50;

/** Shows a message once: a second copy (same room and id) only updates the first. */
export function onMessage(m) {
  const view = views.get(m.room);
  if (!view) return;
  const isActive = view.name === activeName();
  const stick = isActive && nearBottom();
  if (m.from) stopTyping(view, m.from);
  if (m.id !== undefined && view.byId.has(m.id)) return;
  let node = m.clientId ? view.pending.get(m.clientId) : undefined;
  if (node) {
    view.pending.delete(m.clientId);
    markSent(node, m.sent);
  } else {
    node = renderMessage(m);
  }
  if (m.id !== undefined) placeMessage(view, node, m.id);
  else appendUnordered(view, node);
  if (m.source !== "history" && !m.mine) {
    if (!isActive || document.hidden) countUnread(view);
    // Only what arrives now is read out: not a join's history or a rejoin's
    // replay ("gap" messages are live ones that missed the socket).
    if (isActive && (m.source === "live" || m.source === "gap")) announceMessage(m);
  }
  boundRoom(view, stick);
  if (stick) scrollToBottom();
}

export function onAck({ id, room, messageId, sent }) {
  const view = views.get(room);
  const node = view?.pending.get(id);
  if (!node) return;
  view.pending.delete(id);
  if (messageId !== undefined && view.byId.has(messageId)) {
    node.remove(); // its echo is already on screen
    return;
  }
  const stick = room === activeName() && nearBottom();
  markSent(node, sent);
  if (messageId === undefined) appendUnordered(view, node);
  else placeMessage(view, node, messageId);
  if (stick) scrollToBottom();
}

export function onDelivery(d) {
  const view = views.get(d.room);
  const node = view?.pending.get(d.id);
  if (!node) return;
  if (d.state === "failed") failPending(view, d.id, d.error);
  else if (d.state === "sending") setState(node, "sending", d.retryIn !== undefined ? "sending… (retrying)" : "");
}

/**
 * Marks a pending send failed, with why; a send refused before it reached
 * the outbox (client.send rejects at once, and no `delivery` follows) ends
 * here too, so that nothing stays "sending…" for ever.
 */
export function failPending(view, id, error) {
  const node = view.pending.get(id);
  if (!node) return;
  view.pending.delete(id);
  markFailed(node, error?.message ?? "");
  if (error && error.code !== "left" && error.code !== "closed") {
    showChatError(error.code === "unconfirmed" ? `Your message may not have been sent: ${error.message}`
      : `Your message was not sent: ${error.message}`);
  }
}

export function onJoined(info) {
  const view = views.get(info.room);
  if (!view) return;
  view.item.dataset.state = "joined";
  if (info.reset) {
    for (const node of [...view.log.children]) if (!node.classList.contains("pending")) node.remove();
    view.byId.clear();
    if (info.rejoin) addNote(view, "The room's history was reset on the server; showing it afresh.");
  } else if (info.gap) {
    addNote(view, "Some messages sent while you were away could not be recovered.");
  }
  view.epoch = info.epoch;
  if (!info.rejoin || info.reset) {
    // Anything below the oldest id shown may be older history: a snapshot
    // holds at most PAGE messages and fewer when cut to the server's byte
    // budget (long messages), so its length cannot tell. The first page
    // fetched says for sure (has_more). With none at all (a room the client
    // was in already, drawn from what it knows), so is every id to lastId.
    const oldest = info.messages.find((m) => m.id !== undefined)?.id;
    view.hasMore = oldest !== undefined ? oldest > 1 : info.lastId > 0;
  }
  view.members = new Map(info.members.map((m) => [m.user, true]));
  view.count = info.count;
  if (view.name === activeName()) {
    renderMembers();
    renderOlderButton();
  }
}

export function onPresence({ room, user, action, count }) {
  const view = views.get(room);
  if (!view) return;
  if (action === "join") view.members.set(user, true);
  else view.members.delete(user);
  if (action === "leave") stopTyping(view, user);
  view.count = count;
  if (room === activeName()) scheduleMembers();
}

export function onTyping({ room, user }) {
  const view = views.get(room);
  if (view && user !== current.client?.username) startTyping(view, user);
}

export function onLeft({ room, error }) {
  if (removeView(room) && error) showChatError(`You are no longer in #${room}: ${error.message}`);
}

/** Errors no promise reports (a fatal one is app.js's: it ends the session). */
export function onError(err) {
  if (err.code === "gap") {
    console.warn(`confab: ${err.message}`);
    if (err.lost) noteLost(err);
    return;
  }
  if (err.code === "network" || err.code === "disconnected" || err.code === "timeout") {
    // `timeout` comes only from the client: a join, a send or a ping with
    // no answer, and it is reconnecting (a server's `timeout` is retried)
    showChatError(err.code === "timeout" ? err.message : `${err.message} Retrying…`);
    ui.chatError.dataset.kind = "connection";
    return;
  }
  const where = err.room ? ` (#${err.room})` : "";
  showChatError(`${err.message}${where}`);
}

/** The client gave up on some messages of a room: say so where they would have been. */
function noteLost({ room, missing }) {
  const view = views.get(room);
  if (!view || !missing) return;
  const n = missing.to - missing.from + 1;
  addNote(view, n === 1 ? "1 message could not be loaded." : `${n} messages could not be loaded.`);
}

/**
 * A system note in a room; in the room on screen it is also read out, as
 * #messages is not a live region. A note in another room is not: the
 * user is not looking at it (nor are its messages read out).
 */
function addNote(view, text) {
  addSystem(view, text);
  if (view.name === activeName()) announceNote(text);
}

/** The connection is back: a "connection lost" error is over. */
export function onConnected() {
  if (ui.chatError.dataset.kind === "connection") {
    showChatError("");
    delete ui.chatError.dataset.kind;
  }
}

/** Loads the page of messages before the oldest one shown. */
export async function loadOlder(view) {
  const client = current.client;
  if (!view || !view.hasMore || view.loadingOlder || !client) return;
  const first = view.log.querySelector(".message[data-id]");
  // With none on screen, every message up to the room's last id is older.
  const before = first ? Number(first.dataset.id) : (client.room(view.name)?.lastId ?? 0) + 1;
  if (before <= 1) {
    view.hasMore = false;
    renderOlderButton();
    return;
  }
  const epoch = view.epoch;
  view.loadingOlder = true;
  renderOlderButton();
  try {
    const res = await client.history(view.name, { before, limit: PAGE });
    if (views.get(view.name) !== view || current.client !== client) return;
    // A page of another epoch than the ids on screen (the room's history was
    // reset: its `joined` with `reset` is on its way, or came meanwhile) has
    // ids of another history; mixed in, it would show messages that never
    // came before these. Dropped: the `joined` redraws the room.
    if (view.epoch !== epoch || (res.epoch !== undefined && res.epoch !== epoch)) return;
    const isActive = view.name === activeName();
    const height = ui.messages.scrollHeight;
    const top = ui.messages.scrollTop;
    // The page is older than every id shown (it was asked for before the
    // oldest): it goes before the oldest message with an id, and so above
    // any note below it. Looked up again: the log may have changed while
    // the page was on its way.
    const oldest = view.log.querySelector(".message[data-id]");
    const firstId = oldest ? Number(oldest.dataset.id) : Infinity;
    const ref = oldest ?? view.log.firstElementChild;
    for (const m of res.messages) {
      if (m.id === undefined || view.byId.has(m.id)) continue;
      if (m.id < firstId) placeBefore(view, renderMessage(m), m.id, ref);
      else placeMessage(view, renderMessage(m), m.id);
    }
    view.hasMore = res.hasMore && res.messages.length > 0;
    if (isActive) ui.messages.scrollTop = top + (ui.messages.scrollHeight - height);
  } catch (err) {
    if (err.code !== "disconnected") showChatError(`Could not load earlier messages: ${err.message}`);
  } finally {
    view.loadingOlder = false;
    if (view.name === activeName()) renderOlderButton();
  }
}
