/** One event as stored in a topic's log. `data` is the payload's JSON text, serialized once. */
export interface StoredEvent {
  readonly id: string;
  readonly seq: number;
  readonly event: string;
  readonly data: string;
  /** Publication time, epoch milliseconds. */
  readonly time: number;
}

export interface EventInput {
  readonly event: string;
  /** The payload as JSON text. */
  readonly data: string;
}

export type ResetReason = 'history_truncated' | 'epoch_mismatch' | 'unknown_id';

/** Sent before replay when a client's position cannot be resumed from exactly. */
export interface ResetInfo {
  readonly reason: ResetReason;
  /** Id of the oldest retained event, or `null` when nothing is retained. */
  readonly oldest: string | null;
}

export interface TopicInfo {
  readonly lastId: string | null;
  /** Number of retained events. */
  readonly length: number;
}

export const DEFAULT_EVENT_TYPE = 'message';
