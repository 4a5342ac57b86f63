import type { Subscriber } from '../core/hub.js';
import { encodeDeflatedWsBatch, encodeWsBatch } from '../transports/ws/framing.js';
import type { WsConnection } from '../transports/ws/ws-connection.js';

/** A topic subscription delivered over a (possibly shared) WebSocket. */
export function wsSubscriber(
  connection: WsConnection,
  topic: string,
  onFail: (error: unknown) => void,
): Subscriber {
  const encoder = connection.deflate ? encodeDeflatedWsBatch : encodeWsBatch;
  return {
    send: (batch) => connection.writeFrames(batch.encode(encoder)),
    reset: (info) => connection.sendJson({ type: 'reset', topic, ...info }),
    drained: () => connection.drained(),
    fail: onFail,
  };
}
