import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ConnectionRegistry } from '../../transports/connections.js';
import { sseEncodingFor } from '../../transports/sse/compression.js';
import type { GzipSharing } from '../../transports/sse/gzip-coding.js';
import { type ResponseHeaders, SseStream } from '../../transports/sse/sse-stream.js';
import { endSseOnExpiry } from '../auth/streams.js';
import type { Metrics } from '../metrics.js';

export interface StreamDeps {
  readonly connections: ConnectionRegistry;
  readonly metrics: Metrics;
  /** How far a subscriber may lag behind before it is disconnected. */
  readonly slowConsumerMaxBytes: number;
  /** COMPRESSION: streams are gzip for clients that accept it. */
  readonly compression: boolean;
}

const SSE_RETRY_MS = 1000;

export interface SseOpening {
  readonly headers?: Record<string, string>;
  /** A topic's fan-out shares each compressed batch (the default); a reply log, watched by
   *  one or two viewers, compresses per connection, several-fold smaller. */
  readonly gzipSharing?: GzipSharing;
}

/** Takes the response over from Fastify and opens it as an SSE stream, which ends when the
 *  client's token expires. */
export function openSse(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: StreamDeps,
  { headers = {}, gzipSharing }: SseOpening = {},
): SseStream {
  reply.hijack();
  const stream = new SseStream(reply.raw, {
    registry: deps.connections,
    maxBufferedBytes: deps.slowConsumerMaxBytes,
    retryMs: SSE_RETRY_MS,
    onSlowConsumer: () => deps.metrics.slowConsumers.inc({ transport: 'sse' }),
    encoding: deps.compression ? sseEncodingFor(request.headers['accept-encoding']) : 'identity',
    gzipSharing,
  });
  stream.open(withHooksHeaders(reply, deps.compression, headers));
  endSseOnExpiry(stream, request.principal);
  // A stream counts as it opens: one that the client drops never reaches the response hooks.
  deps.metrics.streamOpened(request);
  return stream;
}

/**
 * Headers that hooks set (CORS) live in the reply until Fastify sends it, which a hijacked
 * reply never is: they go out with the stream's own, all given to one `writeHead`. (Set one by
 * one on the raw response first, they sent `writeHead` down its slow path, header by header.)
 */
function withHooksHeaders(
  reply: FastifyReply,
  compression: boolean,
  own: Record<string, string>,
): ResponseHeaders {
  const headers: ResponseHeaders = {};
  const set = reply.getHeaders();
  for (const name in set) if (set[name] !== undefined) headers[name] = set[name];
  Object.assign(headers, own);
  // Added to, not set: CORS may already vary the answer by Origin.
  if (compression) {
    const { vary } = headers;
    headers.vary = vary === undefined ? 'Accept-Encoding' : `${vary}, Accept-Encoding`;
  }
  return headers;
}

export function singleHeader(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The client's cursor: the `Last-Event-ID` header wins (an EventSource reconnects with its
 *  original URL), then the query forms, including polyfills' `lastEventId`. */
export function lastEventIdOf(
  request: FastifyRequest<{ Querystring: { last_event_id?: string; lastEventId?: string } }>,
): string | undefined {
  const { query } = request;
  return (
    singleHeader(request.headers, 'last-event-id') ||
    query.last_event_id ||
    query.lastEventId ||
    undefined
  );
}
