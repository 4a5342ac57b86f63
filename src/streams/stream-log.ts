import type { BatchEncoder } from '../core/batch.js';
import type { Subscriber } from '../core/hub.js';
import type { StreamEnding } from '../core/stream-store.js';
import type { EventInput, StoredEvent } from '../core/types.js';
import { eventFrame, type SseFrames, sseFrames } from '../transports/sse/framing.js';
import { sseLogSubscriber } from '../transports/sse/log-subscriber.js';
import type { SseStream } from '../transports/sse/sse-stream.js';

/**
 * The last event of a complete stream's log: it marks the end for consumers on every process
 * and, appended `final`, closes the log to late writers, but it is never sent (a complete
 * stream ends exactly with its producer's last event) nor counted. No producer can send its
 * type: `#` is not allowed in event types.
 */
export const COMPLETE_MARKER = '#complete';

const ENDINGS: ReadonlySet<string> = new Set<string>([
  COMPLETE_MARKER,
  'cancelled',
  'producer_lost',
  'too_long',
] satisfies (StreamEnding | typeof COMPLETE_MARKER)[]);

export function endsStream(event: StoredEvent): boolean {
  return ENDINGS.has(event.event);
}

/**
 * The event that ends a stream's log: the marker for a complete stream; otherwise an event
 * typed by the status whose data is an AI SDK error chunk, so that consumers always learn how
 * the stream ended.
 */
export function endingEvent(status: StreamEnding, reason: string): EventInput {
  if (status === 'complete') return { event: COMPLETE_MARKER, data: '' };
  return {
    event: status,
    data: JSON.stringify({ type: 'error', errorText: `${status}: ${reason}` }),
  };
}

/** The standard frames, without the complete marker. */
const encodeStreamBatch: BatchEncoder<SseFrames> = (_topic, events) => {
  let text = '';
  for (const event of events) if (event.event !== COMPLETE_MARKER) text += eventFrame(event);
  return sseFrames(text);
};

/** A stream's SSE consumer: stored events as they come, closed after the stream's end. */
export function streamSubscriber(stream: SseStream): Subscriber {
  return sseLogSubscriber(stream, { encoder: encodeStreamBatch, isLast: endsStream });
}
