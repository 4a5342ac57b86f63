import { type GenerationChunk, LlmError } from './provider.js';

export interface Deadlines {
  /** From the start of the attempt to its first delta (connect + time to first token). */
  readonly firstTokenMs: number;
  /** Longest upstream silence between chunks once tokens flow. */
  readonly idleMs: number;
}

/**
 * Runs one upstream attempt with its own abort signal (tied to `parent`, the client's) and
 * aborts it with `upstream_timeout` when the first token or the next chunk is late. Only time
 * spent waiting on the upstream counts: while the consumer holds a chunk, no clock runs, so a
 * slow consumer is never mistaken for a silent upstream.
 */
export async function* withDeadlines(
  start: (signal: AbortSignal) => AsyncIterable<GenerationChunk>,
  parent: AbortSignal,
  deadlines: Deadlines,
  now: () => number,
): AsyncGenerator<GenerationChunk> {
  parent.throwIfAborted();
  const attempt = new AbortController();
  const forwardAbort = () => attempt.abort(parent.reason);
  parent.addEventListener('abort', forwardAbort, { once: true });
  const firstTokenDue = now() + deadlines.firstTokenMs;
  const iterator = start(attempt.signal)[Symbol.asyncIterator]();
  // Built once: the idle deadline is the same for every chunk once tokens flow.
  const idle = {
    ms: deadlines.idleMs,
    what: `no data from the upstream for ${deadlines.idleMs} ms`,
  };
  let flowing = false;
  let finished = false;
  try {
    for (;;) {
      const timeout = flowing
        ? idle
        : {
            ms: Math.max(0, firstTokenDue - now()),
            what: `no first token from the upstream within ${deadlines.firstTokenMs} ms`,
          };
      const result = await within(iterator.next(), timeout.ms, () => {
        const error = new LlmError('upstream_timeout', timeout.what, true);
        attempt.abort(error);
        return error;
      });
      if (result.done) {
        finished = true;
        return;
      }
      if (result.value.type === 'delta') flowing = true;
      yield result.value;
    }
  } finally {
    parent.removeEventListener('abort', forwardAbort);
    if (!finished) {
      // Stopped early (timeout, error, consumer gone): make sure the upstream request closes.
      // Not awaited: a provider that ignores its signal must not hang us too.
      attempt.abort();
      iterator.return?.().catch(() => {});
    }
  }
}

/** `pending`, or the error from `onTimeout` if it takes longer than `ms`. */
function within<T>(pending: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms);
    pending.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
