import type { Subscriber } from '../core/hub.js';
import { encodeSseBatch } from '../transports/sse/framing.js';
import type { SseStream } from '../transports/sse/sse-stream.js';

/** Events of a reply log; `done`, `error` and `abort` end a reply. */
export type ReplyEventType = 'start' | 'delta' | 'done' | 'error' | 'abort';

const TERMINAL: ReadonlySet<string> = new Set<ReplyEventType>(['done', 'error', 'abort']);

export function isTerminal(eventType: string): boolean {
  return TERMINAL.has(eventType);
}

/** One open stream of a reply, as the session service sees it. */
export interface ReplyViewer {
  readonly subscriber: Subscriber;
  /** A newer viewer took the session over: say so (without an id) and close. */
  supersede(): void;
  onClose(listener: () => void): void;
}

/** A reply's SSE stream: stored events as they come, closed after the one that ends the reply. */
export function sseReplyViewer(stream: SseStream): ReplyViewer {
  return {
    subscriber: {
      send(batch) {
        const accepted = stream.write(batch.encode(encodeSseBatch));
        const last = batch.events[batch.events.length - 1];
        if (last !== undefined && isTerminal(last.event)) stream.end();
        return accepted;
      },
      reset: (info) => stream.control('reset', info),
      drained: () => stream.drained(),
      fail: () => stream.end('server'),
    },
    supersede() {
      stream.control('abort', { reason: 'superseded' });
      stream.end();
    },
    onClose: (listener) => stream.onClose(listener),
  };
}
