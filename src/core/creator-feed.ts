import type { StoredEvent } from './types.js';

/**
 * The client that started a generation, reading its log straight from the log's writer rather
 * than through a hub subscription. Returns false once it is gone: nothing more is fed.
 */
export type LogFeed = (events: readonly StoredEvent[]) => boolean;

/**
 * Hands the events its log's one writer stores to the client that started the generation:
 * those stored before the client follows as one backlog, then each as it is stored. In the
 * log's order, as long as every event of the log is stored through it, one at a time.
 */
export class CreatorFeed {
  /** Events stored since the log opened, kept until the creator follows. */
  #backlog: StoredEvent[] | undefined;
  #feed: LogFeed | undefined;
  #seq = 0;

  /** Without `awaitingCreator` (e.g. a continuation) no creator will follow: nothing is kept. */
  constructor(awaitingCreator = true) {
    this.#backlog = awaitingCreator ? [] : undefined;
  }

  /** Feeds the creator every event stored so far, then each as it is stored; at most once. */
  follow(feed: LogFeed): void {
    const backlog = this.#backlog;
    this.#backlog = undefined;
    if (backlog === undefined || (backlog.length > 0 && !feed(backlog))) return;
    this.#feed = feed;
  }

  /** An event the log stored under `id`, as the log holds it. */
  stored(id: string, event: string, data: string): void {
    const stored: StoredEvent = { id, seq: ++this.#seq, event, data, time: Date.now() };
    if (this.#feed !== undefined) {
      if (!this.#feed([stored])) this.#feed = undefined;
    } else {
      this.#backlog?.push(stored);
    }
  }
}
