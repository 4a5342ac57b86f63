import type { Socket } from 'node:net';
import { ApiError } from '../errors.js';

/** What Node's HTTP parser refuses before Fastify sees a request, in the API's terms. */
function refusalOf(code: string | undefined): ApiError {
  if (code === 'HPE_HEADER_OVERFLOW') {
    return new ApiError(
      431,
      'header_too_large',
      'request line and headers exceed MAX_HEADER_BYTES',
    );
  }
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return new ApiError(408, 'request_timeout', 'the request took too long to arrive');
  }
  return new ApiError(400, 'bad_request', 'malformed HTTP request');
}

/** Sockets whose request body is a stream that may take as long as it needs (a producer's). */
const unboundedBodies = new WeakSet<Socket>();

/**
 * Exempts the request on `socket` from the server's request timeout until `release` is called:
 * a producer's body lasts as long as its stream. Its idle timeout bounds it instead.
 */
export function allowUnboundedBody(socket: Socket): () => void {
  unboundedBodies.add(socket);
  return () => unboundedBodies.delete(socket);
}

/** Whether the request on `socket` (over HTTP/2, its stream's socket) is exempt from the
 *  request timeout. */
export function hasUnboundedBody(socket: Socket): boolean {
  return unboundedBodies.has(socket);
}

/** The answer to a request whose head and body did not arrive in time. */
export const requestTimeoutError = (): ApiError => refusalOf('ERR_HTTP_REQUEST_TIMEOUT');

/**
 * Fastify's `clientErrorHandler`: the same behaviour as its default (nothing to say to a reset
 * or destroyed socket; answer, then close), but the body in the error shape of docs/api.md §0
 * `{"error": {"code", "message"}}`. `onHeaderOverflow` counts the header size refusals.
 */
export function clientErrorHandler(onHeaderOverflow: () => void) {
  return (error: Error & { code?: string }, socket: Socket): void => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT' && hasUnboundedBody(socket)) return;
    const refusal = refusalOf(error.code);
    if (refusal.status === 431) onHeaderOverflow();
    if (socket.writable) socket.write(refusal.toHttpResponse());
    socket.destroy(error);
  };
}
