import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { EventQueue } from '../../src/client/event-queue.js';
import {
  produce,
  readStream,
  type StreamEvent,
  type StreamEventInput,
  type StreamReader,
} from '../../src/client/index.js';
import type { RunningServer } from '../../src/server/server.js';
import { startTestServer, waitFor } from '../helpers/server.js';
import { PATIENCE_MS, rejectsWith, startProxy, uniqueStreamId, waitForStream } from './harness.js';

/** Each test is bounded, so that a hang fails it instead of the whole run. */
const BOUNDED = { timeout: PATIENCE_MS };
/** Fast retries keep the tests short. */
const BACKOFF = { initialMs: 20, maxMs: 100 };

let server: RunningServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.shutdown());

/** A source the test feeds by hand: what it pushes is produced, in order, when it pushes it. */
function handFed<T>(): EventQueue<T> {
  return new EventQueue<T>(() => {});
}

/** Everything a reader yields, and how its iteration ended. */
class Collected {
  readonly events: StreamEvent[] = [];
  readonly ended: Promise<void>;

  constructor(reader: StreamReader) {
    this.ended = (async () => {
      for await (const event of reader) this.events.push(event);
    })();
  }

  get data(): unknown[] {
    return this.events.map((event) => JSON.parse(event.data));
  }

  receivedAtLeast(count: number): Promise<void> {
    return waitFor(() => this.events.length >= count, `${count} events`, PATIENCE_MS);
  }
}

const numbered = (count: number): StreamEventInput[] =>
  Array.from({ length: count }, (_, n) => ({ data: { n }, event: n % 2 ? 'odd' : 'even' }));

test(
  'a reader gets each event while the body is still being produced, and ends with it',
  BOUNDED,
  async () => {
    const id = uniqueStreamId();
    const source = handFed<StreamEventInput>();
    const produced = produce(server.url, id, source);
    source.push({ data: { text: 'Hel' } });
    await waitForStream(server.url, id);
    const reader = new Collected(readStream(server.url, id, { backoff: BACKOFF }));
    await reader.receivedAtLeast(1);
    source.push({ data: { text: 'lo' }, event: 'delta' });
    await reader.receivedAtLeast(2);
    source.end();
    const answer = await produced;
    await reader.ended;
    assert.deepEqual(reader.data, [{ text: 'Hel' }, { text: 'lo' }]);
    assert.deepEqual(
      reader.events.map((event) => event.event),
      ['message', 'delta'],
    );
    assert.deepEqual(answer, { id, events: 2, lastEventId: reader.events[1]?.id });
  },
);

test(
  'a reader whose connection is cut resumes with no event repeated or missing',
  BOUNDED,
  async () => {
    const id = uniqueStreamId();
    const proxy = await startProxy(server);
    try {
      const source = handFed<StreamEventInput>();
      const produced = produce(server.url, id, source);
      const events = numbered(30);
      source.push(events[0] as StreamEventInput);
      await waitForStream(server.url, id);
      const reader = new Collected(readStream(proxy.url, id, { backoff: BACKOFF }));
      for (const [n, event] of events.entries()) {
        if (n > 0) source.push(event);
        await reader.receivedAtLeast(n + 1);
        if (n % 7 === 3) proxy.cut();
        if (n === 20) proxy.cut('reset', 100);
      }
      source.end();
      await produced;
      await reader.ended;
      assert.deepEqual(
        reader.data,
        events.map((event) => event.data),
      );
      const ids = reader.events.map((event) => event.id);
      assert.equal(new Set(ids).size, ids.length);
    } finally {
      await proxy.close();
    }
  },
);

test(
  'a reader resumes after a saved id, and one that starts after the end reads it all',
  BOUNDED,
  async () => {
    const id = uniqueStreamId();
    const answer = await produce(server.url, id, iterate(numbered(5)));
    const all = new Collected(readStream(server.url, id));
    await all.ended;
    assert.equal(all.events.length, 5);
    assert.equal(answer.lastEventId, all.events[4]?.id);
    const rest = new Collected(readStream(server.url, id, { lastEventId: all.events[2]?.id }));
    await rest.ended;
    assert.deepEqual(rest.events, all.events.slice(3));
  },
);

async function* iterate<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}

test(
  'a producer that breaks off ends the stream as producer_lost, and readers learn it',
  BOUNDED,
  async () => {
    const id = uniqueStreamId();
    const source = handFed<StreamEventInput>();
    const failure = new Error('the model crashed');
    const produced = produce(server.url, id, source);
    source.push({ data: 'partial' });
    await waitForStream(server.url, id);
    const reader = readStream(server.url, id, { backoff: BACKOFF });
    const collected = new Collected(reader);
    await collected.receivedAtLeast(1);
    source.end(failure);
    await assert.rejects(produced, (error) => error === failure);
    await rejectsWith(collected.ended, 0, 'producer_lost', false);
    assert.deepEqual(collected.data, ['partial']);
    // The ending event is stored: its id is the reader's position.
    const status = await (await fetch(`${server.url}/v1/streams/${id}`)).json();
    assert.equal(status.status, 'producer_lost');
    assert.equal(reader.lastEventId, status.last_event_id);
  },
);

test(
  'cancel ends the readers with `cancelled` and the producer with 409 `cancelled`',
  BOUNDED,
  async () => {
    const id = uniqueStreamId();
    const source = handFed<StreamEventInput>();
    const produced = rejectsWith(produce(server.url, id, source), 409, 'cancelled', false);
    source.push({ data: 1 });
    await waitForStream(server.url, id);
    const reader = new Collected(readStream(server.url, id, { backoff: BACKOFF }));
    await reader.receivedAtLeast(1);
    const cancel = await fetch(`${server.url}/v1/streams/${id}/cancel`, { method: 'POST' });
    assert.equal(cancel.status, 202);
    await rejectsWith(reader.ended, 0, 'cancelled', false);
    await produced;
    source.end();
  },
);

test(
  'byte sources: SSE text from a ReadableStream kept byte for byte, NDJSON from a Response',
  BOUNDED,
  async () => {
    const sseId = uniqueStreamId();
    const frames = [
      'event: delta\ndata: {"a":1}\n\n',
      ': comment\nid: 7\ndata: line one\n',
      'data: line two\n\n',
    ];
    const sse = new ReadableStream<string>({
      start(controller) {
        for (const frame of frames) controller.enqueue(frame);
        controller.close();
      },
    });
    await produce(server.url, sseId, sse);
    const sseReader = new Collected(readStream(server.url, sseId));
    await sseReader.ended;
    assert.deepEqual(
      sseReader.events.map(({ event, data }) => ({ event, data })),
      [
        { event: 'delta', data: '{"a":1}' },
        { event: 'message', data: 'line one\nline two' },
      ],
    );

    const ndjsonId = uniqueStreamId();
    const response = new Response('{"n":1}\n{"n":2}\n', {
      headers: { 'content-type': 'application/x-ndjson' },
    });
    const answer = await produce(server.url, ndjsonId, response);
    assert.equal(answer.events, 2);
    const ndjsonReader = new Collected(readStream(server.url, ndjsonId));
    await ndjsonReader.ended;
    assert.deepEqual(ndjsonReader.data, [{ n: 1 }, { n: 2 }]);
  },
);

test('strings are text: every event a JSON string, the whole text kept', BOUNDED, async () => {
  const id = uniqueStreamId();
  await produce(server.url, id, iterate(['Hello, ', 'wörld ', '👋']));
  const reader = new Collected(readStream(server.url, id));
  await reader.ended;
  assert.equal((reader.data as string[]).join(''), 'Hello, wörld 👋');
});

test('refusals: producing to an open stream, reading an unknown one', BOUNDED, async () => {
  const id = uniqueStreamId();
  const source = handFed<StreamEventInput>();
  const produced = produce(server.url, id, source);
  source.push({ data: 1 });
  await waitForStream(server.url, id);
  await rejectsWith(produce(server.url, id, iterate([{ data: 2 }])), 409, 'stream_exists', false);
  source.end();
  await produced;
  const unknown = new Collected(readStream(server.url, uniqueStreamId()));
  await rejectsWith(unknown.ended, 404, 'stream_not_found', false);
  assert.throws(() => readStream('ftp://nowhere', id), TypeError);
});
