import assert from 'node:assert/strict';
import type { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { constants, inflateRawSync } from 'node:zlib';
import * as ws from 'ws';
import type { StoredEvent } from '../../../src/core/types.js';
import {
  encodeDeflatedWsBatch,
  encodeWsBatch,
  textFrame,
} from '../../../src/transports/ws/framing.js';

/** The `ws` package's own frame parser, client side (it expects unmasked server frames). */
const { Receiver } = ws as unknown as {
  Receiver: new (options: { isServer: boolean }) => Writable;
};

/** Parses bytes with `ws` and returns the text messages, failing on any protocol error. */
function decodeFrames(bytes: Buffer): Promise<string[]> {
  const receiver = new Receiver({ isServer: false });
  const messages: string[] = [];
  receiver.on('message', (data: Buffer, isBinary: boolean) => {
    assert.equal(isBinary, false, 'a text frame');
    messages.push(data.toString());
  });
  return new Promise((resolve, reject) => {
    receiver.on('error', reject);
    receiver.write(bytes, (error) => (error ? reject(error) : resolve(messages)));
  });
}

function stored(seq: number, event: string, data: string): StoredEvent {
  return { id: `k2v9xq0a-${seq}`, seq, event, data, time: 0 };
}

describe('hand-built WebSocket text frames', () => {
  // Both sides of each length-encoding boundary of RFC 6455 §5.2 (7-bit, 16-bit, 64-bit).
  for (const length of [0, 1, 125, 126, 127, 65_535, 65_536, 200_000]) {
    test(`a ${length}-byte payload is one valid final, unmasked text frame`, async () => {
      const payload = Buffer.from('é'.repeat(Math.floor(length / 2)) + 'a'.repeat(length % 2));
      assert.equal(payload.length, length);
      const frame = textFrame(payload);
      assert.equal(frame[0], 0x81, 'FIN + text opcode');
      assert.equal((frame[1] as number) & 0x80, 0, 'server frames are not masked');
      assert.deepEqual(await decodeFrames(frame), [payload.toString()]);
    });
  }

  test('a batch encodes to one event frame per event, in order, with data embedded as stored', async () => {
    const events = [
      stored(1, 'message', '{"n":1,"s":"a\\"b\\n"}'),
      stored(2, 'chat.delta', '"plain"'),
      stored(3, 'x:y-z_1', `[${'9,'.repeat(40_000)}0]`),
    ];
    const decoded = await decodeFrames(encodeWsBatch('room:1@a.b-c_d', events));
    assert.deepEqual(
      decoded.map((text) => JSON.parse(text)),
      events.map((event) => ({
        type: 'event',
        topic: 'room:1@a.b-c_d',
        id: event.id,
        event: event.event,
        data: JSON.parse(event.data),
      })),
    );
  });

  test('a deflated batch is one compressed frame per event, each decodable on its own', () => {
    const events = [
      stored(1, 'message', '{"n":1}'),
      stored(2, 'message', `"${'ab'.repeat(40_000)}"`),
    ];
    const plain = events.map((event) => encodeWsBatch('news', [event]));
    const compressed = splitFrames(encodeDeflatedWsBatch('news', events));
    assert.equal(compressed.length, 2);
    compressed.forEach(({ firstByte, payload }, index) => {
      assert.equal(firstByte, 0xc1, 'FIN + RSV1 (permessage-deflate) + text opcode');
      // RFC 7692 §7.2.2: the receiver appends the sync-flush tail the sender left out.
      const message = inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), {
        finishFlush: constants.Z_SYNC_FLUSH,
      });
      assert.deepEqual(message, splitFrames(plain[index] as Buffer)[0]?.payload);
    });
  });
});

/** Unmasked frames one after another: first byte and payload of each. */
function splitFrames(bytes: Buffer): { firstByte: number; payload: Buffer }[] {
  const frames: { firstByte: number; payload: Buffer }[] = [];
  for (let offset = 0; offset < bytes.length; ) {
    const shortLength = (bytes[offset + 1] as number) & 0x7f;
    const [headerLength, length] =
      shortLength === 126
        ? [4, bytes.readUInt16BE(offset + 2)]
        : shortLength === 127
          ? [10, Number(bytes.readBigUInt64BE(offset + 2))]
          : [2, shortLength];
    const start = offset + headerLength;
    frames.push({
      firstByte: bytes[offset] as number,
      payload: bytes.subarray(start, start + length),
    });
    offset = start + length;
  }
  return frames;
}
