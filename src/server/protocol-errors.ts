import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { WebSocketServer } from 'ws';
import { ApiError } from './errors.js';

/** The WebSocket protocol versions `ws` speaks, which a refused handshake must name (RFC 6455 §4.4). */
const WEBSOCKET_VERSIONS = '13, 8';

/**
 * Requests that Node's HTTP server would answer itself with an empty body answer in the
 * API's error shape instead: an HTTP/1.1 request without `Host` (RFC 9112 §3.2: 400; the app
 * must be built with `http.requireHostHeader: false`), and an `Expect` other than
 * `100-continue` (417). Install before the other hooks, so nothing looks at such a request.
 */
export function installHttpRefusals(app: FastifyInstance): void {
  // A callback, not an async function: every request runs it, and a promise costs a microtask.
  app.addHook('onRequest', (request, _reply, done) => {
    const { raw } = request;
    if (raw.httpVersion === '1.1' && raw.headers.host === undefined) {
      throw new ApiError(400, 'missing_host', 'an HTTP/1.1 request needs a Host header', {
        connection: 'close',
      });
    }
    done();
  });
  app.server.on('checkExpectation', (_request: IncomingMessage, response: ServerResponse) => {
    const refusal = new ApiError(417, 'expectation_failed', 'the only Expect is 100-continue');
    response.writeHead(refusal.status, { 'content-type': 'application/json; charset=utf-8' });
    response.end(JSON.stringify(refusal.toJSON()));
  });
}

/**
 * WebSocket handshakes that `ws` refuses (an Upgrade other than `websocket`, such as `h2c`, on
 * any route; a bad key or version; a method other than GET) answer in the API's error shape,
 * with the statuses `ws` would give them, rather than in its text/html.
 */
export function answerHandshakeRefusals(server: WebSocketServer): void {
  server.on('wsClientError', (error: Error, socket: Duplex, request: IncomingMessage) => {
    const status = request.method === 'GET' ? 400 : 405;
    const refusal = new ApiError(status, 'invalid_handshake', error.message, {
      'Sec-WebSocket-Version': WEBSOCKET_VERSIONS,
    });
    socket.once('finish', () => socket.destroy());
    socket.end(refusal.toHttpResponse());
  });
}
