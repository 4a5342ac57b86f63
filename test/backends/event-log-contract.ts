import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type EventLog, MAX_APPEND_BATCH } from '../../src/core/event-log.js';
import { formatId, parseId } from '../../src/core/ids.js';
import type { StoredEvent } from '../../src/core/types.js';
import { eventually } from '../helpers/http.js';

export interface ContractOptions {
  /** A fresh, empty log with the given retention. */
  readonly create: (retention: { maxEvents: number; ttlMs: number }) => Promise<EventLog>;
}

const input = (n: number) => ({ event: 'message', data: JSON.stringify({ n }) });

async function appendMany(log: EventLog, topic: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let n = 0; n < count; n++) ids.push((await log.append(topic, input(n))).id);
  return ids;
}

const seqs = (events: readonly StoredEvent[]) => events.map((event) => event.seq);

/**
 * Behaviour every EventLog backend must share; each backend's test file runs it against its
 * own implementation, so memory and Redis cannot drift apart.
 */
export function eventLogContract(name: string, options: ContractOptions): void {
  const withLog = async (
    retention: { maxEvents?: number; ttlMs?: number },
    body: (log: EventLog) => Promise<void>,
  ) => {
    const log = await options.create({ maxEvents: 1000, ttlMs: 60_000, ...retention });
    try {
      await body(log);
    } finally {
      await log.close();
    }
  };

  describe(`${name}: EventLog contract`, () => {
    test('appends get consecutive ids of one epoch, read back in order', () =>
      withLog({}, async (log) => {
        const ids = await appendMany(log, 't', 5);
        const positions = ids.map((id) => parseId(id));
        assert.ok(positions.every((p) => p?.epoch === positions[0]?.epoch));
        assert.deepEqual(
          positions.map((p) => p?.seq),
          [1, 2, 3, 4, 5],
        );
        const page = await log.read('t', null, 100);
        assert.deepEqual(
          page.events.map((e) => e.id),
          ids,
        );
        assert.equal(page.events[2]?.data, '{"n":2}');
        assert.equal(page.reset, undefined);
        assert.deepEqual(page.head, positions[4]);
      }));

    test('reads after an id, limited, and a short page reaches the head', () =>
      withLog({}, async (log) => {
        const ids = await appendMany(log, 't', 10);
        const after = parseId(ids[3] as string) ?? null;
        assert.deepEqual(seqs((await log.read('t', after, 3)).events), [5, 6, 7]);
        const rest = await log.read('t', after, 100);
        assert.deepEqual(seqs(rest.events), [5, 6, 7, 8, 9, 10]);
        assert.equal(rest.head.seq, 10);
        assert.deepEqual((await log.read('t', parseId(ids[9] as string) ?? null, 5)).events, []);
      }));

    test('topics are independent', () =>
      withLog({}, async (log) => {
        await appendMany(log, 'a', 3);
        await appendMany(log, 'b', 1);
        assert.equal((await log.info('a')).length, 3);
        assert.equal((await log.info('b')).length, 1);
        assert.deepEqual(await log.info('never'), { lastId: null, length: 0 });
        assert.deepEqual(await log.head('never'), { epoch: null, seq: 0 });
      }));

    test('retention by count keeps the newest and reports history_truncated', () =>
      withLog({ maxEvents: 3 }, async (log) => {
        const ids = await appendMany(log, 't', 6);
        const page = await log.read('t', parseId(ids[0] as string) ?? null, 100);
        assert.deepEqual(page.reset, { reason: 'history_truncated', oldest: ids[3] });
        assert.deepEqual(seqs(page.events), [4, 5, 6]);
        // The event just before the oldest retained one still resumes exactly.
        const exact = await log.read('t', parseId(ids[2] as string) ?? null, 100);
        assert.equal(exact.reset, undefined);
        assert.deepEqual(seqs(exact.events), [4, 5, 6]);
        assert.deepEqual(await log.info('t'), { lastId: ids[5], length: 3 });
      }));

    test('retention by age drops expired events', () =>
      withLog({ ttlMs: 1000 }, async (log) => {
        const [first] = await appendMany(log, 't', 2);
        await eventually(
          async () => (await log.read('t', null, 100)).events.length === 0,
          'the events to expire',
        );
        const resumed = await log.read('t', parseId(first as string) ?? null, 100);
        assert.notEqual(resumed.reset, undefined);
      }));

    test('delete drops history and the next append starts a new epoch', () =>
      withLog({}, async (log) => {
        const [old] = await appendMany(log, 't', 2);
        await log.delete('t');
        assert.deepEqual(await log.info('t'), { lastId: null, length: 0 });
        const [fresh] = await appendMany(log, 't', 1);
        assert.notEqual(parseId(fresh as string)?.epoch, parseId(old as string)?.epoch);
        assert.equal(parseId(fresh as string)?.seq, 1);
        const page = await log.read('t', parseId(old as string) ?? null, 100);
        assert.deepEqual(page.reset, { reason: 'epoch_mismatch', oldest: fresh });
        assert.deepEqual(
          page.events.map((e) => e.id),
          [fresh],
        );
      }));

    test('ids it cannot place are unknown_id: garbage and ids from the future', () =>
      withLog({}, async (log) => {
        const [first] = await appendMany(log, 't', 2);
        const garbage = await log.read('t', 'unknown', 100);
        assert.deepEqual(garbage.reset, { reason: 'unknown_id', oldest: first });
        assert.equal(garbage.events.length, 2);
        const epoch = parseId(first as string)?.epoch as string;
        const future = await log.read('t', parseId(formatId(epoch, 99)) ?? null, 100);
        assert.equal(future.reset?.reason, 'unknown_id');
        assert.equal(future.events.length, 2);
      }));

    test('an idempotency key repeats the original answer and appends nothing', () =>
      withLog({}, async (log) => {
        const first = await log.append('t', input(1), { idempotencyKey: 'k' });
        const again = await log.append('t', input(2), { idempotencyKey: 'k' });
        const other = await log.append('t', input(3), { idempotencyKey: 'other' });
        const elsewhere = await log.append('u', input(4), { idempotencyKey: 'k' });
        assert.equal(first.duplicate, false);
        assert.deepEqual(again, { ...first, duplicate: true });
        assert.equal(other.duplicate, false);
        assert.equal(elsewhere.duplicate, false);
        assert.equal((await log.info('t')).length, 2);
      }));

    test('watchers see every append once, in order, until they stop', () =>
      withLog({}, async (log) => {
        const seen: number[] = [];
        const unwatch = await log.watch('t', (_epoch, event) => seen.push(event.seq));
        const alsoSeen: number[] = [];
        const unwatchOther = await log.watch('t', (_epoch, event) => alsoSeen.push(event.seq));
        await appendMany(log, 't', 3);
        unwatchOther();
        await appendMany(log, 't', 1);
        unwatch();
        // A watcher that joins now is the marker: once it has the next event, a watcher that
        // was not stopped would have it too.
        const marker: number[] = [];
        const unwatchMarker = await log.watch('t', (_epoch, event) => marker.push(event.seq));
        await appendMany(log, 't', 1);
        await eventually(async () => marker.length > 0, 'the marker to see the last event');
        unwatchMarker();
        assert.deepEqual(marker, [5]);
        assert.deepEqual(seen, [1, 2, 3, 4]);
        assert.deepEqual(alsoSeen, [1, 2, 3]);
      }));

    test('a final append ends the log until it is deleted', () =>
      withLog({}, async (log) => {
        await log.append('t', input(1));
        const last = await log.append('t', input(2), { final: true, idempotencyKey: 'end' });
        await assert.rejects(log.append('t', input(3)), { code: 'log_ended' });
        assert.deepEqual(
          await log.append('t', input(2), { final: true, idempotencyKey: 'end' }),
          { ...last, duplicate: true },
          'a retried final append still gets its answer',
        );
        assert.equal((await log.info('t')).lastId, last.id);
        await log.append('u', input(1));
        await log.delete('t');
        assert.equal(parseId((await log.append('t', input(4))).id)?.seq, 1);
      }));

    test('an append bound to an epoch is refused once the log was deleted or started again', () =>
      withLog({}, async (log) => {
        const first = parseId((await log.append('t', input(1))).id);
        const epoch = first?.epoch ?? undefined;
        assert.equal(parseId((await log.append('t', input(2), { epoch })).id)?.seq, 2);
        await log.delete('t');
        await assert.rejects(log.append('t', input(3), { epoch }), { code: 'log_ended' });
        assert.equal((await log.head('t')).epoch, null, 'the refused append left no log');
        await log.append('t', input(4));
        await assert.rejects(log.append('t', input(5), { epoch }), { code: 'log_ended' });
      }));

    test('a fenced log refuses the appends of lower fencing tokens only', () =>
      withLog({}, async (log) => {
        await log.append('t', input(1), { fence: 0 });
        assert.equal(await log.fence('t', 1), 1);
        await assert.rejects(log.append('t', input(2), { fence: 0 }), { code: 'log_ended' });
        assert.equal(parseId((await log.append('t', input(3), { fence: 1 })).id)?.seq, 2);
        assert.equal(await log.fence('t', 1), 2, 'a token is handed out once');
        await assert.rejects(log.append('t', input(4), { fence: 1 }), { code: 'log_ended' });
        await log.append('t', input(5));
        const final = await log.append('t', input(6), { fence: 2, final: true });
        assert.equal(parseId(final.id)?.seq, 4, 'an unfenced append is not affected');
        await log.delete('t');
        assert.equal(await log.fence('t', 5), 5);
        assert.equal((await log.head('t')).epoch, null, 'fencing creates no log');
        assert.equal(parseId((await log.append('t', input(7), { fence: 0 })).id)?.seq, 1);
      }));

    test('a batch appends its events with consecutive ids in one step, seen by watchers in order', () =>
      withLog({ maxEvents: 4 }, async (log) => {
        const seen: string[] = [];
        const unwatch = await log.watch('t', (_epoch, event) => seen.push(event.id));
        const [first] = await appendMany(log, 't', 1);
        const epoch = parseId(first as string)?.epoch as string;
        const ids = await log.appendBatch('t', [input(1), input(2), input(3)], { epoch });
        assert.deepEqual(
          ids,
          [2, 3, 4].map((seq) => formatId(epoch, seq)),
        );
        assert.deepEqual(seen, [first, ...ids], 'watchers saw the batch before it resolved');
        const more = await log.appendBatch('t', [input(4), input(5)], { final: true });
        unwatch();
        const page = await log.read('t', null, 100);
        assert.deepEqual(seqs(page.events), [3, 4, 5, 6], 'retention by count holds per event');
        assert.equal(page.events[1]?.data, '{"n":3}');
        assert.equal(more[1], page.events[3]?.id);
        await assert.rejects(log.appendBatch('t', [input(6)]), { code: 'log_ended' });
      }));

    test('a refused batch appends none of its events', () =>
      withLog({}, async (log) => {
        const first = parseId((await log.append('t', input(1))).id);
        await log.fence('t', 2);
        const batch = [input(2), input(3)];
        await assert.rejects(log.appendBatch('t', batch, { fence: 1 }), { code: 'log_ended' });
        await assert.rejects(log.appendBatch('t', batch, { epoch: 'other' }), {
          code: 'log_ended',
        });
        assert.deepEqual(await log.head('t'), first);
        await log.delete('t');
        await assert.rejects(log.appendBatch('t', batch, { epoch: first?.epoch ?? '' }), {
          code: 'log_ended',
        });
        assert.equal((await log.head('t')).epoch, null, 'the refused batch left no log');
        const fresh = await log.appendBatch('t', batch, { fence: 2 });
        assert.deepEqual(
          fresh.map((id) => parseId(id)?.seq),
          [1, 2],
          'a new epoch from 1',
        );
        await assert.rejects(log.appendBatch('t', []), TypeError);
        const tooMany = Array.from({ length: MAX_APPEND_BATCH + 1 }, (_, n) => input(n));
        await assert.rejects(log.appendBatch('t', tooMany), TypeError);
      }));

    test('a batch carries any data whole: newlines, multi-byte characters, empty', () =>
      withLog({}, async (log) => {
        const data = ['a\nb\r\nc', 'é€😀\n', '', '{"n":1}'];
        const inputs = data.map((d, i) => ({ event: `type${i}`, data: d }));
        const seen: StoredEvent[] = [];
        const unwatch = await log.watch('t', (_epoch, event) => seen.push(event));
        await log.appendBatch('t', inputs);
        unwatch();
        const read = (await log.read('t', null, 10)).events;
        for (const events of [seen, read]) {
          assert.deepEqual(
            events.map((e) => ({ event: e.event, data: e.data })),
            inputs,
          );
        }
      }));

    describe("a log's one writer, appending with the last seq it knows (a backend's fast path)", () => {
      /**
       * Starts `topic` as a writer does, its second event bound to the first one's epoch (which
       * puts a backend's fast path in place), and returns what its next append is bound to.
       */
      const started = async (log: EventLog, topic: string, fence: number) => {
        const first = parseId((await log.append(topic, input(0), { fence })).id);
        assert.ok(first?.epoch);
        const second = await log.append(topic, input(0), { epoch: first.epoch, fence });
        return { epoch: first.epoch, fence, lastSeq: parseId(second.id)?.seq ?? 0 };
      };

      test('appends data of any kind, seen by watchers and reads alike, with the time it was stored', () =>
        withLog({}, async (log) => {
          // Watching from before the log's first event: a watcher that joins later may be
          // handed the newest event it missed (healing), which the check below would count.
          const seen: StoredEvent[] = [];
          const unwatch = await log.watch('t', (_epoch, event) => seen.push(event));
          let bound = await started(log, 't', 0);
          const data = ['a\nb\r\nc', 'é€😀\n', '', '{"n":1}', 'ü'.repeat(300)];
          const before = Date.now();
          for (const [i, d] of data.entries()) {
            const appended = await log.append('t', { event: `type${i}`, data: d }, bound);
            assert.equal(parseId(appended.id)?.seq, bound.lastSeq + 1);
            bound = { ...bound, lastSeq: bound.lastSeq + 1 };
          }
          const batch = [input(7), input(8)];
          const ids = await log.appendBatch('t', batch, bound);
          assert.deepEqual(
            ids.map((id) => parseId(id)?.seq),
            [8, 9],
          );
          const after = Date.now();
          await eventually(async () => seen.length >= 9, 'the watcher to see every append');
          unwatch();
          const read = (await log.read('t', null, 100)).events;
          const expected = [...data.map((d, i) => ({ event: `type${i}`, data: d })), ...batch];
          for (const events of [seen, read]) {
            assert.deepEqual(seqs(events), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
            const written = events.slice(2);
            assert.deepEqual(
              written.map((e) => ({ event: e.event, data: e.data })),
              expected,
            );
            // The server's clock, as the test's within a second: one machine, and a busy one
            // may be late to read the reply a backend learns the server's clock from.
            for (const { time } of written) {
              assert.ok(time >= before - 1000 && time <= after + 1000, `time ${time}`);
            }
          }
        }));

      test('is refused once another writer fenced the log, or the log ended or started again', () =>
        withLog({}, async (log) => {
          const fenced = await started(log, 'fenced', 0);
          assert.equal(await log.fence('fenced', 1), 1);
          await assert.rejects(log.append('fenced', input(1), fenced), { code: 'log_ended' });
          const taken = { ...fenced, fence: 1 };
          assert.equal(parseId((await log.append('fenced', input(1), taken)).id)?.seq, 3);

          const cancelled = await started(log, 'cancelled', 0);
          await log.append('cancelled', input(1), { final: true });
          await assert.rejects(log.append('cancelled', input(2), cancelled), { code: 'log_ended' });

          const restarted = await started(log, 'restarted', 0);
          await log.delete('restarted');
          await log.append('restarted', input(1));
          await assert.rejects(log.append('restarted', input(2), restarted), {
            code: 'log_ended',
          });
          assert.deepEqual(seqs((await log.read('restarted', null, 10)).events), [1]);
        }));

      test('follows any other append, whatever seq it names: the last seq is only a hint', () =>
        withLog({}, async (log) => {
          const bound = await started(log, 't', 0);
          await log.append('t', input(1));
          const after = await log.append('t', input(2), bound);
          assert.equal(parseId(after.id)?.seq, 4);
          const stale = await log.append('t', input(3), { ...bound, lastSeq: 1 });
          assert.equal(parseId(stale.id)?.seq, 5);
          const ahead = await log.appendBatch('t', [input(4)], { ...bound, lastSeq: 9 });
          assert.equal(parseId(ahead[0] as string)?.seq, 6);
          assert.deepEqual(seqs((await log.read('t', null, 10)).events), [1, 2, 3, 4, 5, 6]);
        }));
    });

    test('is ready', () => withLog({}, async (log) => assert.equal(await log.isReady(), true)));
  });
}
