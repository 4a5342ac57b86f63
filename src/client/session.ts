import { Backoff, sleep } from './backoff.js';
import { StreamhubClientError } from './errors.js';
import { type Credentials, fetchLastId, globalFetch, worthRetrying } from './http.js';
import { withIdleTimeout } from './idle.js';
import type {
  ConnectionState,
  ResetNotice,
  StateInfo,
  SubscribeOptions,
  Subscription,
  TopicEvent,
  TopicSubscriptionOptions,
} from './types.js';
import { checkBaseUrl } from './urls.js';

/** Three of the server's default heartbeat intervals. */
export const DEFAULT_IDLE_TIMEOUT_MS = 45_000;

export interface ReconnectLoop {
  /** Aborting it ends the loop (also while it waits): `reconnect` then resolves. */
  readonly signal: AbortSignal;
  readonly backoff: Backoff;
  /**
   * Opens one connection and settles when it ends: resolves `true` when the stream is over
   * for good, `false` to reconnect; rejects with an error, retried when `retryable`.
   */
  connect(): Promise<boolean>;
  /** Whether a failure is worth another attempt. Default: the error's `retryable`. */
  retryable?(error: StreamhubClientError): boolean;
  /** Before waiting `delayMs` for the next attempt; `error` is absent after a clean end. */
  waiting?(delayMs: number, error: StreamhubClientError | undefined): void;
  /** After that wait, as the next attempt starts. */
  retrying?(): void;
}

/**
 * Connects again and again, with backoff between attempts, until a connection reports the
 * stream over or the signal aborts (resolves), or a failure is not worth retrying (rejects with
 * it as a StreamhubClientError). Callers reset the backoff when a connection is established.
 */
export async function reconnect(loop: ReconnectLoop): Promise<void> {
  const { signal, backoff } = loop;
  while (!signal.aborted) {
    let error: StreamhubClientError | undefined;
    try {
      if (await loop.connect()) return;
    } catch (caught) {
      if (signal.aborted) return;
      error = asClientError(caught);
      if (!(loop.retryable?.(error) ?? error.retryable)) throw error;
    }
    if (signal.aborted) return;
    const delayMs = backoff.next();
    loop.waiting?.(delayMs, error);
    await sleep(delayMs, signal);
    if (!signal.aborted) loop.retrying?.();
  }
}

/** The server, and how to reach it. */
export interface Endpoint extends Credentials {
  readonly baseUrl: string;
  readonly fetch: typeof fetch;
  readonly idleTimeoutMs: number;
}

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
  const endpoint: Endpoint = {
    baseUrl,
    headers: options.headers ?? {},
    token: options.token,
    fetch: options.fetch ?? globalFetch,
    idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
  };
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

/** A connection state, and the callback told of each change. */
export class StateReport {
  state: ConnectionState = 'connecting';

  constructor(readonly listener: ((state: ConnectionState, info: StateInfo) => void) | undefined) {}

  set(next: ConnectionState, info: StateInfo = {}): void {
    this.state = next;
    if (this.listener) invoke(this.listener, next, info);
  }

  /** Waiting `delayMs` before the next attempt, after `error` (absent after a clean end). */
  reconnecting(delayMs: number, error: StreamhubClientError | undefined): void {
    this.set('reconnecting', error === undefined ? { delayMs } : { error, delayMs });
  }
}

/**
 * What one subscription is over any transport: its position in the topic, its state, its
 * callbacks and its end. `close()`, or an abort of the owner's signal, aborts `signal`.
 */
export class TopicCursor {
  readonly report: StateReport;
  readonly #controller = new AbortController();
  readonly #options: TopicSubscriptionOptions;
  #lastEventId: string | undefined;
  #fromStart: boolean;

  constructor(
    readonly topic: string,
    options: TopicSubscriptionOptions,
  ) {
    this.#options = options;
    this.report = new StateReport(options.onStateChange);
    this.#lastEventId = options.lastEventId || undefined;
    this.#fromStart = options.fromStart ?? false;
    if (options.signal?.aborted) this.close();
    options.signal?.addEventListener('abort', this.close, { once: true });
  }

  readonly close = (): void => this.#controller.abort();

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get lastEventId(): string | undefined {
    return this.#lastEventId;
  }

  get fromStart(): boolean {
    return this.#fromStart;
  }

  event(event: TopicEvent): void {
    // Advanced before the callback runs, so an event is never delivered twice, even if it throws.
    this.#lastEventId = event.id;
    invoke(this.#options.onEvent, event);
  }

  reset(notice: ResetNotice): void {
    if (this.#options.onReset) invoke(this.#options.onReset, notice);
  }

  /**
   * A live-only subscription pins its start to the topic's current last id before connecting,
   * so a reconnect before its first event resumes from there instead of going live again and
   * silently skipping what was published while it was disconnected.
   */
  async pinLiveStart(endpoint: Endpoint): Promise<void> {
    if (this.#lastEventId !== undefined || this.#fromStart) return;
    const lastId = await withIdleTimeout(this.signal, endpoint.idleTimeoutMs, (idle) =>
      fetchLastId({ ...endpoint, topic: this.topic, signal: idle.signal }),
    );
    if (lastId === null) this.#fromStart = true;
    else this.#lastEventId = lastId;
  }

  /**
   * The subscription whose life is `run`: it resolves when the subscription was closed, rejects
   * with the non-retryable error that stopped it.
   */
  follow(run: Promise<void>): Subscription {
    const { report } = this;
    const closed = run.then(
      () => report.set('closed'),
      (error: StreamhubClientError) => {
        report.set('closed', { error });
        if (this.#options.onError) invoke(this.#options.onError, error);
        throw error;
      },
    );
    closed
      .catch(() => {})
      .finally(() => this.#options.signal?.removeEventListener('abort', this.close));
    const cursor = this;
    return {
      get lastEventId() {
        return cursor.lastEventId;
      },
      get state() {
        return report.state;
      },
      closed,
      close: this.close,
    };
  }
}

/** Where a connection starts (query parameters or frame fields, contract §2 and §3). */
export function startFields(cursor: {
  readonly lastEventId: string | undefined;
  readonly fromStart: boolean;
}): { last_event_id?: string; from?: 'start' } {
  if (cursor.lastEventId !== undefined) return { last_event_id: cursor.lastEventId };
  return cursor.fromStart ? { from: 'start' } : {};
}

function asClientError(error: unknown): StreamhubClientError {
  if (error instanceof StreamhubClientError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new StreamhubClientError(0, 'network_error', message, { cause: error });
}

/**
 * Runs a user callback. Its exception is rethrown on its own task, like an exception in an
 * EventTarget listener: reported, but it neither breaks the stream nor is swallowed.
 */
export function invoke<A extends unknown[]>(callback: (...args: A) => void, ...args: A): void {
  try {
    callback(...args);
  } catch (error) {
    setTimeout(() => {
      throw error;
    });
  }
}
