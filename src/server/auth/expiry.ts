import type { Principal } from './principal.js';

const TICK_MS = 1000;

/**
 * Calls listeners once their time has come, to the second. One timer for the whole process,
 * running only while something waits, however many streams hold an expiring token.
 */
class ExpiryClock {
  /** Listeners by the tick (second) at which they are due. */
  readonly #due = new Map<number, Set<() => void>>();
  #timer: NodeJS.Timeout | undefined;

  /** Calls `listener` (which must not throw) within a second after `at`, in ms since the
   *  epoch; returns a function that cancels it. */
  schedule(at: number, listener: () => void): () => void {
    const tick = Math.ceil(at / TICK_MS);
    let listeners = this.#due.get(tick);
    if (listeners === undefined) {
      listeners = new Set();
      this.#due.set(tick, listeners);
    }
    listeners.add(listener);
    this.#timer ??= setInterval(() => this.#fire(), TICK_MS).unref();
    const scheduled = listeners;
    return () => {
      scheduled.delete(listener);
      if (scheduled.size === 0 && this.#due.get(tick) === scheduled) this.#due.delete(tick);
      this.#stopIfIdle();
    };
  }

  #fire(): void {
    const now = Date.now();
    for (const [tick, listeners] of this.#due) {
      if (tick * TICK_MS > now) continue;
      this.#due.delete(tick);
      for (const listener of listeners) listener();
    }
    this.#stopIfIdle();
  }

  #stopIfIdle(): void {
    if (this.#due.size > 0 || this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

const clock = new ExpiryClock();

/**
 * Calls `listener` (once) within about a second after the principal's credentials expire;
 * never for credentials that do not. Returns a function that cancels it.
 */
export function whenExpired(principal: Principal, listener: () => void): () => void {
  if (principal.expiresAt === null) return () => {};
  return clock.schedule(principal.expiresAt, listener);
}
