/**
 * Shared gzip segments: batches deflated on their own decode in any order inside one gzip
 * member whose trailer is kept per connection, checked by zlib's own gunzip (CRC and length);
 * and an SseStream's gzip body, with batches shared or compressed per connection.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { EventBatch } from '../../../src/core/batch.js';
import type { StoredEvent } from '../../../src/core/types.js';
import { ConnectionRegistry, TICKS_PER_HEARTBEAT } from '../../../src/transports/connections.js';
import {
  deflatedBatchCount,
  deflateFrames,
  GzipMember,
  gzipBatchEncoder,
  sseEncodingFor,
} from '../../../src/transports/sse/compression.js';
import { encodeSseBatch } from '../../../src/transports/sse/framing.js';
import { SseStream } from '../../../src/transports/sse/sse-stream.js';
import { waitFor } from '../../helpers/server.js';
import { RawSseClient } from '../../helpers/sse-client.js';

/** A whole gzip body made of `member`'s header, the segments of `parts`, and its trailer. */
function gzipOf(parts: readonly string[]): Buffer {
  const member = new GzipMember();
  const segments = parts.map((part) => {
    const frames = deflateFrames(part);
    member.add(frames);
    return frames.payload;
  });
  return Buffer.concat([member.header, ...segments, member.trailer()]);
}

describe('SSE gzip segments', () => {
  test('segments deflated apart decode as one gzip member, CRC and length checked', () => {
    const parts = ['retry: 1000\n\n', 'id: 1\nevent: a\ndata: x\n\n', '', 'é'.repeat(70_000)];
    assert.equal(gunzipSync(gzipOf(parts)).toString(), parts.join(''));
  });

  test('the same segment bytes fit any position of any connection', () => {
    const shared = deflateFrames('id: 7\nevent: message\ndata: {"n":7}\n\n');
    const first = new GzipMember();
    const second = new GzipMember();
    const early = deflateFrames('id: 6\nevent: message\ndata: {"n":6}\n\n');
    first.add(early);
    first.add(shared);
    second.add(shared);
    const firstBody = Buffer.concat([first.header, early.payload, shared.payload, first.trailer()]);
    const secondBody = Buffer.concat([second.header, shared.payload, second.trailer()]);
    assert.equal(
      gunzipSync(firstBody).toString(),
      'id: 6\nevent: message\ndata: {"n":6}\n\nid: 7\nevent: message\ndata: {"n":7}\n\n',
    );
    assert.equal(gunzipSync(secondBody).toString(), 'id: 7\nevent: message\ndata: {"n":7}\n\n');
  });

  test('a member with no segment is a valid empty gzip body', () => {
    assert.equal(gunzipSync(gzipOf([])).length, 0);
  });

  test('a batch is deflated once per encoder, however many subscribers ask', () => {
    const event: StoredEvent = { id: 'e-1', seq: 1, event: 'message', data: '{"n":1}', time: 0 };
    const batch = new EventBatch('news', 'e', [event]);
    const before = deflatedBatchCount();
    const encoder = gzipBatchEncoder(encodeSseBatch);
    const first = batch.encode(gzipBatchEncoder(encodeSseBatch));
    for (let subscriber = 0; subscriber < 100; subscriber++) {
      assert.equal(batch.encode(encoder), first);
    }
    assert.equal(deflatedBatchCount() - before, 1);
  });

  test('gzip is chosen when accepted (it can be shared), br when only it is, identity otherwise', () => {
    const cases: [string | undefined, string][] = [
      [undefined, 'identity'],
      ['', 'identity'],
      ['gzip', 'gzip'],
      ['gzip, deflate, br, zstd', 'gzip'],
      ['br;q=1, gzip;q=0.5', 'gzip'],
      ['*', 'gzip'],
      ['br', 'br'],
      ['deflate, br', 'br'],
      ['gzip;q=0, br', 'br'],
      ['gzip;q=0', 'identity'],
      ['gzip;q=0, br;q=0', 'identity'],
      ['identity', 'identity'],
    ];
    for (const [header, expected] of cases) assert.equal(sseEncodingFor(header), expected, header);
  });
});

describe('SseStream compressed', () => {
  const codings = [
    { encoding: 'gzip', gzipSharing: 'per-batch' },
    { encoding: 'gzip', gzipSharing: 'per-connection' },
    { encoding: 'br', gzipSharing: undefined },
  ] as const;
  for (const { encoding, gzipSharing } of codings)
    test(`${encoding} ${gzipSharing ?? ''}: retry, batches, control events, heartbeats and the last batch decode, then the end`, async () => {
      const registry = new ConnectionRegistry(60_000);
      const streams: SseStream[] = [];
      const server = http.createServer((_request, res) => {
        const stream = new SseStream(res, {
          registry,
          maxBufferedBytes: 1 << 20,
          retryMs: 1234,
          encoding,
          gzipSharing,
        });
        stream.open();
        streams.push(stream);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const client = new RawSseClient(
        `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
      );
      try {
        await client.opened;
        await waitFor(() => streams.length === 1, 'the stream');
        const stream = streams[0] as SseStream;
        const encoder = stream.wireEncoder(encodeSseBatch);
        const batch = (seq: number) =>
          new EventBatch('news', 'e', [
            { id: `e-${seq}`, seq, event: 'message', data: `{"n":${seq}}`, time: 0 },
          ]).encode(encoder);
        assert.ok(stream.writeFrames(batch(1)));
        stream.control('reset', { reason: 'test' });
        stream.heartbeat(TICKS_PER_HEARTBEAT * 2);
        await waitFor(() => client.comments.length === 1, 'the heartbeat');
        stream.end('server', batch(2));
        await client.closed;
        assert.equal(client.headers['content-encoding'], encoding);
        assert.equal(client.decodeError, undefined);
        assert.ok(client.ended);
        assert.match(client.raw, /^retry: 1234\n\n/);
        assert.deepEqual(
          client.messages.map(({ event, data }) => [event, data]),
          [
            ['message', '{"n":1}'],
            ['reset', '{"reason":"test"}'],
            ['message', '{"n":2}'],
          ],
        );
        assert.deepEqual(client.comments, [': ping']);
      } finally {
        client.close();
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    });
});
