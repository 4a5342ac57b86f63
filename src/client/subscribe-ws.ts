import { idleTimeoutError, networkError, protocolError, StreamhubClientError } from './errors.js';
import { parseJson, toResetNotice } from './frames.js';
import { fetchOk } from './http.js';
import { IdleTimer, withIdleTimeout } from './idle.js';
import { type Attempt, startSubscription } from './session.js';
import type { SubscribeOptions, Subscription } from './types.js';
import { topicUrl, toWebSocketUrl } from './urls.js';

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

export interface SubscribeWsOptions extends SubscribeOptions {
  /** Default: the global `WebSocket` (browsers, Node ≥ 22). From Node 20 pass the `ws` package's
   *  class, e.g. `{ WebSocket: (await import('ws')).WebSocket }`. */
  readonly WebSocket?: WebSocketConstructor;
}

/** Normal closure (RFC 6455 §7.4.1); the only code besides 3000–4999 a browser may send. */
const CLOSE_NORMAL = 1000;
const CLOSE_GOING_AWAY = 1001;

/**
 * `subscribe` over the topic's WebSocket (`/v1/topics/{topic}/ws`), with the same guarantees:
 * reconnects with backoff, resumes with `?last_event_id=`, passes a `reset` to `onReset`.
 * Quiet connections are checked with `{"type":"ping"}` frames, because the server's
 * protocol-level pings are invisible to the WebSocket API.
 *
 * ```ts
 * import { WebSocket } from 'ws'; // not needed in browsers
 * const subscription = subscribeWs('http://127.0.0.1:8080', 'orders', {
 *   WebSocket,
 *   onEvent: ({ id, data }) => console.log(id, data),
 * });
 * ```
 */
export function subscribeWs(
  baseUrl: string,
  topic: string,
  options: SubscribeWsOptions,
): Subscription {
  const WebSocketClass =
    options.WebSocket ?? (globalThis.WebSocket as WebSocketConstructor | undefined);
  if (WebSocketClass === undefined) {
    throw new TypeError('no global WebSocket: pass one as the `WebSocket` option');
  }
  return startSubscription(baseUrl, topic, options, (attempt) =>
    connectWs(attempt, WebSocketClass),
  );
}

function connectWs(attempt: Attempt, WebSocketClass: WebSocketConstructor): Promise<void> {
  const httpUrl = topicUrl(attempt.baseUrl, attempt.topic, '/ws', startQuery(attempt));
  const { headers } = attempt;
  const socket =
    Object.keys(headers).length > 0
      ? new WebSocketClass(toWebSocketUrl(httpUrl), undefined, { headers })
      : new WebSocketClass(toWebSocketUrl(httpUrl));
  let opened = false;
  let failure: StreamhubClientError | undefined;
  const fail = (error: StreamhubClientError) => {
    failure ??= error;
    socket.close(CLOSE_NORMAL);
  };
  let pinged = false;
  // Fires twice per timeout: first to ping a quiet connection, then to give up on it.
  const idle = new IdleTimer(attempt.idleTimeoutMs / 2, () => {
    if (!opened || pinged) return fail(idleTimeoutError(attempt.idleTimeoutMs));
    pinged = true;
    socket.send('{"type":"ping"}');
    idle.kick();
  });
  const close = () => socket.close(CLOSE_NORMAL);
  attempt.signal.addEventListener('abort', close, { once: true });

  return new Promise((resolve, reject) => {
    socket.addEventListener('open', () => {
      opened = true;
      idle.kick();
      attempt.opened();
    });
    socket.addEventListener('message', ({ data }) => {
      pinged = false;
      idle.kick();
      try {
        onFrame(attempt, data);
      } catch (error) {
        fail(error as StreamhubClientError);
      }
    });
    // Every failure also ends in `close`, which carries more information.
    socket.addEventListener('error', () => {});
    socket.addEventListener('close', ({ code, reason }) => {
      idle.stop();
      attempt.signal.removeEventListener('abort', close);
      if (attempt.signal.aborted) resolve();
      else if (failure !== undefined) reject(failure);
      else if (!opened) diagnoseFailedUpgrade(attempt, httpUrl).then(reject, reject);
      else if (code === CLOSE_NORMAL || code === CLOSE_GOING_AWAY) resolve();
      else reject(networkError(`connection closed (${code}${reason ? ` ${reason}` : ''})`));
    });
  });
}

function onFrame(attempt: Attempt, data: unknown): void {
  if (typeof data !== 'string') throw protocolError('unexpected binary frame');
  const frame = parseJson(data, 'frame') as Record<string, unknown> | null;
  switch (frame?.type) {
    case 'event': {
      const { id, event } = frame;
      if (typeof id !== 'string' || typeof event !== 'string') {
        throw protocolError(`malformed event frame: ${data.slice(0, 100)}`);
      }
      attempt.event({ id, event, data: frame.data });
      return;
    }
    case 'reset':
      attempt.reset(toResetNotice(frame));
      return;
    case 'error':
      // E.g. `subscription_failed`: the server gave up on this subscription; a new one resumes.
      throw new StreamhubClientError(0, String(frame.code), String(frame.message));
  }
}

/**
 * The WebSocket API hides why a handshake failed. The same URL over plain HTTP tells: the
 * server answers `426 upgrade_required` when it would have accepted the upgrade (so the
 * failure was the network's), or the error that refused it (bad topic, auth, overload…).
 */
async function diagnoseFailedUpgrade(
  attempt: Attempt,
  httpUrl: string,
): Promise<StreamhubClientError> {
  try {
    await withIdleTimeout(attempt.signal, attempt.idleTimeoutMs, ({ signal }) =>
      fetchOk(attempt.fetch, httpUrl, { headers: attempt.headers, signal }),
    );
  } catch (error) {
    if (error instanceof StreamhubClientError && error.status !== 426) return error;
  }
  return networkError('WebSocket handshake failed');
}

function startQuery(attempt: Attempt): Record<string, string> {
  if (attempt.lastEventId !== undefined) return { last_event_id: attempt.lastEventId };
  return attempt.fromStart ? { from: 'start' } : {};
}
