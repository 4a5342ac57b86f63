import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemorySessionStore } from '../../../src/backends/memory/memory-session-store.js';
import { sessionStoreContract } from '../session-store-contract.js';

sessionStoreContract('memory', {
  create: async ({ maxMessages }) => new MemorySessionStore({ ttlMs: 60_000, maxMessages }),
});

test('idle sessions expire; one that is generating does not', async () => {
  const clock = { now: 1_000 };
  const sessions = new MemorySessionStore({ ttlMs: 1_000, maxMessages: 100, now: () => clock.now });
  const turn = (content: string) => ({ content, owner: null });
  await sessions.beginTurn('idle', turn('x'));
  await sessions.endTurn('idle', 1, 'y');
  await sessions.beginTurn('busy', turn('x'));
  clock.now += 1_001;
  assert.equal(await sessions.get('idle'), undefined);
  assert.notEqual(await sessions.get('busy'), undefined);
  sessions.sweep();
  assert.equal(sessions.size, 1);
  // An expired id starts a fresh conversation.
  assert.equal((await sessions.beginTurn('idle', turn('new')))?.turn, 1);
  await sessions.close();
});
