import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { StreamStore } from '../../src/core/stream-store.js';
import { eventually } from '../helpers/http.js';

export interface StreamStoreContractOptions {
  /** A fresh store (streams of other stores invisible) forgetting ended streams after `ttlMs`. */
  readonly create: (options: { ttlMs: number }) => Promise<StreamStore>;
}

/**
 * Behaviour every StreamStore must share; each backend's test file runs it against its own
 * implementation, so that memory and Redis streams cannot drift apart.
 */
export function streamStoreContract(name: string, options: StreamStoreContractOptions): void {
  const withStore = async (ttlMs: number, body: (store: StreamStore) => Promise<void>) => {
    const store = await options.create({ ttlMs });
    try {
      await body(store);
    } finally {
      await store.close();
    }
  };

  describe(`${name}: StreamStore contract`, () => {
    test('one open stream per id, ended once; an ended one is replaced', () =>
      withStore(60_000, async (streams) => {
        assert.equal(await streams.get('s'), undefined);
        assert.equal(await streams.open('s', 60_000), 'opened');
        assert.equal(await streams.open('s', 60_000), 'exists');
        const open = await streams.get('s');
        assert.equal(open?.status, 'open');
        assert.equal(open?.producerLost, false);
        assert.ok((open?.createdAt ?? 0) > 0);
        assert.equal(await streams.renew('s', 60_000), true);
        const ends = await Promise.all([
          streams.end('s', { status: 'cancelled', reason: 'stopped' }),
          streams.end('s', { status: 'complete', reason: 'complete' }),
        ]);
        assert.deepEqual(ends, [true, false]);
        const ended = await streams.get('s');
        assert.deepEqual([ended?.status, ended?.reason], ['cancelled', 'stopped']);
        assert.equal(await streams.renew('s', 60_000), false);
        assert.equal(await streams.open('s', 60_000), 'replaced');
        const reopened = await streams.get('s');
        assert.deepEqual([reopened?.status, reopened?.reason], ['open', undefined]);
        await streams.delete('s');
        assert.equal(await streams.get('s'), undefined);
      }));

    test('a producer whose lease lapses is lost, and only then ended as lost', () =>
      withStore(60_000, async (streams) => {
        await streams.open('s', 60_000);
        assert.equal(
          await streams.end('s', { status: 'producer_lost', reason: 'lost' }, true),
          false,
          'still held',
        );
        await streams.open('t', 50);
        await eventually(async () => (await streams.get('t'))?.producerLost === true, 'the lapse');
        assert.equal(
          await streams.end('t', { status: 'producer_lost', reason: 'lost' }, true),
          true,
        );
        const lost = await streams.get('t');
        assert.deepEqual([lost?.status, lost?.producerLost], ['producer_lost', false]);
      }));

    test('ended streams are forgotten after the TTL', () =>
      withStore(200, async (streams) => {
        await streams.open('s', 60_000);
        await streams.end('s', { status: 'complete', reason: 'complete' });
        assert.equal((await streams.get('s'))?.status, 'complete');
        await eventually(async () => (await streams.get('s')) === undefined, 'the expiry');
        assert.equal(await streams.open('s', 60_000), 'opened');
      }));
  });
}
