/*
 * drawer.js — the sidebar (#sidebar: room form, rooms, members) as a drawer
 * on narrow screens: the toggle in the header opens it, its Close button,
 * Escape or a tap beside it close it. On wide screens it is always shown
 * and none of this applies (the toggle is hidden).
 */
import { ui, isNarrow } from "./dom.js";

function isDrawerOpen() {
  return ui.chat.classList.contains("sidebar-open");
}

function openDrawer() {
  ui.chat.classList.add("sidebar-open");
  ui.sidebarToggle.setAttribute("aria-expanded", "true");
  ui.roomInput.focus();
}

export function closeDrawer() {
  if (!isDrawerOpen()) return;
  ui.chat.classList.remove("sidebar-open");
  ui.sidebarToggle.setAttribute("aria-expanded", "false");
}

export function bindDrawer() {
  ui.sidebarToggle.addEventListener("click", () => {
    if (isDrawerOpen()) closeDrawer();
    else openDrawer();
  });
  ui.sidebarClose.addEventListener("click", () => {
    closeDrawer();
    ui.sidebarToggle.focus();
  });
  document.addEventListener("click", (ev) => {
    // On a phone, a tap beside the open drawer closes it.
    if (isDrawerOpen() && isNarrow() &&
        !ui.sidebar.contains(ev.target) && !ui.sidebarToggle.contains(ev.target)) closeDrawer();
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && isDrawerOpen() && isNarrow()) {
      closeDrawer();
      ui.sidebarToggle.focus();
    }
  });
}
