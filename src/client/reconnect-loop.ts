import { type Backoff, sleep } from './backoff.js';
import { StreamhubClientError } from './errors.js';

export interface ReconnectLoop {
  /** Aborting it ends the loop (also while it waits): `reconnect` then resolves. */
  readonly signal: AbortSignal;
  readonly backoff: Backoff;
  /**
   * Opens one connection and settles when it ends: resolves `true` when the stream is over
   * for good, `false` to reconnect; rejects with an error, retried when `retryable`.
   */
  connect(): Promise<boolean>;
  /** Whether a failure is worth another attempt. Default: the error's `retryable`. */
  retryable?(error: StreamhubClientError): boolean;
  /** Before waiting `delayMs` for the next attempt; `error` is absent after a clean end. */
  waiting?(delayMs: number, error: StreamhubClientError | undefined): void;
  /** After that wait, as the next attempt starts. */
  retrying?(): void;
}

/**
 * Connects again and again, with backoff between attempts, until a connection reports the
 * stream over or the signal aborts (resolves), or a failure is not worth retrying (rejects with
 * it as a StreamhubClientError). Callers reset the backoff when a connection is established.
 */
export async function reconnect(loop: ReconnectLoop): Promise<void> {
  const { signal, backoff } = loop;
  while (!signal.aborted) {
    let error: StreamhubClientError | undefined;
    try {
      if (await loop.connect()) return;
    } catch (caught) {
      if (signal.aborted) return;
      error = asClientError(caught);
      if (!(loop.retryable?.(error) ?? error.retryable)) throw error;
    }
    if (signal.aborted) return;
    const delayMs = backoff.next();
    loop.waiting?.(delayMs, error);
    await sleep(delayMs, signal);
    if (!signal.aborted) loop.retrying?.();
  }
}

function asClientError(error: unknown): StreamhubClientError {
  if (error instanceof StreamhubClientError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new StreamhubClientError(0, 'network_error', message, { retryable: true, cause: error });
}
