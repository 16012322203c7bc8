/*
 * status.js — the connection status line in the header (#status, role=status).
 */
import { ui } from "./dom.js";

let timer = 0;

function setStatus(state, text) {
  if (ui.status.dataset.state !== state) ui.status.dataset.state = state;
  if (ui.status.textContent !== text) ui.status.textContent = text;
}

/** Shows a `state` event of the client. */
export function showState({ state, retryAt }) {
  stopCountdown();
  if (state === "connected") {
    setStatus("connected", "connected");
  } else if (state === "connecting") {
    setStatus("connecting", "connecting…");
  } else if (state === "reconnecting") {
    const tick = () => {
      const left = Math.max(1, Math.ceil((retryAt - Date.now()) / 1000));
      setStatus("reconnecting", `reconnecting in ${left}s…`);
    };
    tick();
    timer = setInterval(tick, 250);
  } else {
    setStatus("disconnected", "offline");
  }
}

/** Shows that there is no session (after logout). */
export function showLoggedOut() {
  stopCountdown();
  setStatus("disconnected", "disconnected");
}

function stopCountdown() {
  clearInterval(timer);
  timer = 0;
}
