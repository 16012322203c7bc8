/*
 * dom.js — the page's elements (index.html) and small DOM helpers shared by
 * the UI modules. The ids are stable hooks for tests and styling; app.js
 * lists them.
 */

const $ = (id) => document.getElementById(id);

export const ui = {
  loginScreen: $("login-screen"), loginForm: $("login-form"), username: $("username"),
  loginButton: $("login-button"), loginError: $("login-error"), chat: $("chat"),
  sidebarToggle: $("sidebar-toggle"), sidebarClose: $("sidebar-close"), totalUnread: $("total-unread"),
  sidebar: $("sidebar"), roomName: $("room-name"), whoami: $("whoami"), status: $("status"),
  logoutButton: $("logout-button"), roomForm: $("room-form"), roomInput: $("room-input"),
  roomError: $("room-error"), quickRooms: $("quick-rooms"), rooms: $("rooms"), noRooms: $("no-rooms"),
  members: $("members"), memberCount: $("member-count"), olderButton: $("older-button"),
  messages: $("messages"), typing: $("typing"), chatError: $("chat-error"),
  messageForm: $("message-form"), messageInput: $("message-input"), sendButton: $("send-button"),
  announcer: $("announcer"),
};

/** A new element; `text` goes in as textContent, never as markup. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The screens on which the sidebar is a drawer (style.css's breakpoint). */
export const NARROW = "(max-width: 760px)";

/** Whether the sidebar is a drawer (style.css switches at the same width). */
export function isNarrow() {
  return window.matchMedia(NARROW).matches;
}

/** The error line under the conversation; `input`, when given, is marked invalid. */
export function showChatError(text, input) {
  ui.chatError.textContent = text;
  // whoever set a kind sets it again after this call: an error shown since
  // is not one the connection's return clears
  delete ui.chatError.dataset.kind;
  ui.messageInput.removeAttribute("aria-invalid");
  if (text && input) input.setAttribute("aria-invalid", "true");
}

/**
 * The error line of the room form. It sits beside the form rather than under
 * the conversation because on a phone the open drawer covers #chat-error.
 */
export function showRoomError(text) {
  ui.roomError.textContent = text;
  if (text) ui.roomInput.setAttribute("aria-invalid", "true");
  else ui.roomInput.removeAttribute("aria-invalid");
}
