import type { Subscriber } from '../core/hub.js';
import type { StoredEvent } from '../core/types.js';
import { sseLogSubscriber } from '../transports/sse/log-subscriber.js';
import type { SseStream } from '../transports/sse/sse-stream.js';

/** Events of a reply log; `done`, `error` and `abort` end a reply. */
export type ReplyEventType = 'start' | 'delta' | 'done' | 'error' | 'abort';

const TERMINAL: ReadonlySet<string> = new Set<ReplyEventType>(['done', 'error', 'abort']);

export function endsReply(event: StoredEvent): boolean {
  return TERMINAL.has(event.event);
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
    subscriber: sseLogSubscriber(stream, { isLast: endsReply, alone: true }),
    supersede() {
      stream.control('abort', { reason: 'superseded' });
      stream.end();
    },
    onClose: (listener) => stream.onClose(listener),
  };
}
