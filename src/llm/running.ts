/** The abort reason of generations stopped because the server shuts down, not by a client. */
export class ShutdownAbort extends Error {
  constructor() {
    super('the server is shutting down');
  }
}

export function abortedByShutdown(signal: AbortSignal): boolean {
  return signal.reason instanceof ShutdownAbort;
}

interface Running {
  readonly controller: AbortController;
  readonly finished: Promise<void>;
}

/**
 * Generations running on this process, by key (session id, completion id): each can be
 * cancelled, and at shutdown they get a grace period to finish before they are stopped.
 */
export class RunningGenerations {
  readonly #running = new Map<string, Running>();
  #draining: Promise<void> | undefined;

  constructor(readonly onError: (error: unknown) => void = () => {}) {}

  /** Runs `work` in the background under `key`; failures go to `onError`, never unhandled. */
  start(key: string, work: (signal: AbortSignal) => Promise<void>): void {
    const controller = new AbortController();
    const finished: Promise<void> = work(controller.signal)
      .catch(this.onError)
      .finally(() => {
        // A newer generation under the same key (a reply this process took over again after
        // losing it) is not this one's to forget.
        if (this.#running.get(key)?.finished === finished) this.#running.delete(key);
      });
    this.#running.set(key, { controller, finished });
  }

  has(key: string): boolean {
    return this.#running.has(key);
  }

  /** Shutting down: nothing new should start here. */
  get draining(): boolean {
    return this.#draining !== undefined;
  }

  get size(): number {
    return this.#running.size;
  }

  /** Aborts the generation under `key` and resolves once it has recorded its end. */
  async cancel(key: string): Promise<boolean> {
    const running = this.#running.get(key);
    if (running === undefined) return false;
    running.controller.abort();
    await running.finished;
    return true;
  }

  /**
   * Lets running generations finish for up to `graceMs`, then stops the rest. A second call
   * joins the drain in progress rather than cutting its grace period short.
   */
  drain(graceMs: number): Promise<void> {
    this.#draining ??= this.#drain(graceMs);
    return this.#draining;
  }

  async #drain(graceMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([this.#all(), expired]);
    clearTimeout(timer);
    for (const running of this.#running.values()) running.controller.abort(new ShutdownAbort());
    await this.#all();
  }

  #all(): Promise<unknown> {
    return Promise.all([...this.#running.values()].map((running) => running.finished));
  }
}
