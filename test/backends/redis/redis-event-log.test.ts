import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RedisConnection } from '../../../src/backends/redis/connection.js';
import { parseId } from '../../../src/core/ids.js';
import type { StoredEvent } from '../../../src/core/types.js';
import { eventually } from '../../helpers/http.js';
import { startRedis } from '../../helpers/redis-server.js';
import { eventLogContract } from '../event-log-contract.js';
import { createLog, input, uniquePrefix, useRedis, waitFor } from './harness.js';

const redis = useRedis();

eventLogContract('redis', {
  create: async ({ maxEvents, ttlMs }) => createLog(redis().url, { maxEvents, ttlMs }),
});

eventLogContract('redis with sharded Pub/Sub', {
  create: async ({ maxEvents, ttlMs }) =>
    createLog(redis().url, { maxEvents, ttlMs, shardedPubSub: true }),
});

describe('redis: across processes', () => {
  test('a second instance reads the same history and resumes exactly', async () => {
    const keyPrefix = uniquePrefix();
    const first = createLog(redis().url, { keyPrefix });
    const ids: string[] = [];
    for (let n = 0; n < 5; n++) ids.push((await first.append('t', input(n))).id);
    await first.close();

    const second = createLog(redis().url, { keyPrefix });
    const page = await second.read('t', parseId(ids[1] as string) ?? null, 100);
    assert.equal(page.reset, undefined);
    assert.deepEqual(
      page.events.map((e) => e.id),
      ids.slice(2),
    );
    const next = await second.append('t', input(5));
    assert.deepEqual(parseId(next.id), { epoch: parseId(ids[0] as string)?.epoch, seq: 6 });
    await second.close();
  });

  test('an append on one instance reaches a watcher on another', async () => {
    const keyPrefix = uniquePrefix();
    const publisher = createLog(redis().url, { keyPrefix });
    const watcher = createLog(redis().url, { keyPrefix });
    const seen: StoredEvent[] = [];
    const stop = await watcher.watch('session/abc/1', (_epoch, event) => seen.push(event));
    const published = [];
    for (let n = 0; n < 3; n++) published.push(await publisher.append('session/abc/1', input(n)));
    await waitFor(() => seen.length === 3);
    assert.deepEqual(
      seen.map((e) => e.id),
      published.map((p) => p.id),
    );
    assert.equal(seen[1]?.data, '{"n":1}');
    assert.equal(seen[1]?.event, 'message');
    assert.ok(Math.abs((seen[1]?.time ?? 0) - Date.now()) < 5_000);
    stop();
    await Promise.all([publisher.close(), watcher.close()]);
  });

  test('an idempotency key is shared by instances', async () => {
    const keyPrefix = uniquePrefix();
    const a = createLog(redis().url, { keyPrefix });
    const b = createLog(redis().url, { keyPrefix });
    const first = await a.append('t', input(1), { idempotencyKey: 'retry-me' });
    const again = await b.append('t', input(1), { idempotencyKey: 'retry-me' });
    assert.deepEqual(again, { ...first, duplicate: true });
    assert.equal((await b.info('t')).length, 1);
    await Promise.all([a.close(), b.close()]);
  });

  test('payloads with newlines and non-ASCII text survive history and live delivery', async () => {
    const log = createLog(redis().url);
    const data = '{\n  "text": "héllo\\n wörld 🎉",\n  "x": [1, 2]\n}';
    const seen: string[] = [];
    const stop = await log.watch('completion/chatcmpl-x', (_epoch, event) => seen.push(event.data));
    await log.append('completion/chatcmpl-x', { event: 'delta', data });
    const page = await log.read('completion/chatcmpl-x', null, 10);
    assert.equal(page.events[0]?.data, data);
    assert.equal(page.events[0]?.event, 'delta');
    assert.deepEqual(seen, [data]);
    stop();
    await log.close();
  });
});

describe('redis: lost live messages', () => {
  test('a last message that Pub/Sub never delivered is healed from the stream', async () => {
    const keyPrefix = uniquePrefix();
    const watcher = createLog(redis().url, { keyPrefix, healIntervalMs: 200 });
    // Publishing on the sharded channel, which the classic watcher does not hear, loses every
    // live message on the way, as a dropped connection would.
    const silent = createLog(redis().url, { keyPrefix, shardedPubSub: true });
    const seen: StoredEvent[] = [];
    const stop = await watcher.watch('t', (_epoch, event) => seen.push(event));
    await silent.append('t', input(1));
    const last = await silent.append('t', input(2));
    await waitFor(() => seen.at(-1)?.id === last.id);
    // The newest event is enough: the hub fills the hole before it from the log. (A periodic
    // check that ran between the two appends healed the first one already.)
    const healed = seen.map((event) => event.id);
    assert.ok(
      [1, 2].includes(healed.length) && new Set(healed).size === healed.length,
      `${healed}`,
    );
    const seenBefore = seen.length;
    // Each check of a quiet channel reads the topic's head (HMGET): after two more checks
    // that found it, the event would have been healed again if it ever were.
    const client = await redis().client();
    const headChecks = async () =>
      Number(/cmdstat_hmget:calls=(\d+)/.exec(await client.info('commandstats'))?.[1] ?? 0);
    const checksBefore = await headChecks();
    await eventually(async () => (await headChecks()) >= checksBefore + 2, 'two more checks');
    assert.equal(seen.length, seenBefore, 'an event is healed once');
    stop();
  });
});

describe('redis: retention and keys', () => {
  test('age trimming drops a large expired backlog at once, while the topic stays alive', async () => {
    const ttlMs = 1_000;
    const log = createLog(redis().url, { maxEvents: 5_000, ttlMs });
    await Promise.all(Array.from({ length: 1_200 }, (_, n) => log.append('t', input(n))));
    // Later appends keep the topic's keys (and so its epoch) alive while the backlog expires.
    const started = Date.now();
    let last = '';
    while (Date.now() - started < ttlMs + 300) {
      last = (await log.append('t', input(0))).id;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const readAt = Date.now();
    const page = await log.read('t', null, 5_000);
    const oldest = page.events[0];
    assert.ok(oldest !== undefined && oldest.seq > 1_200, `oldest retained ${oldest?.seq}`);
    assert.equal(page.events.at(-1)?.id, last);
    assert.ok(page.events.every((event) => event.time >= readAt - ttlMs - 1_000));
    // The kept events go on expiring, one every 50 ms, while the checks below run: each later
    // answer holds a tail of what an earlier one saw.
    const { length } = await log.info('t');
    const epoch = parseId(last)?.epoch ?? null;
    const resumed = await log.read('t', { epoch, seq: 10 }, 100);
    assert.ok(length <= page.events.length && length >= resumed.events.length, `length ${length}`);
    const tail = page.events.slice(page.events.length - resumed.events.length);
    assert.deepEqual(resumed.events, tail);
    assert.deepEqual(resumed.reset, { reason: 'history_truncated', oldest: tail[0]?.id });
    await log.close();
  });

  test('an idempotency key of a deleted epoch appends anew', async () => {
    const log = createLog(redis().url);
    const first = await log.append('t', input(1), { idempotencyKey: 'k' });
    await log.delete('t');
    const again = await log.append('t', input(1), { idempotencyKey: 'k' });
    assert.equal(again.duplicate, false);
    assert.notEqual(again.id, first.id);
    assert.deepEqual(await log.append('t', input(2), { idempotencyKey: 'k' }), {
      ...again,
      duplicate: true,
    });
    await log.close();
  });

  test('logs with other bounds on one connection each keep their own', async () => {
    const connection = new RedisConnection({ url: redis().url });
    const keyPrefix = uniquePrefix();
    const short = createLog(redis().url, { connection, keyPrefix, maxEvents: 2 });
    const long = createLog(redis().url, { connection, keyPrefix, maxEvents: 5 });
    for (let n = 0; n < 6; n++) {
      await short.append('short', input(n));
      await long.append('long', input(n));
    }
    assert.equal((await long.info('short')).length, 2);
    assert.equal((await short.info('long')).length, 5);
    await connection.close();
  });

  test('internal names with slashes work; braces, which would break the hash tag, are refused', async () => {
    const log = createLog(redis().url);
    await log.append('session/abc/1', input(1));
    assert.equal((await log.info('session/abc/1')).length, 1);
    await assert.rejects(log.append('a{b}', input(1)), TypeError);
    await log.close();
  });
});

describe('redis: losing data and connections', () => {
  test('after FLUSHALL the next append starts a new epoch and old ids get epoch_mismatch', async () => {
    const log = createLog(redis().url);
    const old = await log.append('t', input(1));
    await redis().flushAll();
    assert.deepEqual(await log.head('t'), { epoch: null, seq: 0 });
    const fresh = await log.append('t', input(2));
    assert.notEqual(parseId(fresh.id)?.epoch, parseId(old.id)?.epoch);
    assert.equal(parseId(fresh.id)?.seq, 1);
    const page = await log.read('t', parseId(old.id) ?? null, 100);
    assert.deepEqual(page.reset, { reason: 'epoch_mismatch', oldest: fresh.id });
    await log.close();
  });

  test('the topic keys and idempotency keys carry TTLs', async () => {
    const keyPrefix = uniquePrefix();
    const log = createLog(redis().url, { keyPrefix, ttlMs: 30_000, idempotencyTtlMs: 10_000 });
    await log.append('t', input(1), { idempotencyKey: 'k' });
    const client = await redis().client();
    for (const key of [`${keyPrefix}:{t}:log`, `${keyPrefix}:{t}:meta`]) {
      const ttl = await client.pttl(key);
      // Refreshed once per sixteenth of the TTL, the keys are kept a sixteenth longer.
      assert.ok(ttl > 26_000 && ttl <= (30_000 * 17) / 16, `${key} ttl ${ttl}`);
    }
    const idemTtl = await client.pttl(`${keyPrefix}:{t}:idem:k`);
    assert.ok(idemTtl > 5_000 && idemTtl <= 10_000, `idempotency ttl ${idemTtl}`);
    assert.equal(await client.type(`${keyPrefix}:{t}:log`), 'stream');
    client.disconnect();
    await log.close();
  });

  test('one instance opens exactly two connections however many topics it watches', async () => {
    const client = await redis().client();
    // Connection ids only grow, so the instance's connections are those opened after this one.
    const ids = async () =>
      String(await client.client('LIST'))
        .trim()
        .split('\n')
        .map((line) => Number(/\bid=(\d+)/.exec(line)?.[1]));
    const newest = Math.max(...(await ids()));
    const countConnections = async () => (await ids()).filter((id) => id > newest).length;
    const log = createLog(redis().url);
    const stops: Array<() => void> = [];
    for (let n = 0; n < 20; n++) {
      stops.push(await log.watch(`topic-${n % 7}`, () => {}));
    }
    await log.append('topic-1', input(1));
    assert.equal(await log.isReady(), true);
    assert.equal(await countConnections(), 2);
    const channel = `${log.options.keyPrefix}:live:{topic-1}`;
    const [, subscribers] = (await client.pubsub('NUMSUB', channel)) as [string, number];
    assert.equal(subscribers, 1);
    for (const stop of stops) stop();
    await log.close();
    client.disconnect();
  });

  test('rejects promptly while Redis is down and recovers after a restart', async () => {
    // Its own server: stopping the shared one would break tests running alongside.
    const own = await startRedis();
    const log = createLog(own.url);
    const seen: string[] = [];
    try {
      await log.watch('t', (_epoch, event) => seen.push(event.id));
      await log.append('t', input(1));
      await own.stop();
      // Each fails after at most ~1 s waiting for a reconnect, well before the 5 s command
      // timeout that a queued, hanging command would run into.
      for (const attempt of [() => log.append('t', input(2)), () => log.read('t', null, 10)]) {
        const started = Date.now();
        await assert.rejects(attempt());
        assert.ok(Date.now() - started < 4_000, `took ${Date.now() - started} ms`);
      }
      assert.equal(await log.isReady(), false);

      await own.restart();
      let ready = false;
      for (let i = 0; i < 100 && !ready; i++) {
        ready = await log.isReady();
        if (!ready) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(ready, true);
      const fresh = await log.append('t', input(3));
      assert.equal(parseId(fresh.id)?.seq, 1, 'the restarted, empty Redis starts a new epoch');
      // ioredis subscribed the watched topic again when it reconnected.
      await waitFor(() => seen.length === 2);
      assert.equal(seen[1], fresh.id);
    } finally {
      await log.close();
      await own.stop();
    }
  });
});
