import type { BatchEncoder } from '../../core/batch.js';
import type { Subscriber } from '../../core/hub.js';
import type { StoredEvent } from '../../core/types.js';
import { encodeSseBatch, type SseFrames, sseBatchText } from './framing.js';
import type { SseStream } from './sse-stream.js';

export interface LogSubscriberOptions {
  /** The wire format of a batch; the standard id/event/data frames by default. */
  readonly encoder?: BatchEncoder<SseFrames>;
  /** For logs with an end (a reply): the stream closes after the event that ends it. */
  readonly isLast?: (event: StoredEvent) => boolean;
  /**
   * The log is read by one stream at a time (a chat reply): each batch goes out as the standard
   * frames' text, framed for this stream alone (`SseStream.writeText`), rather than copied into
   * a buffer that every subscriber would share. Measured at 300 concurrent chats of 100 tokens
   * at 20 tokens/s (2 CPUs, load ~15, 3 rounds, same run), with the writer counting ids instead
   * of parsing them: `/v1/chat` gateway CPU per token 87/93/82 → 76/85/81 µs.
   */
  readonly alone?: boolean;
}

/** Delivers a log subscription over one SSE response. */
export function sseLogSubscriber(
  stream: SseStream,
  options: LogSubscriberOptions = {},
): Subscriber {
  const encoder = stream.wireEncoder(options.encoder ?? encodeSseBatch);
  const { isLast, alone } = options;
  return {
    send(batch) {
      const wire = alone ? batch.encode(sseBatchText) : batch.encode(encoder);
      const last = batch.events[batch.events.length - 1];
      if (isLast !== undefined && last !== undefined && isLast(last)) {
        stream.end('server', wire);
        return true;
      }
      // An encoder may leave events out; an empty HTTP chunk would end the response.
      if (typeof wire === 'string') return wire.length === 0 || stream.writeText(wire);
      return wire.payload.length === 0 || stream.writeFrames(wire);
    },
    reset: (info) => stream.control('reset', info),
    drained: () => stream.drained(),
    fail: () => stream.end('server'),
  };
}
