import { Backoff } from './backoff.js';
import { invoke } from './callbacks.js';
import { type Endpoint, toEndpoint } from './endpoint.js';
import { networkError, type StreamhubClientError } from './errors.js';
import { type Frame, toFrameError, toResetNotice, toTopicEvent } from './frames.js';
import { currentToken, type TokenSource, worthRetrying } from './http.js';
import type { Published } from './publish.js';
import { reconnect } from './reconnect-loop.js';
import { StateReport } from './state-report.js';
import { startFields, TopicCursor } from './topic-cursor.js';
import type {
  ConnectionState,
  StateInfo,
  Subscription,
  TopicSubscriptionOptions,
} from './types.js';
import { apiUrl, checkBaseUrl } from './urls.js';
import { runSocket, type WebSocketConstructor, webSocketClass } from './websocket.js';

export interface MuxOptions {
  /** Default: the global `WebSocket` (browsers, Node ≥ 22). From Node 20 pass the `ws` package's
   *  class, e.g. `{ WebSocket: (await import('ws')).WebSocket }`. */
  readonly WebSocket?: WebSocketConstructor;
  /** Sent with the WebSocket handshake (honoured by `ws`; browsers cannot send headers) and
   *  with the HTTP requests, e.g. `Authorization`. */
  readonly headers?: Record<string, string>;
  /**
   * Access token (contract §7): sent in an `auth` first frame after every (re)connection, which
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

/** Several topics over one WebSocket (`/v1/ws`, contract §3). */
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
  return new Mux(baseUrl, options);
}

interface PendingPublish {
  readonly ref: string;
  readonly frame: object;
  answered(id: string): void;
  failed(error: unknown): void;
}

class Mux implements MuxConnection {
  readonly closed: Promise<void>;
  readonly endpoint: Endpoint;
  readonly options: MuxOptions;
  readonly #report: StateReport;
  readonly #controller = new AbortController();
  readonly #topics = new Map<string, MuxTopic>();
  /** Subscriptions still looking up where they start: publishes wait for them. */
  readonly #preparing = new Set<MuxTopic>();
  /** Publishes not sent yet, in order. */
  readonly #outbox: PendingPublish[] = [];
  /** Publishes sent on the current socket, by ref, until the server answers. */
  readonly #unanswered = new Map<string, PendingPublish>();
  /** Writes a frame on the socket while it is open. */
  #send: ((frame: object) => void) | undefined;
  #ended = false;
  #failure: StreamhubClientError | undefined;
  /** The ref of the `auth` frame on the current socket, until the server confirms it. */
  #authRef: string | undefined;
  /** Once authenticated, how the current socket is opened (see `#opened`). */
  #authenticated: (() => void) | undefined;
  #lastRef = 0;

  constructor(baseUrl: string, options: MuxOptions) {
    const WebSocket = webSocketClass(options.WebSocket);
    this.options = options;
    this.endpoint = toEndpoint(baseUrl, options);
    this.#report = new StateReport(options.onStateChange);
    const { signal } = this.#controller;
    const { signal: ownerSignal } = options;
    if (ownerSignal?.aborted) this.close();
    ownerSignal?.addEventListener('abort', this.close, { once: true });

    const backoff = newBackoff(options);
    const socket = {
      ...this.endpoint,
      WebSocket,
      httpUrl: apiUrl(baseUrl, '/v1/ws'),
      signal,
      frame: (frame: Frame) => this.#frame(frame),
    };
    const opened = (send: (frame: object) => void) => {
      backoff.reset();
      this.#opened(send);
    };
    this.#report.set('connecting');
    this.closed = reconnect({
      signal,
      backoff,
      connect: async () => {
        const token = await currentToken(options.token);
        try {
          await runSocket({
            ...socket,
            opened: (send) =>
              token === undefined ? opened(send) : this.#auth(send, token, opened),
          });
        } finally {
          this.#dropped();
        }
        return false;
      },
      retryable: (error) => worthRetrying(error, options.token),
      waiting: (delayMs, error) => {
        this.#report.reconnecting(delayMs, error);
        for (const topic of this.#topics.values()) topic.cursor.report.reconnecting(delayMs, error);
      },
      retrying: () => {
        this.#report.set('connecting');
        for (const topic of this.#topics.values()) topic.cursor.report.set('connecting');
      },
    }).then(
      () => this.#end(undefined),
      (error: StreamhubClientError) => {
        this.#end(error);
        throw error;
      },
    );
    this.closed
      .catch(() => {})
      .finally(() => ownerSignal?.removeEventListener('abort', this.close));
  }

  get state(): ConnectionState {
    return this.#report.state;
  }

  readonly close = (): void => this.#controller.abort();

  subscribe(name: string, options: TopicSubscriptionOptions): Subscription {
    if (this.#topics.has(name)) {
      throw new Error(`this connection already has a subscription to ${JSON.stringify(name)}`);
    }
    const topic = new MuxTopic(this, name, options);
    if (this.#ended) topic.stop(this.#failure);
    else {
      this.#topics.set(name, topic);
      this.#preparing.add(topic);
    }
    return topic.start();
  }

  publish(topic: string, data: unknown, options: MuxPublishOptions = {}): Promise<Published> {
    const { event, signal } = options;
    return new Promise((resolve, reject) => {
      if (this.#ended) return reject(this.#failure ?? this.#controller.signal.reason);
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        this.#forget(pending);
        reject(signal?.reason);
      };
      const settled = () => signal?.removeEventListener('abort', onAbort);
      const pending: PendingPublish = {
        ref: this.nextRef(),
        frame: { type: 'publish', topic, data, event },
        answered: (id) => {
          settled();
          resolve({ id, topic, event: event ?? 'message' });
        },
        failed: (error) => {
          settled();
          reject(error);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#outbox.push(pending);
      this.#flush();
    });
  }

  nextRef(): string {
    this.#lastRef += 1;
    return String(this.#lastRef);
  }

  /** Subscribes `topic` on the socket, if it is open and the topic wants to be. */
  subscribeOnSocket(topic: MuxTopic): void {
    if (this.#send === undefined || !topic.wanted) return;
    topic.ref = this.nextRef();
    topic.acknowledged = false;
    this.#send({
      type: 'subscribe',
      topic: topic.name,
      ref: topic.ref,
      ...startFields(topic.cursor),
    });
  }

  /** Ends the server's subscription to `topic` on the current socket, if it has one. */
  unsubscribeOnSocket(topic: MuxTopic): void {
    if (topic.ref === undefined) return;
    topic.ref = undefined;
    this.#send?.({ type: 'unsubscribe', topic: topic.name, ref: this.nextRef() });
  }

  /** `topic` knows where it starts (or gave up): the publishes waiting for it may go. */
  prepared(topic: MuxTopic): void {
    if (this.#preparing.delete(topic)) this.#flush();
  }

  removed(topic: MuxTopic): void {
    if (this.#topics.get(topic.name) === topic) this.#topics.delete(topic.name);
    this.prepared(topic);
  }

  /** Sends the `auth` frame; the socket counts as open once the server confirms it. */
  #auth(
    send: (frame: object) => void,
    token: string,
    opened: (send: (frame: object) => void) => void,
  ): void {
    const ref = this.nextRef();
    this.#authRef = ref;
    this.#authenticated = () => opened(send);
    send({ type: 'auth', token, ref });
  }

  #opened(send: (frame: object) => void): void {
    this.#send = send;
    this.#report.set('open');
    for (const topic of this.#topics.values()) this.subscribeOnSocket(topic);
    this.#flush();
  }

  #flush(): void {
    const send = this.#send;
    if (send === undefined || this.#preparing.size > 0) return;
    for (const pending of this.#outbox.splice(0)) {
      this.#unanswered.set(pending.ref, pending);
      send({ ...pending.frame, ref: pending.ref });
    }
  }

  #forget(pending: PendingPublish): void {
    const index = this.#outbox.indexOf(pending);
    if (index >= 0) this.#outbox.splice(index, 1);
    this.#unanswered.delete(pending.ref);
  }

  /** The socket closed: what was sent on it and not answered is lost with it. */
  #dropped(): void {
    this.#send = undefined;
    this.#authRef = undefined;
    this.#authenticated = undefined;
    for (const topic of this.#topics.values()) {
      topic.ref = undefined;
      topic.acknowledged = false;
    }
    const { signal } = this.#controller;
    const error = signal.aborted
      ? signal.reason
      : networkError('the connection closed before the server confirmed the publish');
    for (const pending of this.#unanswered.values()) pending.failed(error);
    this.#unanswered.clear();
  }

  #end(error: StreamhubClientError | undefined): void {
    this.#ended = true;
    this.#failure = error;
    this.#report.set('closed', error === undefined ? {} : { error });
    if (error !== undefined && this.options.onError) invoke(this.options.onError, error);
    for (const topic of [...this.#topics.values()]) topic.stop(error);
    const reason = error ?? this.#controller.signal.reason;
    for (const pending of this.#outbox.splice(0)) pending.failed(reason);
  }

  #frame(frame: Frame): void {
    switch (frame.type) {
      case 'authenticated':
        if (this.#authRef !== undefined && frame.ref === this.#authRef) {
          const authenticated = this.#authenticated;
          this.#authRef = undefined;
          this.#authenticated = undefined;
          authenticated?.();
        }
        break;
      case 'event':
        this.#current(frame)?.cursor.event(toTopicEvent(frame));
        break;
      case 'reset':
        this.#current(frame)?.cursor.reset(toResetNotice(frame));
        break;
      case 'subscribed': {
        const topic = this.#topics.get(String(frame.topic));
        if (topic !== undefined && topic.ref === frame.ref) topic.subscribed();
        break;
      }
      case 'published':
        if (typeof frame.id === 'string') this.#answered(frame)?.answered(frame.id);
        break;
      case 'error':
        this.#error(frame);
        break;
    }
  }

  /** The publish a frame answers, which then no longer waits. */
  #answered(frame: Frame): PendingPublish | undefined {
    const ref = String(frame.ref);
    const pending = this.#unanswered.get(ref);
    this.#unanswered.delete(ref);
    return pending;
  }

  /**
   * The subscription a topic's event or reset belongs to: none until the server acknowledged
   * the current subscribe frame, because frames of an earlier subscription to the topic on the
   * same socket (closed, or given up by the server) may still arrive before that.
   */
  #current(frame: Frame): MuxTopic | undefined {
    const topic = this.#topics.get(String(frame.topic));
    return topic?.acknowledged ? topic : undefined;
  }

  /**
   * An error answers a publish or a subscribe by its ref; `subscription_failed` names the topic
   * whose subscription the server gave up. Others answer frames whose outcome does not matter.
   */
  #error(frame: Frame): void {
    const error = toFrameError(frame);
    // The socket's credentials were refused or expired: the server closes it (4401). Ending it
    // with this error stops the connection, or renews the token (see `worthRetrying`).
    if (error.code === 'unauthorized' || error.code === 'token_expired') throw error;
    const pending = this.#answered(frame);
    if (pending !== undefined) {
      pending.failed(error);
      return;
    }
    for (const topic of this.#topics.values()) {
      const answered =
        frame.ref === undefined ? frame.topic === topic.name : frame.ref === topic.ref;
      if (answered && topic.ref !== undefined) {
        topic.fail(error);
        return;
      }
    }
  }
}

/** One topic's subscription on a Mux. */
class MuxTopic {
  readonly cursor: TopicCursor;
  /** The ref of its subscribe frame on the current socket; undefined when it has none there. */
  ref: string | undefined;
  /** The server acknowledged that frame: what it sends for the topic is this subscription's. */
  acknowledged = false;
  /** Should be subscribed on the socket: its start is known, and it is not waiting to retry. */
  wanted = false;
  readonly #backoff: Backoff;
  /** Ends the current attempt: cleanly without an error (closed), else with it. */
  #settle: ((error?: StreamhubClientError) => void) | undefined;
  /** The connection's error that stopped this subscription. */
  #failure: StreamhubClientError | undefined;

  constructor(
    readonly mux: Mux,
    readonly name: string,
    options: TopicSubscriptionOptions,
  ) {
    this.cursor = new TopicCursor(name, options);
    this.#backoff = newBackoff(mux.options);
  }

  /**
   * Runs the subscription: an attempt lasts from its subscribe frame across reconnections of
   * the socket (the Mux subscribes it again on each) until the server gives it up or refuses it
   * (an `error` frame), or it is closed; after a retryable error it starts again after a delay.
   */
  start(): Subscription {
    const { cursor } = this;
    const closing = () => {
      this.mux.unsubscribeOnSocket(this);
      // At once, so that the topic can be subscribed again right after `close()`.
      this.mux.removed(this);
      this.#settle?.();
    };
    cursor.signal.addEventListener('abort', closing, { once: true });
    cursor.report.set('connecting');
    const run = reconnect({
      signal: cursor.signal,
      backoff: this.#backoff,
      connect: () => this.#attempt(),
      waiting: (delayMs, error) => cursor.report.reconnecting(delayMs, error),
      retrying: () => cursor.report.set('connecting'),
    })
      .then(() => {
        if (this.#failure !== undefined) throw this.#failure;
      })
      .finally(() => {
        cursor.signal.removeEventListener('abort', closing);
        this.mux.removed(this);
      });
    return cursor.follow(run);
  }

  subscribed(): void {
    this.acknowledged = true;
    this.#backoff.reset();
    this.cursor.report.set('open');
  }

  /** The server gave up this subscription, or refused it. */
  fail(error: StreamhubClientError): void {
    this.ref = undefined;
    this.#settle?.(error);
  }

  /** The connection ended, with the error that ended it if any. */
  stop(error: StreamhubClientError | undefined): void {
    this.#failure = error;
    this.cursor.close();
  }

  async #attempt(): Promise<boolean> {
    await this.cursor.pinLiveStart(this.mux.endpoint);
    this.mux.prepared(this);
    if (this.cursor.signal.aborted) return true;
    return new Promise((resolve, reject) => {
      this.#settle = (error) => {
        this.#settle = undefined;
        this.wanted = false;
        this.acknowledged = false;
        if (error === undefined) resolve(true);
        else reject(error);
      };
      this.wanted = true;
      this.mux.subscribeOnSocket(this);
    });
  }
}

function newBackoff(options: MuxOptions): Backoff {
  return Backoff.fromOption(options.backoff);
}
