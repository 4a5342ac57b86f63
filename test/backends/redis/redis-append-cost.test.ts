import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { topicKeys } from '../../../src/backends/redis/keys.js';
import type { RedisEventLog } from '../../../src/backends/redis/redis-event-log.js';
import { formatId, parseId } from '../../../src/core/ids.js';
import { eventually } from '../../helpers/http.js';
import { createLog, input, uniquePrefix, useRedis } from './harness.js';

const redis = useRedis();

/** Our own INFO and CONFIG RESETSTAT (`config|resetstat`) are not the appends' commands. */
const OWN = new Set(['info', 'config']);

/**
 * Every command Redis ran while `work` did, by name, per `times`: `INFO commandstats` counts the
 * commands a script runs as well as the EVALSHA that started it. The file's Redis is its own and
 * its tests run one at a time, so nothing else adds to the counts.
 */
async function commandsPer(
  inspect: Redis,
  times: number,
  work: () => Promise<unknown>,
): Promise<Record<string, number>> {
  await inspect.config('RESETSTAT');
  await work();
  const info = await inspect.info('commandstats');
  const calls: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    const name = m[1] as string;
    if (!OWN.has(name.split('|')[0] as string)) calls[name] = Number(m[2]) / times;
  }
  return calls;
}

async function appendEach(log: RedisEventLog, topics: readonly string[], key?: boolean) {
  for (const [n, topic] of topics.entries()) {
    await log.append(topic, input(n), key ? { idempotencyKey: `k${n}` } : undefined);
  }
}

/**
 * Starts `topic` as a log's one writer does: its first append names no epoch, the next is bound
 * to the first one's. Returns what the writer's next append is bound to.
 */
async function writing(log: RedisEventLog, topic: string) {
  const first = parseId((await log.append(topic, input(0), { fence: 0 })).id);
  assert.ok(first?.epoch);
  await log.append(topic, input(1), { epoch: first.epoch, fence: 0 });
  return { epoch: first.epoch, fence: 0, lastSeq: 2 };
}

async function repeat(times: number, work: () => Promise<void>): Promise<void> {
  for (let n = 0; n < times; n++) await work();
}

const STEADY = { evalsha: 1, hmget: 1, hset: 1, time: 1, xadd: 1, publish: 1 };

describe('redis: commands per append', () => {
  const N = 20;
  // A TTL far longer than the test: no append falls on a sixteenth-of-the-TTL refresh.
  const ttlMs = 3_600_000;

  test('an append runs 6 commands, EVALSHA included, and one SET more with an idempotency key', async () => {
    const log = createLog(redis().url, { ttlMs });
    const inspect = await redis().client();
    await log.append('t', input(0)); // creates the topic and loads the script
    // Appends with an idempotency key have a script of their own.
    await log.append('t', input(0), { idempotencyKey: 'loads-the-script' });
    const same = Array<string>(N).fill('t');
    assert.deepEqual(await commandsPer(inspect, N, () => appendEach(log, same)), STEADY);
    assert.deepEqual(await commandsPer(inspect, N, () => appendEach(log, same, true)), {
      ...STEADY,
      set: 1,
    });
    const final = () => log.append('last', input(0), { final: true });
    await log.append('last', input(0));
    assert.deepEqual(await commandsPer(inspect, 1, final), STEADY);
  });

  test('a batch of N events runs one EVALSHA, one XADD per event and the rest once', async () => {
    const log = createLog(redis().url, { ttlMs });
    const inspect = await redis().client();
    await log.append('t', input(0));
    const batch = Array.from({ length: N }, (_, n) => input(n));
    const calls = await commandsPer(inspect, 1, () => log.appendBatch('t', batch));
    assert.deepEqual(calls, { ...STEADY, xadd: N });
  });

  test("a log's one writer, with the last seq it knows, runs 5 commands: HGET for the whole check", async () => {
    const log = createLog(redis().url, { ttlMs });
    const inspect = await redis().client();
    let bound = await writing(log, 't');
    const writerAppend = async () => {
      await log.append('t', input(0), bound);
      bound = { ...bound, lastSeq: bound.lastSeq + 1 };
    };
    await writerAppend(); // loads the script
    const fast = { evalsha: 1, hget: 1, xadd: 1, hset: 1, publish: 1 };
    assert.deepEqual(await commandsPer(inspect, N, () => repeat(N, writerAppend)), fast);
    const batch = Array.from({ length: N }, (_, n) => input(n));
    const batchAppend = () => log.appendBatch('t', batch, bound);
    assert.deepEqual(await commandsPer(inspect, 1, batchAppend), { ...fast, xadd: N });
  });

  test("a topic's first append adds the DEL of a stale stream and the keys' TTLs", async () => {
    const log = createLog(redis().url, { ttlMs });
    const inspect = await redis().client();
    await log.append('warm-up', input(0));
    const fresh = Array.from({ length: N }, (_, n) => `fresh-${n}`);
    assert.deepEqual(await commandsPer(inspect, N, () => appendEach(log, fresh)), {
      ...STEADY,
      del: 1,
      pexpire: 2,
    });
  });
});

describe('redis: retention by age holds with trims and TTL refreshes once per sixteenth of the TTL', () => {
  const ttlMs = 800;

  test('reads never return an event older than the TTL', async () => {
    const log = createLog(redis().url, { ttlMs });
    const [first] = [await log.append('t', input(0))];
    let oldestGone = false;
    // Appends go on meanwhile, most of them between two trims: reads must trim on their own.
    await eventually(async () => {
      await log.append('t', input(1));
      const before = Date.now();
      const { events } = await log.read('t', null, 100);
      for (const event of events) {
        assert.ok(event.time >= before - ttlMs, `event ${event.id} older than the TTL`);
      }
      oldestGone = (await log.read('t', parseId(first.id) ?? null, 0)).reset !== undefined;
      return oldestGone;
    }, 'the first event to expire');
  });

  test('the keys outlive the last append by the TTL, at most a sixteenth more', async () => {
    const keyPrefix = uniquePrefix();
    const log = createLog(redis().url, { ttlMs, keyPrefix });
    const inspect = await redis().client();
    const keys = topicKeys(keyPrefix, 't');
    const old = await log.append('t', input(0));
    for (const key of [keys.meta, keys.log]) {
      const left = await inspect.pttl(key);
      assert.ok(left > 0 && left <= Math.ceil((ttlMs * 17) / 16), `${key}: PTTL ${left}`);
    }
    await eventually(async () => (await inspect.exists(keys.meta, keys.log)) === 0, 'expiry');
    const next = await log.append('t', input(1));
    assert.notEqual(parseId(next.id)?.epoch, parseId(old.id)?.epoch);
  });
});

describe("redis: a writer's fast appends leave the keys' TTLs to the whole script, which refreshes them when due", () => {
  test('the keys never expire while the writer appends, and are refreshed again and again', async () => {
    const ttlMs = 800;
    const keyPrefix = uniquePrefix();
    const log = createLog(redis().url, { ttlMs, keyPrefix });
    const inspect = await redis().client();
    const keys = topicKeys(keyPrefix, 't');
    let bound = await writing(log, 't');
    let refreshes = 0;
    let previousTtl = Number.POSITIVE_INFINITY;
    await eventually(async () => {
      await log.append('t', input(0), bound);
      bound = { ...bound, lastSeq: bound.lastSeq + 1 };
      const left = Math.min(await inspect.pttl(keys.meta), await inspect.pttl(keys.log));
      assert.ok(left > 0, `the keys expired under the writer (PTTL ${left})`);
      if (left > previousTtl) refreshes++;
      previousTtl = left;
      return refreshes >= 3;
    }, 'three refreshes of the TTLs');
    assert.equal((await log.info('t')).lastId, formatId(bound.epoch, bound.lastSeq));
  });
});

describe('redis: retention by length holds on every append, not only on refreshes', () => {
  test('the stream never holds more than maxEvents', async () => {
    const keyPrefix = uniquePrefix();
    const log = createLog(redis().url, { keyPrefix, maxEvents: 3, ttlMs: 3_600_000 });
    const inspect = await redis().client();
    for (let n = 1; n <= 10; n++) {
      await log.append('t', input(n), n % 2 === 0 ? { idempotencyKey: `k${n}` } : undefined);
      assert.equal(await inspect.xlen(topicKeys(keyPrefix, 't').log), Math.min(n, 3));
    }
    assert.equal((await log.info('t')).length, 3);
  });
});

describe('redis: an idempotency key is remembered only for an appended event', () => {
  test('a refused append leaves no key behind, and a retry of an appended one is a duplicate', async () => {
    const keyPrefix = uniquePrefix();
    const log = createLog(redis().url, { keyPrefix });
    const inspect = await redis().client();
    const keys = topicKeys(keyPrefix, 't');
    const first = await log.append('t', input(0), { idempotencyKey: 'a', final: true });
    const retry = await log.append('t', input(0), { idempotencyKey: 'a' });
    assert.deepEqual(retry, { ...first, duplicate: true });
    await assert.rejects(log.append('t', input(1), { idempotencyKey: 'b' }), /ended/);
    assert.equal(await inspect.exists(`${keys.idem}b`), 0);
    await log.append('u', input(1));
    const elsewhere = { idempotencyKey: 'c', epoch: 'not-its-epoch' };
    await assert.rejects(log.append('u', input(2), elsewhere), /ended/);
    assert.equal(await inspect.exists(`${topicKeys(keyPrefix, 'u').idem}c`), 0);
  });
});
