import { Backoff } from './backoff.js';
import { type Endpoint, toEndpoint } from './endpoint.js';
import { worthRetrying } from './http.js';
import { reconnect } from './reconnect-loop.js';
import { TopicCursor } from './topic-cursor.js';
import type { ResetNotice, SubscribeOptions, Subscription, TopicEvent } from './types.js';
import { checkBaseUrl } from './urls.js';

/** What a transport gets for one connection attempt. */
export interface Attempt extends Endpoint {
  readonly topic: string;
  /** Aborted when the subscription is closed. */
  readonly signal: AbortSignal;
  /** Resume after this id when set; else replay all history when `fromStart`. */
  readonly lastEventId: string | undefined;
  readonly fromStart: boolean;
  /** The connection is established: later failures start the backoff afresh. */
  opened(): void;
  event(event: TopicEvent): void;
  reset(notice: ResetNotice): void;
  /** The server's suggested reconnection delay. */
  suggestRetry(ms: number): void;
}

/**
 * Opens one connection and settles when it ends: resolves when the server ends it cleanly,
 * rejects with a StreamhubClientError (retried when `retryable`) otherwise.
 */
export type Connect = (attempt: Attempt) => Promise<void>;

/**
 * The transport-independent part of a subscription: the cursor, the reconnect loop with
 * backoff, state reporting and closing. Each transport only provides `connect`.
 */
export function startSubscription(
  baseUrl: string,
  topic: string,
  options: SubscribeOptions,
  connect: Connect,
): Subscription {
  checkBaseUrl(baseUrl);
  const cursor = new TopicCursor(topic, options);
  const backoff = Backoff.forReconnection(options.retryMs, options.maxRetryMs);
  const endpoint = toEndpoint(baseUrl, options);
  const attempt: Attempt = {
    ...endpoint,
    topic,
    signal: cursor.signal,
    get lastEventId() {
      return cursor.lastEventId;
    },
    get fromStart() {
      return cursor.fromStart;
    },
    opened() {
      backoff.reset();
      cursor.report.set('open');
    },
    event: (event) => cursor.event(event),
    reset: (notice) => cursor.reset(notice),
    suggestRetry: (ms) => backoff.suggest(ms),
  };
  cursor.report.set('connecting');
  const run = reconnect({
    signal: cursor.signal,
    backoff,
    async connect() {
      await cursor.pinLiveStart(endpoint);
      await connect(attempt);
      return false;
    },
    retryable: (error) => worthRetrying(error, options.token),
    waiting: (delayMs, error) => cursor.report.reconnecting(delayMs, error),
    retrying: () => cursor.report.set('connecting'),
  });
  return cursor.follow(run);
}
