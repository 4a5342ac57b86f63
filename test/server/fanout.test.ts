import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { EventSource } from 'eventsource';
import type { RunningServer } from '../../src/server/server.js';
import { historyPage, publishMany, uniqueTopic } from '../helpers/http.js';
import { publish, startTestServer, waitFor, waitForProgress } from '../helpers/server.js';
import { RawSseClient } from '../helpers/sse-client.js';
import { WsClientPool, type WsTestClient, wsUrl } from '../helpers/ws-client.js';

const EVENTS = 5000;
const PUBLISHERS = 8;
const SUBSCRIBERS_PER_KIND = 25;
/**
 * Only against a hang: every wait below gives up once nothing has moved for the shared patience,
 * however long a loaded machine takes to move thousands of events (120 s was seen not to do).
 */
const HANG_GUARD_MS = 600_000;

let server: RunningServer;
const pool = new WsClientPool();
const closers: (() => void)[] = [];

before(async () => {
  server = await startTestServer({ HISTORY_MAX_EVENTS: '10000' });
});
afterEach(() => {
  pool.closeAll();
  for (const close of closers.splice(0)) close();
});
after(() => server.shutdown());

/** One received (or stored) event: its id and its data as JSON text. */
type Entry = readonly [id: string, data: string];

/** A subscriber of any kind, seen only through what it received. */
interface Receiver {
  readonly kind: string;
  /** Cheap: polled while thousands of events fly. */
  count(): number;
  entries(): Entry[];
  /** Reconnections, errors or closes that a healthy stream never has. */
  readonly troubles: string[];
}

async function eventSourceReceiver(topic: string): Promise<Receiver> {
  const source = new EventSource(`${server.url}/v1/topics/${topic}/events`);
  closers.push(() => source.close());
  const received: Entry[] = [];
  const troubles: string[] = [];
  source.addEventListener('message', (event) => received.push([event.lastEventId, event.data]));
  await new Promise<void>((resolve, reject) => {
    source.addEventListener('open', () => resolve(), { once: true });
    source.addEventListener('error', (error) => reject(error), { once: true });
  });
  source.addEventListener('error', (error) => troubles.push(`error ${error.message ?? ''}`));
  return {
    kind: 'eventsource',
    count: () => received.length,
    entries: () => received,
    troubles,
  };
}

async function rawSseReceiver(topic: string): Promise<Receiver> {
  const client = new RawSseClient(`${server.url}/v1/topics/${topic}/events`);
  closers.push(() => client.close());
  await client.opened;
  assert.equal(client.status, 200);
  return {
    kind: 'raw-sse',
    count: () => client.messages.length,
    entries: () => client.messages.map((message) => [message.id ?? '<no id>', message.data]),
    get troubles() {
      return client.ended ? ['stream ended'] : [];
    },
  };
}

function wsReceiver(kind: string, client: WsTestClient, topic: string): Receiver {
  return {
    kind,
    count: () => client.eventCount(topic),
    entries: () => client.events(topic).map((event) => [event.id, JSON.stringify(event.data)]),
    get troubles() {
      const unexpected = client.frames.filter(
        (frame) => !['event', 'subscribed'].includes(frame.type),
      );
      return [
        ...(client.closeInfo ? [`closed ${JSON.stringify(client.closeInfo)}`] : []),
        ...unexpected.map((frame) => JSON.stringify(frame)),
      ];
    },
  };
}

async function boundWsReceiver(topic: string): Promise<Receiver> {
  const client = await pool.connect(wsUrl(server.url, `/v1/topics/${topic}/ws`));
  return wsReceiver('ws-per-topic', client, topic);
}

async function multiplexedWsReceiver(topic: string): Promise<Receiver> {
  const client = await pool.connect(wsUrl(server.url, '/v1/ws'));
  await client.subscribe(topic);
  return wsReceiver('ws-multiplexed', client, topic);
}

/** The topic's whole retained history, oldest first, following `next` across full pages. */
async function fullHistory(topic: string): Promise<Entry[]> {
  const entries: Entry[] = [];
  let query = 'limit=1000';
  for (;;) {
    const page = await historyPage(server.url, topic, query);
    entries.push(...page.events.map((event): Entry => [event.id, JSON.stringify(event.data)]));
    if (page.next === null) return entries;
    query = `limit=1000&after=${encodeURIComponent(page.next)}`;
  }
}

/** Asserts that `subsequence` appears within `sequence` in the same relative order. */
function assertInOrder(sequence: readonly string[], subsequence: readonly string[], what: string) {
  const position = new Map(sequence.map((id, index) => [id, index]));
  let previous = -1;
  for (const id of subsequence) {
    const index = position.get(id);
    assert.ok(index !== undefined, `${what}: ${id} is missing from history`);
    assert.ok(index > previous, `${what}: ${id} is out of order in history`);
    previous = index;
  }
}

describe('fan-out of one topic to SSE and WebSocket subscribers', () => {
  test(`${4 * SUBSCRIBERS_PER_KIND} mixed subscribers each get all ${EVENTS} events in publication order, once`, {
    timeout: HANG_GUARD_MS,
  }, async () => {
    const topic = uniqueTopic('fanout');
    const receivers: Receiver[] = [];
    for (let i = 0; i < SUBSCRIBERS_PER_KIND; i++) {
      receivers.push(
        await eventSourceReceiver(topic),
        await rawSseReceiver(topic),
        await boundWsReceiver(topic),
        await multiplexedWsReceiver(topic),
      );
    }
    await waitFor(
      () => server.hub.subscriberCount(topic) === receivers.length,
      'every subscription',
    );

    // Concurrent publishers over keep-alive connections; each one's events are published in
    // order, so they must appear in that order among everyone's.
    const perPublisher = await Promise.all(
      Array.from({ length: PUBLISHERS }, (_, p) =>
        publishMany(server.url, topic, EVENTS / PUBLISHERS, { data: (n) => ({ p, n }) }),
      ),
    );

    const fewest = () => Math.min(...receivers.map((receiver) => receiver.count()));
    const everyoneHas = (count: number) =>
      waitForProgress(fewest, count, `${count} events at every subscriber`).catch(
        (error: Error) => {
          const counts = receivers.map((receiver) => `${receiver.kind}:${receiver.count()}`);
          throw new Error(`${error.message} (${counts.join(' ')})`);
        },
      );
    await everyoneHas(EVENTS);
    // A last event published after all others have arrived: anything delivered twice, late,
    // would show up before it.
    const sentinel = await publish(server.url, topic, 'sentinel');
    await everyoneHas(EVENTS + 1);

    const history = await fullHistory(topic);
    const historyIds = history.map(([id]) => id);
    assert.equal(history.length, EVENTS + 1);
    assert.equal(historyIds[EVENTS], sentinel.id);
    assert.equal(new Set(historyIds).size, EVENTS + 1, 'history ids are unique');
    assert.deepEqual(
      historyIds.slice(0, EVENTS).sort(),
      perPublisher.flat().sort(),
      'history holds exactly the published events',
    );
    perPublisher.forEach((ids, p) => {
      assertInOrder(historyIds, ids, `publisher ${p}`);
    });

    for (const [index, receiver] of receivers.entries()) {
      const what = `subscriber ${index} (${receiver.kind})`;
      assert.deepEqual(receiver.troubles, [], what);
      const entries = receiver.entries();
      if (entries.length !== history.length || entries.some(([id], i) => id !== historyIds[i])) {
        // A readable diff: where the sequence first departs from history.
        const first = entries.findIndex(([id], i) => id !== historyIds[i]);
        assert.fail(
          `${what}: ${entries.length} events, first difference at ${first}: ` +
            `${JSON.stringify(entries[first])} vs ${JSON.stringify(history[first])}`,
        );
      }
      assert.deepEqual(entries, history, `${what}: data`);
    }
  });
});

describe('WebSocket resume while publishing continues', () => {
  const variants: [string, (topic: string, lastId: string) => Promise<WsTestClient>][] = [
    [
      'multiplexed subscribe with last_event_id',
      async (topic, lastId) => {
        const client = await pool.connect(wsUrl(server.url, '/v1/ws'));
        await client.subscribe(topic, { last_event_id: lastId });
        return client;
      },
    ],
    [
      'per-topic socket with ?last_event_id=',
      (topic, lastId) =>
        pool.connect(
          wsUrl(server.url, `/v1/topics/${topic}/ws?last_event_id=${encodeURIComponent(lastId)}`),
        ),
    ],
  ];

  for (const [how, reconnect] of variants) {
    test(`a subscriber dropped mid-stream and back via ${how} ends with exactly the published sequence`, {
      timeout: HANG_GUARD_MS,
    }, async () => {
      const topic = uniqueTopic('fanout.resume');
      const total = 2000;
      const first = await pool.connect(wsUrl(server.url, `/v1/topics/${topic}/ws`));
      await waitFor(() => server.hub.subscriberCount(topic) === 1, 'the first subscription');

      let started = 0;
      const publishing = publishMany(server.url, topic, total, {
        concurrency: 2,
        beforeEach: () => {
          started++;
        },
      });

      await waitForProgress(() => first.eventCount(topic), 300, 'the first 300 events');
      first.close();
      // Frames still buffered in the socket may be parsed after this point; a client only
      // knows what it had when it decided to drop, so that is where it resumes.
      const before = first.ids(topic);
      const droppedAt = started;
      await waitForProgress(() => started, droppedAt + 200, '200 more publications while away');
      const lastId = before[before.length - 1] as string;
      const second = await reconnect(topic, lastId);
      const resumedAt = started;

      await publishing;
      const sentinel = await publish(server.url, topic, 'sentinel');
      const expected = (await fullHistory(topic)).map(([id]) => id);
      assert.equal(expected.length, total + 1);
      assert.equal(expected[total], sentinel.id);
      await waitForProgress(
        () => second.eventCount(topic),
        total + 1 - before.length,
        'the resumed events',
      );

      assert.ok(resumedAt < total, 'publishing was still going on at the resume');
      assert.deepEqual(second.framesOfType('reset'), []);
      assert.deepEqual([...before, ...second.ids(topic)], expected);
    });
  }
});

describe('WebSocket subscribers joining while publishing goes on', () => {
  test('each one, from the start or from an id, ends with exactly the retained sequence after its start', {
    timeout: HANG_GUARD_MS,
  }, async () => {
    const topic = uniqueTopic('fanout.join');
    const pad = 'j'.repeat(500);
    const data = (n: number) => ({ n, pad });
    // Enough history that a replay spans several pages and has to wait for the socket to drain,
    // so live batches flow past joiners that are still catching up.
    const early = await publishMany(server.url, topic, 1500, { concurrency: 4, data });
    let started = 0;
    const publishing = publishMany(server.url, topic, 1500, {
      concurrency: 4,
      data: (n) => data(1500 + n),
      beforeEach: () => {
        started++;
      },
    });

    const joiners: { client: WsTestClient; after: string | undefined }[] = [];
    for (let i = 0; i < 20; i++) {
      await waitForProgress(() => started, i * 60, `publication ${i * 60}`);
      const after = i % 2 === 0 ? undefined : early[(i * 97) % early.length];
      const query = after === undefined ? '?from=start' : `?last_event_id=${after}`;
      if (i % 4 < 2) {
        const client = await pool.connect(wsUrl(server.url, '/v1/ws'));
        await client.subscribe(
          topic,
          after === undefined ? { from: 'start' } : { last_event_id: after },
        );
        joiners.push({ client, after });
      } else {
        joiners.push({
          client: await pool.connect(wsUrl(server.url, `/v1/topics/${topic}/ws${query}`)),
          after,
        });
      }
    }
    await publishing;
    const sentinel = await publish(server.url, topic, 'sentinel');
    const history = (await fullHistory(topic)).map(([id]) => id);
    assert.equal(history.length, 3001);
    assert.equal(history[3000], sentinel.id);

    for (const [index, { client, after }] of joiners.entries()) {
      const expected = after === undefined ? history : history.slice(history.indexOf(after) + 1);
      await waitForProgress(() => client.eventCount(topic), expected.length, `joiner ${index}`);
      const ids = client.ids(topic);
      const first = ids.findIndex((id, i) => id !== expected[i]);
      assert.ok(
        ids.length === expected.length && first < 0,
        `joiner ${index} (after ${after ?? 'start'}): ${ids.length} of ${expected.length} events, first difference at ${first}: ${ids[first]} vs ${expected[first]}`,
      );
      assert.deepEqual(client.framesOfType('reset'), []);
    }
  });
});
