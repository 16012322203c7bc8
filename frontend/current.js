/*
 * current.js — the ConfabClient of the session on screen, or null when
 * logged out. Only app.js sets it; the UI modules read it (the user's name,
 * and calls such as history()). A client that is not `current.client` any
 * more has been closed, and nothing it says is shown.
 */
export const current = {
  /** @type {import("./confab-client.js").ConfabClient|null} */
  client: null,
};

/** The logged-in user's name, or "" when logged out. */
export function me() {
  return current.client?.username ?? "";
}
