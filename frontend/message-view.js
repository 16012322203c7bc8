/*
 * message-view.js — the messages of one room (a RoomView's `log`, see
 * room-views.js): rendering a message, keeping the log in id order, system
 * notes, the scroll position of #messages and where the user is reading,
 * and bounding how many nodes a room keeps.
 *
 * Order in a log: messages with ids in id order, with system notes and
 * messages without ids (published by a backend straight to Redis) where they
 * arrived; then the pending sends (`.pending`, no id yet), always last, in
 * the order they were sent. All user text goes in with textContent only.
 */
import { ui, el } from "./dom.js";
import { me } from "./current.js";

/** Nodes a room keeps besides its pending sends; older ones go (and can be reloaded). */
const MAX_RENDERED = 1000;
/**
 * The bound while the user reads the room on screen scrolled up, where
 * nothing is dropped below it: a busy room read far above its bottom for
 * long would otherwise grow without limit.
 */
export const MAX_READING = 5 * MAX_RENDERED;
const NEAR_BOTTOM_PX = 48;

function parseDate(value) {
  const date = typeof value === "string" && value ? new Date(value) : new Date(NaN);
  return Number.isNaN(date.getTime()) ? new Date() : date;
}

function formatTime(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function setTime(node, sent) {
  const date = parseDate(sent);
  const time = node.querySelector(".time");
  time.textContent = formatTime(date);
  time.dateTime = date.toISOString();
  time.title = date.toLocaleString();
}

/** `state` is sending, sent or failed; `detail` says why it is retried or failed. */
export function setState(node, state, detail = "") {
  node.dataset.state = state;
  const label = node.querySelector(".state");
  if (!label) return;
  label.textContent = state === "sending" ? (detail || "sending…")
    : state === "failed" ? `not sent${detail ? `: ${detail}` : ""}` : "sent";
}

/** A message element; `clientId` marks an own send not acked yet. */
export function renderMessage({ id, from, message, sent }, clientId) {
  const mine = Boolean(clientId) || (from !== "" && from === me());
  const node = el("div", "message");
  node.dataset.from = from;
  if (id !== undefined) node.dataset.id = String(id);
  if (mine) node.classList.add("mine");
  node.append(el("span", "from", from || "unknown"), el("time", "time"));
  if (mine) node.append(el("span", "state"));
  node.append(el("span", "text", message));
  setTime(node, sent);
  if (clientId) {
    node.classList.add("pending");
    node.dataset.clientId = clientId;
    setState(node, "sending");
  } else {
    setState(node, "sent");
  }
  return node;
}

/** Turns a pending send into a sent message (its id, when known, is set by placeMessage). */
export function markSent(node, sent) {
  node.classList.remove("pending");
  setTime(node, sent);
  setState(node, "sent");
  node.remove(); // placed again by the caller
}

/** A pending send that will not go out: it stays, marked, where it is. */
export function markFailed(node, message) {
  node.classList.remove("pending");
  setState(node, "failed", message);
  node.title = message;
}

/**
 * Puts a message with an id in id order: after the last message with a
 * smaller id (or a system note), before the pending sends at the end.
 */
export function placeMessage(view, node, id) {
  node.dataset.id = String(id);
  view.byId.set(id, node);
  let ref = view.log.lastElementChild;
  while (ref && ref.classList.contains("pending")) ref = ref.previousElementSibling;
  while (ref && ref.classList.contains("message") && Number(ref.dataset.id) > id) ref = ref.previousElementSibling;
  if (ref) ref.after(node);
  else view.log.prepend(node);
}

/**
 * Puts a message older than every message with an id on screen ("load
 * earlier") before `ref`, the first of those (null: at the end). Not
 * placeMessage(): walking back from the end, it stops at the first note,
 * which may be anywhere below.
 */
export function placeBefore(view, node, id, ref) {
  node.dataset.id = String(id);
  view.byId.set(id, node);
  view.log.insertBefore(node, ref);
}

/** Appends a node without an id (a note, a message without id), before the pending sends. */
export function appendUnordered(view, node) {
  view.log.append(node);
  for (const p of view.pending.values()) view.log.append(p); // pending sends stay last
}

export function addSystem(view, text) {
  appendUnordered(view, el("div", "system", text));
}

export function nearBottom() {
  const list = ui.messages;
  return list.scrollHeight - list.scrollTop - list.clientHeight <= NEAR_BOTTOM_PX;
}

export function scrollToBottom() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

/** How many nodes a room has besides its pending sends. */
export function nodeCount(view) {
  return view.log.childElementCount - view.pending.size;
}

/**
 * Drops a room's oldest nodes beyond `max`: messages with or without ids,
 * failed sends, system notes. Pending sends are never dropped (the user
 * is still waiting on them). Dropped messages with ids can be loaded again
 * ("load earlier"): returns whether there were any, for the caller to show
 * the button. The caller keeps what the user reads in place (room-views.js
 * boundRoom).
 */
export function trim(view, max = MAX_RENDERED) {
  let excess = nodeCount(view) - max;
  let droppedId = false;
  // Walked from the first child rather than over a copy of all children:
  // past the bound, this runs for each message that comes in.
  let node = view.log.firstElementChild;
  while (excess > 0 && node) {
    const next = node.nextElementSibling;
    if (!node.classList.contains("pending")) {
      if (node.dataset.id !== undefined) {
        view.byId.delete(Number(node.dataset.id));
        view.hasMore = true;
        droppedId = true;
      }
      node.remove();
      excess -= 1;
    }
    node = next;
  }
  return droppedId;
}

/**
 * Where the user is reading in #messages, which shows `log`: its first node
 * in view, and how far below the top of #messages that node starts
 * (negative: cut off above). A node, not a pixel offset, so that it still
 * holds after nodes above it were dropped.
 * @returns {{node: Element, offset: number}|null} null for an empty log
 */
export function readingPlace(log) {
  const top = ui.messages.getBoundingClientRect().top;
  const nodes = log.children;
  // Nodes are stacked top to bottom: the first whose bottom is below the
  // top of the view, found by bisection (a room may hold MAX_READING).
  let lo = 0;
  let hi = nodes.length - 1;
  let found = null;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (nodes[mid].getBoundingClientRect().bottom > top) {
      found = nodes[mid];
      hi = mid - 1;
    } else {
      lo = mid + 1;
    }
  }
  return found && { node: found, offset: found.getBoundingClientRect().top - top };
}

/**
 * Scrolls #messages, which shows `log`, so that the node of `place` is where
 * it was. A node dropped meanwhile (trimmed) was older than everything
 * kept: the top of the log is the nearest place left.
 */
export function restoreReadingPlace(log, place) {
  if (!place || place.node.parentNode !== log) {
    ui.messages.scrollTop = 0;
    return;
  }
  const now = place.node.getBoundingClientRect().top - ui.messages.getBoundingClientRect().top;
  ui.messages.scrollTop += now - place.offset;
}
