import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type StartFrom, TopicHub } from '../../../src/core/hub.js';
import { RecordingSubscriber } from '../../helpers/recording-subscriber.js';
import { createLog, input, uniquePrefix, useRedis, waitFor } from './harness.js';

const redis = useRedis();

const TOTAL = 2_000;

test('hub over Redis: subscribers joining while another instance publishes get exactly the published sequence', async () => {
  const keyPrefix = uniquePrefix();
  const retention = { keyPrefix, maxEvents: 10_000 };
  const publisher = createLog(redis().url, retention);
  const local = createLog(redis().url, retention);
  const hub = new TopicHub(local, { pageSize: 50 });
  const published: string[] = [];
  const publish = async (count: number) => {
    // A few appends in flight at once: replies come back in command order.
    for (let n = 0; n < count; n += 8) {
      const group = Array.from({ length: Math.min(8, count - n) }, (_, i) =>
        publisher.append('t', input(n + i)),
      );
      for (const result of await Promise.all(group)) published.push(result.id);
    }
  };
  try {
    await publish(100);
    const racing = publish(TOTAL - 100);
    const joined: Array<{ subscriber: RecordingSubscriber; from: StartFrom; at: number }> = [];
    for (let i = 0; i < 45; i++) {
      const subscriber = new RecordingSubscriber(i % 4);
      const kinds: StartFrom[] = [
        { kind: 'start' },
        { kind: 'after', id: published[published.length - 1 - (i % 90)] as string },
        { kind: 'live' },
      ];
      const from = kinds[i % 3] as StartFrom;
      joined.push({ subscriber, from, at: published.length });
      hub.subscribe('t', from, subscriber);
      await new Promise((resolve) => setTimeout(resolve, (i % 5) * 2));
    }
    await racing;
    const last = published[published.length - 1];
    await waitFor(
      () => joined.every(({ subscriber }) => subscriber.ids.at(-1) === last || subscriber.failure),
      60_000,
    );
    for (const [i, { subscriber, from }] of joined.entries()) {
      assert.equal(subscriber.failure, undefined, `subscriber ${i} failed`);
      assert.deepEqual(subscriber.resets, [], `subscriber ${i} was reset`);
      if (from.kind === 'start') {
        assert.deepEqual(subscriber.ids, published, `subscriber ${i} (start)`);
      } else if (from.kind === 'after') {
        const expected = published.slice(published.indexOf(from.id) + 1);
        assert.deepEqual(subscriber.ids, expected, `subscriber ${i} (after)`);
      } else {
        // A live subscriber starts at whatever the head was when it joined: a contiguous tail.
        const start = published.length - subscriber.ids.length;
        assert.deepEqual(subscriber.ids, published.slice(start), `subscriber ${i} (live)`);
      }
    }
    assert.equal(published.length, TOTAL);
  } finally {
    await Promise.all([publisher.close(), local.close()]);
  }
});
