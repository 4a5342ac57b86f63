import { StreamhubError } from './errors.js';
import type { Position } from './ids.js';
import type { EventInput, ResetInfo, StoredEvent, TopicInfo } from './types.js';

export interface AppendOptions {
  /** Retrying with a key already used on the topic appends nothing and returns the original. */
  readonly idempotencyKey?: string;
  /**
   * Ends the log: every later append is refused with `log_ended` until the log is deleted.
   * A reply's last event is final, so a generator that lost its turn (a process that froze
   * past its lease) cannot add to a reply that was already ended for it.
   */
  readonly final?: boolean;
  /**
   * Appends only to this epoch: when the log was deleted (or started again) meanwhile, the
   * append is refused with `log_ended` instead of starting a new epoch, so a writer that has
   * not yet heard that its log was deleted cannot leave an orphan log behind.
   */
  readonly epoch?: string;
  /**
   * The writer's fencing token: the append is refused with `log_ended` once the log was fenced
   * with a higher one (see `EventLog.fence`), so a writer that was frozen past its lease
   * cannot add to a log that another writer has taken over.
   */
  readonly fence?: number;
  /**
   * The seq of the log's last event as the log's one writer knows it, passed with `epoch` (and
   * `fence`): a hint a backend may use to take a cheaper path while nothing else changed the log
   * (Redis: one `HGET` instead of the whole check). It never changes what the append does.
   */
  readonly lastSeq?: number;
}

/** A batch's options: an idempotency key names one event, so a batch takes none. */
export type BatchAppendOptions = Omit<AppendOptions, 'idempotencyKey'>;

/**
 * The most events one `appendBatch` takes: a backend may run a batch as one atomic step (one
 * Lua script holds Redis for its whole length), so the step stays short.
 */
export const MAX_APPEND_BATCH = 256;

export interface AppendResult {
  readonly id: string;
  readonly event: string;
  /** True when an earlier append with the same idempotency key answered instead. */
  readonly duplicate: boolean;
}

/**
 * Where a read starts: after a position, from the oldest retained event (`null`), or from a
 * client-supplied id that does not parse (`'unknown'`, which reads from the oldest with a reset).
 */
export type ReadFrom = Position | null | 'unknown';

export interface ReadResult {
  /**
   * Events after the start, oldest first, at most `limit`, all of the head's epoch. Fewer
   * than `limit` means the read reached `head`: backends take both in one consistent view.
   */
  readonly events: readonly StoredEvent[];
  /** Present when the start could not be resumed from exactly; events then begin at the oldest. */
  readonly reset?: ResetInfo;
  /** The log's last position when the read was taken. */
  readonly head: Position;
}

/** Receives every event appended to a watched topic, in order, once per process. */
export type LiveListener = (epoch: string, event: StoredEvent) => void;

/**
 * A backend: per-topic append-only logs with bounded retention plus live notification.
 * Implementations: memory (one process) and Redis (Streams for history, Pub/Sub for live).
 */
export interface EventLog {
  append(topic: string, input: EventInput, options?: AppendOptions): Promise<AppendResult>;
  /**
   * `append` done at once, offered by a backend that appends synchronously underneath (memory):
   * it returns what `append` resolves to and throws what it rejects with. A log's one writer
   * uses it to record a model chunk without a promise (see `FiniteLogWriter.appendNow`).
   */
  appendNow?(topic: string, input: EventInput, options?: AppendOptions): AppendResult;
  /**
   * Appends `inputs` (1 to MAX_APPEND_BATCH) in order as one step: all land, with consecutive
   * ids, or none does (the same refusals as `append`, checked once). `final` ends the log with
   * the last of them. Resolves to their ids once, as with `append`, this process's watchers
   * saw them. One backend call for the lot is what makes a producer's backlog cheap.
   */
  appendBatch(
    topic: string,
    inputs: readonly EventInput[],
    options?: BatchAppendOptions,
  ): Promise<string[]>;
  read(topic: string, from: ReadFrom, limit: number): Promise<ReadResult>;
  head(topic: string): Promise<Position>;
  info(topic: string): Promise<TopicInfo>;
  /**
   * A new writer takes the log over: resolves to its fencing token, `token` or, if the log was
   * fenced with that already, the next one above its fence, and refuses from now on the appends
   * fenced with a lower one; appends without a fence are not affected. So no token is handed out
   * twice in an epoch, even by callers that count takeovers in a store that may forget one (a
   * Redis failover). A log without events records no fence, and resolves to `token`.
   */
  fence(topic: string, token: number): Promise<number>;
  /** Drops the topic's history; the next append starts a new epoch. */
  delete(topic: string): Promise<void>;
  /**
   * Starts live notification for a topic; resolves once no later append can be missed.
   * Each call gets its own stop function: callers may watch the same topic more than once.
   */
  watch(topic: string, listener: LiveListener): Promise<() => void>;
  isReady(): Promise<boolean>;
  close(): Promise<void>;
}

export function logEndedError(topic: string): StreamhubError {
  return new StreamhubError('conflict', 'log_ended', `${topic} has ended`);
}

export function isLogEnded(error: unknown): boolean {
  return error instanceof StreamhubError && error.code === 'log_ended';
}

/** For an ending appended by whoever notices first: the log has ended already, nothing to do. */
export function rethrowUnlessEnded(error: unknown): void {
  if (!isLogEnded(error)) throw error;
}

/**
 * A writer's log was started again under it: it was deleted, or (on a cluster) a failover lost
 * some of its events and it began a new epoch. The writer's appends are refused from then on.
 */
export function logRestartedError(topic: string): StreamhubError {
  return new StreamhubError(
    'conflict',
    'log_restarted',
    `${topic} was started again while it was written (deleted, or events lost by a backend failover)`,
  );
}

export function isLogRestarted(error: unknown): boolean {
  return error instanceof StreamhubError && error.code === 'log_restarted';
}

/** A batch of 1 to MAX_APPEND_BATCH events, or a TypeError: callers split larger ones. */
export function checkBatchSize(inputs: readonly EventInput[]): void {
  if (inputs.length === 0 || inputs.length > MAX_APPEND_BATCH) {
    throw new TypeError(`a batch holds 1 to ${MAX_APPEND_BATCH} events, not ${inputs.length}`);
  }
}
