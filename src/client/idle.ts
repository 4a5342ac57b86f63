import { idleTimeoutError, networkError, StreamhubClientError } from './errors.js';

/**
 * Calls `onIdle` when `kick()` has not been called for `timeoutMs` (never when it is 0).
 * A half-open TCP connection (peer gone without a FIN) otherwise looks exactly like a quiet
 * topic, forever.
 */
export class IdleTimer {
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly timeoutMs: number,
    readonly onIdle: () => void,
  ) {
    this.kick();
  }

  kick(): void {
    if (this.timeoutMs <= 0) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(this.onIdle, this.timeoutMs);
  }

  stop(): void {
    clearTimeout(this.#timer);
  }
}

/** A signal that aborts with its parent, or when the work it guards makes no progress. */
export interface IdleSignal {
  readonly signal: AbortSignal;
  /** Progress was made: restart the idle period. */
  kick(): void;
}

/**
 * Runs `work` with a signal that aborts when `parent` does or after `timeoutMs` without a
 * `kick()`. Failures come out as StreamhubClientErrors: `idle_timeout` for a stalled request,
 * `network_error` for whatever fetch or a stream threw.
 */
export async function withIdleTimeout<T>(
  parent: AbortSignal,
  timeoutMs: number,
  work: (idle: IdleSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const abort = () => controller.abort();
  parent.addEventListener('abort', abort, { once: true });
  if (parent.aborted) abort();
  const timer = new IdleTimer(timeoutMs, abort);
  try {
    return await work({ signal: controller.signal, kick: () => timer.kick() });
  } catch (error) {
    if (controller.signal.aborted && !parent.aborted) throw idleTimeoutError(timeoutMs);
    throw error instanceof StreamhubClientError ? error : networkError(error);
  } finally {
    timer.stop();
    parent.removeEventListener('abort', abort);
  }
}
