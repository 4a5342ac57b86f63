/** Helpers of the failover tests (docs/api.md §13): which process generates, and what it sends upstream. */
import assert from 'node:assert/strict';
import { after, before, describe, type TestContext, test } from 'node:test';
import { CONTINUE_INSTRUCTION } from '../../src/llm/continuation.js';
import { type Cluster, useRedisCluster } from './cluster.js';
import { eventually, request } from './http.js';
import { MockUpstream, type UpstreamBehaviour, upstream } from './mock-upstream.js';
import { RawSseClient } from './sse-client.js';

/**
 * Short, so that a test takes seconds; renewed every 500 ms, so a process must stall for a
 * second to lose it spuriously (which the tests counting attempts would notice; elsewhere an
 * extra takeover is harmless).
 */
export const LEASE_MS = 1500;

/** The three processes of the mock model's failover tests. */
export const FAILOVER_SETTINGS: Readonly<Record<string, string>> = {
  HEARTBEAT_MS: '1000',
  MOCK_TOKENS_PER_SEC: '50',
  SESSION_LEASE_MS: String(LEASE_MS),
  SESSION_FAILOVER_MAX: '2',
  SHUTDOWN_GRACE_MS: '1000',
};

/**
 * Where a reply is killed (after so many of its events), and which process generates it,
 * which one a reader resumes on, and which one replays it after: a different one each round.
 */
export const KILL_ROUNDS = [3, 45, 100].map((killAfter, round) => ({
  killAfter,
  generating: round % 3,
  reading: (round + 1) % 3,
  replaying: (round + 2) % 3,
}));

/** The three processes of the mock model's failover tests; call it inside `describe`. */
export function useFailoverCluster() {
  const setup = useRedisCluster(3, FAILOVER_SETTINGS);
  return { cluster: () => setup().cluster, urls: () => setup().cluster.urls };
}

type KillRound = (typeof KILL_ROUNDS)[number];

/** Plays `round` for each of KILL_ROUNDS and reports the pause (ms) each one measured. */
export async function killRounds(
  t: TestContext,
  round: (kill: KillRound) => Promise<number>,
): Promise<void> {
  const pauses: number[] = [];
  for (const kill of KILL_ROUNDS) pauses.push(await round(kill));
  t.diagnostic(
    `longest pause a reader saw per kill: ${pauses.join(', ')} ms (lease ${LEASE_MS} ms)`,
  );
}

/**
 * Records when a reader's `count` of events grows (from `since` on, when given), to measure
 * the longest pause between two arrivals.
 */
export function arrivals(count: () => number, since?: number) {
  const times: number[] = since === undefined ? [] : [since];
  const known = times.length;
  const timer = setInterval(() => {
    while (times.length - known < count()) times.push(performance.now());
  }, 2);
  return {
    stop: () => clearInterval(timer),
    longestPauseMs: () =>
      Math.round(Math.max(0, ...times.slice(1).map((time, i) => time - (times[i] as number)))),
  };
}

/** Long enough to kill mid-reply, short enough for the seam's window. */
export const UPSTREAM_REPLY =
  'Failover keeps a reply going: another process asks the model again with the partial text.';

const clients: RawSseClient[] = [];
after(() => {
  for (const client of clients.splice(0)) client.close();
});

/** A RawSseClient, closed once the tests of the file are done. */
export function sse(
  url: string,
  headers: Record<string, string> = {},
  body?: unknown,
): RawSseClient {
  const client = new RawSseClient(url, headers, body);
  clients.push(client);
  return client;
}

export async function generationsOn(url: string): Promise<number> {
  return ((await request(`${url}/v1/stats`)).json as { generations: number }).generations;
}

/** The index, among `alive`, of the process generating now. */
export async function generator(
  urls: readonly string[],
  alive: readonly number[],
): Promise<number> {
  let found: number | undefined;
  await eventually(async () => {
    for (const index of alive) {
      if ((await generationsOn(urls[index] as string)) > 0) found = index;
    }
    return found !== undefined;
  }, 'a process generating the reply');
  return found as number;
}

/**
 * Two processes on the fault-injecting upstream, which answers with `behaviour`; call it
 * inside `describe`.
 */
export function useUpstreamCluster(
  behaviour: () => UpstreamBehaviour,
  settings: Record<string, string> = {},
) {
  let mock: MockUpstream | undefined;
  const env: Record<string, string> = {
    LLM_PROVIDER: 'openai',
    OPENAI_API_KEY: 'test-key',
    SESSION_LEASE_MS: String(LEASE_MS),
    ...settings,
  };
  before(async () => {
    mock = await MockUpstream.start();
    mock.defaultBehaviour = behaviour();
    env.OPENAI_BASE_URL = mock.baseURL;
  });
  after(() => mock?.close());
  const setup = useRedisCluster(2, env);
  return {
    mock: () => mock as MockUpstream,
    cluster: () => setup().cluster,
  };
}

/** The user message the upstream tests send. */
export const UPSTREAM_PROMPT = 'keep going';

/**
 * Against the fault-injecting upstream, which ignores continuation requests and starts its
 * reply over: what each strategy sends, and what a reader then gets. `continueOne` sends
 * UPSTREAM_PROMPT on process 0, kills it mid-reply, reads the reply to its end on process 1,
 * and resolves to its text.
 */
export function upstreamFailoverTests(
  what: string,
  continueOne: (cluster: Cluster) => Promise<string>,
): void {
  for (const strategy of ['prefix', 'instruction'] as const) {
    describe(`${what} continued with LLM_CONTINUATION=${strategy} against an OpenAI-compatible upstream`, () => {
      const { mock, cluster } = useUpstreamCluster(
        () => upstream.ok({ reply: UPSTREAM_REPLY, tokenDelayMs: 80 }),
        { LLM_CONTINUATION: strategy },
      );

      test('the continuation request carries the partial reply as the strategy says', {
        timeout: 60_000,
      }, async () => {
        const text = await continueOne(cluster());
        const [first, continued] = mock().completionRequests.map(
          (r) => r.body as Record<string, unknown>,
        );
        assert.deepEqual(first?.messages, [{ role: 'user', content: UPSTREAM_PROMPT }]);
        const messages = continued?.messages as { role: string; content: string }[];
        const partial = messages[1]?.content ?? '';
        assert.ok(partial.length > 0 && UPSTREAM_REPLY.startsWith(partial), partial);
        const asked = { role: 'user', content: UPSTREAM_PROMPT };
        if (strategy === 'prefix') {
          assert.deepEqual(messages, [
            asked,
            { role: 'assistant', content: partial, prefix: true },
          ]);
          assert.equal(continued?.continue_final_message, true);
          assert.equal(continued?.add_generation_prompt, false);
          // Prefix mode trusts the upstream to write only the rest: one that starts over repeats.
          assert.equal(text, partial + UPSTREAM_REPLY);
        } else {
          assert.deepEqual(messages, [
            asked,
            { role: 'assistant', content: partial },
            { role: 'user', content: CONTINUE_INSTRUCTION },
          ]);
          assert.equal(continued?.continue_final_message, undefined);
          // The upstream started over: the repeated partial text is trimmed at the seam.
          assert.equal(text, UPSTREAM_REPLY);
        }
      });
    });
  }
}
