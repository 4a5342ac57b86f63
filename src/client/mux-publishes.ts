import type { MuxPublishOptions } from './mux.js';
import type { Published } from './publish.js';

/** A publish waiting to be sent, or for the server's answer. */
interface PendingPublish {
  readonly ref: string;
  /** The `publish` frame, with its ref. */
  readonly frame: object;
  answered(id: string): void;
  failed(error: unknown): void;
}

/**
 * The publishes of a mux connection: those not sent yet, in order, and those sent on the
 * current socket, by ref, until the server answers them.
 */
export class PublishQueue {
  readonly #outbox: PendingPublish[] = [];
  readonly #unanswered = new Map<string, PendingPublish>();

  /**
   * Queues a publish under `ref`: the promise resolves with the server's answer, or rejects with
   * why it was given up. Aborting the `signal` option takes it back.
   */
  add(ref: string, topic: string, data: unknown, options: MuxPublishOptions): Promise<Published> {
    const { event, signal } = options;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        this.#forget(pending);
        reject(signal?.reason);
      };
      const settled = () => signal?.removeEventListener('abort', onAbort);
      const pending: PendingPublish = {
        ref,
        frame: { type: 'publish', topic, data, event, ref },
        answered: (id) => {
          settled();
          resolve({ id, topic, event: event ?? 'message' });
        },
        failed: (error) => {
          settled();
          reject(error);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#outbox.push(pending);
    });
  }

  /** Sends the queued publishes with `write`; each then waits for the server's answer. */
  flush(write: (frame: object) => void): void {
    for (const pending of this.#outbox.splice(0)) {
      this.#unanswered.set(pending.ref, pending);
      write(pending.frame);
    }
  }

  /** The server stored the publish `ref` as the event `id`. */
  published(ref: unknown, id: string): void {
    this.#take(ref)?.answered(id);
  }

  /** An `error` frame answering `ref`: whether that was a publish, which then fails with it. */
  refused(ref: unknown, error: unknown): boolean {
    const pending = this.#take(ref);
    pending?.failed(error);
    return pending !== undefined;
  }

  /** The socket closed: what was sent on it and not answered fails with `error`. */
  dropped(error: unknown): void {
    for (const pending of this.#unanswered.values()) pending.failed(error);
    this.#unanswered.clear();
  }

  /** The connection ended: what was not sent fails with `reason`. */
  end(reason: unknown): void {
    for (const pending of this.#outbox.splice(0)) pending.failed(reason);
  }

  /** The publish `ref`, which then no longer waits for an answer. */
  #take(ref: unknown): PendingPublish | undefined {
    const key = String(ref);
    const pending = this.#unanswered.get(key);
    this.#unanswered.delete(key);
    return pending;
  }

  #forget(pending: PendingPublish): void {
    const index = this.#outbox.indexOf(pending);
    if (index >= 0) this.#outbox.splice(index, 1);
    this.#unanswered.delete(pending.ref);
  }
}
