/*
 * announcer.js — what a screen reader hears of the conversation.
 *
 * #messages is not a live region: everything put into it (a room switch, a
 * join's history, "load earlier", one's own message moved into place on its
 * ack) would be read out. Instead the UI calls announce() for the few things
 * worth interrupting for — a new message from someone else in the room on
 * screen, and a system note in it (messages lost, a history reset) — and
 * this module puts a short line into #announcer, a visually
 * hidden aria-live=polite region.
 *
 * Each announcement is a new child element: a screen reader reads additions,
 * so the same text twice in a row ("bob: ok", "bob: ok") is read twice, which
 * rewriting one element's text would not do. Old lines are removed so the
 * region stays small; removals are not announced.
 */
import { ui, el } from "./dom.js";

const KEEP = 3;          // lines left in the region; older ones go
const MAX_CHARS = 200;   // a long message is cut: the full text is in #messages

/** Queues `text` for screen readers (politely: after what they are reading). */
function announce(text) {
  const line = [...text].length > MAX_CHARS ? `${[...text].slice(0, MAX_CHARS).join("")}…` : text;
  ui.announcer.append(el("p", "", line));
  while (ui.announcer.childElementCount > KEEP) ui.announcer.firstElementChild.remove();
}

/** "alice: hello" for a message of someone else in the room on screen. */
export function announceMessage({ from, message }) {
  announce(`${from || "unknown"}: ${message}`);
}

/** A system note of the room on screen ("3 messages could not be loaded."). */
export function announceNote(text) {
  announce(text);
}

/** Forgets everything queued (on logout: nothing of the session is read out later). */
export function clearAnnouncements() {
  ui.announcer.replaceChildren();
}
