import { EventQueue } from './event-queue.js';

/**
 * An async iterable of what a background task pushes while it follows a stream: reading starts
 * at once and what arrives is buffered until it is read. The task's failure is thrown by the
 * iteration after the items before it; `close()`, an abort of the caller's signal or a `break`
 * out of the loop stop the task.
 */
export abstract class FollowedStream<T> implements AsyncIterable<T> {
  /** Aborted when the stream is closed: the task stops. */
  protected readonly controller = new AbortController();
  protected readonly queue = new EventQueue<T>(() => this.close());

  /** Runs `follow` until it settles; subclasses call it last in their constructor. */
  protected start(follow: () => Promise<void>, signal: AbortSignal | undefined): void {
    const close = () => this.close();
    if (signal?.aborted) close();
    signal?.addEventListener('abort', close, { once: true });
    follow()
      .then(
        () => this.queue.end(),
        (error: unknown) => this.queue.end(error),
      )
      .finally(() => signal?.removeEventListener('abort', close));
  }

  close(): void {
    this.queue.clear();
    this.controller.abort();
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this.queue;
  }
}
