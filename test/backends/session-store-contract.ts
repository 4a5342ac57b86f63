import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SessionStore } from '../../src/core/session-store.js';
import { PATIENCE_MS } from '../helpers/patience.js';

export interface SessionStoreContractOptions {
  /** A fresh store (sessions of other stores invisible) keeping at most `maxMessages`. */
  readonly create: (options: { maxMessages: number }) => Promise<SessionStore>;
}

const turn = (content: string) => ({ content, owner: null });

/**
 * Behaviour every SessionStore must share; each backend's test file runs it against its own
 * implementation, so that memory and Redis sessions cannot drift apart.
 */
export function sessionStoreContract(name: string, options: SessionStoreContractOptions): void {
  const withStore = async (maxMessages: number, body: (store: SessionStore) => Promise<void>) => {
    const store = await options.create({ maxMessages });
    try {
      await body(store);
    } finally {
      await store.close();
    }
  };

  describe(`${name}: SessionStore contract`, () => {
    test('a turn creates the session, and a second one is refused while a reply is generating', () =>
      withStore(100, async (sessions) => {
        assert.equal(await sessions.get('s'), undefined);
        const first = await sessions.beginTurn('s', { ...turn('hi'), system: 'be brief' });
        assert.equal(first?.turn, 1);
        assert.equal(first?.generating, true);
        assert.equal(first?.generatorLost, false);
        assert.equal(first?.owner, null);
        assert.equal(await sessions.beginTurn('s', turn('again')), undefined);
        assert.deepEqual((await sessions.get('s'))?.messages, [{ role: 'user', content: 'hi' }]);
        assert.equal(await sessions.endTurn('s', 1, 'hello'), true);
        const second = await sessions.beginTurn('s', turn('again'));
        assert.equal(second?.turn, 2);
        assert.equal(second?.system, 'be brief', 'the system prompt stays until replaced');
        assert.deepEqual(
          second?.messages.map((m) => `${m.role}:${m.content}`),
          ['user:hi', 'assistant:hello', 'user:again'],
        );
        assert.ok((second?.updatedAt ?? 0) >= (second?.createdAt ?? Infinity));
      }));

    test('an empty reply adds no assistant message; a stale turn cannot end the current one', () =>
      withStore(100, async (sessions) => {
        await sessions.beginTurn('s', turn('hi'));
        assert.equal(await sessions.endTurn('s', 1, ''), true);
        assert.equal(await sessions.endTurn('s', 1, 'twice'), false, 'a turn ends once');
        await sessions.beginTurn('s', turn('again'));
        assert.equal(await sessions.endTurn('s', 1, 'late answer to turn 1'), false);
        const session = await sessions.get('s');
        assert.equal(session?.generating, true);
        assert.deepEqual(
          session?.messages.map((m) => m.content),
          ['hi', 'again'],
        );
      }));

    test('history is bounded: the oldest messages go first', () =>
      withStore(3, async (sessions) => {
        for (let n = 1; n <= 3; n++) {
          await sessions.beginTurn('s', turn(`q${n}`));
          await sessions.endTurn('s', n, `a${n}`);
        }
        assert.deepEqual(
          (await sessions.get('s'))?.messages.map((m) => m.content),
          ['a2', 'q3', 'a3'],
        );
      }));

    test('the owner is kept; text with newlines and non-ASCII survives', () =>
      withStore(100, async (sessions) => {
        const text = 'line one\nline "two" — ünïcode 🎉';
        await sessions.beginTurn('s', { content: text, owner: 'alice' });
        await sessions.endTurn('s', 1, text);
        const session = await sessions.get('s');
        assert.equal(session?.owner, 'alice');
        assert.deepEqual(
          session?.messages.map((m) => m.content),
          [text, text],
        );
      }));

    test('delete forgets the session; a new turn starts a new conversation', () =>
      withStore(100, async (sessions) => {
        await sessions.beginTurn('s', turn('hi'));
        assert.equal(await sessions.delete('s'), true);
        assert.equal(await sessions.delete('s'), false);
        assert.equal(await sessions.get('s'), undefined);
        assert.equal((await sessions.beginTurn('s', turn('new')))?.turn, 1);
      }));

    test('viewer claims grow, and every claim is announced', () =>
      withStore(100, async (sessions) => {
        const heard: string[] = [];
        sessions.onViewerClaimed((id, claim) => heard.push(`${id}:${claim}`));
        const first = await sessions.claimViewer('s');
        const second = await sessions.claimViewer('s');
        assert.ok(second > first, `${second} > ${first}`);
        await waitUntil(() => heard.length === 2);
        assert.deepEqual(heard, [`s:${first}`, `s:${second}`]);
      }));
  });
}

export async function waitUntil(condition: () => boolean, timeoutMs = PATIENCE_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
