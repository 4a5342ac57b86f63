/**
 * A reply outlives the process that generates it (issue 15, docs/api.md §13): three streamhub
 * processes on one Redis; the generating process is killed (or frozen) mid-reply, another one
 * takes the turn over once the lease lapses and continues the reply into the same log. Readers
 * see one reply, exactly the mock's, ending in `done`; only a pause tells.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseId } from '../../src/core/ids.js';
import { CONTINUE_INSTRUCTION } from '../../src/llm/continuation.js';
import {
  closedWithin,
  deltaCount,
  deltaText,
  lastMessage,
  promptFor,
  sessionView,
} from '../helpers/chat-sessions.js';
import { useRedisCluster } from '../helpers/cluster.js';
import { eventually, request } from '../helpers/http.js';
import { MockUpstream, upstream } from '../helpers/mock-upstream.js';
import { PATIENCE_MS } from '../helpers/patience.js';
import { waitFor } from '../helpers/server.js';
import { RawSseClient, type SseMessage } from '../helpers/sse-client.js';

/**
 * Short, so that a test takes seconds; renewed every 500 ms, so a process must stall for a
 * second to lose it spuriously (which the tests counting attempts would notice; elsewhere an
 * extra takeover is harmless).
 */
const LEASE_MS = 1500;

const clients: RawSseClient[] = [];
after(() => {
  for (const client of clients.splice(0)) client.close();
});

function sse(url: string, headers: Record<string, string> = {}, body?: unknown): RawSseClient {
  const client = new RawSseClient(url, headers, body);
  clients.push(client);
  return client;
}

let sessions = 0;
const newSessionId = () => `failover-${process.pid}-${++sessions}`;

/** The longest reply of the mock among a few prompts: room for several kills. */
const LONG = promptFor(125, 'failover');

async function generationsOn(url: string): Promise<number> {
  return ((await request(`${url}/v1/stats`)).json as { generations: number }).generations;
}

/** The index, among `alive`, of the process generating the reply now. */
async function generator(urls: readonly string[], alive: readonly number[]): Promise<number> {
  let found: number | undefined;
  await eventually(async () => {
    for (const index of alive) {
      if ((await generationsOn(urls[index] as string)) > 0) found = index;
    }
    return found !== undefined;
  }, 'a process generating the reply');
  return found as number;
}

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

/** Records when each delta of `client` arrives, to measure the longest pause between two. */
function arrivals(client: RawSseClient) {
  const times: number[] = [];
  const timer = setInterval(() => {
    while (times.length < deltaCount(client)) times.push(performance.now());
  }, 2);
  return {
    stop: () => clearInterval(timer),
    longestPauseMs: () =>
      Math.round(Math.max(0, ...times.slice(1).map((time, i) => time - (times[i] as number)))),
  };
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
  const setup = useRedisCluster(3, {
    HEARTBEAT_MS: '1000',
    MOCK_TOKENS_PER_SEC: '50',
    SESSION_LEASE_MS: String(LEASE_MS),
    SESSION_FAILOVER_MAX: '2',
    SHUTDOWN_GRACE_MS: '1000',
  });
  const urls = () => setup().cluster.urls;

  test('a generator killed at different points of its reply: readers see one reply, exactly the mock’s, ending in done', {
    timeout: 120_000,
  }, async (t) => {
    const { cluster } = setup();
    const pauses: number[] = [];
    for (const [round, killAfter] of [3, 45, 100].entries()) {
      const [g, v, r] = [round % 3, (round + 1) % 3, (round + 2) % 3];
      const { id, viewer } = await watchedReply(
        urls()[g] as string,
        urls()[v] as string,
        killAfter,
      );
      const times = arrivals(viewer);
      try {
        await cluster.kill(g, 'SIGKILL');
        await closedWithin(viewer, 'the continued reply');
      } finally {
        times.stop();
        await cluster.restart(g);
      }
      assertOneReply(viewer.messages, LONG.reply);
      assert.equal(usageOf(lastMessage(viewer)).completion_tokens, LONG.tokens.length);
      pauses.push(times.longestPauseMs());

      const replay = sse(`${urls()[r]}/v1/sessions/${id}/stream`);
      await closedWithin(replay, 'a replay on the third process');
      assert.deepEqual(replay.messages, viewer.messages);
      const view = await sessionView(urls()[r] as string, id);
      assert.equal(view.status, 'idle');
      assert.deepEqual(view.messages, [
        { role: 'user', content: LONG.content },
        { role: 'assistant', content: LONG.reply },
      ]);
    }
    t.diagnostic(
      `longest pause a reader saw per kill: ${pauses.join(', ')} ms (lease ${LEASE_MS} ms)`,
    );
  });

  test('a continuation killed in its turn is continued again, and nobody watching is needed', {
    timeout: 60_000,
  }, async () => {
    const { cluster } = setup();
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
    const { cluster } = setup();
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
    const { cluster } = setup();
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
    const { cluster } = setup();
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

/** Long enough to kill mid-reply, short enough for the seam's window. */
const UPSTREAM_REPLY =
  'Failover keeps a reply going: another process asks the model again with the partial text.';

/**
 * Against the fault-injecting upstream, which ignores continuation requests and starts its
 * reply over: what each strategy sends, and what a reader then gets.
 */
function upstreamFailover(
  strategy: 'prefix' | 'instruction',
  check: (partial: string, request: Record<string, unknown>, text: string) => void,
) {
  describe(`LLM_CONTINUATION=${strategy} against an OpenAI-compatible upstream`, () => {
    let mock: MockUpstream;
    const env: Record<string, string> = {
      LLM_PROVIDER: 'openai',
      OPENAI_API_KEY: 'test-key',
      LLM_CONTINUATION: strategy,
      SESSION_LEASE_MS: String(LEASE_MS),
    };
    before(async () => {
      mock = await MockUpstream.start();
      mock.defaultBehaviour = upstream.ok({ reply: UPSTREAM_REPLY, tokenDelayMs: 80 });
      env.OPENAI_BASE_URL = mock.baseURL;
    });
    after(() => mock.close());
    const setup = useRedisCluster(2, env);

    test('the continuation request carries the partial reply as the strategy says', {
      timeout: 60_000,
    }, async () => {
      const { cluster } = setup();
      const [a, b] = cluster.urls as [string, string];
      const { viewer } = await watchedReply(a, b, 4, 'keep going');
      try {
        await cluster.kill(0, 'SIGKILL');
        await closedWithin(viewer, 'the continued reply');
      } finally {
        await cluster.restart(0);
      }
      assert.equal(lastMessage(viewer)?.event, 'done');
      const [first, continued] = mock.completionRequests.map(
        (r) => r.body as Record<string, unknown>,
      );
      assert.deepEqual(first?.messages, [{ role: 'user', content: 'keep going' }]);
      const messages = continued?.messages as { role: string; content: string }[];
      const partial = messages[1]?.content ?? '';
      assert.ok(partial.length > 0 && UPSTREAM_REPLY.startsWith(partial), partial);
      check(partial, continued ?? {}, deltaText(viewer.messages));
    });
  });
}

upstreamFailover('prefix', (partial, request, text) => {
  assert.deepEqual(request.messages, [
    { role: 'user', content: 'keep going' },
    { role: 'assistant', content: partial, prefix: true },
  ]);
  assert.equal(request.continue_final_message, true);
  assert.equal(request.add_generation_prompt, false);
  // Prefix mode trusts the upstream to write only the rest: one that starts over repeats.
  assert.equal(text, partial + UPSTREAM_REPLY);
});

upstreamFailover('instruction', (partial, request, text) => {
  assert.deepEqual(request.messages, [
    { role: 'user', content: 'keep going' },
    { role: 'assistant', content: partial },
    { role: 'user', content: CONTINUE_INSTRUCTION },
  ]);
  assert.equal(request.continue_final_message, undefined);
  // The upstream started over: the repeated partial text is trimmed at the seam.
  assert.equal(text, UPSTREAM_REPLY);
});
