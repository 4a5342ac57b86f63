import type { BatchEncoder } from '../../core/batch.js';

/**
 * An unmasked, final text frame (RFC 6455 §5.2), as a server sends it. Framing by hand lets a
 * batch be framed once and written to every socket as one buffer; going through `ws.send`
 * would frame every event again for every subscriber.
 */
export function textFrame(payload: Buffer): Buffer {
  const length = payload.length;
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x81;
  if (length < 126) {
    frame[1] = length;
  } else if (length < 65_536) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  payload.copy(frame, headerLength);
  return frame;
}

/** `{"type":"event",...}` for each event, framed, concatenated. */
export const encodeWsBatch: BatchEncoder<Buffer> = (topic, events) => {
  const prefix = `{"type":"event","topic":${JSON.stringify(topic)},"id":"`;
  const frames = events.map((event) =>
    textFrame(Buffer.from(`${prefix}${event.id}","event":"${event.event}","data":${event.data}}`)),
  );
  return frames.length === 1 ? (frames[0] as Buffer) : Buffer.concat(frames);
};
