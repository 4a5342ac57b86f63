import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { RedisConnection } from '../../../src/backends/redis/connection.js';
import { RedisTokenBuckets } from '../../../src/backends/redis/redis-token-buckets.js';
import { eventually } from '../../helpers/http.js';
import { uniquePrefix, useRedis } from './harness.js';

const redis = useRedis();
const connections: RedisConnection[] = [];
after(() => Promise.all(connections.map((c) => c.close())));

/** Buckets on a connection of their own, as another process would have. */
function buckets(prefix: string, capacity: number, windowMs: number): RedisTokenBuckets {
  const connection = new RedisConnection({ url: redis().url });
  connections.push(connection);
  return new RedisTokenBuckets(connection, prefix, capacity, windowMs);
}

test('two processes draw on one bucket per client', async () => {
  const prefix = `${uniquePrefix()}:rate:`;
  const hour = 3_600_000;
  const [a, b] = [buckets(prefix, 3, hour), buckets(prefix, 3, hour)];
  assert.deepEqual([await a.take('c'), await b.take('c'), await a.take('c')], [0, 0, 0]);
  const waitMs = await b.take('c');
  // A token every 20 minutes: the next one is at most that far away.
  assert.ok(waitMs > 0 && waitMs <= hour / 3, `wait ${waitMs} ms`);
  assert.equal(await a.take('other'), 0, 'another client');
});

test('a bucket refills at capacity per window', async () => {
  const bucket = buckets(`${uniquePrefix()}:rate:`, 2, 1000);
  // However slowly the takes come, the bucket runs dry: it refills only 2 a second.
  let waitMs = 0;
  for (let taken = 0; waitMs === 0; taken++) {
    assert.ok(taken < 100, 'the bucket never ran dry');
    waitMs = await bucket.take('c');
  }
  assert.ok(waitMs > 0 && waitMs <= 500, `wait ${waitMs} ms`);
  await eventually(async () => (await bucket.take('c')) === 0, 'a token to come back');
});
