import assert from 'node:assert/strict';
import type { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import * as ws from 'ws';
import type { StoredEvent } from '../../../src/core/types.js';
import { encodeWsBatch, textFrame } from '../../../src/transports/ws/framing.js';

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
});
