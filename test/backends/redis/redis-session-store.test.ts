import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RedisSessionStore } from '../../../src/backends/redis/redis-session-store.js';
import type { TurnControl } from '../../../src/core/turn-leases.js';
import { eventually } from '../../helpers/http.js';
import { sessionStoreContract, waitUntil } from '../session-store-contract.js';
import { createSessionStore, uniquePrefix, useRedis } from './harness.js';

const redis = useRedis();

/**
 * Resolves once `count` stores of `keyPrefix` are subscribed to its signal channel, so that
 * none of them can miss a cancel or a claim published from now on.
 */
async function listening(keyPrefix: string, count: number): Promise<void> {
  const client = await redis().client();
  const channel = `${keyPrefix}:signals`;
  await eventually(async () => {
    const [, subscribers] = (await client.pubsub('NUMSUB', channel)) as [string, number];
    return subscribers === count;
  }, `${count} subscribers of ${channel}`);
}

sessionStoreContract('redis', {
  create: async ({ maxMessages }) => {
    const keyPrefix = uniquePrefix();
    const store = createSessionStore(redis().url, { keyPrefix, maxMessages });
    await listening(keyPrefix, 1);
    return store;
  },
});

const turn = (content: string) => ({ content, owner: null });

/**
 * Renewed every third of it, so a holder must stall for a whole second to lose it: more than a
 * loaded machine makes a test process wait.
 */
const LEASE_MS = 1500;

/** Two stores on one Redis, as two streamhub processes would have, both listening. */
async function twoProcesses(leaseMs: number): Promise<[RedisSessionStore, RedisSessionStore]> {
  const keyPrefix = uniquePrefix();
  const stores: [RedisSessionStore, RedisSessionStore] = [
    createSessionStore(redis().url, { keyPrefix, leaseMs }),
    createSessionStore(redis().url, { keyPrefix, leaseMs }),
  ];
  await listening(keyPrefix, 2);
  return stores;
}

function recordingControl() {
  const heard: string[] = [];
  const control: TurnControl = {
    cancel: () => heard.push('cancel'),
    lost: () => heard.push('lost'),
  };
  return { heard, control };
}

/** Long enough for a lease that was not renewed to have lapsed. */
const pastTheLease = () => new Promise((resolve) => setTimeout(resolve, 1.5 * LEASE_MS));

describe('redis sessions: one generator at a time, under a lease', () => {
  test('another process sees the turn; a held turn stays alive past its lease', async () => {
    const [a, b] = await twoProcesses(LEASE_MS);
    await a.beginTurn('s', turn('hi'));
    const { heard, control } = recordingControl();
    const release = a.holdTurn('s', 1, control);
    assert.equal(await b.beginTurn('s', turn('mine?')), undefined, 'busy on every process');
    await pastTheLease();
    const seen = await b.get('s');
    assert.equal(seen?.generating, true);
    assert.equal(seen?.generatorLost, false, 'renewed by its holder');
    release();
    assert.equal(await a.endTurn('s', 1, 'hello'), true);
    assert.deepEqual(heard, []);
    assert.equal((await b.get('s'))?.generating, false);
  });

  test('a turn whose holder stops renewing is lost; exactly one process ends it', async () => {
    const [a, b] = await twoProcesses(300);
    await a.beginTurn('s', turn('hi'));
    // No holdTurn: as if the generating process died right after starting.
    await eventually(async () => (await b.get('s'))?.generatorLost === true, 'the lease to lapse');
    const results = await Promise.all([
      b.endLostTurn('s', 1, 'partial'),
      a.endLostTurn('s', 1, 'partial'),
    ]);
    assert.deepEqual(results.sort(), [false, true]);
    assert.equal(await a.endTurn('s', 1, 'too late'), false, 'the old holder cannot end it');
    const ended = await b.get('s');
    assert.equal(ended?.generating, false);
    assert.deepEqual(
      ended?.messages.map((m) => m.content),
      ['hi', 'partial'],
    );
    assert.equal((await b.beginTurn('s', turn('again')))?.turn, 2, 'the session goes on');
  });

  test('a lost turn cannot be ended as lost while its holder renews', async () => {
    const [a, b] = await twoProcesses(LEASE_MS);
    await a.beginTurn('s', turn('hi'));
    const release = a.holdTurn('s', 1, recordingControl().control);
    await pastTheLease();
    assert.equal(await b.endLostTurn('s', 1, ''), false);
    release();
  });

  test('a holder whose turn was ended elsewhere hears that it lost it', async () => {
    const [a, b] = await twoProcesses(300);
    await a.beginTurn('s', turn('hi'));
    const client = await redis().client();
    // The lease vanishes (as after a long pause of the holder) and another process ends it.
    await client.del(`${a.options.keyPrefix}:{s}:lease`);
    assert.equal(await b.endLostTurn('s', 1, ''), true);
    const { heard, control } = recordingControl();
    const release = a.holdTurn('s', 1, control);
    await waitUntil(() => heard.length > 0);
    release();
    assert.deepEqual(heard, ['lost']);
  });

  test('a lost turn is taken over by exactly one process, which alone may renew and end it', async () => {
    const [a, b] = await twoProcesses(300);
    await a.beginTurn('s', turn('hi'));
    await eventually(async () => (await b.get('s'))?.generatorLost === true, 'the lease to lapse');
    assert.deepEqual(
      (await a.lostTurns()).map((session) => session.id),
      ['s'],
      'found by the sweep, watched or not',
    );
    const taken = await Promise.all([b.takeOverTurn('s', 1, 0, 2), a.takeOverTurn('s', 1, 0, 2)]);
    const taker = taken[0] === 1 ? b : a;
    assert.deepEqual([...taken].sort(), [0, 1]);
    assert.equal((await a.get('s'))?.attempt, 1);
    assert.equal(
      await taker.endTurn('s', 1, 'old attempt', 0),
      false,
      'the lost attempt cannot end it',
    );

    // The first attempt's process wakes up: its renewal finds another attempt holds the turn.
    const { heard, control } = recordingControl();
    const release = a.holdTurn('s', 1, control, 0);
    await waitUntil(() => heard.length > 0);
    release();
    assert.deepEqual(heard, ['lost']);

    const renewing = taker.holdTurn('s', 1, recordingControl().control, 1);
    assert.equal(await taker.endTurn('s', 1, 'the whole reply', 1), true);
    renewing();
    assert.deepEqual((await a.get('s'))?.messages.at(-1), {
      role: 'assistant',
      content: 'the whole reply',
    });
    assert.deepEqual(await a.lostTurns(), [], 'an ended turn leaves the sweep');
  });

  test('a turn lost after its last allowed continuation is not taken over again', async () => {
    const [a, b] = await twoProcesses(300);
    await a.beginTurn('s', turn('hi'));
    const lapsed = async () =>
      eventually(async () => (await b.get('s'))?.generatorLost === true, 'the lease to lapse');
    await lapsed();
    assert.equal(await b.takeOverTurn('s', 1, 0, 1), 1);
    assert.equal(await b.takeOverTurn('s', 1, 0, 1), 0, 'the attempt moved on');
    await lapsed(); // the taker died too, without renewing
    assert.equal(await a.takeOverTurn('s', 1, 1, 1), -1);
    assert.equal((await a.get('s'))?.generatorLost, true, 'nothing changed');
    assert.equal(await a.endLostTurn('s', 1, 'partial'), true);
  });

  test('a cancel reaches the holder on another process through Pub/Sub', async () => {
    // A lease this long is renewed every 20 s: only the Pub/Sub message can arrive in time.
    const [a, b] = await twoProcesses(60_000);
    await a.beginTurn('s', turn('hi'));
    const { heard, control } = recordingControl();
    const release = a.holdTurn('s', 1, control);
    await b.requestCancel('s', 1);
    await waitUntil(() => heard.length > 0);
    release();
    assert.deepEqual(heard, ['cancel']);
  });

  test('a cancel whose message the holder missed is found by its lease renewal', async () => {
    const [a, b] = await twoProcesses(LEASE_MS);
    await a.beginTurn('s', turn('hi'));
    // Sent while nobody on `a` held the turn, as when its connection blinked.
    await b.requestCancel('s', 1);
    // A claim published after it on the same channel: once `a` hears the claim, the cancel
    // message has come and gone.
    const claims: number[] = [];
    a.onViewerClaimed((id, claim) => {
      if (id === 'marker') claims.push(claim);
    });
    await b.claimViewer('marker');
    await waitUntil(() => claims.length > 0);
    const { heard, control } = recordingControl();
    const release = a.holdTurn('s', 1, control);
    await waitUntil(() => heard.length > 0);
    release();
    assert.deepEqual(heard, ['cancel']);
  });

  test('viewer claims of one process are heard by the others', async () => {
    const [a, b] = await twoProcesses(1_000);
    const heardByA: number[] = [];
    a.onViewerClaimed((id, claim) => {
      if (id === 's') heardByA.push(claim);
    });
    const claim = await b.claimViewer('s');
    await waitUntil(() => heardByA.length === 1);
    assert.deepEqual(heardByA, [claim]);
    assert.ok((await a.claimViewer('s')) > claim);
  });

  test('every key of a session carries the idle TTL', async () => {
    const keyPrefix = uniquePrefix();
    const store = createSessionStore(redis().url, { keyPrefix, ttlMs: 30_000 });
    await store.beginTurn('s', turn('hi'));
    await store.endTurn('s', 1, 'hello');
    await store.claimViewer('s');
    const client = await redis().client();
    for (const key of [`{s}`, '{s}:messages', '{s}:claims']) {
      const ttl = await client.pttl(`${keyPrefix}:${key}`);
      assert.ok(ttl > 25_000 && ttl <= 30_000, `${key} ttl ${ttl}`);
    }
  });
});
