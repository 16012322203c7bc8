/*
 * drawer.js — the sidebar (#sidebar: room form, rooms, members) as a drawer
 * on narrow screens: the toggle in the header opens it, its Close button,
 * Escape or a tap beside it close it. On wide screens it is always shown
 * and none of this applies (the toggle is hidden).
 *
 * Focus: opening the drawer focuses the room on screen in the list, not the
 * room name input, whose on-screen keyboard would cover half of a phone's
 * screen; closing it with Close or Escape returns focus to the toggle.
 * While it is open on a narrow screen the conversation it covers is inert
 * (but for its live regions), so that Tab and a screen reader stay in the
 * drawer and the header (whose toggle closes it).
 */
import { ui, isNarrow, NARROW } from "./dom.js";

function isDrawerOpen() {
  return ui.chat.classList.contains("sidebar-open");
}

/**
 * The conversation behind is inert while the open drawer covers it, but for
 * its live regions (the error line, who is typing): an inert subtree is not
 * announced, and an error raised meanwhile must be. They are children of
 * .conversation (index.html): a live region nested deeper would go inert.
 */
function coverConversation() {
  const covered = isDrawerOpen() && isNarrow();
  for (const part of ui.chat.querySelector(".conversation")?.children ?? []) {
    if (!part.matches("[role=alert], [aria-live]")) part.inert = covered;
  }
}

function openDrawer() {
  ui.chat.classList.add("sidebar-open");
  coverConversation();
  ui.sidebarToggle.setAttribute("aria-expanded", "true");
  const target = ui.rooms.querySelector('.room[aria-current="true"] .room-button')
    ?? ui.rooms.querySelector(".room-button") ?? ui.sidebarClose;
  target.focus();
}

export function closeDrawer() {
  if (!isDrawerOpen()) return;
  ui.chat.classList.remove("sidebar-open");
  ui.sidebarToggle.setAttribute("aria-expanded", "false");
  coverConversation();
}

export function bindDrawer() {
  // a phone turned, a window widened: a drawer that is no longer one covers nothing
  window.matchMedia(NARROW).addEventListener("change", coverConversation);
  ui.sidebarToggle.addEventListener("click", () => {
    if (isDrawerOpen()) closeDrawer();
    else openDrawer();
  });
  ui.sidebarClose.addEventListener("click", () => {
    closeDrawer();
    ui.sidebarToggle.focus();
  });
  document.addEventListener("click", (ev) => {
    // On a phone, a tap beside the open drawer closes it. The path is the
    // one the click took when it was dispatched: a handler before this one
    // may have removed the target (the leave button of a room), and a
    // detached target is not contained in the drawer any more.
    if (!isDrawerOpen() || !isNarrow()) return;
    const path = ev.composedPath();
    if (!path.includes(ui.sidebar) && !path.includes(ui.sidebarToggle)) closeDrawer();
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && isDrawerOpen() && isNarrow()) {
      closeDrawer();
      ui.sidebarToggle.focus();
    }
  });
}
