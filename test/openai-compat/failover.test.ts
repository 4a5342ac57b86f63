/**
 * A streamed completion outlives the process that generates it (docs/api.md §13): three
 * streamhub processes on one Redis; the process generating a `POST /v1/chat/completions`
 * stream is killed (or frozen) mid-stream, another one takes it over once its lease lapses and
 * continues it into the same log. A client resuming it anywhere reads one completion, exactly
 * the mock's, with one chunk `id`, ending in `[DONE]`; only a pause tells.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseId } from '../../src/core/ids.js';
import { closedWithin, lastMessage, promptFor } from '../helpers/chat-sessions.js';
import type { Cluster } from '../helpers/cluster.js';
import {
  arrivals,
  generationsOn,
  generator,
  killRounds,
  sse,
  UPSTREAM_PROMPT,
  upstreamFailoverTests,
  useFailoverCluster,
  useUpstreamCluster,
} from '../helpers/failover.js';
import { eventually, request } from '../helpers/http.js';
import { upstream } from '../helpers/mock-upstream.js';
import { PATIENCE_MS } from '../helpers/patience.js';
import { waitFor } from '../helpers/server.js';
import type { RawSseClient, SseMessage } from '../helpers/sse-client.js';

/** The longest reply of the mock among a few prompts: room for several kills. */
const LONG = promptFor(125, 'completion failover');

interface Chunk {
  readonly id: string;
  readonly choices: { delta: { content?: string | null } }[];
  readonly usage?: { completion_tokens: number } | null;
}

const chunksOf = (messages: readonly SseMessage[]): Chunk[] =>
  messages.filter((m) => m.data !== '[DONE]').map((m) => JSON.parse(m.data) as Chunk);

const textOf = (messages: readonly SseMessage[]) =>
  chunksOf(messages)
    .map((chunk) => chunk.choices[0]?.delta.content ?? '')
    .join('');

/** Starts a streamed completion of `content` on `url` and waits for `chunks` of its chunks. */
async function started(url: string, chunks: number, content = LONG.content) {
  const client = sse(
    `${url}/v1/chat/completions`,
    {},
    {
      model: 'streamhub-mock',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content }],
    },
  );
  await waitFor(() => client.messages.length >= chunks, `${chunks} chunks`, PATIENCE_MS);
  const id = client.headers['x-stream-id'];
  assert.ok(typeof id === 'string' && id.startsWith('chatcmpl-'), String(id));
  return { id, client };
}

/** `GET /v1/chat/completions/{id}/stream` on `url`, after `lastEventId` when given. */
function resumed(url: string, id: string, lastEventId?: string): RawSseClient {
  const headers: Record<string, string> =
    lastEventId === undefined ? {} : { 'last-event-id': lastEventId };
  return sse(`${url}/v1/chat/completions/${id}/stream`, headers);
}

/** Resumes `client`'s completion on `url` from the last event it got. */
function resumeOf(url: string, id: string, client: RawSseClient): RawSseClient {
  return resumed(url, id, client.messages[client.messages.length - 1]?.id);
}

/** One completion as it must be: SSE ids in order without a gap, one chunk id, then `[DONE]`. */
function assertOneCompletion(messages: readonly SseMessage[], text: string): void {
  assert.deepEqual(
    messages.map((message) => parseId(message.id ?? '')?.seq),
    messages.map((_, i) => i + 1),
    'consecutive ids',
  );
  assert.equal(messages[messages.length - 1]?.data, '[DONE]', JSON.stringify(messages.slice(-2)));
  assert.equal(new Set(chunksOf(messages).map((chunk) => chunk.id)).size, 1, 'one chunk id');
  assert.equal(textOf(messages), text, 'exactly the reference text');
}

/** The completion tokens the usage chunk (the last before `[DONE]`) counts. */
function completionTokens(messages: readonly SseMessage[]): number | undefined {
  return chunksOf(messages).at(-1)?.usage?.completion_tokens;
}

/** Completion chunks the process at `url` has generated (its deltas metric). */
async function deltasOn(url: string): Promise<number> {
  const metrics = (await request(`${url}/metrics`)).text;
  const line = /streamhub_llm_deltas_total\{feature="completions"\} (\d+)/.exec(metrics);
  return Number(line?.[1] ?? 0);
}

describe('a streamed completion continued on another process (mock model)', () => {
  const { cluster: processes, urls } = useFailoverCluster();

  test('a generator killed at different points: the resumed stream gives exactly the mock’s text, one chunk id, then [DONE]', {
    timeout: 120_000,
  }, async (t) => {
    await killRounds(t, async ({ killAfter, generating: g, reading: v, replaying: r }) => {
      const cluster = processes();
      const { id, client } = await started(urls()[g] as string, killAfter);
      let resume: RawSseClient;
      let pauseMs: number;
      await cluster.kill(g, 'SIGKILL');
      // From the kill on: the pause includes the wait for the lease to lapse.
      const killedAt = performance.now();
      try {
        resume = resumeOf(urls()[v] as string, id, client);
        const times = arrivals(() => resume.messages.length, killedAt);
        await closedWithin(resume, 'the continued completion');
        times.stop();
        pauseMs = times.longestPauseMs();
      } finally {
        await cluster.restart(g);
      }
      const whole = [...client.messages, ...resume.messages];
      assertOneCompletion(whole, LONG.reply);
      assert.equal(completionTokens(whole), LONG.tokens.length);

      const replay = resumed(urls()[r] as string, id);
      await closedWithin(replay, 'a replay on the third process');
      assert.deepEqual(replay.messages, whole);
      return pauseMs;
    });
  });

  test('nobody watching: the sweep continues it, a continuation killed in its turn is continued again, a resume after the end gets it whole', {
    timeout: 60_000,
  }, async () => {
    const cluster = processes();
    const { id } = await started(urls()[0] as string, 10);
    const killed: number[] = [];
    try {
      await cluster.kill(0, 'SIGKILL');
      killed.push(0);
      const taker = await generator(urls(), [1, 2]);
      const before = await deltasOn(urls()[taker] as string);
      await eventually(
        async () => (await deltasOn(urls()[taker] as string)) >= before + 20,
        'the continuation to go on',
      );
      await cluster.kill(taker, 'SIGKILL');
      killed.push(taker);
      const survivor = taker === 1 ? 2 : 1;
      await generator(urls(), [survivor]);
      await eventually(
        async () => (await generationsOn(urls()[survivor] as string)) === 0,
        'the twice continued completion to end',
      );
      const whole = resumed(urls()[survivor] as string, id);
      await closedWithin(whole, 'a resume after the end');
      assertOneCompletion(whole.messages, LONG.reply);
      assert.equal(completionTokens(whole.messages), LONG.tokens.length);
    } finally {
      for (const index of killed) await cluster.restart(index);
    }
  });

  test('a process shut down mid-stream hands the completion over past its grace period', {
    timeout: 60_000,
  }, async () => {
    const cluster = processes();
    const { id } = await started(urls()[0] as string, 5);
    const viewer = resumed(urls()[1] as string, id);
    try {
      await cluster.kill(0, 'SIGTERM');
      await closedWithin(viewer, 'the handed-over completion');
    } finally {
      await cluster.restart(0);
    }
    assertOneCompletion(viewer.messages, LONG.reply);
  });

  test('a generator frozen past its lease cannot add to the completion once it wakes (fencing)', {
    timeout: 60_000,
  }, async () => {
    const cluster = processes();
    const { id, client } = await started(urls()[0] as string, 10);
    const viewer = resumeOf(urls()[1] as string, id, client);
    cluster.signal(0, 'SIGSTOP');
    try {
      // Woken while the continuation runs: its overdue chunks must not reach the log.
      await generator(urls(), [1, 2]);
    } finally {
      cluster.signal(0, 'SIGCONT');
    }
    await closedWithin(viewer, 'the continued completion');
    await eventually(async () => (await generationsOn(urls()[0] as string)) === 0, 'A to stop');
    const replay = resumed(urls()[2] as string, id);
    await closedWithin(replay, 'a replay');
    assertOneCompletion(replay.messages, LONG.reply);
    assert.deepEqual(replay.messages.slice(-viewer.messages.length), viewer.messages);
  });
});

describe('a streamed completion that cannot be continued faithfully', () => {
  const call = { name: 'get_weather', arguments: '{"city": "Paris", "unit": "celsius"}' };
  const { mock, cluster } = useUpstreamCluster(() =>
    upstream.toolCalls([call], { tokenDelayMs: 80, pieceChars: 2 }),
  );

  test('one calling tools ends with generator_lost, its tool-call chunks kept, nothing asked again', {
    timeout: 60_000,
  }, async () => {
    const { resume, whole } = await continuedAfterKill(cluster(), 'weather?');
    assert.match(lastMessage(resume)?.data ?? '', /generator_lost/);
    const calling = chunksOf(whole.slice(0, -1)).filter(
      (chunk) => 'tool_calls' in (chunk.choices[0]?.delta ?? {}),
    );
    assert.ok(calling.length >= 4, JSON.stringify(whole.slice(0, 3)));
    assert.ok(!resume.messages.some((message) => message.data === '[DONE]'), 'not complete');
    assert.equal(mock().completionRequests.length, 1, 'no continuation request');
  });
});

/**
 * Sends `content` on process 0 of two, kills it after a few chunks, and resumes the
 * completion on process 1 until it ends; `whole` is everything a client read.
 */
async function continuedAfterKill(cluster: Cluster, content: string) {
  const [a, b] = cluster.urls as [string, string];
  const { id, client } = await started(a, 4, content);
  let resume: RawSseClient;
  try {
    await cluster.kill(0, 'SIGKILL');
    resume = resumeOf(b, id, client);
    await closedWithin(resume, 'the resumed completion');
  } finally {
    await cluster.restart(0);
  }
  return { resume, whole: [...client.messages, ...resume.messages] };
}

upstreamFailoverTests('a streamed completion', async (cluster) => {
  const { resume, whole } = await continuedAfterKill(cluster, UPSTREAM_PROMPT);
  assert.equal(lastMessage(resume)?.data, '[DONE]');
  // The upstream's continued chunks have ids of their own: rewritten to the first's.
  assert.equal(new Set(chunksOf(whole).map((chunk) => chunk.id)).size, 1, 'one chunk id');
  return textOf(whole);
});
