import { constants, type Http2SecureServer, type Http2ServerRequest } from 'node:http2';
import type { Socket } from 'node:net';
import { hasUnboundedBody, requestTimeoutError } from './client-errors.js';

/**
 * HTTP/1.1's `requestTimeout` for HTTP/2 streams, which Node does not bound: a stream whose
 * body has not all arrived `timeoutMs` after its headers is answered 408 and closed, like an
 * HTTP/1.1 request whose body trickles. Only that stream: the connection and its other streams
 * go on. Streams whose headers ended them (GETs, SSE) have no body to wait for, and a stream
 * producer's body is exempt as over HTTP/1.1.
 */
export function boundHttp2Bodies(server: Http2SecureServer, timeoutMs: number): void {
  server.on('request', (request) => {
    if (request.httpVersionMajor !== 2 || request.stream.endAfterHeaders) return;
    const timer = setTimeout(() => expire(request), timeoutMs);
    // Fastify reads every body at once, so 'end' comes as soon as the last byte does.
    request.once('end', () => clearTimeout(timer));
    request.stream.once('close', () => clearTimeout(timer));
  });
}

function expire(request: Http2ServerRequest): void {
  const { stream } = request;
  if (stream.destroyed || stream.state.remoteClose === 1) return;
  if (hasUnboundedBody(request.socket as Socket)) return;
  // An answer under way did not wait for the body (a GET whose client left its side open):
  // the route chose to answer, and its stream is bounded like any other.
  if (stream.headersSent && !stream.writableEnded) return;
  if (!stream.headersSent) {
    const refusal = requestTimeoutError();
    stream.respond({
      ':status': refusal.status,
      'content-type': 'application/json; charset=utf-8',
    });
    stream.end(JSON.stringify(refusal.toJSON()));
  }
  // RFC 9113 §8.1: once the answer is complete, a reset with NO_ERROR tells the client to stop
  // sending; Node sends it after the answer's last byte.
  stream.close(constants.NGHTTP2_NO_ERROR);
}
