import { Backoff } from './backoff.js';
import { invoke } from './callbacks.js';
import { type Endpoint, toEndpoint } from './endpoint.js';
import { networkError, type StreamhubClientError } from './errors.js';
import { type Frame, toFrameError } from './frames.js';
import { currentToken, worthRetrying } from './http.js';
import type { MuxOptions, MuxPublishOptions } from './mux.js';
import { PublishQueue } from './mux-publishes.js';
import type { Published } from './publish.js';
import { reconnect } from './reconnect-loop.js';
import { StateReport } from './state-report.js';
import type { ConnectionState } from './types.js';
import { apiUrl } from './urls.js';
import { runSocket, type WebSocketConstructor, webSocketClass } from './websocket.js';

/** What the socket needs of each topic subscription it carries. */
export interface SocketTopic {
  readonly name: string;
  /** The socket is open, at first or again: the topic subscribes on it, if it wants to. */
  socketOpened(): void;
  /** The socket closed, and the topic's subscription on it with it. */
  socketClosed(): void;
  /** The socket waits `delayMs` before reconnecting, after `error`. */
  socketReconnecting(delayMs: number, error: StreamhubClientError | undefined): void;
  /** The socket connects again. */
  socketConnecting(): void;
  /** A `subscribed`, `event` or `reset` frame naming the topic. */
  receive(frame: Frame): void;
  /** An `error` frame that answers no publish: whether it ends this subscription. */
  refused(frame: Frame, error: StreamhubClientError): boolean;
  /** The connection ended, with the error that ended it if any. */
  stop(error: StreamhubClientError | undefined): void;
}

type Write = (frame: object) => void;

/**
 * The WebSocket to `/v1/ws` that a mux connection's topics and publishes share: it reconnects
 * with backoff, authenticates each socket with a first frame, sends publishes once the
 * subscriptions made before them are in place, and hands each frame to what it answers.
 */
export class MuxSocket {
  readonly closed: Promise<void>;
  readonly endpoint: Endpoint;
  readonly #options: MuxOptions;
  readonly #WebSocket: WebSocketConstructor;
  readonly #backoff: Backoff;
  readonly #report: StateReport;
  readonly #controller = new AbortController();
  readonly #topics = new Map<string, SocketTopic>();
  /** Subscriptions still looking up where they start: publishes wait for them. */
  readonly #preparing = new Set<SocketTopic>();
  readonly #publishes = new PublishQueue();
  /** Writes a frame on the socket while it is open. */
  #write: Write | undefined;
  /** The `auth` frame sent on the current socket, until the server confirms it. */
  #auth: { readonly ref: string; confirmed(): void } | undefined;
  #ended = false;
  #failure: StreamhubClientError | undefined;
  #lastRef = 0;

  constructor(baseUrl: string, options: MuxOptions) {
    this.#WebSocket = webSocketClass(options.WebSocket);
    this.#options = options;
    this.endpoint = toEndpoint(baseUrl, options);
    this.#backoff = Backoff.fromOption(options.backoff);
    this.#report = new StateReport(options.onStateChange);
    const { signal: ownerSignal } = options;
    if (ownerSignal?.aborted) this.close();
    ownerSignal?.addEventListener('abort', this.close, { once: true });
    this.#report.set('connecting');
    this.closed = this.#run().then(
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

  /** Whether a subscription to `name` rides on this socket. */
  carries(name: string): boolean {
    return this.#topics.has(name);
  }

  /** Carries `topic` from now on; after the connection ended, it stops at once instead. */
  add(topic: SocketTopic): void {
    if (this.#ended) topic.stop(this.#failure);
    else {
      this.#topics.set(topic.name, topic);
      this.#preparing.add(topic);
    }
  }

  publish(topic: string, data: unknown, options: MuxPublishOptions = {}): Promise<Published> {
    if (this.#ended) return Promise.reject(this.#failure ?? this.#controller.signal.reason);
    const published = this.#publishes.add(this.#nextRef(), topic, data, options);
    this.#flush();
    return published;
  }

  /** Writes `frame` with a new ref while the socket is open: that ref, else undefined. */
  send(frame: object): string | undefined {
    if (this.#write === undefined) return undefined;
    const ref = this.#nextRef();
    this.#write({ ...frame, ref });
    return ref;
  }

  /** `topic` knows where it starts (or gave up): the publishes waiting for it may go. */
  prepared(topic: SocketTopic): void {
    if (this.#preparing.delete(topic)) this.#flush();
  }

  /** `topic` is closed: frames naming its topic are no longer its own. */
  removed(topic: SocketTopic): void {
    if (this.#topics.get(topic.name) === topic) this.#topics.delete(topic.name);
    this.prepared(topic);
  }

  /** Connects again and again until the connection stops; see `reconnect`. */
  #run(): Promise<void> {
    const { token } = this.#options;
    return reconnect({
      signal: this.#controller.signal,
      backoff: this.#backoff,
      connect: () => this.#connect(),
      retryable: (error) => worthRetrying(error, token),
      waiting: (delayMs, error) => {
        this.#report.reconnecting(delayMs, error);
        for (const topic of this.#topics.values()) topic.socketReconnecting(delayMs, error);
      },
      retrying: () => {
        this.#report.set('connecting');
        for (const topic of this.#topics.values()) topic.socketConnecting();
      },
    });
  }

  /** One socket, until it closes; then the loop reconnects. */
  async #connect(): Promise<boolean> {
    const token = await currentToken(this.#options.token);
    const opened = (write: Write) => {
      this.#backoff.reset();
      this.#opened(write);
    };
    try {
      await runSocket({
        ...this.endpoint,
        WebSocket: this.#WebSocket,
        httpUrl: apiUrl(this.endpoint.baseUrl, '/v1/ws'),
        signal: this.#controller.signal,
        opened: (write) =>
          token === undefined ? opened(write) : this.#authenticate(write, token, opened),
        frame: (frame) => this.#frame(frame),
      });
    } finally {
      this.#dropped();
    }
    return false;
  }

  #nextRef(): string {
    this.#lastRef += 1;
    return String(this.#lastRef);
  }

  /** Sends the `auth` frame; the socket counts as open once the server confirms it. */
  #authenticate(write: Write, token: string, opened: (write: Write) => void): void {
    const ref = this.#nextRef();
    this.#auth = { ref, confirmed: () => opened(write) };
    write({ type: 'auth', token, ref });
  }

  #opened(write: Write): void {
    this.#write = write;
    this.#report.set('open');
    for (const topic of this.#topics.values()) topic.socketOpened();
    this.#flush();
  }

  #flush(): void {
    if (this.#write !== undefined && this.#preparing.size === 0) {
      this.#publishes.flush(this.#write);
    }
  }

  /** The socket closed: what was sent on it and not answered is lost with it. */
  #dropped(): void {
    this.#write = undefined;
    this.#auth = undefined;
    for (const topic of this.#topics.values()) topic.socketClosed();
    const { signal } = this.#controller;
    this.#publishes.dropped(
      signal.aborted
        ? signal.reason
        : networkError('the connection closed before the server confirmed the publish'),
    );
  }

  #end(error: StreamhubClientError | undefined): void {
    this.#ended = true;
    this.#failure = error;
    this.#report.set('closed', error === undefined ? {} : { error });
    if (error !== undefined && this.#options.onError) invoke(this.#options.onError, error);
    for (const topic of [...this.#topics.values()]) topic.stop(error);
    this.#publishes.end(error ?? this.#controller.signal.reason);
  }

  #frame(frame: Frame): void {
    switch (frame.type) {
      case 'authenticated':
        this.#authenticated(frame);
        break;
      case 'subscribed':
      case 'event':
      case 'reset':
        this.#topics.get(String(frame.topic))?.receive(frame);
        break;
      case 'published':
        if (typeof frame.id === 'string') this.#publishes.published(frame.ref, frame.id);
        break;
      case 'error':
        this.#error(frame);
        break;
    }
  }

  #authenticated(frame: Frame): void {
    const auth = this.#auth;
    if (auth === undefined || frame.ref !== auth.ref) return;
    this.#auth = undefined;
    auth.confirmed();
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
    if (this.#publishes.refused(frame.ref, error)) return;
    for (const topic of this.#topics.values()) {
      if (topic.refused(frame, error)) return;
    }
  }
}
