import type { RawData } from 'ws';
import { LimitError, StreamhubError } from '../core/errors.js';
import type { StartFrom, Subscription } from '../core/hub.js';
import { checkTopic } from '../core/names.js';
import type { InTrace } from '../core/tracing.js';
import { CLOSE_POLICY_VIOLATION, type WsConnection } from '../transports/ws/ws-connection.js';
import { wsSubscriber } from './subscribers.js';
import { parseStartFrom, type TopicService } from './topic-service.js';

export interface TopicSocketOptions {
  /** Subscriptions one socket may hold at once. */
  readonly maxSubscriptions: number;
  /** For `/v1/topics/{topic}/ws`: the topic that frames without a topic refer to. */
  readonly boundTopic?: string;
  /** Whether this socket's credentials allow `action` on `topic`; everything when absent. */
  readonly allows?: (action: TopicAction, topic: string) => boolean;
  /**
   * Called before each publish; rejects (with a LimitError) to refuse it, e.g. past a rate
   * limit. Frames keep their order: every check takes the same path (one Redis round trip on
   * the same connection, or none), so they settle in the order they were made.
   */
  readonly admitPublish?: () => Promise<void>;
  /** Runs a publish in the trace of the socket's upgrade request, so that its span joins it. */
  readonly inUpgradeTrace?: InTrace;
  /** Each frame's outcome, with the error code of a refused one. */
  readonly onFrame?: (outcome: 'ok' | 'error', code?: string) => void;
}

/** Bad frames tolerated per window before the client is deemed to misbehave. */
const MAX_STRIKES = 20;
const STRIKE_WINDOW_MS = 10_000;

type ClientFrame = Record<string, unknown>;
type TopicAction = 'publish' | 'subscribe';

/**
 * The multiplexed topic protocol of docs/api.md §3 on one WebSocket: subscribe, unsubscribe,
 * publish and ping, each answered with the client's `ref`. A bad frame is answered with an
 * error frame and the connection stays open, unless the client keeps sending them.
 */
export class TopicSocket {
  readonly #subscriptions = new Map<string, Subscription>();
  #strikes = 0;
  #windowStart = Date.now();

  constructor(
    readonly connection: WsConnection,
    readonly service: TopicService,
    readonly options: TopicSocketOptions,
  ) {
    connection.ws.on('message', (data, isBinary) => this.receive(data, isBinary));
    connection.ws.on('close', () => this.#closeAll());
  }

  /** Subscribes without the `subscribed` acknowledgement: for sockets bound to a topic by URL. */
  subscribeBound(from: StartFrom): void {
    this.#subscribe(this.options.boundTopic as string, from);
  }

  /**
   * Handles one client frame (the socket's own, or one that arrived while the socket was
   * authenticating). Everything but a publish is answered synchronously, so replies to frames
   * that arrive together come back in the order the frames were sent.
   */
  receive(data: RawData, isBinary: boolean): void {
    let frame: ClientFrame | undefined;
    try {
      frame = parseFrame(data, isBinary);
      const publishing = this.#handle(frame);
      if (publishing === undefined) this.options.onFrame?.('ok');
      else
        publishing.then(
          () => this.options.onFrame?.('ok'),
          (error) => this.#reject(error, frame?.ref),
        );
    } catch (error) {
      this.#reject(error, frame?.ref);
    }
  }

  #handle(frame: ClientFrame): Promise<void> | undefined {
    const { ref } = frame;
    switch (frame.type) {
      case 'ping':
        this.connection.sendJson({ type: 'pong', ref });
        return;
      case 'subscribe': {
        const topic = this.#topicOf(frame);
        this.#authorize('subscribe', topic);
        const from = parseStartFrom(frame.last_event_id, frame.from);
        if (
          !this.#subscriptions.has(topic) &&
          this.#subscriptions.size >= this.options.maxSubscriptions
        ) {
          throw new StreamhubError(
            'conflict',
            'too_many_subscriptions',
            `at most ${this.options.maxSubscriptions} subscriptions per connection`,
          );
        }
        this.connection.sendJson({ type: 'subscribed', topic, ref });
        this.#subscribe(topic, from);
        return;
      }
      case 'unsubscribe': {
        const topic = this.#topicOf(frame);
        this.#subscriptions.get(topic)?.close();
        this.#subscriptions.delete(topic);
        this.connection.sendJson({ type: 'unsubscribed', topic, ref });
        return;
      }
      case 'publish':
        return this.#publish(frame);
      default:
        throw new StreamhubError(
          'invalid',
          'unknown_type',
          '"type" must be one of subscribe, unsubscribe, publish, ping',
        );
    }
  }

  async #publish(frame: ClientFrame): Promise<void> {
    const topic = this.#topicOf(frame);
    this.#authorize('publish', topic);
    await this.options.admitPublish?.();
    const request = { data: frame.data, event: frame.event };
    const publish = () => this.service.publish(topic, request);
    const result = await (this.options.inUpgradeTrace?.(publish) ?? publish());
    this.connection.sendJson({ type: 'published', topic, id: result.id, ref: frame.ref });
  }

  /** Subscribing again to a topic replaces the earlier subscription (e.g. to resync). */
  #subscribe(topic: string, from: StartFrom): void {
    this.#subscriptions.get(topic)?.close();
    const subscription = this.service.subscribe(
      topic,
      from,
      wsSubscriber(this.connection, topic, () => this.#onSubscriptionFailed(topic)),
    );
    this.#subscriptions.set(topic, subscription);
  }

  #onSubscriptionFailed(topic: string): void {
    this.#subscriptions.delete(topic);
    this.connection.sendJson({
      type: 'error',
      code: 'subscription_failed',
      message: `subscription to ${topic} failed; subscribe again to resume`,
      topic,
    });
  }

  #authorize(action: TopicAction, topic: string): void {
    if (this.options.allows?.(action, topic) === false) {
      throw new StreamhubError(
        'forbidden',
        'forbidden',
        `the token does not allow ${action} on this topic`,
      );
    }
  }

  #topicOf(frame: ClientFrame): string {
    return checkTopic(frame.topic ?? this.options.boundTopic);
  }

  #reject(error: unknown, ref: unknown): void {
    const known = error instanceof StreamhubError;
    const code = known ? error.code : 'internal_error';
    this.options.onFrame?.('error', code);
    this.connection.sendJson({
      type: 'error',
      code,
      message: known ? error.message : 'internal server error',
      ref,
      ...(error instanceof LimitError ? { retry_after_ms: error.retryAfterMs } : {}),
    });
    // An outage of the backend is not the client's fault, and must not get it disconnected;
    // a publish past a rate limit was refused already, and the client was told when to retry.
    if (known && (error.kind === 'unavailable' || error.kind === 'rate_limited')) return;
    const now = Date.now();
    if (now - this.#windowStart > STRIKE_WINDOW_MS) {
      this.#windowStart = now;
      this.#strikes = 0;
    }
    if (++this.#strikes > MAX_STRIKES) {
      this.connection.close(CLOSE_POLICY_VIOLATION, 'too many invalid frames');
    }
  }

  #closeAll(): void {
    for (const subscription of this.#subscriptions.values()) subscription.close();
    this.#subscriptions.clear();
  }
}

function parseFrame(data: RawData, isBinary: boolean): ClientFrame {
  if (isBinary) {
    throw new StreamhubError('invalid', 'unsupported_frame', 'send JSON in text frames');
  }
  let frame: unknown;
  try {
    frame = JSON.parse(data.toString());
  } catch {
    throw new StreamhubError('invalid', 'invalid_json', 'frame is not valid JSON');
  }
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
    throw new StreamhubError('invalid', 'invalid_frame', 'frame must be a JSON object');
  }
  return frame as ClientFrame;
}
