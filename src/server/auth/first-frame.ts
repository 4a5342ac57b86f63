import type { RawData } from 'ws';
import type { WsConnection } from '../../transports/ws/ws-connection.js';
import type { Authenticator } from './authenticator.js';
import { INVALID_TOKEN } from './hook.js';
import type { Principal } from './principal.js';
import { CLOSE_UNAUTHORIZED } from './streams.js';

/** How long a socket opened without credentials may take to send its auth frame. */
export const AUTH_FRAME_TIMEOUT_MS = 10_000;
/** RFC 6455 §7.4.1: the server hit an unexpected condition. */
const CLOSE_INTERNAL_ERROR = 1011;
/** Frames a client may send after its auth frame, before the answer; more is a flood. */
const MAX_WAITING_FRAMES = 100;

/** Whatever handles the socket's frames once it is authenticated. */
export interface FrameReceiver {
  receive(data: RawData, isBinary: boolean): void;
}

/**
 * For a WebSocket opened without credentials (a browser cannot set headers): the first frame
 * must be `{"type": "auth", "token": "<jwt>", "ref"?}`. A valid token is answered with
 * `{"type": "authenticated", "ref"}` and the socket is handed to `onAuthenticated`, frames
 * sent meanwhile included, in order. Anything else, or nothing within AUTH_FRAME_TIMEOUT_MS,
 * is answered with an `unauthorized` error frame and close code 4401.
 */
export function authenticateByFirstFrame(
  connection: WsConnection,
  auth: Authenticator,
  onAuthenticated: (principal: Principal) => FrameReceiver,
  timeoutMs = AUTH_FRAME_TIMEOUT_MS,
): void {
  const { ws } = connection;
  /** Set once the auth frame arrived: frames that follow wait for the verdict here. */
  let waiting: [RawData, boolean][] | undefined;
  const stop = () => {
    clearTimeout(timer);
    ws.off('message', onMessage);
  };
  const refuse = (message: string, ref?: unknown) => {
    stop();
    connection.sendJson({ type: 'error', code: 'unauthorized', message, ref });
    connection.close(CLOSE_UNAUTHORIZED, 'unauthorized');
  };
  const onMessage = (data: RawData, isBinary: boolean) => {
    if (waiting !== undefined) {
      if (waiting.length >= MAX_WAITING_FRAMES) refuse('too many frames before authentication');
      else waiting.push([data, isBinary]);
      return;
    }
    const frame = authFrame(data, isBinary);
    if (frame === undefined || typeof frame.token !== 'string') {
      refuse('authentication required: send {"type":"auth","token":"<token>"} first', frame?.ref);
      return;
    }
    const pending: [RawData, boolean][] = [];
    waiting = pending;
    auth.authenticate(frame.token).then(
      (principal) => {
        if (connection.closed) return;
        if (principal === undefined) {
          refuse(INVALID_TOKEN, frame.ref);
          return;
        }
        stop();
        connection.sendJson({ type: 'authenticated', ref: frame.ref });
        const receiver = onAuthenticated(principal);
        for (const [queued, queuedIsBinary] of pending) receiver.receive(queued, queuedIsBinary);
      },
      () => connection.close(CLOSE_INTERNAL_ERROR, 'internal error'),
    );
  };
  const timer = setTimeout(() => refuse('no auth frame in time'), timeoutMs);
  ws.on('message', onMessage);
  ws.once('close', stop);
}

/** The frame if it is a JSON object of type `auth`; its `token` is checked by the caller. */
function authFrame(data: RawData, isBinary: boolean): Record<string, unknown> | undefined {
  if (isBinary) return undefined;
  try {
    const frame: unknown = JSON.parse(data.toString());
    if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) return undefined;
    const record = frame as Record<string, unknown>;
    return record.type === 'auth' ? record : { ref: record.ref };
  } catch {
    return undefined;
  }
}
