import type { StreamhubClientError } from './errors.js';
import type { TokenSource } from './http.js';

/** An event stored in a topic's log, as delivered to a subscriber. */
export interface TopicEvent {
  /** Opaque, server-chosen; pass it back as `lastEventId` to resume after this event. */
  readonly id: string;
  /** The event type (`message` unless the publisher named one). */
  readonly event: string;
  /** The published JSON `data`, parsed. */
  readonly data: unknown;
}

/**
 * The server could not resume exactly after the requested id; it replays every retained
 * event next, so events between the requested id and `oldest` are lost to this subscriber.
 */
export interface ResetNotice {
  /** `history_truncated`, `epoch_mismatch` or `unknown_id` (docs/api.md §1). */
  readonly reason: string;
  /** The oldest retained event's id, or null when the topic has none. */
  readonly oldest: string | null;
}

/**
 * `connecting` → `open` → (`reconnecting` → `connecting` → `open`)* → `closed`.
 * A subscription ends (`closed`) only when closed by its owner or on a non-retryable error.
 */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface StateInfo {
  /** For `reconnecting`: why the last connection ended (absent when the server ended it cleanly),
   *  and for `closed`: the non-retryable error, if that is what stopped the subscription. */
  readonly error?: StreamhubClientError;
  /** For `reconnecting`: how long the client waits before the next attempt. */
  readonly delayMs?: number;
}

/** Where a subscription to a topic starts, and what it reports: the same over every transport. */
export interface TopicSubscriptionOptions {
  /** Resume after this event id. Wins over `fromStart`, as on the server. */
  readonly lastEventId?: string;
  /** Replay every retained event first. Default: only events published from now on. */
  readonly fromStart?: boolean;
  /** Called for each event, in order, exactly once per event id. */
  readonly onEvent: (event: TopicEvent) => void;
  readonly onReset?: (notice: ResetNotice) => void;
  readonly onStateChange?: (state: ConnectionState, info: StateInfo) => void;
  /** Called once when the subscription stops on a non-retryable error (e.g. 400, 401, 403). */
  readonly onError?: (error: StreamhubClientError) => void;
  /** Aborting it closes the subscription, like `close()`. */
  readonly signal?: AbortSignal;
}

export interface SubscribeOptions extends TopicSubscriptionOptions {
  /** Sent with every HTTP request. */
  readonly headers?: Record<string, string>;
  /**
   * Access token (docs/api.md §7), sent as `Authorization: Bearer` (SSE) or `?token=` (WebSocket).
   * A function is called on every (re)connection; a stream the server ends with `token_expired`
   * then reconnects with a fresh token, where a fixed token stops it with that error.
   */
  readonly token?: TokenSource;
  /** The `fetch` to use; default: the global one. */
  readonly fetch?: typeof fetch;
  /** Base reconnection delay. Default: the server's `retry:` suggestion, else 1000 ms. */
  readonly retryMs?: number;
  /** Longest reconnection delay. Default 30 s. */
  readonly maxRetryMs?: number;
  /**
   * A connection that receives nothing (not even a heartbeat) for this long is deemed dead and
   * replaced. Default 45 s, three of the server's default heartbeat intervals; 0 disables it.
   */
  readonly idleTimeoutMs?: number;
}

/** A running subscription. */
export interface Subscription {
  /** The id the next connection resumes after; undefined until the position is known. */
  readonly lastEventId: string | undefined;
  readonly state: ConnectionState;
  /**
   * Settles when the subscription has stopped: resolves after `close()` or an abort, rejects
   * with the StreamhubClientError that stopped it otherwise. Awaiting it is optional.
   */
  readonly closed: Promise<void>;
  close(): void;
}
