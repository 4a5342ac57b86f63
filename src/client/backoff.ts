const DEFAULT_RETRY_MS = 1000;
const DEFAULT_MAX_RETRY_MS = 30_000;
const MIN_SUGGESTED_RETRY_MS = 100;

/** Exponential backoff with full jitter: a delay drawn uniformly from [0, min(max, base·2ⁿ)). */
export class Backoff {
  #failures = 0;
  #followsServer = false;

  constructor(
    public baseMs: number,
    readonly maxMs: number,
    readonly random: () => number = Math.random,
  ) {}

  /**
   * The delays of a reconnecting stream: based on `retryMs` when given, else on the server's
   * `retry:` suggestion (see `suggest`), 1 s until it makes one; at most `maxRetryMs` (30 s).
   */
  static forReconnection(retryMs?: number, maxRetryMs?: number): Backoff {
    const backoff = new Backoff(retryMs ?? DEFAULT_RETRY_MS, maxRetryMs ?? DEFAULT_MAX_RETRY_MS);
    backoff.#followsServer = retryMs === undefined;
    return backoff;
  }

  /** The delays of a reconnecting stream from a `backoff: { initialMs, maxMs }` option. */
  static fromOption(
    option: { readonly initialMs?: number; readonly maxMs?: number } = {},
  ): Backoff {
    return Backoff.forReconnection(option.initialMs, option.maxMs);
  }

  /**
   * The server's suggested reconnection delay (an SSE `retry:` field) becomes the base, unless
   * the user chose one. A floor, so that a server suggesting 0 cannot make a failing loop spin.
   */
  suggest(ms: number): void {
    if (this.#followsServer) this.baseMs = Math.max(ms, MIN_SUGGESTED_RETRY_MS);
  }

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
