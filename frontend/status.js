/*
 * status.js — the connection status line in the header (#status, role=status).
 *
 * A role=status region is read out whenever its text changes, so the
 * reconnect countdown ("reconnecting… 3s", updated every quarter second)
 * keeps its seconds in an aria-hidden span: a screen reader hears
 * "reconnecting…" once per state change, and the seconds are for the eyes.
 */
import { ui } from "./dom.js";

const text = ui.status.querySelector(".status-text");
const seconds = ui.status.querySelector(".status-seconds");
let timer = 0;

/** Sets the state (for styling and tests), the announced text and the silent detail. */
function setStatus(state, label, detail = "") {
  if (ui.status.dataset.state !== state) ui.status.dataset.state = state;
  // Writing the same text again would be announced again by some readers.
  if (text.textContent !== label) text.textContent = label;
  if (seconds.textContent !== detail) seconds.textContent = detail;
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
      setStatus("reconnecting", "reconnecting…", ` ${left}s`);
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
