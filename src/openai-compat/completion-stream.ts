import type { BatchEncoder } from '../core/batch.js';
import type { LogFeed } from '../core/creator-feed.js';
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
export const encodeCompletionBatch: BatchEncoder<SseFrames> = (_topic, events) =>
  sseFrames(completionText(events));

function completionText(events: readonly StoredEvent[]): string {
  let text = '';
  for (const event of events) text += `id: ${event.id}\n${dataField(event.data)}\n`;
  return text;
}

/**
 * The same, fed by the completion's recorder to the client that started it. The first events
 * are written at once (the first token waits for nothing), and so are those that come while
 * the response's socket is still corked with them; later ones are gathered until the
 * next tick, which runs once the promise jobs of the current upstream read are done, so the
 * chunks of one read go out in one write, as the hub's batches do, and the final event goes
 * out with the end of the response.
 */
export function completionFeed(stream: SseStream): LogFeed {
  let pending: StoredEvent[] | undefined;
  const write = (events: readonly StoredEvent[]): boolean => {
    const text = completionText(events);
    if (endsCompletion(events[events.length - 1] as StoredEvent)) {
      stream.end('server', text);
      return false;
    }
    return stream.writeText(text) || !stream.closed;
  };
  const flush = () => {
    const events = pending ?? [];
    pending = [];
    if (events.length > 0) write(events);
  };
  return (events) => {
    if (stream.closed) return false;
    // The first events go at once, as do those that still join the headers' write: the
    // role chunk and the first token of one upstream read reach the client together.
    if (pending === undefined || (pending.length === 0 && stream.corked)) {
      pending = [];
      return write(events);
    }
    if (pending.length === 0) process.nextTick(flush);
    for (const event of events) pending.push(event);
    if (!endsCompletion(events[events.length - 1] as StoredEvent)) return true;
    flush();
    return false;
  };
}

/** Writes a completion's log to one SSE response and ends it after the final event. */
export function completionSubscriber(stream: SseStream): Subscriber {
  return sseLogSubscriber(stream, { encoder: encodeCompletionBatch, isLast: endsCompletion });
}
