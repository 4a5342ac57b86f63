import { Backoff } from './backoff.js';
import type { StreamhubClientError } from './errors.js';
import type { TokenSource } from './http.js';
import { MuxSocket } from './mux-socket.js';
import { MuxTopic } from './mux-topic.js';
import type { Published } from './publish.js';
import type {
  ConnectionState,
  StateInfo,
  Subscription,
  TopicSubscriptionOptions,
} from './types.js';
import { checkBaseUrl } from './urls.js';
import type { WebSocketConstructor } from './websocket.js';

export interface MuxOptions {
  /** Default: the global `WebSocket` (browsers, Node ≥ 22). From Node 20 pass the `ws` package's
   *  class, e.g. `{ WebSocket: (await import('ws')).WebSocket }`. */
  readonly WebSocket?: WebSocketConstructor;
  /** Sent with the WebSocket handshake (honoured by `ws`; browsers cannot send headers) and
   *  with the HTTP requests, e.g. `Authorization`. */
  readonly headers?: Record<string, string>;
  /**
   * Access token (docs/api.md §7): sent in an `auth` first frame after every (re)connection, which
   * the server confirms before anything else is sent, and as `Authorization: Bearer` with the
   * HTTP requests. A function is called each time; a socket the server closes with
   * `token_expired` then reconnects with a fresh token, where a fixed token stops the
   * connection with that error.
   */
  readonly token?: TokenSource;
  /** The `fetch` to use for the HTTP requests; default: the global one. */
  readonly fetch?: typeof fetch;
  /** Reconnection delays: exponential with full jitter, from `initialMs` (default 1000 ms) up to
   *  `maxMs` (default 30 s). */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /**
   * A socket that receives nothing for half of this is checked with a `{"type":"ping"}` frame,
   * and replaced when the answer does not come within the other half. Default 45 s; 0 disables.
   */
  readonly idleTimeoutMs?: number;
  /** The state of the socket (each subscription also reports its own). */
  readonly onStateChange?: (state: ConnectionState, info: StateInfo) => void;
  /** Called once when the connection stops on a non-retryable error (e.g. 401, 403). */
  readonly onError?: (error: StreamhubClientError) => void;
  /** Aborting it closes the connection, like `close()`. */
  readonly signal?: AbortSignal;
}

export interface MuxPublishOptions {
  /** Event type; the server's default is `message`. */
  readonly event?: string;
  /** Aborting it rejects the promise; a publish already sent may still be stored. */
  readonly signal?: AbortSignal;
}

/** Several topics over one WebSocket (`/v1/ws`, docs/api.md §3). */
export interface MuxConnection {
  /** The state of the socket. */
  readonly state: ConnectionState;
  /**
   * Settles when the connection has stopped: resolves after `close()` or an abort, rejects with
   * the StreamhubClientError that stopped it otherwise.
   */
  readonly closed: Promise<void>;
  /**
   * Subscribes to `topic` on the shared socket, with the guarantees and the `Subscription` of
   * `subscribe`. Throws an Error when this connection already has a subscription to `topic`.
   */
  subscribe(topic: string, options: TopicSubscriptionOptions): Subscription;
  /**
   * Publishes one event over the socket, once it is open and the subscriptions made before are
   * in place (so they receive it). Rejects with the server's error, or `network_error` when the
   * socket dropped before the server confirmed the publish: it may or may not have been stored.
   */
  publish(topic: string, data: unknown, options?: MuxPublishOptions): Promise<Published>;
  /** Closes the socket and every subscription; pending publishes reject with an AbortError. */
  close(): void;
}

/**
 * Opens one WebSocket to `/v1/ws` that carries any number of topic subscriptions and publishes.
 * A dropped socket is reopened with exponential backoff and full jitter, and every subscription
 * resumes after its own last event, so each sees every event of its topic once, in order.
 * Throws a TypeError at once when `baseUrl` is not an http(s) URL or there is no WebSocket class.
 *
 * ```ts
 * import { WebSocket } from 'ws'; // not needed in browsers
 * const mux = connectMux('http://127.0.0.1:8080', { WebSocket });
 * mux.subscribe('orders', { onEvent: ({ id, data }) => console.log('order', id, data) });
 * mux.subscribe('alerts', { fromStart: true, onEvent: ({ data }) => console.warn(data) });
 * const { id } = await mux.publish('orders', { sku: 'A1' });
 * mux.close();
 * ```
 */
export function connectMux(baseUrl: string, options: MuxOptions = {}): MuxConnection {
  checkBaseUrl(baseUrl);
  const socket = new MuxSocket(baseUrl, options);
  return {
    get state() {
      return socket.state;
    },
    closed: socket.closed,
    subscribe(name, topicOptions) {
      if (socket.carries(name)) {
        throw new Error(`this connection already has a subscription to ${JSON.stringify(name)}`);
      }
      const topic = new MuxTopic(socket, name, topicOptions, Backoff.fromOption(options.backoff));
      socket.add(topic);
      return topic.start();
    },
    publish: (topic, data, publishOptions) => socket.publish(topic, data, publishOptions),
    close: socket.close,
  };
}
