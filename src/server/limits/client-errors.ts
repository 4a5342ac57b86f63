import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';

/** What Node's HTTP parser refuses before Fastify sees a request, in the contract's terms. */
function describe(code: string | undefined): { status: number; code: string; message: string } {
  if (code === 'HPE_HEADER_OVERFLOW') {
    return {
      status: 431,
      code: 'header_too_large',
      message: 'request line and headers exceed MAX_HEADER_BYTES',
    };
  }
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return { status: 408, code: 'request_timeout', message: 'the request took too long to arrive' };
  }
  return { status: 400, code: 'bad_request', message: 'malformed HTTP request' };
}

/**
 * Fastify's `clientErrorHandler`: the same behaviour as its default (nothing to say to a reset
 * or destroyed socket; answer, then close), but the body in the contract's error shape
 * `{"error": {"code", "message"}}`. `onHeaderOverflow` counts the header size refusals.
 */
export function clientErrorHandler(onHeaderOverflow: () => void) {
  return (error: Error & { code?: string }, socket: Socket): void => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const { status, code, message } = describe(error.code);
    if (status === 431) onHeaderOverflow();
    if (socket.writable) {
      const body = JSON.stringify({ error: { code, message } });
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy(error);
  };
}
