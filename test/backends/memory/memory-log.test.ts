import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryEventLog } from '../../../src/backends/memory/memory-log.js';
import { eventLogContract } from '../event-log-contract.js';

eventLogContract('memory', {
  create: async ({ maxEvents, ttlMs }) =>
    new MemoryEventLog({ maxEvents, ttlMs, idempotencyTtlMs: 60_000 }),
});

test('memory: 100k short-lived topics are freed once their history expires', async () => {
  let now = 0;
  const log = new MemoryEventLog({
    maxEvents: 10,
    ttlMs: 1000,
    idempotencyTtlMs: 1000,
    now: () => now,
  });
  for (let i = 0; i < 100_000; i++) {
    await log.append(`topic-${i}`, { event: 'message', data: '1' }, { idempotencyKey: 'k' });
  }
  assert.equal(log.topicCount, 100_000);
  now += 1001;
  log.sweep();
  assert.equal(log.topicCount, 0);
  await log.close();
});

test('memory: a watched topic keeps its epoch while empty; an unwatched empty one is freed', async () => {
  const log = new MemoryEventLog({ maxEvents: 10, ttlMs: 60_000, idempotencyTtlMs: 1000 });
  const unwatch = await log.watch('t', () => {});
  const { id } = await log.append('t', { event: 'message', data: '1' });
  await log.delete('t');
  assert.equal(log.topicCount, 1);
  unwatch();
  assert.equal(log.topicCount, 0);
  assert.notEqual(id, (await log.append('t', { event: 'message', data: '2' })).id);
  await log.close();
});

test('memory: idempotency keys are bounded in number', async () => {
  const log = new MemoryEventLog({
    maxEvents: 10,
    ttlMs: 60_000,
    idempotencyTtlMs: 60_000,
    maxIdempotencyKeys: 2,
  });
  const first = await log.append('t', { event: 'message', data: '1' }, { idempotencyKey: 'a' });
  await log.append('t', { event: 'message', data: '2' }, { idempotencyKey: 'b' });
  await log.append('t', { event: 'message', data: '3' }, { idempotencyKey: 'c' });
  // 'a' was evicted to make room, so it now appends again.
  const retried = await log.append('t', { event: 'message', data: '1' }, { idempotencyKey: 'a' });
  assert.equal(retried.duplicate, false);
  assert.notEqual(retried.id, first.id);
  await log.close();
});
