import { protocolError } from './errors.js';
import { fetchOk } from './http.js';
import { withIdleTimeout } from './idle.js';
import { type SseMessage, SseParser } from './sse-parser.js';

/** One request for an event stream, read with streaming `fetch`. */
export interface EventStreamRequest {
  readonly fetch: typeof fetch;
  readonly url: string;
  /** Method, body and headers; `Accept: text/event-stream` is added. */
  readonly init: Omit<RequestInit, 'signal'> & { readonly headers: Record<string, string> };
  /** Aborting it ends the stream; the promise then settles without a meaningful error. */
  readonly signal: AbortSignal;
  /** Receiving nothing (not even a heartbeat) for this long fails with `idle_timeout`. */
  readonly idleTimeoutMs: number;
}

export interface EventStreamHandlers {
  /** The server answered with an event stream: the connection is established. */
  opened(): void;
  message(message: SseMessage): void;
  /** The server's `retry:` suggestion. */
  retry(ms: number): void;
}

/**
 * Opens an SSE response and feeds it to `handlers` until it ends. Resolves when the server
 * ends the stream cleanly; rejects with a StreamhubClientError otherwise: the server's error
 * for an answer other than 2xx, `network_error`, `idle_timeout`, or `protocol_error` for an
 * answer that is not an event stream (and whatever a handler throws).
 */
export function readEventStream(
  request: EventStreamRequest,
  handlers: EventStreamHandlers,
): Promise<void> {
  return withIdleTimeout(request.signal, request.idleTimeoutMs, async (idle) => {
    const { init } = request;
    const response = await fetchOk(request.fetch, request.url, {
      ...init,
      headers: { ...init.headers, accept: 'text/event-stream' },
      signal: idle.signal,
    });
    const type = response.headers.get('content-type') ?? '';
    if (!type.startsWith('text/event-stream') || response.body === null) {
      throw protocolError(`expected an event stream, got ${type || 'no content type'}`);
    }
    handlers.opened();
    const reader = response.body.getReader();
    const parser = new SseParser({
      onMessage: (message) => handlers.message(message),
      onRetry: (ms) => handlers.retry(ms),
    });
    const aborted = whenAborted(idle.signal);
    try {
      for (;;) {
        const { done, value } = await Promise.race([reader.read(), aborted.promise]);
        if (done) return;
        idle.kick();
        parser.write(value);
      }
    } finally {
      aborted.dispose();
      reader.cancel().catch(() => {});
    }
  });
}

/**
 * Rejects when `signal` aborts. Reads race it because an abort does not always end a pending
 * read: Node 20's fetch leaves it pending forever when the abort comes after the last bytes of
 * a response that has ended (e.g. from a handler of the final event).
 */
function whenAborted(signal: AbortSignal): { promise: Promise<never>; dispose(): void } {
  let onAbort = () => {};
  const promise = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  promise.catch(() => {});
  return { promise, dispose: () => signal.removeEventListener('abort', onAbort) };
}
