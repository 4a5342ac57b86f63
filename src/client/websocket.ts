import type { Endpoint } from './endpoint.js';
import { idleTimeoutError, networkError, StreamhubClientError } from './errors.js';
import { type Frame, parseFrame } from './frames.js';
import { fetchOk } from './http.js';
import { IdleTimer, withIdleTimeout } from './idle.js';
import { toWebSocketUrl } from './urls.js';

/** The part of the WebSocket API the client uses; the browser's and the `ws` package's fit. */
export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(
    type: 'close',
    listener: (event: { code: number; reason: string }) => void,
  ): void;
  addEventListener(type: 'error', listener: () => void): void;
}

/** A WebSocket class. The third argument is honoured by `ws` (browsers cannot send headers). */
export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
  options?: { headers?: Record<string, string> },
) => WebSocketLike;

/** Normal closure (RFC 6455 §7.4.1); the only code besides 3000–4999 a browser may send. */
const CLOSE_NORMAL = 1000;
const CLOSE_GOING_AWAY = 1001;

/** The given class, else the global one; a TypeError at once when there is neither. */
export function webSocketClass(given: WebSocketConstructor | undefined): WebSocketConstructor {
  const found = given ?? (globalThis.WebSocket as WebSocketConstructor | undefined);
  if (found === undefined) {
    throw new TypeError('no global WebSocket: pass one as the `WebSocket` option');
  }
  return found;
}

/**
 * One WebSocket connection to a streamhub endpoint, and what to do with it. A quiet connection
 * is pinged after half of `idleTimeoutMs`, and given up after all of it.
 */
export interface SocketRun extends Omit<Endpoint, 'baseUrl'> {
  readonly WebSocket: WebSocketConstructor;
  /** The endpoint's http(s) URL, also requested over plain HTTP to tell why a handshake failed. */
  readonly httpUrl: string;
  /** Aborting it closes the connection; the promise then resolves. */
  readonly signal: AbortSignal;
  /** The connection is established; `send` writes a JSON frame on it until it closes. */
  opened(send: (frame: object) => void): void;
  /** A frame from the server. A StreamhubClientError thrown here ends the connection with it. */
  frame(frame: Frame): void;
}

/**
 * Opens a WebSocket and settles when it closes: resolves after an abort or a clean close by the
 * server (1000, 1001), rejects with a StreamhubClientError otherwise — the server's refusal of
 * the handshake, `network_error`, `idle_timeout`, or what `frame` threw. Quiet connections are
 * checked with `{"type":"ping"}` frames, because the server's protocol-level pings are
 * invisible to the WebSocket API.
 */
export function runSocket(run: SocketRun): Promise<void> {
  const { headers, signal } = run;
  const url = toWebSocketUrl(run.httpUrl);
  const socket =
    Object.keys(headers).length > 0
      ? new run.WebSocket(url, undefined, { headers })
      : new run.WebSocket(url);
  let opened = false;
  let failure: StreamhubClientError | undefined;
  const fail = (error: StreamhubClientError) => {
    failure ??= error;
    socket.close(CLOSE_NORMAL);
  };
  const send = (frame: object) => socket.send(JSON.stringify(frame));
  let pinged = false;
  // Fires twice per timeout: first to ping a quiet connection, then to give up on it.
  const idle = new IdleTimer(run.idleTimeoutMs / 2, () => {
    if (!opened || pinged) return fail(idleTimeoutError(run.idleTimeoutMs));
    pinged = true;
    send({ type: 'ping' });
    idle.kick();
  });
  const close = () => socket.close(CLOSE_NORMAL);
  signal.addEventListener('abort', close, { once: true });

  return new Promise((resolve, reject) => {
    socket.addEventListener('open', () => {
      opened = true;
      idle.kick();
      run.opened(send);
    });
    socket.addEventListener('message', ({ data }) => {
      pinged = false;
      idle.kick();
      // Frames that were already received when the connection failed or was closed.
      if (failure !== undefined || signal.aborted) return;
      try {
        run.frame(parseFrame(data));
      } catch (error) {
        fail(error as StreamhubClientError);
      }
    });
    // Every failure also ends in `close`, which carries more information.
    socket.addEventListener('error', () => {});
    socket.addEventListener('close', ({ code, reason }) => {
      idle.stop();
      signal.removeEventListener('abort', close);
      if (signal.aborted) resolve();
      else if (failure !== undefined) reject(failure);
      else if (!opened) diagnoseFailedUpgrade(run).then(reject, reject);
      else if (code === CLOSE_NORMAL || code === CLOSE_GOING_AWAY) resolve();
      else reject(networkError(`connection closed (${code}${reason ? ` ${reason}` : ''})`));
    });
  });
}

/**
 * The WebSocket API hides why a handshake failed. The same URL over plain HTTP tells: the
 * server answers `426 upgrade_required` when it would have accepted the upgrade (so the
 * failure was the network's), or the error that refused it (bad topic, auth, overload…).
 */
async function diagnoseFailedUpgrade(run: SocketRun): Promise<StreamhubClientError> {
  try {
    await withIdleTimeout(run.signal, run.idleTimeoutMs, ({ signal }) =>
      fetchOk(run.fetch, run.httpUrl, { headers: run.headers, signal }),
    );
  } catch (error) {
    if (error instanceof StreamhubClientError && error.status !== 426) return error;
  }
  return networkError('WebSocket handshake failed');
}
