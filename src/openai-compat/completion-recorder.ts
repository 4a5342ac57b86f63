import type { FiniteLogWriter } from '../core/log-writer.js';
import type { GenerationSink } from '../llm/generation.js';
import type { LlmError, Usage } from '../llm/provider.js';
import { type CompletionEventType, DONE_SENTINEL } from './completion-stream.js';
import { errorTypeOf, statusOfLlmError } from './errors.js';
import { type CompletionIdentity, completionChunk, errorBody, usageChunk } from './wire.js';

/**
 * Records a streamed completion in its log exactly as clients will read it: every stored
 * event is a finished SSE payload, so replay and live delivery send the same bytes.
 */
export class CompletionRecorder implements GenerationSink {
  constructor(
    readonly writer: FiniteLogWriter,
    readonly identity: CompletionIdentity,
    readonly includeUsage: boolean,
  ) {}

  /**
   * OpenAI's streams open with the role and no text. Appending it before the response starts
   * also means the log exists at once, so the completion id can be resumed immediately.
   */
  begin(): Promise<void> {
    return this.#chunk({ role: 'assistant', content: '', refusal: null }, null);
  }

  delta(content: string): Promise<void> {
    return this.#chunk({ content }, null);
  }

  async finish(finishReason: string, usage: Usage | null): Promise<void> {
    await this.#chunk({}, finishReason);
    if (this.includeUsage) await this.#append('chunk', usageChunk(this.identity, usage));
    await this.writer.append({ event: 'done', data: DONE_SENTINEL }, { final: true });
  }

  fail(error: LlmError): Promise<void> {
    const type = errorTypeOf(statusOfLlmError(error.code));
    return this.#append('error', errorBody(error.code, error.message, type));
  }

  /** Only shutdown aborts a streamed completion; the answer is incomplete, so it is an error. */
  cancelled(): Promise<void> {
    return this.#append(
      'error',
      errorBody('cancelled', 'the completion was stopped before it finished', 'server_error'),
    );
  }

  #chunk(delta: Parameters<typeof completionChunk>[1], finishReason: string | null) {
    return this.#append(
      'chunk',
      completionChunk(this.identity, delta, finishReason, this.includeUsage),
    );
  }

  async #append(type: CompletionEventType, payload: unknown): Promise<void> {
    const final = type === 'error';
    await this.writer.append({ event: type, data: JSON.stringify(payload) }, { final });
  }
}
