import { Backoff } from './backoff.js';
import { type Endpoint, type EndpointOptions, toEndpoint } from './endpoint.js';
import { StreamhubClientError } from './errors.js';
import { FollowedStream } from './followed-stream.js';
import { type Frame, parseJson, toFrameError, toResetNotice } from './frames.js';
import { authHeaders, fetchOk, worthRetrying } from './http.js';
import { reconnect } from './reconnect-loop.js';
import { readEventStream } from './sse-fetch.js';
import type { SseMessage } from './sse-parser.js';
import { checkBaseUrl, streamUrl } from './urls.js';

/** A stored event of a stream, as its producer sent it. */
export interface StreamEvent {
  /** Opaque, server-chosen; pass it back as `lastEventId` to resume after this event. */
  readonly id: string;
  /** The event type: the producer's SSE `event:`, else `message`. */
  readonly event: string;
  /**
   * The data, as text: byte for byte what an SSE producer sent; JSON text for events appended
   * as NDJSON lines, as text/plain chunks (a JSON string), with `/events` or `produce({data})`.
   */
  readonly data: string;
}

export interface ReadStreamOptions extends EndpointOptions {
  /** Resume after this event id. Default: from the stream's first event. */
  readonly lastEventId?: string;
  /**
   * Reconnection delays: exponential with full jitter, from `initialMs` (default: the server's
   * `retry:` suggestion, else 1000 ms) up to `maxMs` (default 30 s).
   */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /** Aborting it is `close()`: iteration ends. */
  readonly signal?: AbortSignal;
}

/**
 * A stream's events, as an async iterable. It connects at once and buffers what arrives until
 * it is read. Iteration ends after the last event of a complete stream; it throws a
 * StreamhubClientError when the stream ended otherwise (`code` `cancelled`, `producer_lost` or
 * `too_long`, status 0) or cannot be read (the server's refusal, e.g. 404 `stream_not_found`).
 */
export interface StreamReader extends AsyncIterable<StreamEvent> {
  /** Id of the last event received (the ending event too): persist it to resume later. */
  readonly lastEventId: string | undefined;
  /** Stops reading; iteration ends. */
  close(): void;
}

/** The statuses of a stream that did not complete; each adds one last event of that type. */
const ENDINGS: ReadonlySet<string> = new Set(['cancelled', 'producer_lost', 'too_long']);

/**
 * `GET /v1/streams/{id}`: reads a stream from its start (or after `lastEventId`) to its end,
 * live, reconnecting by itself after a dropped connection and resuming after the last event
 * received, so every event arrives once, in order. Throws a TypeError at once when `baseUrl` is
 * not an http(s) URL.
 *
 * ```ts
 * try {
 *   for await (const { event, data } of readStream('http://127.0.0.1:8080', 'reply-1')) {
 *     console.log(event, data);
 *   }
 * } catch (error) {
 *   // error.code: 'producer_lost', 'cancelled', 'too_long', or why it could not be read
 * }
 * ```
 */
export function readStream(
  baseUrl: string,
  id: string,
  options: ReadStreamOptions = {},
): StreamReader {
  checkBaseUrl(baseUrl);
  return new Reader(toEndpoint(baseUrl, options), id, options);
}

class Reader extends FollowedStream<StreamEvent> implements StreamReader {
  readonly #endpoint: Endpoint;
  readonly #id: string;
  #lastEventId: string | undefined;

  constructor(endpoint: Endpoint, id: string, options: ReadStreamOptions) {
    super();
    this.#endpoint = endpoint;
    this.#id = id;
    this.#lastEventId = options.lastEventId || undefined;
    this.start(() => this.#follow(Backoff.fromOption(options.backoff)), options.signal);
  }

  get lastEventId(): string | undefined {
    return this.#lastEventId;
  }

  #follow(backoff: Backoff): Promise<void> {
    const { signal } = this.controller;
    return reconnect({
      signal,
      backoff,
      connect: async () => {
        const headers = await authHeaders(this.#endpoint);
        if (this.#lastEventId !== undefined) headers['last-event-id'] = this.#lastEventId;
        const request = {
          fetch: this.#endpoint.fetch,
          url: streamUrl(this.#endpoint.baseUrl, this.#id),
          init: { headers },
          signal,
          idleTimeoutMs: this.#endpoint.idleTimeoutMs,
        };
        await readEventStream(request, {
          opened: () => backoff.reset(),
          message: (message) => this.#receive(message),
          retry: (ms) => backoff.suggest(ms),
        });
        return this.#hasAll(signal);
      },
      retryable: (error) => worthRetrying(error, this.#endpoint.token),
    });
  }

  #receive(message: SseMessage): void {
    // Further messages of the chunk that carried the ending event, or of a closed reader.
    if (this.controller.signal.aborted) return;
    const { id, event, data } = message;
    if (id === undefined) {
      // Per-connection notices: the stream was replaced while this reader was away, or why the
      // server ends the connection (e.g. `token_expired`).
      if (event === 'reset') throw replaced(toResetNotice(parseJson(data, 'reset')).reason);
      if (event === 'error') throw toFrameError((parseJson(data, 'error') ?? {}) as Frame);
      return;
    }
    this.#lastEventId = id;
    if (ENDINGS.has(event)) throw endingError(event, data);
    this.queue.push({ id, event, data });
  }

  /**
   * The server ended the response, which it does after a stream's last event, but so might a
   * server shutting down: the stream's status tells whether this reader has it all.
   */
  async #hasAll(signal: AbortSignal): Promise<boolean> {
    const url = streamUrl(this.#endpoint.baseUrl, this.#id);
    const response = await fetchOk(this.#endpoint.fetch, url, {
      headers: { ...(await authHeaders(this.#endpoint)), accept: 'application/json' },
      signal,
    });
    const status = (await response.json()) as { status?: unknown; last_event_id?: unknown };
    return status.status !== 'open' && status.last_event_id === (this.#lastEventId ?? null);
  }
}

/** The stream ended without completing: its ending event's data is an AI SDK error chunk. */
function endingError(status: string, data: string): StreamhubClientError {
  const chunk = parseJson(data, `data of the ${status} event`) as { errorText?: unknown } | null;
  const message = typeof chunk?.errorText === 'string' ? chunk.errorText : status;
  return new StreamhubClientError(0, status, message, { retryable: false });
}

function replaced(reason: string): StreamhubClientError {
  const message = `the stream cannot be resumed after the last event received (${reason}): it was replaced`;
  return new StreamhubClientError(0, reason, message, { retryable: false });
}
