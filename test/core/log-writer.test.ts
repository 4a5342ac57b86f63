import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryEventLog } from '../../src/backends/memory/memory-log.js';
import { BackendUnavailableError, StreamhubError } from '../../src/core/errors.js';
import {
  type AppendOptions,
  type AppendResult,
  type BatchAppendOptions,
  MAX_APPEND_BATCH,
} from '../../src/core/event-log.js';
import { parseId } from '../../src/core/ids.js';
import { FiniteLogWriter } from '../../src/core/log-writer.js';
import type { EventInput } from '../../src/core/types.js';

/**
 * A memory log whose appends fail as a broken connection makes them fail: the first `lost`
 * after `after` appends land but their replies never come (fate unknown), the next `unsent`
 * never reach it; then it works again.
 */
class FlakyLog extends MemoryEventLog {
  calls = 0;

  constructor(
    readonly after: number,
    readonly lost: number,
    readonly unsent: number,
  ) {
    super({ maxEvents: 10_000, ttlMs: 60_000, idempotencyTtlMs: 1000 });
  }

  override append(
    topic: string,
    input: EventInput,
    options?: AppendOptions,
  ): Promise<AppendResult> {
    return this.#call(() => super.append(topic, input, options));
  }

  override appendBatch(
    topic: string,
    inputs: readonly EventInput[],
    options?: BatchAppendOptions,
  ): Promise<string[]> {
    return this.#call(() => super.appendBatch(topic, inputs, options));
  }

  async #call<T>(land: () => Promise<T>): Promise<T> {
    const call = this.calls++;
    if (call < this.after) return land();
    if (call < this.after + this.lost) {
      await land();
      throw new BackendUnavailableError(false);
    }
    if (call < this.after + this.lost + this.unsent) throw new BackendUnavailableError(true);
    return land();
  }
}

const events = (...data: string[]): EventInput[] => data.map((d) => ({ event: 'e', data: d }));

async function dataOf(log: MemoryEventLog, limit = 100): Promise<string[]> {
  return (await log.read('t', null, limit)).events.map((e) => e.data);
}

describe('FiniteLogWriter.appendAll', () => {
  test('appends every event in order and resolves to the last one', async () => {
    const log = new MemoryEventLog({ maxEvents: 100, ttlMs: 60_000, idempotencyTtlMs: 1000 });
    const writer = new FiniteLogWriter(log, 't', 1000);
    await writer.append({ event: 'e', data: '0' });
    const last = await writer.appendAll(events('1', '2', '3'));
    assert.deepEqual(await dataOf(log), ['0', '1', '2', '3']);
    assert.deepEqual(parseId(last), await log.head('t'));
    await log.close();
  });

  test('after a break, settles each batch of unknown fate by the head: none twice, none lost', async () => {
    // Six batches: the first 2 land, 2 more land without a reply, 2 are never sent.
    const log = new FlakyLog(3, 2, 2);
    const writer = new FiniteLogWriter(log, 't', 5_000);
    await writer.append({ event: 'e', data: '0' });
    const count = 6 * MAX_APPEND_BATCH;
    const data = Array.from({ length: count }, (_, n) => String(n + 1));
    const last = await writer.appendAll(events(...data));
    assert.equal(log.calls, 9, 'one call per batch, and one more for each unsent batch');
    assert.deepEqual(await dataOf(log, count + 1), ['0', ...data]);
    assert.equal(parseId(last)?.seq, count + 1);
    await log.close();
  });

  test('refusals other than an outage are not tried again', async () => {
    const log = new MemoryEventLog({ maxEvents: 100, ttlMs: 60_000, idempotencyTtlMs: 1000 });
    const writer = new FiniteLogWriter(log, 't', 5_000);
    await writer.append({ event: 'e', data: '0' }, { final: true });
    await assert.rejects(
      writer.appendAll(events('1', '2')),
      (error) => error instanceof StreamhubError && error.code === 'log_ended',
    );
    assert.deepEqual(await dataOf(log), ['0']);
    await log.close();
  });
});

describe('FiniteLogWriter.appendNow', () => {
  const memoryLog = () =>
    new MemoryEventLog({ maxEvents: 100, ttlMs: 60_000, idempotencyTtlMs: 1000 });

  test('a log that appends synchronously gives each id at once, in order', async () => {
    const log = memoryLog();
    const writer = new FiniteLogWriter(log, 't', 1000, 0);
    await writer.append({ event: 'e', data: '0' });
    const ids = ['1', '2'].map((data) => writer.appendNow({ event: 'e', data }));
    assert.deepEqual(
      ids.map((id) => (typeof id === 'string' ? parseId(id)?.seq : 'a promise')),
      [2, 3],
    );
    assert.deepEqual(await dataOf(log), ['0', '1', '2']);
    await log.close();
  });

  test('a refused append rejects as with append: log_restarted, log_ended', async () => {
    const log = memoryLog();
    const writer = new FiniteLogWriter(log, 't', 0, 0);
    await writer.append({ event: 'e', data: '0' });
    await log.fence('t', 1);
    await assert.rejects(Promise.resolve(writer.appendNow({ event: 'e', data: '1' })), {
      code: 'log_ended',
    });
    await log.delete('t');
    await log.append('t', { event: 'e', data: 'other' });
    await assert.rejects(Promise.resolve(writer.appendNow({ event: 'e', data: '2' })), {
      code: 'log_restarted',
    });
    assert.deepEqual(await dataOf(log), ['other']);
    await log.close();
  });

  test('without a synchronous append, it appends as append does, riding out an outage', async () => {
    // The first append lands; the next two attempts are never sent; then it works again.
    const log = new FlakyLog(1, 0, 2);
    Object.defineProperty(log, 'appendNow', { value: undefined });
    const writer = new FiniteLogWriter(log, 't', 5_000);
    await writer.append({ event: 'e', data: '0' });
    const id = writer.appendNow({ event: 'e', data: '1' });
    assert.ok(id instanceof Promise);
    assert.equal(parseId(await id)?.seq, 2);
    assert.equal(log.calls, 4);
    assert.deepEqual(await dataOf(log), ['0', '1']);
    await log.close();
  });
});

describe('FiniteLogWriter bound to its epoch', () => {
  for (const retryMs of [0, 1000]) {
    test(`a log started again under it refuses the rest as log_restarted (retryMs ${retryMs})`, async () => {
      const log = new MemoryEventLog({ maxEvents: 100, ttlMs: 60_000, idempotencyTtlMs: 1000 });
      const writer = new FiniteLogWriter(log, 't', retryMs);
      const first = parseId(await writer.append({ event: 'e', data: '0' }));
      // What a failover that lost events does to the log: its next append starts a new epoch.
      await log.delete('t');
      await log.append('t', { event: 'e', data: 'other' });
      await assert.rejects(writer.append({ event: 'e', data: '1' }), { code: 'log_restarted' });
      await assert.rejects(writer.appendAll(events('2', '3')), { code: 'log_restarted' });
      assert.ok(writer.restarted);
      assert.deepEqual(await dataOf(log), ['other'], 'nothing went on in the new epoch');
      const ending = parseId((await writer.endRestarted({ event: 'end', data: '' })) ?? '');
      assert.notEqual(ending?.epoch, first?.epoch);
      assert.equal(await writer.endRestarted({ event: 'end', data: '' }), undefined, 'ended once');
      await log.close();
    });
  }

  test('a log that ended or was fenced in its epoch is refused as log_ended, as before', async () => {
    const log = new MemoryEventLog({ maxEvents: 100, ttlMs: 60_000, idempotencyTtlMs: 1000 });
    const writer = new FiniteLogWriter(log, 't', 0, 0);
    await writer.append({ event: 'e', data: '0' });
    assert.equal(await log.fence('t', 1), 1);
    await assert.rejects(writer.append({ event: 'e', data: '1' }), { code: 'log_ended' });
    assert.equal(writer.restarted, false);
    await log.close();
  });
});
