import type { BatchEncoder } from '../../core/batch.js';
import type { Subscriber } from '../../core/hub.js';
import type { StoredEvent } from '../../core/types.js';
import { encodeSseBatch, type SseFrames } from './framing.js';
import type { SseStream } from './sse-stream.js';

export interface LogSubscriberOptions {
  /** The wire format of a batch; the standard id/event/data frames by default. */
  readonly encoder?: BatchEncoder<SseFrames>;
  /** For logs with an end (a reply): the stream closes after the event that ends it. */
  readonly isLast?: (event: StoredEvent) => boolean;
}

/** Delivers a log subscription over one SSE response. */
export function sseLogSubscriber(
  stream: SseStream,
  options: LogSubscriberOptions = {},
): Subscriber {
  const encoder = stream.wireEncoder(options.encoder ?? encodeSseBatch);
  const { isLast } = options;
  return {
    send(batch) {
      const frames = batch.encode(encoder);
      const last = batch.events[batch.events.length - 1];
      if (isLast !== undefined && last !== undefined && isLast(last)) {
        stream.end('server', frames);
        return true;
      }
      // An encoder may leave events out; an empty HTTP chunk would end the response.
      return frames.payload.length === 0 || stream.writeFrames(frames);
    },
    reset: (info) => stream.control('reset', info),
    drained: () => stream.drained(),
    fail: () => stream.end('server'),
  };
}
