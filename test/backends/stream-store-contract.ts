import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { StreamStore } from '../../src/core/stream-store.js';

export interface StreamStoreContractOptions {
  /** A fresh store (streams of other stores invisible) forgetting ended streams after `ttlMs`. */
  readonly create: (options: { ttlMs: number }) => Promise<StreamStore>;
}

/** Resolves once the async `probe` holds, polling; fails the test after five seconds. */
async function until(probe: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
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
          streams.end('s', 'cancelled'),
          streams.end('s', 'complete'),
        ]);
        assert.deepEqual(ends, [true, false]);
        assert.equal((await streams.get('s'))?.status, 'cancelled');
        assert.equal(await streams.renew('s', 60_000), false);
        assert.equal(await streams.open('s', 60_000), 'replaced');
        assert.equal((await streams.get('s'))?.status, 'open');
        await streams.delete('s');
        assert.equal(await streams.get('s'), undefined);
      }));

    test('a producer whose lease lapses is lost, and only then ended as lost', () =>
      withStore(60_000, async (streams) => {
        await streams.open('s', 60_000);
        assert.equal(await streams.end('s', 'producer_lost', true), false, 'still held');
        await streams.open('t', 50);
        await until(async () => (await streams.get('t'))?.producerLost === true, 'the lapse');
        assert.equal(await streams.end('t', 'producer_lost', true), true);
        const lost = await streams.get('t');
        assert.deepEqual([lost?.status, lost?.producerLost], ['producer_lost', false]);
      }));

    test('ended streams are forgotten after the TTL', () =>
      withStore(200, async (streams) => {
        await streams.open('s', 60_000);
        await streams.end('s', 'complete');
        assert.equal((await streams.get('s'))?.status, 'complete');
        await until(async () => (await streams.get('s')) === undefined, 'the expiry');
        assert.equal(await streams.open('s', 60_000), 'opened');
      }));
  });
}
