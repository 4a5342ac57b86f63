import { CreatorFeed, type LogFeed } from '../core/creator-feed.js';
import { StreamhubError } from '../core/errors.js';
import type { FiniteLogWriter } from '../core/log-writer.js';
import type { GenerationSink } from '../llm/generation.js';
import type { LlmError, ModelChunk } from '../llm/provider.js';
import { type CompletionEventType, DONE_SENTINEL } from './completion-stream.js';
import { errorTypeOf, statusOfLlmError } from './errors.js';
import { errorBody } from './wire.js';

const NOTHING_TO_WRITE = Promise.resolve();

const LOST_COMPLETION = JSON.stringify(
  errorBody(
    'completion_lost',
    'the completion lost chunks in a backend failover; ask again',
    'server_error',
  ),
);

/**
 * Records a streamed completion in its log exactly as clients will read it: each chunk's JSON
 * text, byte for byte as the model's server sent it, is one event's data, so replay and live
 * delivery send the same bytes. The log begins with the first chunk; a failure before it
 * leaves no log and is the client's HTTP error instead (see `opened`).
 */
export class CompletionRecorder implements GenerationSink {
  /** Settles once: with the first append, or with the failure that came before it. */
  readonly opened: Promise<void>;
  #open!: () => void;
  #refuse!: (error: Error) => void;
  #isOpen = false;
  readonly #creator: CreatorFeed;
  #opener: (() => LogFeed) | undefined;

  constructor(
    readonly writer: FiniteLogWriter,
    /** The client asked for usage; otherwise the usage-only chunk is left out. */
    readonly includeUsage: boolean,
    /** The log is open already: a continuation of a completion that lost its generator. */
    continuing = false,
  ) {
    this.opened = new Promise((resolve, reject) => {
      this.#open = resolve;
      this.#refuse = reject;
    });
    // Awaited by whoever started the completion; a rejection nobody awaits is not an error.
    this.opened.catch(() => {});
    this.#creator = new CreatorFeed(!continuing);
    if (continuing) {
      this.#isOpen = true;
      this.#open();
    }
  }

  /** The log has its first event: a failure from now on is recorded in it. */
  get isOpen(): boolean {
    return this.#isOpen;
  }

  /**
   * Calls `open` as soon as the log has its first event, in the same call, and feeds the
   * creator it returns every event of the log from that one on, then each as it is stored: in
   * the log's order, as the writer is its only writer and appends one at a time. Without this
   * the creator's own stream went through a hub subscription: a watch, a read of the log, and
   * a fan-out through the hub per batch. Counted with callgrind on a warm server
   * (`node --single-threaded`, main thread): 4 completions of 500 tokens took 76.0 M
   * instructions through the hub and 63.0 M fed; 100 one-token completions 236 M and 227 M.
   * Opened in the same call, the creator's stream has its headers written before the rest of
   * the upstream's read is handed over, with no promise hop between the first chunk and them.
   */
  openFor(open: () => LogFeed): void {
    this.#opener = open;
  }

  /**
   * No async layer of ours per chunk: stored at once when the log appends synchronously
   * (memory), else one `then` on the writer's promise, which holds the next chunk.
   */
  chunk(chunk: ModelChunk): Promise<unknown> | undefined {
    if (chunk.usageOnly && !this.includeUsage) return undefined;
    const data = chunk.json;
    const appended = this.writer.appendNow({ event: 'chunk', data });
    if (typeof appended === 'string') {
      this.#stored(appended, 'chunk', data);
      return undefined;
    }
    const stored = (id: string) => this.#stored(id, 'chunk', data);
    return this.#isOpen ? appended.then(stored) : appended.then(stored, this.#refuseOpening);
  }

  finish(): Promise<void> {
    return this.#append('done', DONE_SENTINEL);
  }

  fail(error: LlmError): Promise<void> {
    if (!this.#isOpen) return this.#refused(error);
    const type = errorTypeOf(statusOfLlmError(error.code));
    return this.#append('error', JSON.stringify(errorBody(error.code, error.message, type)));
  }

  /** Only shutdown (or a client gone before the first chunk) stops a streamed completion. */
  cancelled(): Promise<void> {
    if (!this.#isOpen) {
      return this.#refused(
        new StreamhubError(
          'unavailable',
          'cancelled',
          'the completion was stopped before it began',
        ),
      );
    }
    const body = errorBody(
      'cancelled',
      'the completion was stopped before it finished',
      'server_error',
    );
    return this.#append('error', JSON.stringify(body));
  }

  readonly #refuseOpening = (error: unknown): never => {
    this.#refuse(error as Error);
    throw error;
  };

  #refused(error: Error): Promise<void> {
    this.#refuse(error);
    return NOTHING_TO_WRITE;
  }

  async #append(type: CompletionEventType, data: string): Promise<void> {
    let id: string | undefined;
    try {
      id = await this.writer.append({ event: type, data }, { final: type !== 'chunk' });
    } catch (error) {
      if (!this.#isOpen) this.#refuse(error as Error);
      if (!this.writer.restarted || type === 'chunk') throw error;
      // The log lost chunks (a backend failover): what is left must not pass for the answer.
      [type, data] = ['error', LOST_COMPLETION];
      id = await this.writer.endRestarted({ event: type, data });
      if (id === undefined) return;
    }
    this.#stored(id, type, data);
  }

  #stored(id: string, event: CompletionEventType, data: string): void {
    this.#creator.stored(id, event, data);
    if (this.#isOpen) return;
    this.#isOpen = true;
    if (this.#opener !== undefined) this.#creator.follow(this.#opener());
    this.#open();
  }
}
