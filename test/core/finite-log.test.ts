import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryEventLog } from '../../src/backends/memory/memory-log.js';
import { lastEvent } from '../../src/core/finite-log.js';

function memoryLog() {
  return new MemoryEventLog({ maxEvents: 3, ttlMs: 60_000, idempotencyTtlMs: 1000 });
}

describe('lastEvent', () => {
  test('is undefined for a log that does not exist', async () => {
    const log = memoryLog();
    assert.equal(await lastEvent(log, 't'), undefined);
    await log.close();
  });

  test('is the newest event, also once older ones were trimmed', async () => {
    const log = memoryLog();
    for (const data of ['1', '2', '3', '4', '5']) await log.append('t', { event: 'e', data });
    const last = await lastEvent(log, 't');
    assert.equal(last?.data, '5');
    assert.equal(last?.seq, 5);
    await log.close();
  });

  test('is the event at a head read before, not an event appended since', async () => {
    const log = memoryLog();
    await log.append('t', { event: 'e', data: '1' });
    const head = await log.head('t');
    await log.append('t', { event: 'e', data: '2' });
    assert.equal((await lastEvent(log, 't', head))?.data, '1');
    await log.close();
  });

  test('is undefined when the log started again after its head was read', async () => {
    const log = memoryLog();
    await log.append('t', { event: 'e', data: 'old' });
    const head = await log.head('t');
    await log.delete('t');
    await log.append('t', { event: 'e', data: 'new' });
    assert.equal(await lastEvent(log, 't', head), undefined);
    await log.close();
  });
});
