import { LimitError } from '../core/errors.js';

/** Slots free up as generations end, within seconds: a refused client may soon find one. */
const OVERLOADED_RETRY_AFTER_MS = 1000;

/**
 * At most `maxActive` generations at once; up to `maxWaiting` more wait in line (first come,
 * first served) and anything beyond is refused at once with a LimitError `overloaded`, so a
 * burst costs a queue slot, never unbounded memory or an upstream stampede.
 */
export class ConcurrencyLimiter {
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(
    readonly maxActive: number,
    readonly maxWaiting: number,
  ) {}

  get active(): number {
    return this.#active;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Resolves to a release function once a slot is free; rejects with LimitError `overloaded`,
   * or with `signal`'s reason when it aborts the wait.
   */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    // An abort that already happened fires no event: without this it would wait for a slot.
    signal?.throwIfAborted();
    if (this.#active < this.maxActive) {
      this.#active++;
    } else if (this.#waiting.length < this.maxWaiting) {
      await this.#wait(signal); // the releasing generation hands its slot over
    } else {
      throw new LimitError(
        'unavailable',
        'overloaded',
        'too many generations in progress; retry shortly',
        OVERLOADED_RETRY_AFTER_MS,
      );
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next) next();
      else this.#active--;
    };
  }

  #wait(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const turn = () => {
        signal?.removeEventListener('abort', abandon);
        resolve();
      };
      const abandon = () => {
        const index = this.#waiting.indexOf(turn);
        if (index >= 0) this.#waiting.splice(index, 1);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', abandon, { once: true });
      this.#waiting.push(turn);
    });
  }
}
