import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryEventLog } from '../../src/backends/memory/memory-log.js';
import type { EventLog } from '../../src/core/event-log.js';
import { type StartFrom, TopicHub } from '../../src/core/hub.js';
import { RecordingSubscriber } from '../helpers/recording-subscriber.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

function setup(retention = { maxEvents: 100_000, ttlMs: 60_000 }) {
  const log = new MemoryEventLog({ ...retention, idempotencyTtlMs: 1000 });
  const hub = new TopicHub(log, { pageSize: 50 });
  const published: string[] = [];
  const publish = async (count: number, perTick = 7) => {
    for (let n = 0; n < count; n++) {
      published.push((await log.append('t', { event: 'message', data: String(n) })).id);
      // Uneven microtask gaps interleave appends with subscribers' reads within one turn.
      for (let hop = 0; hop < n % 5; hop++) await Promise.resolve();
      if (n % perTick === 0) await tick();
    }
  };
  return { log, hub, published, publish };
}

async function settle(subscribers: RecordingSubscriber[], expected: number) {
  for (let i = 0; i < 1000 && subscribers.some((s) => s.ids.length < expected); i++) await tick();
}

describe('TopicHub', () => {
  test('live subscribers get only events published after they joined, in order', async () => {
    const { log, hub, published, publish } = setup();
    await publish(10);
    const subscriber = new RecordingSubscriber();
    hub.subscribe('t', { kind: 'live' }, subscriber);
    await tick();
    await publish(20);
    await settle([subscriber], 20);
    assert.deepEqual(subscriber.ids, published.slice(10));
    await log.close();
  });

  for (const perTick of [3, 40]) {
    test(`history-to-live handover has no gap and no duplicate while publishing races (${perTick} events a turn)`, async () => {
      const { log, hub, published, publish } = setup();
      await publish(120);
      const subscribers: RecordingSubscriber[] = [];
      const racing = publish(3000, perTick);
      // Join at many points of the race, from the start or an id, with slow and fast consumers,
      // at varying microtask offsets so that reads land between appends of one turn.
      for (let i = 0; i < 60; i++) {
        const subscriber = new RecordingSubscriber(i % 3);
        const from: StartFrom =
          i % 2 === 0 ? { kind: 'start' } : { kind: 'after', id: published[i] as string };
        hub.subscribe('t', from, subscriber);
        subscribers.push(subscriber);
        for (let hop = 0; hop < i % 7; hop++) await Promise.resolve();
        if (i % 4 === 0) await tick();
      }
      await racing;
      for (let i = 0; i < 100; i++) await tick();
      subscribers.forEach((subscriber, i) => {
        const expected = i % 2 === 0 ? published : published.slice(i + 1);
        assert.deepEqual(subscriber.ids, expected, `subscriber ${i}`);
        assert.deepEqual(subscriber.resets, []);
      });
      await log.close();
    });
  }

  test('a live batch overlapping what the catch-up read is trimmed, not repeated', async () => {
    const { log, hub } = setup();
    const ids: string[] = [];
    const append = async () =>
      ids.push((await log.append('t', { event: 'message', data: '1' })).id);
    // An earlier subscriber makes the hub watch the topic, so appends queue as a live batch.
    hub.subscribe('t', { kind: 'live' }, new RecordingSubscriber());
    await tick();
    await append();
    await append();
    const subscriber = new RecordingSubscriber();
    hub.subscribe('t', { kind: 'start' }, subscriber);
    // Within one turn: the catch-up reads events 1-2 and goes live, then 3 is appended; the
    // turn's live batch holds 1-3.
    for (let hop = 0; hop < 20; hop++) await Promise.resolve();
    assert.equal(subscriber.ids.length, 2, 'catch-up finished within the turn');
    await append();
    await settle([subscriber], 3);
    await tick();
    assert.deepEqual(subscriber.ids, ids);
    await log.close();
  });

  test('a live event lost in transit is fetched from the log before later ones', async () => {
    const memory = new MemoryEventLog({ maxEvents: 100, ttlMs: 60_000, idempotencyTtlMs: 1000 });
    // Pub/Sub is at-most-once: this log's live feed silently drops the 3rd event.
    const lossyWatch: EventLog['watch'] = (topic, listener) =>
      memory.watch(topic, (epoch, event) => {
        if (event.seq !== 3) listener(epoch, event);
      });
    const lossy = new Proxy(memory, {
      get: (target, property) =>
        property === 'watch' ? lossyWatch : Reflect.get(target, property, target).bind(target),
    });
    const hub = new TopicHub(lossy);
    const subscriber = new RecordingSubscriber();
    hub.subscribe('t', { kind: 'live' }, subscriber);
    await tick();
    const ids: string[] = [];
    for (let n = 0; n < 5; n++) {
      ids.push((await memory.append('t', { event: 'message', data: '1' })).id);
      await tick();
    }
    await settle([subscriber], 5);
    assert.deepEqual(subscriber.ids, ids);
    await memory.close();
  });

  test('the last event, delivered live while a catch-up read was in flight, is not skipped', async () => {
    const memory = new MemoryEventLog({ maxEvents: 100, ttlMs: 60_000, idempotencyTtlMs: 1000 });
    // The read's view is taken at once, but its answer arrives late (a slow backend).
    let answerAfter: Promise<void> | undefined;
    const lateRead: EventLog['read'] = async (topic, from, limit) => {
      const page = await memory.read(topic, from, limit);
      await answerAfter;
      return page;
    };
    const late = new Proxy(memory, {
      get: (target, property) =>
        property === 'read' ? lateRead : Reflect.get(target, property, target).bind(target),
    });
    const hub = new TopicHub(late);
    hub.subscribe('t', { kind: 'live' }, new RecordingSubscriber());
    await tick();
    const ids = [(await memory.append('t', { event: 'message', data: '1' })).id];
    let answer = () => {};
    answerAfter = new Promise((resolve) => {
      answer = () => resolve();
    });
    const subscriber = new RecordingSubscriber();
    hub.subscribe('t', { kind: 'start' }, subscriber);
    await tick();
    // Appended after the read's view and delivered live while the read is still in flight;
    // nothing follows it.
    ids.push((await memory.append('t', { event: 'message', data: '2' })).id);
    await tick();
    answerAfter = undefined;
    answer();
    await settle([subscriber], 2);
    assert.deepEqual(subscriber.ids, ids);
    await memory.close();
  });

  test('a topic deleted under live subscribers resets them to the new epoch', async () => {
    const { log, hub, published, publish } = setup();
    await publish(3);
    const subscriber = new RecordingSubscriber();
    hub.subscribe('t', { kind: 'start' }, subscriber);
    await settle([subscriber], 3);
    await log.delete('t');
    await publish(2);
    await settle([subscriber], 5);
    assert.deepEqual(subscriber.ids, published);
    assert.deepEqual(subscriber.resets, [{ reason: 'epoch_mismatch', oldest: published[3] }]);
    await log.close();
  });

  test('a resume older than retained history is reset, then gets all that is retained', async () => {
    const { log, hub, published, publish } = setup({ maxEvents: 5, ttlMs: 60_000 });
    await publish(10);
    const subscriber = new RecordingSubscriber();
    hub.subscribe('t', { kind: 'after', id: published[1] as string }, subscriber);
    await settle([subscriber], 5);
    assert.deepEqual(subscriber.resets, [{ reason: 'history_truncated', oldest: published[5] }]);
    assert.deepEqual(subscriber.ids, published.slice(5));
    await log.close();
  });

  test('live events of one turn reach each subscriber as one batch', async () => {
    const { log, hub } = setup();
    const subscribers = [new RecordingSubscriber(), new RecordingSubscriber()];
    for (const subscriber of subscribers) hub.subscribe('t', { kind: 'live' }, subscriber);
    await tick();
    for (let n = 0; n < 5; n++) await log.append('t', { event: 'message', data: '1' });
    await settle(subscribers, 5);
    assert.deepEqual(
      subscribers.map((s) => s.batches),
      [1, 1],
    );
    await log.close();
  });

  test('closing the last subscription releases the topic', async () => {
    const { log, hub } = setup();
    const subscription = hub.subscribe('idle', { kind: 'live' }, new RecordingSubscriber());
    await tick();
    assert.equal(hub.subscriberCount('idle'), 1);
    subscription.close();
    assert.equal(hub.subscriberCount('idle'), 0);
    await tick();
    assert.equal(log.topicCount, 0);
    await log.close();
  });
});
