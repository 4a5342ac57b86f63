type Waiter<T> = {
  resolve(result: IteratorResult<T>): void;
  reject(error: unknown): void;
};

/**
 * What the connection pushes, until the consumer pulls it: items in order, then the failure
 * (once) if there was one, then the end.
 */
export class EventQueue<T> implements AsyncIterableIterator<T> {
  readonly #items: T[] = [];
  readonly #waiters: Waiter<T>[] = [];
  #ended = false;
  #failure: { error: unknown } | undefined;

  /** `onReturn`: the consumer stopped early (`break` out of `for await`). */
  constructor(readonly onReturn: () => void) {}

  push(item: T): void {
    if (this.#ended) return;
    const waiter = this.#waiters.shift();
    if (waiter === undefined) this.#items.push(item);
    else waiter.resolve({ value: item, done: false });
  }

  /** No more items: the consumer gets the buffered ones, then `error` (if given), then the end. */
  end(error?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    if (error !== undefined) this.#failure = { error };
    // Waiting consumers means nothing is buffered.
    for (const waiter of this.#waiters.splice(0)) this.#settle(waiter);
  }

  /** Ends now, dropping what is buffered (a failure too). */
  clear(): void {
    this.#items.length = 0;
    this.#failure = undefined;
    this.end();
  }

  next(): Promise<IteratorResult<T>> {
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      if (this.#items.length > 0) resolve({ value: this.#items.shift() as T, done: false });
      else if (this.#ended) this.#settle(waiter);
      else this.#waiters.push(waiter);
    });
  }

  async return(): Promise<IteratorResult<T>> {
    this.onReturn();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  #settle(waiter: Waiter<T>): void {
    const failure = this.#failure;
    this.#failure = undefined;
    if (failure === undefined) waiter.resolve({ value: undefined, done: true });
    else waiter.reject(failure.error);
  }
}
