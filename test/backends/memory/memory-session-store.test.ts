import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemorySessionStore } from '../../../src/backends/memory/memory-session-store.js';

function store(options: { ttlMs?: number; maxMessages?: number } = {}) {
  const clock = { now: 1_000 };
  const sessions = new MemorySessionStore({
    ttlMs: options.ttlMs ?? 60_000,
    maxMessages: options.maxMessages ?? 100,
    now: () => clock.now,
  });
  return { sessions, clock };
}

const turn = (content: string) => ({ content, owner: null });

test('a turn creates the session, and a second one is refused while a reply is generating', async () => {
  const { sessions } = store();
  const first = await sessions.beginTurn('s', { ...turn('hi'), system: 'be brief' });
  assert.equal(first?.turn, 1);
  assert.equal(first?.generating, true);
  assert.equal(await sessions.beginTurn('s', turn('again')), undefined);
  assert.deepEqual((await sessions.get('s'))?.messages, [{ role: 'user', content: 'hi' }]);
  await sessions.endTurn('s', 1, 'hello');
  const second = await sessions.beginTurn('s', turn('again'));
  assert.equal(second?.turn, 2);
  assert.equal(second?.system, 'be brief', 'the system prompt stays until replaced');
  assert.deepEqual(
    second?.messages.map((m) => m.role),
    ['user', 'assistant', 'user'],
  );
  await sessions.close();
});

test('an empty reply adds no assistant message; a stale turn cannot end the current one', async () => {
  const { sessions } = store();
  await sessions.beginTurn('s', turn('hi'));
  await sessions.endTurn('s', 1, '');
  await sessions.beginTurn('s', turn('again'));
  await sessions.endTurn('s', 1, 'late answer to turn 1');
  const session = await sessions.get('s');
  assert.equal(session?.generating, true);
  assert.deepEqual(
    session?.messages.map((m) => m.content),
    ['hi', 'again'],
  );
  await sessions.close();
});

test('history is bounded: the oldest messages go first', async () => {
  const { sessions } = store({ maxMessages: 3 });
  for (let n = 1; n <= 3; n++) {
    await sessions.beginTurn('s', turn(`q${n}`));
    await sessions.endTurn('s', n, `a${n}`);
  }
  assert.deepEqual(
    (await sessions.get('s'))?.messages.map((m) => m.content),
    ['a2', 'q3', 'a3'],
  );
  await sessions.close();
});

test('idle sessions expire; one that is generating does not', async () => {
  const { sessions, clock } = store({ ttlMs: 1_000 });
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
