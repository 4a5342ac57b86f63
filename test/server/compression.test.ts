/**
 * COMPRESSION on a real server: gzip SSE streams (raw node:http like `curl --compressed`,
 * the `eventsource` package over fetch, completion streams compressed per connection and
 * resumed), permessage-deflate WebSockets, compressed JSON answers, and identity for clients
 * that do not ask or when it is off.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EventSource } from 'eventsource';
import type { RunningServer } from '../../src/server/server.js';
import { deflatedBatchCount, deflateFrames } from '../../src/transports/sse/compression.js';
import { publishMany, uniqueTopic, useServer } from '../helpers/http.js';
import { publish, waitFor, withServer } from '../helpers/server.js';
import { RawSseClient } from '../helpers/sse-client.js';
import { WsTestClient, wsUrl } from '../helpers/ws-client.js';

const GZIP = { 'accept-encoding': 'gzip' };
/** Compresses well: what JSON payloads of one shape look like. */
const REPETITIVE = { text: 'the quick brown fox jumps over the lazy dog '.repeat(200) };

function subscribe(
  server: RunningServer,
  topic: string,
  headers: Record<string, string> = GZIP,
): RawSseClient {
  return new RawSseClient(`${server.url}/v1/topics/${topic}/events`, headers);
}

function completion(server: RunningServer): RawSseClient {
  return new RawSseClient(`${server.url}/v1/chat/completions`, GZIP, {
    stream: true,
    model: 'mock',
    messages: [{ role: 'user', content: 'hello there' }],
  });
}

/** A completion's gzip body decoded by zlib's gunzip up to its trailer (CRC and length). */
function assertWholeGzip(client: RawSseClient): void {
  assert.equal(client.headers['content-encoding'], 'gzip');
  assert.equal(client.decodeError, undefined);
  assert.ok(client.ended, 'the gzip body ended with its trailer');
  assert.equal(client.messages.at(-1)?.data, '[DONE]');
}

async function closeAll(clients: readonly RawSseClient[]): Promise<void> {
  for (const client of clients) client.close();
  await Promise.all(clients.map((client) => client.closed));
}

describe('gzip SSE', () => {
  const server = useServer();

  test('a gzip subscriber gets each event before the next one is published', async () => {
    const topic = uniqueTopic('gzip-latency');
    const client = subscribe(server(), topic);
    try {
      await client.opened;
      assert.equal(client.headers['content-encoding'], 'gzip');
      assert.match(String(client.headers.vary), /accept-encoding/i);
      for (let n = 1; n <= 5; n++) {
        await publish(server().url, topic, { n });
        await waitFor(() => client.events.length === n, `event ${n} alone`);
        assert.equal(client.events[n - 1]?.data, JSON.stringify({ n }));
      }
      assert.equal(client.decodeError, undefined);
    } finally {
      await closeAll([client]);
    }
  });

  test('every subscriber gets the same compressed bytes, compressed once per batch', async () => {
    const topic = uniqueTopic('gzip-shared');
    const clients = Array.from({ length: 20 }, () => subscribe(server(), topic));
    try {
      await Promise.all(clients.map((client) => client.opened));
      // A first event makes every subscriber live (none still reading history).
      await publish(server().url, topic, { warmup: true });
      await waitFor(() => clients.every((client) => client.events.length === 1), 'the warm-up');
      const before = deflatedBatchCount();
      for (let n = 1; n <= 10; n++) {
        await publish(server().url, topic, { n, ...REPETITIVE });
        await waitFor(() => clients.every((client) => client.events.length === n + 1), `${n}`);
      }
      assert.equal(deflatedBatchCount() - before, 10, 'one compression per batch');
      const [first, ...others] = clients.map((client) => Buffer.concat(client.wire));
      for (const wire of others) assert.ok(wire.equals(first as Buffer), 'identical bytes');
      const decoded = (clients[0] as RawSseClient).raw;
      assert.ok((first as Buffer).length * 10 < decoded.length, 'the repetitive events shrink');
      for (const client of clients) assert.equal(client.decodeError, undefined);
    } finally {
      await closeAll(clients);
    }
  });

  test('the eventsource package decodes a gzip stream fetched by undici', async () => {
    const topic = uniqueTopic('gzip-eventsource');
    const encodings: (string | null)[] = [];
    const source = new EventSource(`${server().url}/v1/topics/${topic}/events`, {
      fetch: async (input, init) => {
        const response = await fetch(input, init);
        encodings.push(response.headers.get('content-encoding'));
        return response;
      },
    });
    try {
      const received: string[] = [];
      source.addEventListener('message', (event) => received.push(event.data));
      await new Promise((resolve, reject) => {
        source.onopen = resolve;
        source.onerror = reject;
      });
      await publishMany(server().url, topic, 3);
      await waitFor(() => received.length === 3, 'three events');
      assert.deepEqual(received, ['{"n":0}', '{"n":1}', '{"n":2}']);
      assert.deepEqual(encodings, ['gzip']);
    } finally {
      source.close();
    }
  });

  test('a client that does not ask gets identity bytes', async () => {
    const topic = uniqueTopic('identity');
    const client = subscribe(server(), topic, {});
    try {
      await client.opened;
      await publish(server().url, topic, { n: 1 });
      await waitFor(() => client.events.length === 1, 'the event');
      assert.equal(client.headers['content-encoding'], undefined);
      assert.equal(Buffer.concat(client.wire).toString(), client.raw);
    } finally {
      await closeAll([client]);
    }
  });

  test('a client that accepts br and not gzip gets Brotli, each event before the next is published', async () => {
    const topic = uniqueTopic('br');
    const client = subscribe(server(), topic, { 'accept-encoding': 'br' });
    try {
      await client.opened;
      assert.equal(client.headers['content-encoding'], 'br');
      for (let n = 1; n <= 5; n++) {
        await publish(server().url, topic, { n, ...REPETITIVE });
        await waitFor(() => client.events.length === n, `event ${n} alone`);
        assert.equal(client.events[n - 1]?.data, JSON.stringify({ n, ...REPETITIVE }));
      }
      const wireBytes = Buffer.concat(client.wire).length;
      assert.ok(wireBytes * 5 < client.raw.length, `${wireBytes} B for ${client.raw.length}`);
      assert.equal(client.decodeError, undefined);
    } finally {
      await closeAll([client]);
    }
  });

  test('a completion streamed to a br-only client is Brotli, whole and ended', async () => {
    const client = new RawSseClient(
      `${server().url}/v1/chat/completions`,
      { 'accept-encoding': 'br' },
      { stream: true, model: 'mock', messages: [{ role: 'user', content: 'hello there' }] },
    );
    await client.closed;
    assert.equal(client.headers['content-encoding'], 'br');
    assert.equal(client.decodeError, undefined);
    assert.ok(client.ended, 'the Brotli body ended');
    assert.equal(client.messages.at(-1)?.data, '[DONE]');
  });

  test('a completion is gzip per connection, whole, several-fold smaller than shared segments', async () => {
    const client = completion(server());
    await client.closed;
    assertWholeGzip(client);
    const wire = Buffer.concat(client.wire).length;
    // What the topics' design sends for the same frames: each chunk (one per batch at the
    // mock model's pace) deflated alone, plus the member's header and trailer.
    const frames = client.raw.split(/(?<=\n\n)/);
    const shared = frames.reduce((n, frame) => n + deflateFrames(frame).payload.length, 20);
    assert.ok(frames.length > 20, `a completion of ${frames.length} frames`);
    assert.ok(wire * 3 < shared, `${wire} B per connection, ${shared} B shared`);
    assert.ok(wire * 4 < Buffer.byteLength(client.raw), `${wire} B for ${client.raw.length}`);
  });

  test('a completion resumed mid-stream by Last-Event-ID is gzip, complete and in order', async () => {
    const first = completion(server());
    await waitFor(() => first.events.length >= 4, 'four chunks');
    first.close();
    await first.closed;
    const seen = first.events.map((event) => event.id);
    const streamId = String(first.headers['x-stream-id']);
    const resumed = `${server().url}/v1/chat/completions/${streamId}/stream`;
    const rest = new RawSseClient(resumed, { ...GZIP, 'last-event-id': String(seen.at(-1)) });
    await rest.closed;
    assertWholeGzip(rest);
    const whole = new RawSseClient(resumed, GZIP);
    await whole.closed;
    assertWholeGzip(whole);
    const ids = (client: RawSseClient) => client.events.map((event) => event.id);
    assert.deepEqual([...seen, ...ids(rest)], ids(whole));
  });

  test('JSON answers are compressed as the client prefers', async () => {
    const topic = uniqueTopic('json');
    await publishMany(server().url, topic, 20, { data: () => REPETITIVE });
    for (const encoding of ['br', 'gzip']) {
      const response = await fetch(`${server().url}/v1/topics/${topic}/events?limit=20`, {
        headers: { 'accept-encoding': encoding },
      });
      assert.equal(response.headers.get('content-encoding'), encoding);
      const page = (await response.json()) as { events: unknown[] };
      assert.equal(page.events.length, 20);
    }
  });
});

describe('permessage-deflate', () => {
  const server = useServer();

  test('negotiated without context takeover; each event arrives compressed and decodes', async () => {
    const topic = uniqueTopic('deflate');
    const client = await WsTestClient.connect(wsUrl(server().url, '/v1/ws'), {
      perMessageDeflate: true,
    });
    try {
      assert.match(client.ws.extensions, /permessage-deflate/);
      await client.subscribe(topic);
      const socket = (client.ws as unknown as { _socket: { bytesRead: number } })._socket;
      const readBefore = socket.bytesRead;
      for (let n = 1; n <= 3; n++) {
        await publish(server().url, topic, { n, ...REPETITIVE });
        const events = await client.waitForEvents(topic, n);
        assert.deepEqual(events[n - 1]?.data, { n, ...REPETITIVE });
      }
      const uncompressed = 3 * JSON.stringify(REPETITIVE).length;
      assert.ok((socket.bytesRead - readBefore) * 10 < uncompressed, 'the frames were compressed');
      assert.equal((await client.request({ type: 'ping' })).type, 'pong');
    } finally {
      client.ws.close();
    }
  });
});

describe('COMPRESSION=off', () => {
  test('SSE, WebSocket and JSON answers are identity even when asked', async () => {
    await withServer({ COMPRESSION: 'off' }, async (server) => {
      const topic = uniqueTopic('off');
      const sse = subscribe(server, topic);
      const ws = await WsTestClient.connect(wsUrl(server.url, `/v1/topics/${topic}/ws`), {
        perMessageDeflate: true,
      });
      try {
        await sse.opened;
        await publishMany(server.url, topic, 20, { data: () => REPETITIVE });
        await waitFor(() => sse.events.length === 20, 'the events');
        assert.equal(sse.headers['content-encoding'], undefined);
        assert.equal(sse.headers.vary, undefined);
        assert.equal(ws.ws.extensions, '');
        const page = await fetch(`${server.url}/v1/topics/${topic}/events?limit=20`, {
          headers: GZIP,
        });
        assert.equal(page.headers.get('content-encoding'), null);
        await page.arrayBuffer();
      } finally {
        ws.ws.close();
        await closeAll([sse]);
      }
    });
  });
});
