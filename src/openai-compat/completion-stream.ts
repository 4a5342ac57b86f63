import type { BatchEncoder } from '../core/batch.js';
import type { Subscriber } from '../core/hub.js';
import type { StoredEvent } from '../core/types.js';
import { dataField, type SseFrames, sseFrames } from '../transports/sse/framing.js';
import { sseLogSubscriber } from '../transports/sse/log-subscriber.js';
import type { SseStream } from '../transports/sse/sse-stream.js';

/**
 * Events of a completion's log. `chunk` holds a `chat.completion.chunk`; `done` holds OpenAI's
 * `[DONE]` sentinel; `error` holds `{"error": {...}}` and ends the stream WITHOUT `[DONE]`, so
 * no client can mistake a failed answer for a complete one.
 */
export type CompletionEventType = 'chunk' | 'done' | 'error';

export const DONE_SENTINEL = '[DONE]';

export function endsCompletion(event: StoredEvent): boolean {
  return event.event === 'done' || event.event === 'error';
}

/**
 * `id:` and `data:` only. OpenAI's SDKs treat an `event:` line as a different kind of
 * message, so the event type stays in the log and never reaches the wire.
 */
export const encodeCompletionBatch: BatchEncoder<SseFrames> = (_topic, events) => {
  let text = '';
  for (const event of events) text += `id: ${event.id}\n${dataField(event.data)}\n`;
  return sseFrames(text);
};

/** Writes a completion's log to one SSE response and ends it after the final event. */
export function completionSubscriber(stream: SseStream): Subscriber {
  return sseLogSubscriber(stream, { encoder: encodeCompletionBatch, isLast: endsCompletion });
}
