/**
 * Contract §1 and the SSE side of §2 over real sockets: headers and framing, heartbeats,
 * resume and reset, resume across dropped connections under load, the replay→live handover,
 * and slow consumers.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { describe, test } from 'node:test';
import { EventSource } from 'eventsource';
import { formatId, parseId } from '../../src/core/ids.js';
import type { RunningServer } from '../../src/server/server.js';
import {
  allHistoryIds,
  assertApiError,
  forceGc,
  metricsText,
  metricValue,
  publishMany,
  request,
  SseIdReader,
  trackSseResponses,
  uniqueTopic,
  useServer,
} from '../helpers/http.js';
import { publish, waitFor } from '../helpers/server.js';
import { RawSseClient, type SseMessage } from '../helpers/sse-client.js';

const SSE_HEADERS = { accept: 'text/event-stream' };

function streamUrl(server: RunningServer, topic: string, query = ''): string {
  return `${server.url}/v1/topics/${topic}/events${query ? `?${query}` : ''}`;
}

/** Opens a raw SSE client and waits until its subscription is registered with the hub. */
async function subscribe(
  server: RunningServer,
  topic: string,
  options: { query?: string; headers?: Record<string, string> } = {},
): Promise<RawSseClient> {
  const before = server.hub.subscriberCount(topic);
  const client = new RawSseClient(streamUrl(server, topic, options.query), options.headers);
  await client.opened;
  assert.equal(client.status, 200);
  await waitFor(() => server.hub.subscriberCount(topic) === before + 1, 'the subscription');
  return client;
}

/** Publishes one more event and waits until `client` has it: proof the stream went live. */
async function publishLive(
  server: RunningServer,
  topic: string,
  client: RawSseClient,
): Promise<string> {
  const { id } = await publish(server.url, topic, 'live');
  await waitFor(() => client.events.some((event) => event.id === id), 'the live event');
  return id;
}

async function seed(server: RunningServer, prefix: string, count: number) {
  const topic = uniqueTopic(prefix);
  return { topic, ids: await publishMany(server.url, topic, count) };
}

const ids = (messages: readonly SseMessage[]) => messages.map((message) => message.id);
const resets = (client: RawSseClient) => client.messages.filter((m) => m.event === 'reset');

/** The frames of a raw stream: blocks of lines separated by a blank line. */
function frames(raw: string): string[][] {
  return raw
    .split('\n\n')
    .filter((block) => block !== '')
    .map((block) => block.split('\n'));
}

/** A real EventSource recording what an application would see. */
function eventSource(url: string) {
  const source = new EventSource(url);
  const received: { id: string; data: string }[] = [];
  const resetFrames: string[] = [];
  let opens = 0;
  source.addEventListener('open', () => {
    opens += 1;
  });
  source.addEventListener('message', (event) => {
    received.push({ id: event.lastEventId, data: event.data });
  });
  source.addEventListener('reset', (event) => {
    resetFrames.push(event.data);
  });
  return {
    source,
    received,
    resetFrames,
    get opens() {
      return opens;
    },
  };
}

describe('SSE framing', () => {
  const server = useServer({ HEARTBEAT_MS: '50' });

  test('answers with exactly the documented headers over HTTP/1.1 keep-alive', async () => {
    const client = await subscribe(server(), uniqueTopic('sse.headers'));
    try {
      assert.equal(client.headers['content-type'], 'text/event-stream; charset=utf-8');
      assert.equal(client.headers['cache-control'], 'no-cache');
      assert.equal(client.headers['x-accel-buffering'], 'no');
      assert.equal(client.headers.connection, 'keep-alive');
      assert.equal(client.headers['content-length'], undefined);
    } finally {
      client.close();
    }
  });

  test('writes a retry: line as the very first bytes, before any event exists', async () => {
    const client = new RawSseClient(streamUrl(server(), uniqueTopic('sse.retry')));
    try {
      await waitFor(() => client.raw.length > 0, 'the first bytes');
      assert.match(client.raw, /^retry: \d+\n\n/);
    } finally {
      client.close();
    }
  });

  test('every stored event is id, event and data lines in that order', async () => {
    const topic = uniqueTopic('sse.frames');
    const published = [
      await publish(server().url, topic, { n: 1 }),
      await publish(server().url, topic, [2], { event: 'custom.type' }),
    ];
    const client = await subscribe(server(), topic, { query: 'from=start' });
    try {
      await waitFor(() => client.events.length === 2, 'two events');
      const eventFrames = frames(client.raw).filter((lines) =>
        lines.some((l) => l.startsWith('data:')),
      );
      assert.deepEqual(eventFrames, [
        [`id: ${published[0]?.id}`, 'event: message', 'data: {"n":1}'],
        [`id: ${published[1]?.id}`, 'event: custom.type', 'data: [2]'],
      ]);
    } finally {
      client.close();
    }
  });

  test('an HTTP/1.0 client, which cannot take chunked encoding, gets plain SSE', async () => {
    const topic = uniqueTopic('sse.http10');
    const socket = net.connect(Number(new URL(server().url).port), '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      received += chunk;
    });
    try {
      socket.write(`GET /v1/topics/${topic}/events HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n`);
      await waitFor(() => received.includes('retry:'), 'the stream to open');
      await waitFor(() => server().hub.subscriberCount(topic) === 1, 'the subscription');
      const { id } = await publish(server().url, topic, { n: 1 });
      await waitFor(() => received.includes('data: {"n":1}'), 'the event');
      const body = received.slice(received.indexOf('\r\n\r\n') + 4);
      assert.doesNotMatch(received, /transfer-encoding: chunked/i);
      assert.equal(body, `retry: 1000\n\nid: ${id}\nevent: message\ndata: {"n":1}\n\n`);
    } finally {
      socket.destroy();
    }
  });

  test('a heartbeat comment arrives while the stream is idle (HEARTBEAT_MS=50)', async () => {
    const client = await subscribe(server(), uniqueTopic('sse.heartbeat'));
    try {
      await waitFor(() => client.comments.length >= 2, 'two heartbeats', 5000);
      for (const comment of client.comments) assert.match(comment, /^:/);
      assert.equal(client.messages.length, 0, 'heartbeats are not events');
    } finally {
      client.close();
    }
  });

  test('payloads cannot inject fields, and EventSource gets back exactly the published JSON', async () => {
    const topic = uniqueTopic('sse.injection');
    const payloads: unknown[] = [
      'a\nb',
      'a\rb',
      'a\r\nb',
      '\n\nid: evil\nevent: x\ndata: y',
      '\r\rid: evil\r\revent: x\rretry: 1\r',
      { text: 'x\n\ndata: z\r\n\r\nid: evil', nested: ['\n', '\r', '\r\n'] },
      '\u2028\u2029\u0085',
      ': not a comment\n: ping',
    ];
    const publishedIds: string[] = [];
    for (const data of payloads) publishedIds.push((await publish(server().url, topic, data)).id);

    const raw = await subscribe(server(), topic, { query: 'from=start' });
    const browser = eventSource(streamUrl(server(), topic, 'from=start'));
    try {
      await waitFor(() => raw.events.length === payloads.length, 'raw events');
      await waitFor(() => browser.received.length === payloads.length, 'EventSource events');

      assert.ok(!raw.raw.includes('\r'), 'no carriage return on the wire');
      const known = new Set(publishedIds);
      for (const line of raw.raw.split('\n')) {
        if (line.startsWith('id:')) assert.ok(known.has(line.slice(4)), `unexpected ${line}`);
        else if (line.startsWith('event:')) assert.equal(line, 'event: message');
        else if (line.startsWith('retry:')) assert.match(line, /^retry: \d+$/);
        else if (line !== '' && !line.startsWith(':')) assert.match(line, /^data: /);
      }
      assert.equal(
        raw.raw.split('\n').filter((line) => line.startsWith('id:')).length,
        payloads.length,
      );

      assert.deepEqual(
        browser.received.map((message) => message.id),
        publishedIds,
      );
      assert.deepEqual(
        browser.received.map((message) => JSON.parse(message.data)),
        payloads,
      );
    } finally {
      raw.close();
      browser.source.close();
    }
  });
});

describe('SSE subscribe and resume', () => {
  const server = useServer({ HEARTBEAT_MS: '50' });

  test('is live only by default: a new subscriber gets no old events', async () => {
    const { topic } = await seed(server(), 'resume.live', 3);
    const client = await subscribe(server(), topic);
    try {
      const live = await publishLive(server(), topic, client);
      assert.deepEqual(ids(client.events), [live]);
    } finally {
      client.close();
    }
  });

  test('?from=start replays all retained history, then continues live', async () => {
    const { topic, ids: seeded } = await seed(server(), 'resume.start', 4);
    const client = await subscribe(server(), topic, { query: 'from=start' });
    try {
      const live = await publishLive(server(), topic, client);
      assert.deepEqual(ids(client.events), [...seeded, live]);
      assert.deepEqual(resets(client), []);
    } finally {
      client.close();
    }
  });

  const cursors: { name: string; options: (id: string) => Parameters<typeof subscribe>[2] }[] = [
    { name: 'the Last-Event-ID header', options: (id) => ({ headers: { 'last-event-id': id } }) },
    { name: 'the last_event_id query', options: (id) => ({ query: `last_event_id=${id}` }) },
    { name: 'the lastEventId query', options: (id) => ({ query: `lastEventId=${id}` }) },
    {
      name: 'the header, which wins over stale query parameters',
      options: (id) => ({
        headers: { 'last-event-id': id },
        query: 'last_event_id=garbage&lastEventId=garbage',
      }),
    },
    {
      name: 'the header, which wins over from=start',
      options: (id) => ({ headers: { 'last-event-id': id }, query: 'from=start' }),
    },
  ];

  for (const cursor of cursors) {
    test(`resumes after the id given by ${cursor.name}, then continues live`, async () => {
      const { topic, ids: seeded } = await seed(server(), 'resume.cursor', 5);
      const client = await subscribe(server(), topic, cursor.options(seeded[1] as string));
      try {
        const live = await publishLive(server(), topic, client);
        assert.deepEqual(ids(client.events), [...seeded.slice(2), live]);
        assert.deepEqual(resets(client), []);
      } finally {
        client.close();
      }
    });
  }

  test('resuming from the newest id replays nothing and continues live', async () => {
    const { topic, ids: seeded } = await seed(server(), 'resume.newest', 3);
    const client = await subscribe(server(), topic, {
      headers: { 'last-event-id': seeded[2] as string },
    });
    try {
      const live = await publishLive(server(), topic, client);
      assert.deepEqual(ids(client.messages), [live]);
    } finally {
      client.close();
    }
  });
});

describe('SSE reset (HISTORY_MAX_EVENTS=5)', () => {
  const server = useServer({ HISTORY_MAX_EVENTS: '5' });

  /**
   * Subscribes with `lastEventId` and checks the stream: one `reset` control frame without an
   * id carrying exactly `{reason, oldest}`, then `replayed` in order, then live events.
   */
  async function expectReset(
    topic: string,
    lastEventId: string,
    reason: string,
    oldest: string | null,
    replayed: readonly string[],
  ): Promise<void> {
    const client = await subscribe(server(), topic, { headers: { 'last-event-id': lastEventId } });
    try {
      const live = await publishLive(server(), topic, client);
      const [first, ...rest] = client.messages;
      assert.deepEqual(first, { id: undefined, event: 'reset', data: first?.data });
      assert.deepEqual(JSON.parse(first?.data ?? ''), { reason, oldest });
      assert.deepEqual(ids(rest), [...replayed, live]);
      const resetFrame = frames(client.raw).find((lines) => lines.includes('event: reset'));
      assert.ok(
        resetFrame?.every((line) => !line.startsWith('id')),
        'reset frame has no id',
      );
    } finally {
      client.close();
    }
  }

  test('a garbage id gets reset unknown_id, then all retained history', async () => {
    const { topic, ids: seeded } = await seed(server(), 'reset.garbage', 8);
    await expectReset(topic, 'not-an-id', 'unknown_id', seeded[3] as string, seeded.slice(3));
  });

  test('a 4 KB garbage id gets reset unknown_id too', async () => {
    const { topic, ids: seeded } = await seed(server(), 'reset.long', 2);
    await expectReset(topic, 'x'.repeat(4096), 'unknown_id', seeded[0] as string, seeded);
  });

  test('a garbage id on a topic without history gets reset unknown_id with oldest null', async () => {
    await expectReset(uniqueTopic('reset.empty'), 'garbage', 'unknown_id', null, []);
  });

  test('an id from before a delete gets reset epoch_mismatch, then the new epoch', async () => {
    const { topic, ids: old } = await seed(server(), 'reset.epoch', 3);
    const deleted = await request(`${server().url}/v1/topics/${topic}`, { method: 'DELETE' });
    assert.equal(deleted.status, 204);
    const fresh = await publishMany(server().url, topic, 2);
    await expectReset(topic, old[2] as string, 'epoch_mismatch', fresh[0] as string, fresh);
  });

  test('a subscriber connected across a delete gets reset epoch_mismatch, then the new epoch', async () => {
    const { topic } = await seed(server(), 'reset.across-delete', 3);
    const client = await subscribe(server(), topic);
    try {
      const before = await publishLive(server(), topic, client);
      const deleted = await request(`${server().url}/v1/topics/${topic}`, { method: 'DELETE' });
      assert.equal(deleted.status, 204);
      const fresh = await publishMany(server().url, topic, 2);
      await waitFor(() => client.events.length === 3, 'the new epoch');
      assert.deepEqual(
        client.messages.map((m) => [
          m.id,
          m.event,
          m.event === 'reset' ? JSON.parse(m.data) : m.data,
        ]),
        [
          [before, 'message', '"live"'],
          [undefined, 'reset', { reason: 'epoch_mismatch', oldest: fresh[0] }],
          [fresh[0], 'message', '{"n":0}'],
          [fresh[1], 'message', '{"n":1}'],
        ],
      );
    } finally {
      client.close();
    }
  });

  test('an id older than retained history gets reset history_truncated', async () => {
    const { topic, ids: seeded } = await seed(server(), 'reset.truncated', 10);
    const retained = seeded.slice(5);
    await expectReset(
      topic,
      seeded[1] as string,
      'history_truncated',
      seeded[5] as string,
      retained,
    );
  });

  test('the id just before the oldest retained one resumes without a reset', async () => {
    const { topic, ids: seeded } = await seed(server(), 'reset.boundary', 10);
    const client = await subscribe(server(), topic, {
      headers: { 'last-event-id': seeded[4] as string },
    });
    try {
      const live = await publishLive(server(), topic, client);
      assert.deepEqual(ids(client.messages), [...seeded.slice(5), live]);
    } finally {
      client.close();
    }
  });

  test('an id from the future (same epoch, higher sequence) gets reset unknown_id', async () => {
    const { topic, ids: seeded } = await seed(server(), 'reset.future', 3);
    const last = parseId(seeded[2] as string);
    assert.ok(last?.epoch);
    const future = formatId(last.epoch, last.seq + 10);
    await expectReset(topic, future, 'unknown_id', seeded[0] as string, seeded);
  });
});

describe('resume across dropped connections while publishing', () => {
  const server = useServer({ HISTORY_MAX_EVENTS: '10000' });
  const total = 2000;

  test(`the eventsource client reconnects by itself and misses nothing of ${total} events`, async () => {
    const topic = uniqueTopic('drop.eventsource');
    const connections = trackSseResponses(server());
    // A browser's first connect names its cursor in the query; reconnects keep that URL and add
    // a newer Last-Event-ID header, which must win or the client would get duplicates.
    const marker = await publish(server().url, topic, 'marker');
    const browser = eventSource(streamUrl(server(), topic, `last_event_id=${marker.id}`));
    const dropAt = new Set([400, 900, 1400]);
    // Drops happen one at a time, each once the client has reconnected from the previous one;
    // the other publishers carry on meanwhile.
    let drops = 0;
    let dropping = Promise.resolve();
    const drop = () => {
      dropping = dropping.then(async () => {
        await waitFor(
          () => browser.opens === drops + 1 && server().hub.subscriberCount(topic) === 1,
          'a reconnection',
          10_000,
        );
        assert.equal(connections.dropAll(), 1);
        drops += 1;
      });
      return dropping;
    };
    try {
      await waitFor(() => server().hub.subscriberCount(topic) === 1, 'the first connection');
      const published = await publishMany(server().url, topic, total, {
        concurrency: 4,
        beforeEach: (n) => (dropAt.has(n) ? drop() : undefined),
      });
      await waitFor(() => browser.received.length >= total, `${total} events`, 20_000);
      const history = await allHistoryIds(server().url, topic);
      assert.equal(history[0], marker.id);
      assert.deepEqual(history.slice(1).sort(), [...published].sort());
      assert.deepEqual(
        browser.received.map((message) => message.id),
        history.slice(1),
      );
      assert.equal(browser.opens, dropAt.size + 1, 'reconnected after every drop');
      assert.deepEqual(browser.resetFrames, []);
    } finally {
      browser.source.close();
    }
  });

  test(`a raw client killed and resumed 5 times misses nothing of ${total} events`, async () => {
    const topic = uniqueTopic('drop.raw');
    const received: string[] = [];
    let client = await subscribe(server(), topic, { query: 'from=start' });
    const publishing = publishMany(server().url, topic, total, { concurrency: 4 });
    try {
      for (const [i, threshold] of [300, 700, 1100, 1500, 1900].entries()) {
        await waitFor(
          () => received.length + client.events.length >= threshold,
          `${threshold} events`,
          15_000,
        );
        received.push(...ids(client.events).map(String));
        assert.deepEqual(resets(client), []);
        client.close();
        const last = received[received.length - 1] as string;
        // Alternate between the header and the browser-style query parameter.
        client = new RawSseClient(
          streamUrl(server(), topic, i % 2 === 0 ? '' : `last_event_id=${last}`),
          i % 2 === 0 ? { 'last-event-id': last } : {},
        );
      }
      const published = await publishing;
      await waitFor(() => received.length + client.events.length >= total, 'the rest', 15_000);
      received.push(...ids(client.events).map(String));
      assert.deepEqual(resets(client), []);
      const history = await allHistoryIds(server().url, topic);
      assert.deepEqual([...published].sort(), [...history].sort());
      assert.deepEqual(received, history);
    } finally {
      client.close();
      await publishing.catch(() => {});
    }
  });

  test('subscribers joining with ?from=start during a publish storm get every event once, in order', async () => {
    const topic = uniqueTopic('drop.race');
    const count = 1000;
    let progress = 0;
    const publishing = publishMany(server().url, topic, count, {
      concurrency: 4,
      beforeEach: (n) => {
        progress = n;
      },
    });
    const clients: RawSseClient[] = [];
    try {
      for (const joinAt of [0, 100, 250, 400, 550, 700, 850, 950]) {
        await waitFor(() => progress >= joinAt, `${joinAt} publications`, 15_000);
        clients.push(new RawSseClient(streamUrl(server(), topic, 'from=start')));
      }
      await publishing;
      const history = await allHistoryIds(server().url, topic);
      assert.equal(history.length, count);
      for (const [i, client] of clients.entries()) {
        await waitFor(() => client.events.length >= count, `subscriber ${i} to catch up`, 15_000);
        assert.deepEqual(ids(client.events), history, `subscriber ${i}`);
        assert.deepEqual(resets(client), []);
      }
    } finally {
      for (const client of clients) client.close();
      await publishing.catch(() => {});
    }
  });
});

describe('slow consumers (SLOW_CONSUMER_MAX_BYTES=262144)', () => {
  const server = useServer({
    SLOW_CONSUMER_MAX_BYTES: '262144',
    MAX_BODY_BYTES: '131072',
    HISTORY_MAX_EVENTS: '4',
  });

  test('a client that never reads is dropped with bounded memory; others get everything', async () => {
    const topic = uniqueTopic('slow');
    const { port } = new URL(server().url);
    const stalled = net.connect(Number(port), '127.0.0.1');
    const stalledClosed = once(stalled, 'close');
    stalled.on('error', () => {});
    stalled.write(
      `GET /v1/topics/${topic}/events HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n`,
    );
    stalled.pause();
    const reader = new SseIdReader(streamUrl(server(), topic));
    const droppedBefore = slowConsumersDropped(await metricsText(server().url));
    try {
      await waitFor(() => server().hub.subscriberCount(topic) === 2, 'both subscriptions');
      forceGc();
      const before = process.memoryUsage();

      const payload = 'x'.repeat(50_000);
      const published = await publishMany(server().url, topic, 400, { data: () => payload });
      await waitFor(() => reader.ids.length >= published.length, 'the reader', 20_000);
      await waitFor(() => server().hub.subscriberCount(topic) === 1, 'the stalled client to go');

      forceGc();
      const after = process.memoryUsage();
      const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
      const heapGrowth = after.heapUsed - before.heapUsed;
      const bufferGrowth = after.arrayBuffers - before.arrayBuffers;
      assert.ok(heapGrowth < 8 * 2 ** 20, `heap grew by ${mb(heapGrowth)}`);
      assert.ok(bufferGrowth < 8 * 2 ** 20, `buffers grew by ${mb(bufferGrowth)}`);

      assert.deepEqual(reader.ids, published);
      const dropped = slowConsumersDropped(await metricsText(server().url));
      assert.equal(dropped - droppedBefore, 1);

      // Once it reads again, the stalled client finds its stream closed by the server.
      stalled.resume();
      await withTimeout(stalledClosed, 10_000, 'the stalled socket to close');
    } finally {
      reader.close();
      stalled.destroy();
    }
  });
});

function slowConsumersDropped(metrics: string): number {
  return metricValue(metrics, 'streamhub_slow_consumers_dropped_total', { transport: 'sse' }) ?? 0;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('bad SSE requests', () => {
  const server = useServer();

  test('an invalid from answers 400 in the error shape, not a stream', async () => {
    const result = await request(streamUrl(server(), uniqueTopic('bad.from'), 'from=end'), {
      headers: SSE_HEADERS,
    });
    assertApiError(result, 400, 'invalid_from');
  });

  test('an invalid topic answers 400 in the error shape', async () => {
    const result = await request(`${server().url}/v1/topics/bad!topic/events`, {
      headers: SSE_HEADERS,
    });
    assertApiError(result, 400, 'invalid_topic');
  });

  test('the server still serves after bad stream requests', async () => {
    const topic = uniqueTopic('bad.after');
    const client = await subscribe(server(), topic);
    try {
      await publishLive(server(), topic, client);
      assert.equal((await request(`${server().url}/healthz`)).status, 200);
    } finally {
      client.close();
    }
  });
});
