/** Exponential backoff with full jitter: a delay drawn uniformly from [0, min(max, base·2ⁿ)). */
export class Backoff {
  #failures = 0;

  constructor(
    public baseMs: number,
    readonly maxMs: number,
    readonly random: () => number = Math.random,
  ) {}

  next(): number {
    // Past 2³⁰ the cap has long been reached; stop growing the exponent before it overflows.
    const exponent = Math.min(this.#failures++, 30);
    return Math.floor(this.random() * Math.min(this.maxMs, this.baseMs * 2 ** exponent));
  }

  reset(): void {
    this.#failures = 0;
  }
}

/** Resolves after `ms`, or as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
