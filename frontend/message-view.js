/*
 * message-view.js — the messages of one room (a RoomView's `log`, see
 * room-views.js): rendering a message, keeping the log in id order, system
 * notes, the scroll position of #messages, and bounding how many nodes a
 * room keeps.
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

/**
 * Drops a room's oldest nodes beyond MAX_RENDERED: messages with or without
 * ids, failed sends, system notes. Pending sends are never dropped (the user
 * is still waiting on them). Dropped messages with ids can be loaded again
 * ("load earlier"). Call only while the room is shown at its bottom (or
 * kept at its bottom while hidden): removing nodes above what the user is
 * reading would move it under their eyes.
 */
export function trim(view) {
  const excess = view.log.childElementCount - view.pending.size - MAX_RENDERED;
  if (excess <= 0) return;
  let dropped = 0;
  for (const node of [...view.log.children]) {
    if (dropped === excess) break;
    if (node.classList.contains("pending")) continue;
    if (node.dataset.id !== undefined) {
      view.byId.delete(Number(node.dataset.id));
      view.hasMore = true;
    }
    node.remove();
    dropped += 1;
  }
}
