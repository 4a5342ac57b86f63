import {
  type ChunkReceiver,
  type GenerateRequest,
  type GenerationChunk,
  type GenerationFinish,
  LlmError,
  type LlmProvider,
  type ModelChunk,
} from './provider.js';

/**
 * The two shapes of a generation and the way between them. Pushed (`LlmProvider.stream`) is
 * the hot path: the upstream's chunks go from the socket's callback to the sink through plain
 * calls, one promise per chunk only when the sink returns one. Pulled (`generate`, an async
 * iterable) is what a consumer that iterates gets. Each layer of async generators on the way
 * cost several promises per chunk: with three of them (provider, resilience, runner) the
 * gateway spent about a quarter of its CPU on them (see docs/architecture.md).
 */

/** A provider's generation pushed to `receiver`: its own `stream`, or its `generate`'s chunks. */
export function streamFrom(
  provider: LlmProvider,
  request: GenerateRequest,
  receiver: ChunkReceiver,
): Promise<GenerationFinish> {
  return provider.stream !== undefined
    ? provider.stream(request, receiver)
    : pushChunks(provider.generate(request), receiver);
}

/** Pushes an iterable generation's chunks to `receiver`; resolves to its finish. */
export async function pushChunks(
  chunks: AsyncIterable<GenerationChunk>,
  receiver: ChunkReceiver,
): Promise<GenerationFinish> {
  for await (const chunk of chunks) {
    if (chunk.type === 'finish') return chunk;
    await receiver.chunk(chunk);
  }
  throw new LlmError('upstream_error', 'the model ended the reply without finishing it');
}

type Outcome = { finish: GenerationFinish } | { error: unknown };

/**
 * A pushed generation as an async iterable: each chunk is held until the consumer asks for the
 * next, so a slow consumer holds the upstream back as it would iterating. A consumer that
 * stops early aborts the generation.
 */
export async function* pulled(
  stream: (request: GenerateRequest, receiver: ChunkReceiver) => Promise<GenerationFinish>,
  request: GenerateRequest,
): AsyncGenerator<GenerationChunk> {
  const consumerGone = new AbortController();
  let waiting: ModelChunk | undefined;
  let release: (() => void) | undefined;
  let outcome: Outcome | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };
  const receiver: ChunkReceiver = {
    chunk: (chunk) => {
      waiting = chunk;
      notify();
      return new Promise<void>((resolve) => {
        release = resolve;
      });
    },
  };
  const signal = AbortSignal.any([request.signal, consumerGone.signal]);
  stream({ ...request, signal }, receiver).then(
    (finish) => {
      outcome = { finish };
      notify();
    },
    (error: unknown) => {
      outcome = { error };
      notify();
    },
  );
  try {
    for (;;) {
      if (waiting !== undefined) {
        const chunk = waiting;
        waiting = undefined;
        yield chunk;
        release?.();
        continue;
      }
      if (outcome !== undefined) {
        if ('error' in outcome) throw outcome.error;
        yield outcome.finish;
        return;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    if (outcome === undefined) {
      consumerGone.abort();
      release?.(); // a chunk still held: the generation goes on to see the abort
    }
  }
}
