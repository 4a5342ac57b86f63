import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LimitError } from '../../src/core/errors.js';
import { ConcurrencyLimiter } from '../../src/llm/limiter.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

/** Starts an acquire and notes when it is granted. */
function track(limiter: ConcurrencyLimiter, granted: number[], id: number, signal?: AbortSignal) {
  return limiter.acquire(signal).then((release) => {
    granted.push(id);
    return release;
  });
}

describe('ConcurrencyLimiter', () => {
  test('runs at most maxActive at once; a release hands the slot to a waiter', async () => {
    const limiter = new ConcurrencyLimiter(2, 10);
    const granted: number[] = [];
    const first = await track(limiter, granted, 1);
    await track(limiter, granted, 2);
    const third = track(limiter, granted, 3);
    await tick();
    assert.deepEqual(granted, [1, 2]);
    assert.equal(limiter.active, 2);
    assert.equal(limiter.waiting, 1);
    first();
    await third;
    assert.deepEqual(granted, [1, 2, 3]);
    assert.equal(limiter.active, 2);
    assert.equal(limiter.waiting, 0);
  });

  test('refuses with a LimitError overloaded, retry later, once the queue is full', async () => {
    const limiter = new ConcurrencyLimiter(1, 1);
    await limiter.acquire();
    void limiter.acquire();
    await assert.rejects(
      limiter.acquire(),
      (error) =>
        error instanceof LimitError &&
        error.kind === 'unavailable' &&
        error.code === 'overloaded' &&
        error.retryAfterMs > 0,
    );
    assert.equal(limiter.waiting, 1);
  });

  test('serves waiters first come, first served', async () => {
    const limiter = new ConcurrencyLimiter(1, 10);
    const granted: number[] = [];
    let release = await track(limiter, granted, 0);
    const waiters = [1, 2, 3, 4].map((id) => track(limiter, granted, id));
    for (const waiter of waiters) {
      release();
      release = await waiter;
    }
    assert.deepEqual(granted, [0, 1, 2, 3, 4]);
  });

  test('a waiter that aborts leaves the queue and never takes a slot', async () => {
    const limiter = new ConcurrencyLimiter(1, 10);
    const granted: number[] = [];
    const release = await track(limiter, granted, 1);
    const controller = new AbortController();
    const abandoned = track(limiter, granted, 2, controller.signal);
    const next = track(limiter, granted, 3);
    await tick();
    const reason = new Error('client went away');
    controller.abort(reason);
    await assert.rejects(abandoned, (error) => error === reason);
    assert.equal(limiter.waiting, 1);
    release();
    (await next)();
    assert.deepEqual(granted, [1, 3]);
    assert.equal(limiter.active, 0);
  });

  test('an already aborted signal is refused at once', async () => {
    const limiter = new ConcurrencyLimiter(1, 10);
    await limiter.acquire();
    await assert.rejects(limiter.acquire(AbortSignal.abort()), { name: 'AbortError' });
    assert.equal(limiter.waiting, 0);
  });

  test('releasing twice frees one slot only', async () => {
    const limiter = new ConcurrencyLimiter(2, 0);
    const release = await limiter.acquire();
    await limiter.acquire();
    release();
    release();
    assert.equal(limiter.active, 1);
  });
});
