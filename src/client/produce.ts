import { authHeaders, fetchOk, globalFetch, type TokenSource } from './http.js';
import { checkBaseUrl, streamUrl } from './urls.js';

/** How the body of a producer is split into events (docs/api.md §9). */
export type StreamBodyType = 'sse' | 'ndjson' | 'text';

const CONTENT_TYPES: Readonly<Record<StreamBodyType, string>> = {
  sse: 'text/event-stream',
  ndjson: 'application/x-ndjson',
  text: 'text/plain; charset=utf-8',
};

/** One event to append: `data` is any JSON value (sent JSON-encoded); `event` its type. */
export interface StreamEventInput {
  readonly data: unknown;
  readonly event?: string;
}

/**
 * What `produce` streams in: an async iterable of events (`{data, event?}`, sent as SSE) or of
 * text / bytes; a `ReadableStream` of text or bytes (e.g. what the AI SDK's `consumeSseStream`
 * hands over); or a `Response` (its body).
 */
export type ProduceSource =
  | AsyncIterable<StreamEventInput | string | Uint8Array>
  | ReadableStream<string | Uint8Array>
  | Response;

export interface ProduceOptions {
  /**
   * How the server splits the body into events. Default: a `Response`'s own content type; `sse`
   * for a `ReadableStream` and for an iterable of events; `text` for an iterable of strings.
   */
  readonly type?: StreamBodyType;
  /** Sent with the request. */
  readonly headers?: Record<string, string>;
  /** Access token (docs/api.md §7), sent as `Authorization: Bearer`; a function is called for it. */
  readonly token?: TokenSource;
  /** Aborting it breaks the upload: the server ends the stream as `producer_lost`. */
  readonly signal?: AbortSignal;
  /** The `fetch` to use; default: the global one. */
  readonly fetch?: typeof fetch;
}

/** The server's answer once the whole body was stored. */
export interface Produced {
  readonly id: string;
  /** How many events the stream holds. */
  readonly events: number;
  /** The id of its last event, or null when it has none. */
  readonly lastEventId: string | null;
}

/**
 * `POST /v1/streams/{id}`: streams `source` to the server, which stores and delivers each event
 * while the rest is still being produced. Resolves when the body has ended and the stream is
 * complete. Rejects with the server's error: `409 stream_exists` while a stream with that id is
 * open, `409 cancelled` when `/cancel` ended it (stop generating then), `409 producer_lost` when
 * the server gave up on this producer, `413 stream_too_long`, `403`…; with `network_error` when
 * the upload breaks (the stream then ends as `producer_lost`); or with whatever the source
 * throws (the upload is broken off, and the stream ends as `producer_lost`).
 *
 * Streaming request bodies need Node ≥ 20, Deno, or Chromium over HTTP/2; other browsers cannot
 * send them.
 *
 * ```ts
 * async function* tokens() {
 *   yield { data: { text: 'Hel' } };
 *   yield { data: { text: 'lo' }, event: 'delta' };
 * }
 * const { events, lastEventId } = await produce('http://127.0.0.1:8080', 'reply-1', tokens());
 * ```
 */
export async function produce(
  baseUrl: string,
  id: string,
  source: ProduceSource,
  options: ProduceOptions = {},
): Promise<Produced> {
  checkBaseUrl(baseUrl);
  const { body, type } = await toBody(source, options.type);
  const headers = {
    ...(await authHeaders({ headers: options.headers ?? {}, token: options.token })),
    'content-type': CONTENT_TYPES[type],
  };
  const init = { method: 'POST', headers, body, duplex: 'half', signal: options.signal };
  const response = await upload(options.fetch ?? globalFetch, streamUrl(baseUrl, id), init, body);
  const answer = (await response.json()) as { id: string; events: number; last_event_id: unknown };
  const lastEventId = typeof answer.last_event_id === 'string' ? answer.last_event_id : null;
  return { id: answer.id, events: answer.events, lastEventId };
}

/**
 * The request; when it fails because the source failed (which broke the upload off), the
 * source's own error.
 */
async function upload(
  fetchImpl: typeof fetch,
  url: string,
  init: RequestInit,
  body: SourceBody,
): Promise<Response> {
  try {
    return await fetchOk(fetchImpl, url, init);
  } catch (error) {
    throw body.failure?.error ?? error;
  }
}

type SourceBody = ReadableStream<Uint8Array> & { failure?: { error: unknown } };
type SourceItem = StreamEventInput | string | Uint8Array;

async function toBody(
  source: ProduceSource,
  type: StreamBodyType | undefined,
): Promise<{ body: SourceBody; type: StreamBodyType }> {
  if (source instanceof Response) {
    if (source.body === null) throw new TypeError('produce: the Response has no body');
    return { body: bytesOf(source.body), type: type ?? typeOfResponse(source) };
  }
  if (source instanceof ReadableStream) return { body: bytesOf(source), type: type ?? 'sse' };
  const iterator = source[Symbol.asyncIterator]();
  const first = await iterator.next();
  const isEvent = !first.done && !isText(first.value);
  const chosen = type ?? (isEvent ? 'sse' : 'text');
  if (isEvent && chosen !== 'sse') {
    throw new TypeError(`produce: events ({data, event?}) are sent as sse, not as ${chosen}`);
  }
  return { body: fromIterator(iterator, first), type: chosen };
}

function typeOfResponse(response: Response): StreamBodyType {
  const contentType = response.headers.get('content-type') ?? '';
  const match = (Object.keys(CONTENT_TYPES) as StreamBodyType[]).find((name) =>
    contentType.startsWith(CONTENT_TYPES[name].split(';')[0] as string),
  );
  return match ?? 'sse';
}

function isText(item: SourceItem): item is string | Uint8Array {
  return typeof item === 'string' || item instanceof Uint8Array;
}

const encoder = new TextEncoder();

function encode(item: SourceItem): Uint8Array {
  if (typeof item === 'string') return encoder.encode(item);
  if (item instanceof Uint8Array) return item;
  const event = item.event === undefined ? '' : `event: ${item.event}\n`;
  return encoder.encode(`${event}data: ${JSON.stringify(item.data)}\n\n`);
}

/**
 * A byte stream pulling one item at a time: a source is read only as fast as the upload goes
 * (TCP backpressure reaches the producer). It remembers why the source failed.
 */
function fromIterator(
  iterator: AsyncIterator<SourceItem>,
  first?: IteratorResult<SourceItem>,
): SourceBody {
  let pending = first;
  const body: SourceBody = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = pending ?? (await iterator.next());
        pending = undefined;
        if (next.done) controller.close();
        else controller.enqueue(encode(next.value));
      } catch (error) {
        body.failure = { error };
        controller.error(error);
      }
    },
    async cancel(reason) {
      await iterator.return?.(reason);
    },
  });
  return body;
}

/** A stream of text or bytes as bytes. */
function bytesOf(stream: ReadableStream<string | Uint8Array>): SourceBody {
  const reader = stream.getReader();
  return fromIterator({
    next: async () => {
      const { done, value } = await reader.read();
      return done ? { done: true, value: undefined } : { done: false, value };
    },
    return: async (reason) => {
      await reader.cancel(reason);
      return { done: true, value: undefined };
    },
  });
}
