import {
  type GenerateRequest,
  LlmError,
  type LlmProvider,
  type ModelChunk,
  type Usage,
} from './provider.js';
import { streamFrom } from './push.js';

export type GenerationOutcome = 'done' | 'error' | 'cancelled';

/** Where a generation's outcome goes: a feature records it in its own event format. */
export interface GenerationSink {
  /** A chunk of the reply (see `GenerationChunk`), handed over as it arrives (see
   *  `ChunkReceiver`); when it returns a promise, the next one waits until this settles. */
  chunk(chunk: ModelChunk): Promise<unknown> | undefined;
  finish(finishReason: string, usage: Usage | null): Promise<void>;
  /** The upstream failed (after retries); `error.code` and message are for clients. */
  fail(error: LlmError): Promise<void>;
  /** The request's signal was aborted (cancel, delete, shutdown). */
  cancelled(): Promise<void>;
}

/**
 * Runs a provider to its end into a sink: every chunk, then exactly one of finish, fail or
 * cancelled. A reply that stops without a finish is a failure, never a silent clean end that
 * a client would take for a complete answer.
 */
export async function runGeneration(
  provider: LlmProvider,
  request: GenerateRequest,
  sink: GenerationSink,
  onUsage?: (usage: Usage) => void,
): Promise<void> {
  try {
    const finish = await streamFrom(provider, request, sink);
    if (finish.usage !== null) onUsage?.(finish.usage);
    return await sink.finish(finish.finishReason, finish.usage);
  } catch (error) {
    if (request.signal.aborted) return await sink.cancelled();
    await sink.fail(toLlmError(error));
  }
}

export function toLlmError(error: unknown): LlmError {
  return error instanceof LlmError
    ? error
    : new LlmError('upstream_error', 'the model failed to answer');
}
