import { constants, deflateRawSync } from 'node:zlib';
import type { BatchEncoder } from '../../core/batch.js';
import type { StoredEvent } from '../../core/types.js';
import { deflateOptionsFor } from '../deflate-options.js';

/**
 * An unmasked, final text frame (RFC 6455 §5.2), as a server sends it. Framing by hand lets a
 * batch be framed once and written to every socket as one buffer; going through `ws.send`
 * would frame every event again for every subscriber.
 */
export function textFrame(payload: Buffer, firstByte = FIN_TEXT): Buffer {
  const length = payload.length;
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = firstByte;
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

const FIN_TEXT = 0x81;
/** FIN, RSV1 (the message is compressed, RFC 7692 §6), text. */
const FIN_COMPRESSED_TEXT = 0xc1;
/** The empty stored block a sync flush ends with, which permessage-deflate leaves out. */
const SYNC_FLUSH_TAIL = 4;

/**
 * A compressed text frame for a socket that negotiated permessage-deflate without context
 * takeover: the message is deflated on its own, so the same frame decodes on every socket.
 */
export function compressedTextFrame(payload: Buffer): Buffer {
  const deflated = deflateRawSync(
    payload,
    deflateOptionsFor(payload.length, constants.Z_SYNC_FLUSH),
  );
  return textFrame(deflated.subarray(0, deflated.length - SYNC_FLUSH_TAIL), FIN_COMPRESSED_TEXT);
}

function batchFrames(frame: (payload: Buffer) => Buffer): BatchEncoder<Buffer> {
  return (topic, events) => {
    const prefix = `{"type":"event","topic":${JSON.stringify(topic)},"id":"`;
    const frames = events.map((event: StoredEvent) =>
      frame(Buffer.from(`${prefix}${event.id}","event":"${event.event}","data":${event.data}}`)),
    );
    return frames.length === 1 ? (frames[0] as Buffer) : Buffer.concat(frames);
  };
}

/** `{"type":"event",...}` for each event, framed, concatenated. */
export const encodeWsBatch = batchFrames(textFrame);

/** The same messages, each compressed: computed once per batch for every such socket. */
export const encodeDeflatedWsBatch = batchFrames(compressedTextFrame);
