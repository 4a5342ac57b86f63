import { StreamhubError } from '../core/errors.js';
import type { FiniteLogWriter } from '../core/log-writer.js';
import type { GenerationSink } from '../llm/generation.js';
import type { LlmError, ModelChunk } from '../llm/provider.js';
import { type CompletionEventType, DONE_SENTINEL } from './completion-stream.js';
import { errorTypeOf, statusOfLlmError } from './errors.js';
import { errorBody } from './wire.js';

const NOTHING_TO_WRITE = Promise.resolve();

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

  constructor(
    readonly writer: FiniteLogWriter,
    /** The client asked for usage; otherwise the usage-only chunk is left out. */
    readonly includeUsage: boolean,
  ) {
    this.opened = new Promise((resolve, reject) => {
      this.#open = resolve;
      this.#refuse = reject;
    });
    // Awaited by whoever started the completion; a rejection nobody awaits is not an error.
    this.opened.catch(() => {});
  }

  /** Once open, the writer's own promise: no async layer of ours on the path of every chunk. */
  chunk(chunk: ModelChunk): Promise<unknown> {
    if (chunk.usageOnly && !this.includeUsage) return NOTHING_TO_WRITE;
    const event = { event: 'chunk', data: chunk.json };
    return this.#isOpen ? this.writer.append(event) : this.#append('chunk', chunk.json);
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

  #refused(error: Error): Promise<void> {
    this.#refuse(error);
    return NOTHING_TO_WRITE;
  }

  async #append(type: CompletionEventType, data: string): Promise<void> {
    try {
      await this.writer.append({ event: type, data }, { final: type !== 'chunk' });
    } catch (error) {
      if (!this.#isOpen) this.#refuse(error as Error);
      throw error;
    }
    if (this.#isOpen) return;
    this.#isOpen = true;
    this.#open();
  }
}
