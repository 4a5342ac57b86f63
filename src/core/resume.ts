import type { ReadFrom } from './event-log.js';
import { formatId, type Position } from './ids.js';
import type { ResetInfo, ResetReason } from './types.js';

/** What a backend knows about a topic's retained range. */
export interface LogBounds {
  /** `null` when the topic has no log (never written, deleted, or expired). */
  readonly epoch: string | null;
  /** Sequence number of the oldest retained event; `lastSeq + 1` when nothing is retained. */
  readonly firstSeq: number;
  readonly lastSeq: number;
}

export interface ReadPlan {
  /** Read events with a sequence number greater than this. */
  readonly afterSeq: number;
  readonly reset?: ResetInfo;
}

/**
 * Decides where a read resumes, shared by every backend so that resets mean the same thing
 * everywhere: a client either continues exactly after its id, or is told why it cannot.
 */
export function planRead(bounds: LogBounds, from: ReadFrom): ReadPlan {
  const everything = bounds.firstSeq - 1;
  if (from === null) return { afterSeq: everything };
  const reason = resetReason(bounds, from);
  if (reason === undefined) return { afterSeq: (from as Position).seq };
  return { afterSeq: everything, reset: { reason, oldest: oldestId(bounds) } };
}

function resetReason(bounds: LogBounds, from: Position | 'unknown'): ResetReason | undefined {
  if (from === 'unknown') return 'unknown_id';
  // A position without an epoch was taken before the log existed: any epoch continues it.
  if (from.epoch !== null && from.epoch !== bounds.epoch) return 'epoch_mismatch';
  if (from.seq > bounds.lastSeq) return 'unknown_id';
  if (from.seq < bounds.firstSeq - 1) return 'history_truncated';
  return undefined;
}

export function oldestId(bounds: LogBounds): string | null {
  return bounds.epoch !== null && bounds.firstSeq <= bounds.lastSeq
    ? formatId(bounds.epoch, bounds.firstSeq)
    : null;
}

export function headOf(bounds: LogBounds): Position {
  return { epoch: bounds.epoch, seq: bounds.lastSeq };
}
