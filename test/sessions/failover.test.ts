/**
 * A reply outlives the process that generates it (issue 15, docs/api.md §13): three streamhub
 * processes on one Redis; the generating process is killed (or frozen) mid-reply, another one
 * takes the turn over once the lease lapses and continues the reply into the same log. Readers
 * see one reply, exactly the mock's, ending in `done`; only a pause tells.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseId } from '../../src/core/ids.js';
import {
  closedWithin,
  deltaCount,
  deltaText,
  lastMessage,
  promptFor,
  sessionView,
} from '../helpers/chat-sessions.js';
import {
  arrivals,
  generationsOn,
  generator,
  killRounds,
  sse,
  UPSTREAM_PROMPT,
  upstreamFailoverTests,
  useFailoverCluster,
} from '../helpers/failover.js';
import { eventually } from '../helpers/http.js';
import { PATIENCE_MS } from '../helpers/patience.js';
import { waitFor } from '../helpers/server.js';
import type { RawSseClient, SseMessage } from '../helpers/sse-client.js';

let sessions = 0;
const newSessionId = () => `failover-${process.pid}-${++sessions}`;

/** The longest reply of the mock among a few prompts: room for several kills. */
const LONG = promptFor(125, 'failover');

/** Sends a message on `url` and resolves once its reply has begun, so that it can be viewed. */
async function chatStarted(url: string, id: string, content: string): Promise<RawSseClient> {
  const chat = sse(`${url}/v1/chat`, {}, { session_id: id, content });
  await waitFor(() => deltaCount(chat) >= 1, 'the reply to start', PATIENCE_MS);
  return chat;
}

/**
 * Sends `content` on `from` as a new session and watches the reply on `on` until it has shown
 * `deltas` deltas.
 */
async function watchedReply(from: string, on: string, deltas: number, content = LONG.content) {
  const id = newSessionId();
  await chatStarted(from, id, content);
  const viewer = sse(`${on}/v1/sessions/${id}/stream`);
  await waitFor(() => deltaCount(viewer) >= deltas, `${deltas} deltas`, PATIENCE_MS);
  return { id, viewer };
}

/** The reply's text as GET /v1/sessions/{id} shows it (the partial reply while generating). */
async function replySoFar(url: string, id: string): Promise<string> {
  const view = await sessionView(url, id);
  const last = view.messages[view.messages.length - 1];
  return last?.role === 'assistant' ? last.content : '';
}

/** Waits until the reply (read through `url`) has grown by at least `chars` characters. */
async function grown(url: string, id: string, from: string, chars: number): Promise<string> {
  let text = from;
  await eventually(async () => {
    text = await replySoFar(url, id);
    return text.length >= from.length + chars;
  }, 'the reply to go on');
  return text;
}

/** A reply stream as it must be: ids in order without a gap, then `done`, after `start`. */
function assertOneReply(messages: readonly SseMessage[], text: string): void {
  const seqs = messages.map((message) => parseId(message.id ?? '')?.seq);
  assert.deepEqual(
    seqs,
    messages.map((_, i) => i + 1),
    'consecutive ids',
  );
  assert.equal(messages[0]?.event, 'start');
  assert.equal(messages[messages.length - 1]?.event, 'done', JSON.stringify(messages.slice(-2)));
  assert.equal(deltaText(messages), text, 'exactly the reference text');
}

function usageOf(message: SseMessage | undefined) {
  return (JSON.parse(message?.data ?? '{}') as { usage: { completion_tokens: number } }).usage;
}

describe('a reply continued on another process (mock model)', () => {
  const { cluster: processes, urls } = useFailoverCluster();

  test('a generator killed at different points of its reply: readers see one reply, exactly the mock’s, ending in done', {
    timeout: 120_000,
  }, async (t) => {
    await killRounds(t, async ({ killAfter, generating: g, reading: v, replaying: r }) => {
      const cluster = processes();
      const { id, viewer } = await watchedReply(
        urls()[g] as string,
        urls()[v] as string,
        killAfter,
      );
      const times = arrivals(() => deltaCount(viewer));
      try {
        await cluster.kill(g, 'SIGKILL');
        await closedWithin(viewer, 'the continued reply');
      } finally {
        times.stop();
        await cluster.restart(g);
      }
      assertOneReply(viewer.messages, LONG.reply);
      assert.equal(usageOf(lastMessage(viewer)).completion_tokens, LONG.tokens.length);

      const replay = sse(`${urls()[r]}/v1/sessions/${id}/stream`);
      await closedWithin(replay, 'a replay on the third process');
      assert.deepEqual(replay.messages, viewer.messages);
      const view = await sessionView(urls()[r] as string, id);
      assert.equal(view.status, 'idle');
      assert.deepEqual(view.messages, [
        { role: 'user', content: LONG.content },
        { role: 'assistant', content: LONG.reply },
      ]);
      return times.longestPauseMs();
    });
  });

  test('a continuation killed in its turn is continued again, and nobody watching is needed', {
    timeout: 60_000,
  }, async () => {
    const cluster = processes();
    const id = newSessionId();
    await chatStarted(urls()[0] as string, id, LONG.content);
    const killed: number[] = [];
    try {
      // Nobody watches: the periodic sweep finds the lost turn.
      let text = await grown(urls()[1] as string, id, '', 20);
      await cluster.kill(0, 'SIGKILL');
      killed.push(0);
      text = await grown(urls()[1] as string, id, text, 20);
      const taker = await generator(urls(), [1, 2]);
      await cluster.kill(taker, 'SIGKILL');
      killed.push(taker);
      const survivor = taker === 1 ? 2 : 1;
      const resumed = sse(`${urls()[survivor]}/v1/sessions/${id}/stream`);
      await closedWithin(resumed, 'the twice continued reply');
      assertOneReply(resumed.messages, LONG.reply);
      assert.equal(usageOf(lastMessage(resumed)).completion_tokens, LONG.tokens.length);
    } finally {
      for (const index of killed) await cluster.restart(index);
    }
  });

  test('a turn lost more often than SESSION_FAILOVER_MAX ends with generator_lost, its text never repeated', {
    timeout: 60_000,
  }, async () => {
    const cluster = processes();
    const id = newSessionId();
    await chatStarted(urls()[0] as string, id, LONG.content);
    // Process 0 comes back only once every generator is gone: restarting it sooner would race
    // the continuations (a mock reply lasts about 2.5 s) on a busy machine.
    const alive = new Set([1, 2]);
    try {
      let text = await grown(urls()[1] as string, id, '', 10);
      await cluster.kill(0, 'SIGKILL');
      for (let lost = 1; lost <= 2; lost++) {
        const reader = [...alive][0] as number;
        text = await grown(urls()[reader] as string, id, text, 10);
        const taker = await generator(urls(), [...alive]);
        await cluster.kill(taker, 'SIGKILL');
        alive.delete(taker);
      }
      await cluster.restart(0);
      alive.add(0);
      const resumed = sse(`${urls()[0]}/v1/sessions/${id}/stream`);
      await closedWithin(resumed, 'the reply lost once too often');
      const end = lastMessage(resumed);
      assert.equal(end?.event, 'error');
      assert.equal((JSON.parse(end?.data ?? '') as { code: string }).code, 'generator_lost');
      const partial = deltaText(resumed.messages);
      assert.ok(LONG.reply.startsWith(partial) && partial.length >= text.length, partial);
    } finally {
      for (const index of [0, 1, 2]) if (!alive.has(index)) await cluster.restart(index);
    }
  });

  test('a process shut down mid-reply hands the reply over past its grace period', {
    timeout: 60_000,
  }, async () => {
    const cluster = processes();
    const { viewer } = await watchedReply(urls()[0] as string, urls()[1] as string, 5);
    try {
      await cluster.kill(0, 'SIGTERM');
      await closedWithin(viewer, 'the handed-over reply');
    } finally {
      await cluster.restart(0);
    }
    assertOneReply(viewer.messages, LONG.reply);
  });

  test('a generator frozen past its lease cannot add to the reply once it wakes (fencing)', {
    timeout: 60_000,
  }, async () => {
    const cluster = processes();
    const { id, viewer } = await watchedReply(urls()[0] as string, urls()[1] as string, 10);
    cluster.signal(0, 'SIGSTOP');
    try {
      // Woken while the continuation runs: its overdue tokens must not reach the log.
      await generator(urls(), [1, 2]);
    } finally {
      cluster.signal(0, 'SIGCONT');
    }
    await closedWithin(viewer, 'the continued reply');
    assertOneReply(viewer.messages, LONG.reply);
    await eventually(async () => (await generationsOn(urls()[0] as string)) === 0, 'A to stop');
    const replay = sse(`${urls()[2]}/v1/sessions/${id}/stream`);
    await closedWithin(replay, 'a replay');
    assert.deepEqual(replay.messages, viewer.messages, 'nothing added after the reply ended');
  });
});

upstreamFailoverTests('a reply', async (cluster) => {
  const [a, b] = cluster.urls as [string, string];
  const { viewer } = await watchedReply(a, b, 4, UPSTREAM_PROMPT);
  try {
    await cluster.kill(0, 'SIGKILL');
    await closedWithin(viewer, 'the continued reply');
  } finally {
    await cluster.restart(0);
  }
  assert.equal(lastMessage(viewer)?.event, 'done');
  return deltaText(viewer.messages);
});
