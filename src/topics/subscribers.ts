import type { Subscriber } from '../core/hub.js';
import { encodeSseBatch } from '../transports/sse/framing.js';
import type { SseStream } from '../transports/sse/sse-stream.js';
import { encodeWsBatch } from '../transports/ws/framing.js';
import type { WsConnection } from '../transports/ws/ws-connection.js';

/** A topic subscription delivered over one SSE response. */
export function sseSubscriber(stream: SseStream): Subscriber {
  return {
    send: (batch) => stream.write(batch.encode(encodeSseBatch)),
    reset: (info) => stream.control('reset', info),
    drained: () => stream.drained(),
    fail: () => stream.end('server'),
  };
}

/** A topic subscription delivered over a (possibly shared) WebSocket. */
export function wsSubscriber(
  connection: WsConnection,
  topic: string,
  onFail: (error: unknown) => void,
): Subscriber {
  return {
    send: (batch) => connection.writeFrames(batch.encode(encodeWsBatch)),
    reset: (info) => connection.sendJson({ type: 'reset', topic, ...info }),
    drained: () => connection.drained(),
    fail: onFail,
  };
}
