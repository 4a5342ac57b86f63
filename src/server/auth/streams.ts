import type { SseStream } from '../../transports/sse/sse-stream.js';
import type { WsConnection } from '../../transports/ws/ws-connection.js';
import { whenExpired } from './expiry.js';
import type { Principal } from './principal.js';

/** WebSocket close code for missing, invalid or expired credentials (the 401 of sockets). */
export const CLOSE_UNAUTHORIZED = 4401;

const TOKEN_EXPIRED = {
  code: 'token_expired',
  message: 'the token expired: reconnect with a fresh one',
} as const;

/** Ends an SSE stream when its token expires, with a last `error` frame (no id). */
export function endSseOnExpiry(stream: SseStream, principal: Principal): void {
  const cancel = whenExpired(principal, () => {
    stream.control('error', TOKEN_EXPIRED);
    stream.end();
  });
  stream.onClose(cancel);
}

/** Closes a WebSocket with 4401 when its token expires, after an `error` frame. */
export function closeSocketOnExpiry(connection: WsConnection, principal: Principal): void {
  const cancel = whenExpired(principal, () => {
    connection.sendJson({ type: 'error', ...TOKEN_EXPIRED });
    connection.close(CLOSE_UNAUTHORIZED, 'token expired');
  });
  connection.ws.once('close', cancel);
}
