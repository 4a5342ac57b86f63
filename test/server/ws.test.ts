import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/server/server.js';
import {
  allHistoryIds,
  assertApiError,
  historyPage,
  metricsText,
  metricValue,
  publishMany,
  request,
  uniqueTopic,
} from '../helpers/http.js';
import { publish, startTestServer, waitFor, withServer } from '../helpers/server.js';
import { RawSseClient } from '../helpers/sse-client.js';
import {
  rejectedHandshake,
  type ServerFrame,
  WsClientPool,
  type WsTestClient,
  wsUrl,
} from '../helpers/ws-client.js';

const MAX_BODY_BYTES = 64 * 1024;
const WS_FRAME_LIMIT = MAX_BODY_BYTES + 1024;

let server: RunningServer;
const pool = new WsClientPool();

before(async () => {
  server = await startTestServer({ MAX_BODY_BYTES: String(MAX_BODY_BYTES) });
});
afterEach(() => pool.closeAll());
after(() => server.shutdown());

function multiplexed(on: RunningServer = server): Promise<WsTestClient> {
  return pool.connect(wsUrl(on.url, '/v1/ws'));
}

function bound(topic: string, query = '', on: RunningServer = server): Promise<WsTestClient> {
  return pool.connect(wsUrl(on.url, `/v1/topics/${topic}/ws${query}`));
}

/** A subscription is live once the hub counts it; publishing earlier could race it. */
function subscribers(topic: string, count: number, on: RunningServer = server): Promise<void> {
  return waitFor(() => on.hub.subscriberCount(topic) === count, `${count} subscribers of ${topic}`);
}

/** `{type: "event", ...}` exactly as docs/api.md §3 fixes it. */
function eventFrame(topic: string, id: string, data: unknown, event = 'message') {
  return { type: 'event', topic, id, event, data };
}

function assertErrorFrame(frame: ServerFrame, code: string, ref?: unknown): void {
  const keys = ref === undefined ? ['code', 'message', 'type'] : ['code', 'message', 'ref', 'type'];
  assert.deepEqual(Object.keys(frame).sort(), keys, JSON.stringify(frame));
  assert.equal(frame.type, 'error');
  assert.equal(frame.code, code);
  assert.equal(typeof frame.message, 'string');
  assert.ok((frame.message as string).length > 0);
  if (ref !== undefined) assert.deepEqual(frame.ref, ref);
}

async function assertAnswersPing(client: WsTestClient): Promise<void> {
  client.send({ type: 'ping', ref: 'still-there' });
  const pong = await client.waitForFrame((frame) => frame.ref === 'still-there', 'pong', {
    after: client.frames.length,
  });
  assert.deepEqual(pong, { type: 'pong', ref: 'still-there' });
}

describe('multiplexed socket /v1/ws', () => {
  test('subscribe is acknowledged with its ref, then events arrive as exact event frames', async () => {
    const topic = uniqueTopic('ws.sub');
    const client = await multiplexed();
    const ref = { request: 7, tags: ['a', null] };
    client.send({ type: 'subscribe', topic, ref });
    const ack = await client.waitForFrame((frame) => frame.type === 'subscribed', 'subscribed');
    assert.deepEqual(ack, { type: 'subscribed', topic, ref });
    await subscribers(topic, 1);

    const first = await publish(server.url, topic, { n: 1, text: 'héllo "quoted"\n' });
    const second = await publish(server.url, topic, ['x', null, 2.5], { event: 'chat.msg' });
    const third = await publish(server.url, topic, 'plain string');
    const fourth = await publish(server.url, topic, null);

    assert.deepEqual(await client.waitForEvents(topic, 4), [
      eventFrame(topic, first.id, { n: 1, text: 'héllo "quoted"\n' }),
      eventFrame(topic, second.id, ['x', null, 2.5], 'chat.msg'),
      eventFrame(topic, third.id, 'plain string'),
      eventFrame(topic, fourth.id, null),
    ]);
    assert.equal(client.frames.length, 5, 'nothing but the ack and the four events');
    assert.deepEqual(client.malformed, []);
  });

  test('one socket carries several topics, each in its own publication order', async () => {
    const red = uniqueTopic('ws.red');
    const blue = uniqueTopic('ws.blue');
    const client = await multiplexed();
    await client.subscribe(red);
    await client.subscribe(blue);
    await subscribers(red, 1);
    await subscribers(blue, 1);

    const published: { topic: string; id: string; n: number }[] = [];
    for (let n = 0; n < 6; n++) {
      const topic = n % 3 === 0 ? blue : red;
      published.push({ topic, id: (await publish(server.url, topic, { n })).id, n });
    }
    await client.waitForEvents(red, 4);
    await client.waitForEvents(blue, 2);
    for (const topic of [red, blue]) {
      assert.deepEqual(
        client.events(topic),
        published
          .filter((event) => event.topic === topic)
          .map((event) => eventFrame(topic, event.id, { n: event.n })),
      );
    }
  });

  test('unsubscribe is acknowledged and stops that topic only', async () => {
    const dropped = uniqueTopic('ws.dropped');
    const kept = uniqueTopic('ws.kept');
    const client = await multiplexed();
    await client.subscribe(dropped);
    await client.subscribe(kept);
    await subscribers(dropped, 1);
    await subscribers(kept, 1);
    const before = await publish(server.url, dropped, { phase: 'before' });
    await client.waitForEvents(dropped, 1);

    client.send({ type: 'unsubscribe', topic: dropped, ref: 0 });
    const ack = await client.waitForFrame((frame) => frame.type === 'unsubscribed', 'ack');
    assert.deepEqual(ack, { type: 'unsubscribed', topic: dropped, ref: 0 });
    await subscribers(dropped, 0);

    await publish(server.url, dropped, { phase: 'after' });
    const sentinel = await publish(server.url, kept, { phase: 'after' });
    // Same socket, published later: once the sentinel is here, a leaked event would be too.
    await client.waitForEvents(kept, 1);
    assert.deepEqual(client.ids(kept), [sentinel.id]);
    assert.deepEqual(client.ids(dropped), [before.id]);
  });

  test('publish is answered with the id and ref, and SSE and history see the event', async () => {
    const topic = uniqueTopic('ws.pub');
    const sse = new RawSseClient(`${server.url}/v1/topics/${topic}/events`);
    try {
      await sse.opened;
      await subscribers(topic, 1);
      const client = await multiplexed();
      const ref = ['publish', 1];
      client.send({ type: 'publish', topic, data: { hello: 'world' }, event: 'greeting', ref });
      const reply = await client.waitForFrame((frame) => frame.type === 'published', 'published');
      assert.equal(typeof reply.id, 'string');
      const id = reply.id as string;
      assert.deepEqual(reply, { type: 'published', topic, id, ref });

      await waitFor(() => sse.events.length === 1, 'SSE event');
      assert.deepEqual(sse.events, [{ id, event: 'greeting', data: '{"hello":"world"}' }]);

      const page = await historyPage(server.url, topic);
      assert.equal(page.events.length, 1);
      const [stored] = page.events;
      assert.deepEqual(
        { ...stored, time: undefined },
        {
          id,
          event: 'greeting',
          data: { hello: 'world' },
          time: undefined,
        },
      );
      assert.ok(!Number.isNaN(Date.parse(stored?.time ?? '')), 'RFC 3339 time');
    } finally {
      sse.close();
    }
  });

  test('a socket subscribed to a topic receives its own publications once, after the reply', async () => {
    const topic = uniqueTopic('ws.echo');
    const client = await multiplexed();
    await client.subscribe(topic);
    await subscribers(topic, 1);
    const reply = await client.request({ type: 'publish', topic, data: 42 });
    const [event] = await client.waitForEvents(topic, 1);
    assert.deepEqual(event, eventFrame(topic, reply.id as string, 42));
    await assertAnswersPing(client);
    assert.equal(client.eventCount(topic), 1);
  });

  test('replies to frames sent together come back in the order sent, errors included', async () => {
    const client = await multiplexed();
    const marker = client.frames.length;
    client.send({ type: 'bogus', ref: 'a' });
    client.send({ type: 'ping', ref: 'b' });
    client.send({ type: 'subscribe', topic: 'bad topic', ref: 'c' });
    client.send({ type: 'ping', ref: 'd' });
    await client.waitForFrame((frame) => frame.ref === 'd', 'the last reply', { after: marker });
    assert.deepEqual(
      client.frames.slice(marker).map((frame) => frame.ref),
      ['a', 'b', 'c', 'd'],
    );
  });

  test('ping is answered with pong and the same ref, whatever JSON the ref is', async () => {
    const client = await multiplexed();
    for (const ref of [0, '', false, null, { deep: [1, { x: 'y' }] }]) {
      const marker = client.frames.length;
      client.send({ type: 'ping', ref });
      const pong = await client.waitForFrame((frame) => frame.type === 'pong', 'pong', {
        after: marker,
      });
      assert.deepEqual(pong, { type: 'pong', ref });
    }
    client.send({ type: 'ping' });
    const marker = client.frames.length;
    const bare = await client.waitForFrame((frame) => frame.type === 'pong', 'pong', {
      after: marker,
    });
    assert.deepEqual(bare, { type: 'pong' });
  });

  test('GET /v1/topics/{topic} counts WebSocket subscriptions with SSE ones', async () => {
    const topic = uniqueTopic('ws.status');
    const sse = new RawSseClient(`${server.url}/v1/topics/${topic}/events`);
    try {
      const client = await multiplexed();
      await client.subscribe(topic);
      await bound(topic);
      await sse.opened;
      await subscribers(topic, 3);
      const status = await request(`${server.url}/v1/topics/${topic}`);
      assert.deepEqual(status.json, { topic, last_id: null, length: 0, subscribers: 3 });
    } finally {
      sse.close();
    }
  });
});

describe('resuming over the multiplexed socket', () => {
  test('last_event_id replays what followed it, then continues live without gap or duplicate', async () => {
    const topic = uniqueTopic('ws.resume');
    const ids = await publishMany(server.url, topic, 5);
    const client = await multiplexed();
    await client.subscribe(topic, { last_event_id: ids[1] });
    await client.waitForEvents(topic, 3);
    await subscribers(topic, 1);
    const live = await publish(server.url, topic, { n: 5 });
    const events = await client.waitForEvents(topic, 4);
    assert.deepEqual(events, [
      eventFrame(topic, ids[2] as string, { n: 2 }),
      eventFrame(topic, ids[3] as string, { n: 3 }),
      eventFrame(topic, ids[4] as string, { n: 4 }),
      eventFrame(topic, live.id, { n: 5 }),
    ]);
    assert.deepEqual(client.framesOfType('reset'), []);
  });

  test('last_event_id of the newest event replays nothing and continues live', async () => {
    const topic = uniqueTopic('ws.resume-head');
    const ids = await publishMany(server.url, topic, 3);
    const client = await multiplexed();
    await client.subscribe(topic, { last_event_id: ids[2] });
    await subscribers(topic, 1);
    const live = await publish(server.url, topic, { n: 3 });
    await client.waitForEvents(topic, 1);
    assert.deepEqual(client.ids(topic), [live.id]);
    assert.deepEqual(client.framesOfType('reset'), []);
  });

  test('from "start" replays all retained history, then continues live', async () => {
    const topic = uniqueTopic('ws.start');
    const ids = await publishMany(server.url, topic, 4);
    const client = await multiplexed();
    await client.subscribe(topic, { from: 'start' });
    await client.waitForEvents(topic, 4);
    await subscribers(topic, 1);
    const live = await publish(server.url, topic, { n: 4 });
    await client.waitForEvents(topic, 5);
    assert.deepEqual(client.ids(topic), [...ids, live.id]);
    assert.deepEqual(client.framesOfType('reset'), []);
  });

  test('subscribing again to a topic replaces the subscription instead of doubling it', async () => {
    const topic = uniqueTopic('ws.resubscribe');
    const ids = await publishMany(server.url, topic, 2);
    const client = await multiplexed();
    await client.subscribe(topic);
    await subscribers(topic, 1);
    await client.subscribe(topic, { from: 'start' });
    await client.waitForEvents(topic, 2);
    assert.equal(server.hub.subscriberCount(topic), 1);
    const live = await publish(server.url, topic, { n: 2 });
    await client.waitForEvents(topic, 3);
    await assertAnswersPing(client);
    assert.deepEqual(client.ids(topic), [...ids, live.id]);
  });

  test('an id that is not from this log gets reset unknown_id, then all retained history', async () => {
    const topic = uniqueTopic('ws.unknown');
    const ids = await publishMany(server.url, topic, 3);
    const epoch = (ids[0] as string).slice(0, (ids[0] as string).lastIndexOf('-'));
    for (const lastEventId of ['not-an-id', `${epoch}-99`]) {
      const client = await multiplexed();
      await client.subscribe(topic, { last_event_id: lastEventId });
      await client.waitForEvents(topic, 3);
      assert.deepEqual(
        client.frames.map((frame) => frame.type),
        ['subscribed', 'reset', 'event', 'event', 'event'],
        lastEventId,
      );
      assert.deepEqual(client.frames[1], {
        type: 'reset',
        topic,
        reason: 'unknown_id',
        oldest: ids[0],
      });
      assert.deepEqual(client.ids(topic), ids);
    }
  });

  test('an id from before DELETE gets reset epoch_mismatch, with oldest null while empty', async () => {
    const topic = uniqueTopic('ws.epoch');
    const old = await publishMany(server.url, topic, 3);
    const deleted = await request(`${server.url}/v1/topics/${topic}`, { method: 'DELETE' });
    assert.equal(deleted.status, 204);

    const early = await multiplexed();
    await early.subscribe(topic, { last_event_id: old[2] });
    const emptyReset = await early.waitForFrame((frame) => frame.type === 'reset', 'reset');
    assert.deepEqual(emptyReset, { type: 'reset', topic, reason: 'epoch_mismatch', oldest: null });
    await subscribers(topic, 1);

    const fresh = await publishMany(server.url, topic, 2);
    assert.notEqual(fresh[0], old[0]);
    await early.waitForEvents(topic, 2);
    assert.deepEqual(early.ids(topic), fresh, 'the empty-topic subscriber continues live');

    const late = await multiplexed();
    await late.subscribe(topic, { last_event_id: old[2] });
    await late.waitForEvents(topic, 2);
    assert.deepEqual(
      late.frames.map((frame) => frame.type),
      ['subscribed', 'reset', 'event', 'event'],
    );
    assert.deepEqual(late.frames[1], {
      type: 'reset',
      topic,
      reason: 'epoch_mismatch',
      oldest: fresh[0],
    });
    assert.deepEqual(late.ids(topic), fresh);
  });

  test('an id older than retained history gets reset history_truncated, then what is retained', async () => {
    await withServer({ HISTORY_MAX_EVENTS: '5' }, async (small) => {
      const topic = uniqueTopic('ws.truncated');
      const ids = await publishMany(small.url, topic, 10);
      const client = await multiplexed(small);
      await client.subscribe(topic, { last_event_id: ids[1] });
      await client.waitForEvents(topic, 5);
      assert.deepEqual(client.framesOfType('reset'), [
        { type: 'reset', topic, reason: 'history_truncated', oldest: ids[5] },
      ]);
      assert.equal(client.frames[1]?.type, 'reset', 'reset comes before the replay');
      assert.deepEqual(client.ids(topic), ids.slice(5));

      // The oldest retained event's predecessor is still an exact resume point.
      const exact = await multiplexed(small);
      await exact.subscribe(topic, { last_event_id: ids[4] });
      await exact.waitForEvents(topic, 5);
      assert.deepEqual(exact.framesOfType('reset'), []);
      assert.deepEqual(exact.ids(topic), ids.slice(5));
    });
  });

  // Replay pages are 500 events: with events of 10-50 KB one page is many times the 256 KiB
  // bound, yet a client that reads as fast as it can is not a slow consumer.
  for (const [eventBytes, livePublishes] of [
    [10_000, 0],
    [50_000, 200],
  ] as const) {
    test(`replaying ${eventBytes / 1000} KB events from the start past SLOW_CONSUMER_MAX_BYTES${livePublishes ? ' while publishing goes on' : ''} delivers everything`, async () => {
      await withServer(
        { SLOW_CONSUMER_MAX_BYTES: String(256 * 1024), HISTORY_MAX_EVENTS: '2000' },
        async (small) => {
          const topic = uniqueTopic('ws.big-replay');
          const data = (n: number) => ({ n, pad: 'x'.repeat(eventBytes) });
          await publishMany(small.url, topic, 800, { concurrency: 4, data });
          const client = await multiplexed(small);
          await client.subscribe(topic, { from: 'start' });
          // Published one by one while the replay is under way and right after it ends.
          const live = publishMany(small.url, topic, livePublishes, { data });
          await client.waitForEvents(topic, 800 + livePublishes, 30_000);
          await live;
          assert.deepEqual(client.ids(topic), await allHistoryIds(small.url, topic));
          const metrics = await metricsText(small.url);
          assert.equal(
            metricValue(metrics, 'streamhub_slow_consumers_dropped_total', { transport: 'ws' }) ??
              0,
            0,
          );
        },
      );
    });
  }
});

interface BadFrame {
  readonly name: string;
  /** A raw text or binary frame, or a value sent as JSON. */
  readonly raw?: string | Buffer;
  readonly frame?: Record<string, unknown>;
  readonly code: string;
  readonly ref?: unknown;
}

const BAD_TOPIC = uniqueTopic('ws.bad');

const BAD_FRAMES: readonly BadFrame[] = [
  { name: 'invalid JSON', raw: '{"type": "ping"', code: 'invalid_json' },
  { name: 'a JSON array', raw: '[{"type":"ping"}]', code: 'invalid_frame' },
  { name: 'a JSON string', raw: '"ping"', code: 'invalid_frame' },
  { name: 'JSON null', raw: 'null', code: 'invalid_frame' },
  { name: 'a binary frame', raw: Buffer.from('{"type":"ping"}'), code: 'unsupported_frame' },
  { name: 'an unknown type', frame: { type: 'shout' }, code: 'unknown_type', ref: 1 },
  { name: 'a frame without type', frame: { topic: BAD_TOPIC }, code: 'unknown_type', ref: 'r' },
  {
    name: 'a subscribe without topic',
    frame: { type: 'subscribe' },
    code: 'invalid_topic',
    ref: { id: 3 },
  },
  {
    name: 'a subscribe to an invalid topic',
    frame: { type: 'subscribe', topic: 'has space' },
    code: 'invalid_topic',
    ref: 4,
  },
  {
    name: 'a publish to a 129-char topic',
    frame: { type: 'publish', topic: 'a'.repeat(129), data: 1 },
    code: 'invalid_topic',
    ref: 5,
  },
  {
    name: 'an unsubscribe with a non-string topic',
    frame: { type: 'unsubscribe', topic: 42 },
    code: 'invalid_topic',
    ref: 6,
  },
  {
    name: 'a publish with an invalid event type',
    frame: { type: 'publish', topic: BAD_TOPIC, event: 'no spaces', data: 1 },
    code: 'invalid_event_type',
    ref: 7,
  },
  {
    name: 'a publish with a 65-char event type',
    frame: { type: 'publish', topic: BAD_TOPIC, event: 'e'.repeat(65), data: 1 },
    code: 'invalid_event_type',
    ref: 8,
  },
  {
    name: 'a publish without data',
    frame: { type: 'publish', topic: BAD_TOPIC, event: 'fine' },
    code: 'missing_data',
    ref: 9,
  },
  {
    name: 'a subscribe with from other than "start"',
    frame: { type: 'subscribe', topic: BAD_TOPIC, from: 'end' },
    code: 'invalid_from',
    ref: 10,
  },
  {
    name: 'a subscribe with a non-string last_event_id',
    frame: { type: 'subscribe', topic: BAD_TOPIC, last_event_id: 42 },
    code: 'invalid_last_event_id',
    ref: 11,
  },
];

function sendBadFrame(client: WsTestClient, bad: BadFrame): void {
  if (bad.raw !== undefined) client.ws.send(bad.raw, { binary: typeof bad.raw !== 'string' });
  else client.send(bad.ref === undefined ? bad.frame : { ...bad.frame, ref: bad.ref });
}

/** Sends bad frames one at a time and returns the error frame answering each. */
async function sendBadFrames(
  client: WsTestClient,
  frames: readonly BadFrame[],
): Promise<ServerFrame[]> {
  const errors: ServerFrame[] = [];
  for (const bad of frames) {
    const marker = client.frames.length;
    sendBadFrame(client, bad);
    errors.push(
      await client.waitForFrame((frame) => frame.type === 'error', `error for ${bad.name}`, {
        after: marker,
      }),
    );
  }
  return errors;
}

describe('bad frames on the multiplexed socket', () => {
  for (const bad of BAD_FRAMES) {
    test(`${bad.name} is answered with a ${bad.code} error frame and the socket stays open`, async () => {
      const client = await multiplexed();
      const [error] = await sendBadFrames(client, [bad]);
      assertErrorFrame(error as ServerFrame, bad.code, bad.ref);
      await assertAnswersPing(client);
      assert.ok(client.open);
    });
  }

  test('after every kind of bad frame the socket still subscribes and publishes, and nothing was stored', async () => {
    const client = await multiplexed();
    const errors = await sendBadFrames(client, BAD_FRAMES);
    assert.deepEqual(
      errors.map((error) => error.code),
      BAD_FRAMES.map((bad) => bad.code),
    );
    assert.equal(server.hub.subscriberCount(BAD_TOPIC), 0, 'no bad subscribe took effect');
    assert.deepEqual((await historyPage(server.url, BAD_TOPIC)).events, []);

    await client.subscribe(BAD_TOPIC);
    await subscribers(BAD_TOPIC, 1);
    const reply = await client.request({ type: 'publish', topic: BAD_TOPIC, data: 'ok' });
    assert.equal(reply.type, 'published');
    await client.waitForEvents(BAD_TOPIC, 1);
    assert.deepEqual(client.events(BAD_TOPIC), [eventFrame(BAD_TOPIC, reply.id as string, 'ok')]);
  });

  test('more than 20 bad frames in quick succession close the socket with 1008, others unaffected', async () => {
    const flooder = await multiplexed();
    const bystander = await multiplexed();
    const bad = BAD_FRAMES[0] as BadFrame;
    const errors = await sendBadFrames(flooder, Array(20).fill(bad));
    assert.equal(errors.length, 20);
    await assertAnswersPing(flooder);

    sendBadFrame(flooder, bad);
    const close = await flooder.waitForClose();
    assert.equal(close.code, 1008);
    assert.equal(flooder.framesOfType('error').length, 21, 'the last bad frame is answered too');
    await assertAnswersPing(bystander);
  });

  test('a burst of bad frames sent without waiting is also cut off with 1008', async () => {
    const flooder = await multiplexed();
    for (let i = 0; i < 100; i++) flooder.send({ type: 'nonsense', ref: i });
    const close = await flooder.waitForClose();
    assert.equal(close.code, 1008);
    const errors = flooder.framesOfType('error');
    assert.ok(errors.length >= 21, `${errors.length} error frames before the close`);
  });

  test('a frame larger than MAX_BODY_BYTES + 1024 closes that socket with 1009; the server keeps serving', async () => {
    const topic = uniqueTopic('ws.huge');
    const offender = await multiplexed();
    const bystander = await multiplexed();
    await bystander.subscribe(topic);
    await subscribers(topic, 1);
    offender.send({ type: 'publish', topic, data: 'x'.repeat(WS_FRAME_LIMIT) });
    const close = await offender.waitForClose();
    assert.equal(close.code, 1009);

    await assertAnswersPing(bystander);
    const published = await publish(server.url, topic, { after: 'huge frame' });
    await bystander.waitForEvents(topic, 1);
    assert.deepEqual(bystander.ids(topic), [published.id]);
    assert.deepEqual(await allHistoryIds(server.url, topic), [published.id]);
  });

  test('a publish frame carrying MAX_BODY_BYTES of data fits the frame limit, is stored and delivered', async () => {
    const topic = uniqueTopic('ws.max');
    const client = await multiplexed();
    await client.subscribe(topic);
    await subscribers(topic, 1);
    const data = 'y'.repeat(MAX_BODY_BYTES - 2);
    const reply = await client.request({ type: 'publish', topic, data });
    assert.equal(reply.type, 'published', JSON.stringify(reply).slice(0, 200));
    const page = await historyPage(server.url, topic);
    assert.deepEqual(
      page.events.map((event) => [event.id, event.data]),
      [[reply.id, data]],
    );
    // The event frame is over 64 KiB: the 64-bit length form of the hand-built framing.
    const [event] = await client.waitForEvents(topic, 1);
    assert.deepEqual(event, eventFrame(topic, reply.id as string, data));
  });
});

describe('per-topic socket /v1/topics/{topic}/ws', () => {
  test('events arrive without any client frame and without a subscribed frame', async () => {
    const topic = uniqueTopic('ws.bound');
    const client = await bound(topic);
    await subscribers(topic, 1);
    const first = await publish(server.url, topic, { n: 0 });
    const second = await publish(server.url, topic, { n: 1 }, { event: 'tick' });
    await client.waitForEvents(topic, 2);
    assert.deepEqual(client.frames, [
      eventFrame(topic, first.id, { n: 0 }),
      eventFrame(topic, second.id, { n: 1 }, 'tick'),
    ]);
  });

  test('?last_event_id= resumes after that id, then continues live', async () => {
    const topic = uniqueTopic('ws.bound-resume');
    const ids = await publishMany(server.url, topic, 4);
    const client = await bound(topic, `?last_event_id=${encodeURIComponent(ids[0] as string)}`);
    await client.waitForEvents(topic, 3);
    await subscribers(topic, 1);
    const live = await publish(server.url, topic, { n: 4 });
    await client.waitForEvents(topic, 4);
    assert.deepEqual(client.ids(topic), [...ids.slice(1), live.id]);
    assert.deepEqual(client.framesOfType('reset'), []);
  });

  test('?from=start replays all retained history, then continues live', async () => {
    const topic = uniqueTopic('ws.bound-start');
    const ids = await publishMany(server.url, topic, 3);
    const client = await bound(topic, '?from=start');
    await client.waitForEvents(topic, 3);
    await subscribers(topic, 1);
    const live = await publish(server.url, topic, { n: 3 });
    await client.waitForEvents(topic, 4);
    assert.deepEqual(client.ids(topic), [...ids, live.id]);
  });

  test('?last_event_id= that cannot be resumed gets a reset frame for the bound topic', async () => {
    const topic = uniqueTopic('ws.bound-reset');
    const ids = await publishMany(server.url, topic, 2);
    const client = await bound(topic, '?last_event_id=bogus');
    await client.waitForEvents(topic, 2);
    assert.deepEqual(client.frames[0], {
      type: 'reset',
      topic,
      reason: 'unknown_id',
      oldest: ids[0],
    });
    assert.deepEqual(client.ids(topic), ids);
  });

  test('a publish frame without topic publishes to the bound topic; one with a topic goes there', async () => {
    const topic = uniqueTopic('ws.bound-pub');
    const elsewhere = uniqueTopic('ws.bound-elsewhere');
    const client = await bound(topic);
    await subscribers(topic, 1);
    client.send({ type: 'publish', data: { via: 'ws' }, ref: 'p' });
    const reply = await client.waitForFrame((frame) => frame.ref === 'p', 'published');
    assert.equal(typeof reply.id, 'string');
    assert.deepEqual(reply, { type: 'published', topic, id: reply.id, ref: 'p' });
    await client.waitForEvents(topic, 1);
    assert.deepEqual(client.events(topic), [eventFrame(topic, reply.id as string, { via: 'ws' })]);
    assert.deepEqual(await allHistoryIds(server.url, topic), [reply.id]);

    const other = await client.request({ type: 'publish', topic: elsewhere, data: 1 });
    assert.equal(other.topic, elsewhere);
    assert.deepEqual(await allHistoryIds(server.url, elsewhere), [other.id]);
    await assertAnswersPing(client);
  });

  test('bad frames get error frames there too and the bound subscription survives', async () => {
    const topic = uniqueTopic('ws.bound-bad');
    const client = await bound(topic);
    await subscribers(topic, 1);
    const errors = await sendBadFrames(client, BAD_FRAMES.slice(0, 6));
    assert.deepEqual(
      errors.map((error) => error.code),
      BAD_FRAMES.slice(0, 6).map((bad) => bad.code),
    );
    const published = await publish(server.url, topic, 'still here');
    await client.waitForEvents(topic, 1);
    assert.deepEqual(client.ids(topic), [published.id]);
  });

  for (const [what, path, code] of [
    ['an invalid topic', '/v1/topics/has%20space/ws', 'invalid_topic'],
    ['a 129-char topic', `/v1/topics/${'t'.repeat(129)}/ws`, 'invalid_topic'],
    ['from other than start', '/v1/topics/fine/ws?from=end', 'invalid_from'],
  ] as const) {
    test(`${what} in the URL is refused with HTTP 400 before the upgrade`, async () => {
      const refused = await rejectedHandshake(wsUrl(server.url, path));
      assert.equal(refused.status, 400);
      const body = JSON.parse(refused.body) as { error: { code: string; message: string } };
      assert.deepEqual(Object.keys(body), ['error']);
      assert.equal(body.error.code, code);
      assert.equal(typeof body.error.message, 'string');
    });
  }

  for (const path of ['/v1/ws', '/v1/topics/plain/ws']) {
    test(`a plain HTTP GET of ${path} answers 426 upgrade_required`, async () => {
      assertApiError(await request(`${server.url}${path}`), 426, 'upgrade_required');
    });
  }
});
