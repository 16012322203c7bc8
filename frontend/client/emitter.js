/**
 * client/emitter.js — the minimal event emitter ConfabClient extends.
 *
 * Contract: listeners run synchronously, in subscription order, on a copy of
 * the list (so subscribing or unsubscribing inside a listener affects only
 * later emits); a listener that throws does not stop the others or the
 * client: its error is rethrown from a microtask, where the page reports it.
 *
 * @module confab-client/emitter
 */

export class Emitter {
  constructor() {
    /** @type {Map<string, Set<Function>>} */
    this._listeners = new Map();
  }

  /**
   * Subscribes to an event.
   * @param {string} event
   * @param {Function} fn
   * @returns {() => void} a function that unsubscribes
   */
  on(event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(fn);
    return () => this.off(event, fn);
  }

  /** Unsubscribes `fn` from `event`. */
  off(event, fn) {
    this._listeners.get(event)?.delete(fn);
  }

  /** Subscribes for one call only. */
  once(event, fn) {
    const off = this.on(event, (...args) => {
      off();
      fn(...args);
    });
    return off;
  }

  /** @protected */
  emit(event, ...args) {
    for (const fn of [...(this._listeners.get(event) ?? [])]) {
      try {
        fn(...args);
      } catch (err) {
        queueMicrotask(() => { throw err; }); // reported, but the client carries on
      }
    }
  }
}
