import type { ServerResponse } from 'node:http';
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

/** The response a socket is sending now, if any: Node's own field, which its default
 *  handler of client errors checks for the same reason (and writes no refusal once that
 *  response's head is out, but closes at once). */
function answerInProgress(socket: Socket): ServerResponse | undefined {
  return (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
}

/** Sockets to close once their answer in progress ends. Each further read of such a socket
 *  fails to parse again, and reports another client error. */
const closingAfterAnswer = new WeakSet<Socket>();

/**
 * Fastify's `clientErrorHandler`: the same behaviour as its default (nothing to say to a reset
 * or destroyed socket; answer, then close), but the body in the error shape of docs/api.md §0
 * `{"error": {"code", "message"}}`, and no refusal inside an answer already under way.
 * `onHeaderOverflow` counts the header size refusals.
 */
export function clientErrorHandler(onHeaderOverflow: () => void) {
  return (error: Error & { code?: string }, socket: Socket): void => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      if (hasUnboundedBody(socket)) return;
    } else {
      // A bad request pipelined behind an answer already under way (an event stream, say): a
      // refusal written now would land inside that answer's body, and closing now would cut
      // it. It ends as it would have; then the connection closes, as nothing after it parses.
      const answering = answerInProgress(socket);
      if (answering?.headersSent) {
        if (closingAfterAnswer.has(socket)) return;
        closingAfterAnswer.add(socket);
        answering.once('close', () => socket.destroy());
        return;
      }
    }
    const refusal = refusalOf(error.code);
    if (refusal.status === 431) onHeaderOverflow();
    if (socket.writable) socket.write(refusal.toHttpResponse());
    socket.destroy(error);
  };
}
