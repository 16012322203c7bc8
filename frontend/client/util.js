/**
 * client/util.js — the stateless parts of confab-client.js: protocol
 * constants, the error type, and pure helpers that check, convert or make
 * values. Nothing here keeps state or touches the network.
 *
 * confab-client.js re-exports SUBPROTOCOL, ROOM_PATTERN, ConfabError,
 * isValidRoom, byteLength, decodeToken and randomId as its public API; the
 * rest (RETRYABLE, NOTHING_DONE, wsUrlFor, withToken, httpUrlOf, sendFrame,
 * clampLimit, toId, normalizeMessages) is for the other client/ modules only.
 *
 * @module confab-client/util
 */

/** The WebSocket subprotocol this client speaks. */
export const SUBPROTOCOL = "confab.v1";

/** Valid room names: 1–64 bytes of `[A-Za-z0-9_.:-]`. */
export const ROOM_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Error codes after which a send (or a join) is retried. */
export const RETRYABLE = new Set(["timeout", "unavailable", "internal", "too_many_requests", "rate_limited"]);

/**
 * Refusals that say the server did nothing (docs/protocol.md): a send refused
 * with one was not stored. After `timeout` or `internal` it may have been.
 */
export const NOTHING_DONE = new Set(["unavailable", "too_many_requests", "rate_limited", "not_member"]);

const encoder = new TextEncoder();

/**
 * Every failure this client reports. `code` is one of the server's error codes
 * (docs/protocol.md) or one of the client's own: `network`, `login_failed`,
 * `unauthorized`, `bad_room`, `bad_id`, `too_big`, `empty_message`, `bad_text`,
 * `not_joined`, `left`, `closed`, `disconnected`, `unconfirmed` (a send with
 * no answer, too old to send again without risking a double), and `gap` (a notice about
 * messages that did not arrive live, see docs/protocol.md). The client also
 * uses the server's `timeout` for a join, a send or a ping nobody answered
 * (it then reconnects).
 */
export class ConfabError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{ref?: string, room?: string, status?: number, fatal?: boolean,
   *   missing?: {from: number, to: number}, lost?: boolean, retryAfter?: number}} [details]
   */
  constructor(code, message, details = {}) {
    super(message);
    this.name = "ConfabError";
    /** @type {string} */
    this.code = code;
    /** @type {string|undefined} the refused request's id */
    this.ref = details.ref;
    /** @type {string|undefined} */
    this.room = details.room;
    /** @type {number|undefined} HTTP status, for login errors */
    this.status = details.status;
    /** @type {boolean} the client stopped because of it */
    this.fatal = Boolean(details.fatal);
    /** @type {{from: number, to: number}|undefined} for `gap`: the message ids concerned, inclusive */
    this.missing = details.missing;
    /** @type {boolean} for `gap`: the client gave up on those ids; they will not be delivered */
    this.lost = Boolean(details.lost);
    /** @type {number|undefined} for a login answered 429 or 503: its `Retry-After`, in ms */
    this.retryAfter = details.retryAfter;
  }
}

/** True when `name` is a valid room name. */
export function isValidRoom(name) {
  return typeof name === "string" && ROOM_PATTERN.test(name);
}

/** Bytes of `text` once encoded as UTF-8. */
export function byteLength(text) {
  return encoder.encode(text).length;
}

/** The text of a `send` request, as the client puts it on the wire. */
export function sendFrame(room, message, id) {
  return JSON.stringify({ type: "send", payload: { room, message, id } });
}

/**
 * The claims of a JWT, without checking anything (the server does that).
 * @param {string} token
 * @returns {Record<string, unknown>|null}
 */
export function decodeToken(token) {
  try {
    let b64 = String(token).split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    b64 += "=".repeat((4 - (b64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === "object" ? claims : null;
  } catch {
    return null;
  }
}

/** A random id for a send: a UUID (also where crypto.randomUUID is unavailable). */
export function randomId() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") {
    try {
      return c.randomUUID(); // only in secure contexts
    } catch { /* fall through */ }
  }
  const b = new Uint8Array(16);
  if (c && typeof c.getRandomValues === "function") c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The WebSocket URL of a gateway: `{base}/ws` with ws: or wss:, under the
 * base's path as `{base}/login` is (a gateway behind `/chat/` of a proxy).
 */
export function wsUrlFor(base) {
  const url = new URL(`${base}/ws`);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

/** `url` with the token as its `token` parameter, next to any query it has. */
export function withToken(url, token) {
  const out = new URL(url);
  out.searchParams.set("token", token);
  return out.toString();
}

/** The plain HTTP URL of a WebSocket URL (ws: to http:, wss: to https:). */
export function httpUrlOf(wsUrl) {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === "wss:" ? "https:" : url.protocol === "ws:" ? "http:" : url.protocol;
  return url.toString();
}

/** A `limit` the server accepts: an integer in 0–100. */
export function clampLimit(n) {
  return Math.max(0, Math.min(100, Math.floor(Number(n) || 0)));
}

/** A message id from the wire, or undefined when it is not one. */
export function toId(v) {
  return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

/**
 * Keeps well-formed messages, ordered by id, each with the protocol's fields.
 * @returns {Array<{room: string, id?: number, message: string, from: string, sent: string}>}
 */
export function normalizeMessages(list, room) {
  if (!Array.isArray(list)) return [];
  const out = [];
  for (const m of list) {
    if (!m || typeof m !== "object" || typeof m.message !== "string") continue;
    const msg = {
      room: typeof m.room === "string" ? m.room : room,
      message: m.message,
      from: typeof m.from === "string" ? m.from : "",
      sent: typeof m.sent === "string" ? m.sent : "",
    };
    const id = toId(m.id);
    if (id !== undefined) msg.id = id;
    out.push(msg);
  }
  return out.sort((a, b) => (a.id ?? 0) - (b.id ?? 0));
}
