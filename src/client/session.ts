import { Backoff, sleep } from './backoff.js';
import { StreamhubClientError } from './errors.js';
import { fetchLastId, globalFetch } from './http.js';
import { withIdleTimeout } from './idle.js';
import type {
  ConnectionState,
  ResetNotice,
  StateInfo,
  SubscribeOptions,
  Subscription,
  TopicEvent,
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

/** What a transport gets for one connection attempt. */
export interface Attempt {
  readonly baseUrl: string;
  readonly topic: string;
  readonly headers: Record<string, string>;
  readonly fetch: typeof fetch;
  /** Aborted when the subscription is closed. */
  readonly signal: AbortSignal;
  /** Resume after this id when set; else replay all history when `fromStart`. */
  readonly lastEventId: string | undefined;
  readonly fromStart: boolean;
  readonly idleTimeoutMs: number;
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
  const controller = new AbortController();
  const { signal } = controller;
  const abort = () => controller.abort();
  if (options.signal?.aborted) abort();
  options.signal?.addEventListener('abort', abort, { once: true });

  let lastEventId = options.lastEventId || undefined;
  let fromStart = options.fromStart ?? false;
  let state: ConnectionState = 'connecting';
  const fetchImpl = options.fetch ?? globalFetch;
  const headers = options.headers ?? {};
  const backoff = Backoff.forReconnection(options.retryMs, options.maxRetryMs);

  const setState = (next: ConnectionState, info: StateInfo = {}) => {
    state = next;
    if (options.onStateChange) invoke(options.onStateChange, next, info);
  };

  const attempt: Attempt = {
    baseUrl,
    topic,
    headers,
    fetch: fetchImpl,
    signal,
    get lastEventId() {
      return lastEventId;
    },
    get fromStart() {
      return fromStart;
    },
    idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    opened() {
      backoff.reset();
      setState('open');
    },
    event(event) {
      // Advanced before the callback runs, so an event is never delivered twice, even if it throws.
      lastEventId = event.id;
      invoke(options.onEvent, event);
    },
    reset(notice) {
      if (options.onReset) invoke(options.onReset, notice);
    },
    suggestRetry(ms) {
      backoff.suggest(ms);
    },
  };

  /**
   * A live-only subscription pins its start to the topic's current last id before connecting,
   * so a reconnect before its first event resumes from there instead of going live again and
   * silently skipping what was published while it was disconnected.
   */
  const pinLiveStart = async () => {
    if (lastEventId !== undefined || fromStart) return;
    const lastId = await withIdleTimeout(signal, attempt.idleTimeoutMs, (idle) =>
      fetchLastId({ baseUrl, topic, headers, fetch: fetchImpl, signal: idle.signal }),
    );
    if (lastId === null) fromStart = true;
    else lastEventId = lastId;
  };

  setState('connecting');
  const closed = reconnect({
    signal,
    backoff,
    async connect() {
      await pinLiveStart();
      await connect(attempt);
      return false;
    },
    waiting: (delayMs, error) =>
      setState('reconnecting', error === undefined ? { delayMs } : { error, delayMs }),
    retrying: () => setState('connecting'),
  }).then(
    () => setState('closed'),
    (error: StreamhubClientError) => {
      setState('closed', { error });
      if (options.onError) invoke(options.onError, error);
      throw error;
    },
  );
  closed.catch(() => {}).finally(() => options.signal?.removeEventListener('abort', abort));

  return {
    get lastEventId() {
      return lastEventId;
    },
    get state() {
      return state;
    },
    closed,
    close: abort,
  };
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
function invoke<A extends unknown[]>(callback: (...args: A) => void, ...args: A): void {
  try {
    callback(...args);
  } catch (error) {
    setTimeout(() => {
      throw error;
    });
  }
}
