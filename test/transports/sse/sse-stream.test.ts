/**
 * SseStream on real sockets: headers and the `retry:` line first, heartbeats only when idle,
 * and disconnection of a consumer that stops reading, with its buffer bounded.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { ConnectionRegistry, TICKS_PER_HEARTBEAT } from '../../../src/transports/connections.js';
import { type CloseCause, SseStream } from '../../../src/transports/sse/sse-stream.js';
import { waitFor } from '../../helpers/server.js';
import { RawSseClient } from '../../helpers/sse-client.js';

const MAX_BUFFERED = 256 * 1024;

interface Harness {
  readonly url: string;
  readonly port: number;
  readonly registry: ConnectionRegistry;
  /** The server side of the next request, wrapped in an SseStream (not yet opened). */
  nextStream(): Promise<SseStream>;
  readonly slowConsumers: { count: number };
  close(): Promise<void>;
}

async function startHarness(): Promise<Harness> {
  // A heartbeat interval far beyond the tests: they drive heartbeat() by hand.
  const registry = new ConnectionRegistry(60_000);
  const slowConsumers = { count: 0 };
  const waiting: ((stream: SseStream) => void)[] = [];
  const server = http.createServer((_req, res) => {
    const stream = new SseStream(res, {
      registry,
      maxBufferedBytes: MAX_BUFFERED,
      retryMs: 1234,
      onSlowConsumer: () => {
        slowConsumers.count += 1;
      },
    });
    waiting.shift()?.(stream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    registry,
    slowConsumers,
    nextStream: () => new Promise((resolve) => waiting.push(resolve)),
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

async function withHarness(run: (harness: Harness) => Promise<void>): Promise<void> {
  const harness = await startHarness();
  try {
    await run(harness);
  } finally {
    await harness.close();
  }
}

/** Opens a stream to a RawSseClient and returns both ends. */
async function connect(harness: Harness): Promise<{ stream: SseStream; client: RawSseClient }> {
  const streamPromise = harness.nextStream();
  const client = new RawSseClient(harness.url);
  const stream = await streamPromise;
  stream.open();
  await client.opened;
  return { stream, client };
}

function closeCause(stream: SseStream): Promise<CloseCause> {
  return new Promise((resolve) => stream.onClose(resolve));
}

describe('SseStream', () => {
  test('opens with the documented headers and a retry: line, and registers itself', () =>
    withHarness(async (harness) => {
      const { stream, client } = await connect(harness);
      assert.equal(client.status, 200);
      assert.equal(client.headers['content-type'], 'text/event-stream; charset=utf-8');
      assert.equal(client.headers['cache-control'], 'no-cache');
      assert.equal(client.headers['x-accel-buffering'], 'no');
      await waitFor(() => client.raw.length > 0, 'the first bytes');
      assert.equal(client.raw, 'retry: 1234\n\n');
      assert.equal(harness.registry.count('sse'), 1);
      const cause = closeCause(stream);
      client.close();
      assert.equal(await cause, 'client');
      assert.equal(harness.registry.count('sse'), 0);
    }));

  test('a heartbeat is written once the stream has been silent for a whole interval', () =>
    withHarness(async (harness) => {
      const { stream, client } = await connect(harness);
      try {
        // The registry's timer has not ticked yet: everything so far was written at tick 0.
        stream.write('data: 1\n\n');
        stream.heartbeat(TICKS_PER_HEARTBEAT - 1); // silent for less than an interval
        stream.heartbeat(TICKS_PER_HEARTBEAT); // silent for an interval: ping
        stream.heartbeat(2 * TICKS_PER_HEARTBEAT - 1); // the ping was just written
        stream.heartbeat(2 * TICKS_PER_HEARTBEAT); // silent again for an interval: ping
        stream.write('data: 2\n\n');
        await waitFor(() => client.raw.endsWith('data: 2\n\n'), 'the second event');
        assert.equal(client.raw, 'retry: 1234\n\ndata: 1\n\n: ping\n\n: ping\n\ndata: 2\n\n');
      } finally {
        client.close();
      }
    }));

  test('control frames carry no id', () =>
    withHarness(async (harness) => {
      const { stream, client } = await connect(harness);
      try {
        stream.control('reset', { reason: 'unknown_id', oldest: null });
        await waitFor(() => client.messages.length === 1, 'the control frame');
        assert.deepEqual(client.messages, [
          { id: undefined, event: 'reset', data: '{"reason":"unknown_id","oldest":null}' },
        ]);
      } finally {
        client.close();
      }
    }));

  test('end() finishes the response so the client sees the stream end', () =>
    withHarness(async (harness) => {
      const { stream, client } = await connect(harness);
      const cause = closeCause(stream);
      stream.write('data: last\n\n');
      stream.end();
      await client.closed;
      assert.equal(client.ended, true);
      assert.equal(client.messages.at(-1)?.data, 'last');
      assert.equal(await cause, 'server');
      assert.equal(stream.write('data: late\n\n'), false, 'writes after close are refused');
    }));

  test('a consumer that stops reading is dropped once it lags by more than the bound', () =>
    withHarness(async (harness) => {
      const streamPromise = harness.nextStream();
      const socket = net.connect(harness.port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write('GET / HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n');
      socket.pause();
      const stream = await streamPromise;
      stream.open();
      const cause = closeCause(stream);
      try {
        const chunk = Buffer.alloc(64 * 1024, 'x');
        let writes = 0;
        let maxBuffered = 0;
        // Far more than any socket buffer; yield so the kernel can take what it will.
        while (!stream.closed && writes < 1000) {
          stream.write(chunk);
          writes += 1;
          maxBuffered = Math.max(maxBuffered, stream.res.writableLength);
          await new Promise((resolve) => setImmediate(resolve));
        }
        assert.equal(stream.closed, true, `still open after ${writes} writes of 64 KiB`);
        assert.equal(await cause, 'slow_consumer');
        assert.equal(harness.slowConsumers.count, 1);
        assert.equal(harness.registry.count('sse'), 0);
        assert.ok(maxBuffered <= MAX_BUFFERED + chunk.length, `buffered ${maxBuffered} bytes`);
        assert.equal(stream.write(chunk), false);
        assert.equal(harness.slowConsumers.count, 1, 'counted once');
      } finally {
        socket.destroy();
      }
    }));

  test('drained() resolves when a stream closes while its buffer is full', () =>
    withHarness(async (harness) => {
      const { stream, client } = await connect(harness);
      client.close();
      await once(stream.res, 'close');
      await stream.drained();
    }));
});
