import type { StoredEvent } from './types.js';

/**
 * The client that started a generation, reading its log straight from the log's writer rather
 * than through a hub subscription. Returns false once it is gone: nothing more is fed.
 */
export type LogFeed = (events: readonly StoredEvent[]) => boolean;

/**
 * Where the creator reads on once the writer stopped feeding it before the log ended: from
 * the log itself, after `lastId` (the last event fed; none: from the start).
 */
export type ResumeFromLog = (lastId: string | undefined) => void;

/**
 * Hands the events its log's one writer stores to the client that started the generation:
 * those stored before the client follows as one backlog, then each as it is stored. In the
 * log's order, as long as every event of the log is stored through it, one at a time. When the
 * writer stops before the log's end (another process ends or continues it: a lost turn, a
 * failover), the creator is handed to the log from where the feed left it (`release`).
 */
export class CreatorFeed {
  /** Events stored since the log opened, kept until the creator follows. */
  #backlog: StoredEvent[] | undefined;
  #feed: LogFeed | undefined;
  #resume: ResumeFromLog | undefined;
  #seq = 0;
  #last: StoredEvent | undefined;
  /** `epoch-` of the first event stored: every id of the feed's epoch starts with it. */
  #epochPrefix: string | undefined;
  /** The creator reads from the log now (or will, once it follows). */
  #released = false;

  /**
   * Without `awaitingCreator` (e.g. a continuation) no creator will follow: nothing is kept.
   * With `oneEpoch`, an event of another epoch (the log was started again under the writer) is
   * not fed: the creator is handed to the log, which tells it to reset first.
   */
  constructor(
    awaitingCreator = true,
    readonly oneEpoch = false,
  ) {
    this.#backlog = awaitingCreator ? [] : undefined;
  }

  /**
   * Feeds the creator every event stored so far, then each as it is stored; at most once.
   * `resume` takes over if the writer stops before the log's end.
   */
  follow(feed: LogFeed, resume?: ResumeFromLog): void {
    const backlog = this.#backlog;
    this.#backlog = undefined;
    if (backlog === undefined || (backlog.length > 0 && !feed(backlog))) return;
    if (this.#released) resume?.(this.#last?.id);
    else [this.#feed, this.#resume] = [feed, resume];
  }

  /** An event the log stored under `id`, as the log holds it. */
  stored(id: string, event: string, data: string): void {
    if (this.#released) return;
    if (this.oneEpoch) {
      this.#epochPrefix ??= id.slice(0, id.lastIndexOf('-') + 1);
      if (!id.startsWith(this.#epochPrefix)) {
        this.#handOver();
        return;
      }
    }
    const stored: StoredEvent = { id, seq: ++this.#seq, event, data, time: Date.now() };
    this.#last = stored;
    if (this.#feed !== undefined) {
      if (!this.#feed([stored])) [this.#feed, this.#resume] = [undefined, undefined];
    } else {
      this.#backlog?.push(stored);
    }
  }

  /**
   * The writer is done: unless its last event `ends` the log, the creator (now, or once it
   * follows) reads the rest from the log, which whoever took the log over writes.
   */
  release(ends: (event: StoredEvent) => boolean): void {
    if (this.#released || (this.#last !== undefined && ends(this.#last))) return;
    this.#handOver();
  }

  #handOver(): void {
    this.#released = true;
    const resume = this.#resume;
    [this.#feed, this.#resume] = [undefined, undefined];
    resume?.(this.#last?.id);
  }
}
