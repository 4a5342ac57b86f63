import type { Backoff } from './backoff.js';
import type { Endpoint } from './endpoint.js';
import type { StreamhubClientError } from './errors.js';
import { type Frame, toResetNotice, toTopicEvent } from './frames.js';
import type { SocketTopic } from './mux-socket.js';
import { reconnect } from './reconnect-loop.js';
import { startFields, TopicCursor } from './topic-cursor.js';
import type { Subscription, TopicSubscriptionOptions } from './types.js';

/** What a topic's subscription needs from the socket it shares with the others. */
export interface TopicLink {
  readonly endpoint: Endpoint;
  /** Writes `frame` on the socket with a new ref: that ref, or undefined when it is not open. */
  send(frame: object): string | undefined;
  /** `topic` knows where it starts (or gave up): the publishes waiting for it may go. */
  prepared(topic: MuxTopic): void;
  /** `topic` is closed: frames naming its topic are no longer its own. */
  removed(topic: MuxTopic): void;
}

/**
 * One topic's subscription on a shared socket: its position in the topic, its callbacks, and
 * its subscribe frame, sent again after its own last event on each reconnection of the socket.
 */
export class MuxTopic implements SocketTopic {
  readonly #link: TopicLink;
  readonly #cursor: TopicCursor;
  readonly #backoff: Backoff;
  /** The ref of its subscribe frame on the current socket; undefined when it has none there. */
  #ref: string | undefined;
  /** The server acknowledged that frame: what it sends for the topic is this subscription's. */
  #acknowledged = false;
  /** Should be subscribed on the socket: its start is known, and it is not waiting to retry. */
  #wanted = false;
  /** Ends the current attempt: cleanly without an error (closed), else with it. */
  #settle: ((error?: StreamhubClientError) => void) | undefined;
  /** The connection's error that stopped this subscription. */
  #failure: StreamhubClientError | undefined;

  constructor(
    link: TopicLink,
    readonly name: string,
    options: TopicSubscriptionOptions,
    backoff: Backoff,
  ) {
    this.#link = link;
    this.#cursor = new TopicCursor(name, options);
    this.#backoff = backoff;
  }

  /**
   * Runs the subscription: an attempt lasts from its subscribe frame across reconnections of
   * the socket (it subscribes again on each) until the server gives it up or refuses it (an
   * `error` frame), or it is closed; after a retryable error it starts again after a delay.
   */
  start(): Subscription {
    const cursor = this.#cursor;
    const closing = () => {
      this.#unsubscribe();
      // At once, so that the topic can be subscribed again right after `close()`.
      this.#link.removed(this);
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
        this.#link.removed(this);
      });
    return cursor.follow(run);
  }

  socketOpened(): void {
    this.#subscribe();
  }

  socketClosed(): void {
    this.#ref = undefined;
    this.#acknowledged = false;
  }

  socketReconnecting(delayMs: number, error: StreamhubClientError | undefined): void {
    this.#cursor.report.reconnecting(delayMs, error);
  }

  socketConnecting(): void {
    this.#cursor.report.set('connecting');
  }

  receive(frame: Frame): void {
    switch (frame.type) {
      case 'subscribed':
        if (frame.ref === this.#ref) this.#subscribed();
        break;
      // Not before the server acknowledged the current subscribe frame: frames of an earlier
      // subscription to the topic on the same socket (closed, or given up by the server) may
      // still arrive until then.
      case 'event':
        if (this.#acknowledged) this.#cursor.event(toTopicEvent(frame));
        break;
      case 'reset':
        if (this.#acknowledged) this.#cursor.reset(toResetNotice(frame));
        break;
    }
  }

  /** Answers its subscribe frame by ref, or names the topic (`subscription_failed`). */
  refused(frame: Frame, error: StreamhubClientError): boolean {
    const answered = frame.ref === undefined ? frame.topic === this.name : frame.ref === this.#ref;
    if (!answered || this.#ref === undefined) return false;
    this.#ref = undefined;
    this.#settle?.(error);
    return true;
  }

  stop(error: StreamhubClientError | undefined): void {
    this.#failure = error;
    this.#cursor.close();
  }

  async #attempt(): Promise<boolean> {
    const cursor = this.#cursor;
    await cursor.pinLiveStart(this.#link.endpoint);
    this.#link.prepared(this);
    if (cursor.signal.aborted) return true;
    return new Promise((resolve, reject) => {
      this.#settle = (error) => {
        this.#settle = undefined;
        this.#wanted = false;
        this.#acknowledged = false;
        if (error === undefined) resolve(true);
        else reject(error);
      };
      this.#wanted = true;
      this.#subscribe();
    });
  }

  /** Subscribes on the socket, if it is open and this subscription wants to be. */
  #subscribe(): void {
    if (!this.#wanted) return;
    const frame = { type: 'subscribe', topic: this.name, ...startFields(this.#cursor) };
    const ref = this.#link.send(frame);
    if (ref === undefined) return;
    this.#ref = ref;
    this.#acknowledged = false;
  }

  /** Ends the server's subscription on the current socket, if there is one. */
  #unsubscribe(): void {
    if (this.#ref === undefined) return;
    this.#ref = undefined;
    this.#link.send({ type: 'unsubscribe', topic: this.name });
  }

  #subscribed(): void {
    this.#acknowledged = true;
    this.#backoff.reset();
    this.#cursor.report.set('open');
  }
}
