import { Agent } from 'node:http';
import { loadavg } from 'node:os';
import { streamChat } from '../lib/llm.js';
import { type ServerProcess, sampleProc, sleep } from '../lib/proc.js';
import {
  type BenchRedis,
  callsBetween,
  type RedisKind,
  type RedisStats,
  sumStats,
} from '../lib/redis.js';
import type { Step } from '../lib/step.js';
import { count, fmt, markdownTable } from '../lib/table.js';
import { servers, withServers } from '../targets.js';
import { withRedis } from './scale-out.js';

/**
 * The load LLM traffic puts on streamhub (issue 14): not one hot topic but many small reply
 * logs, each appended once per token. `replies` chats run at once, each streaming the built-in
 * mock model's reply (about 110 tokens) at `tokensPerSec`; one ending starts the next, on a new
 * session, so the number of replies in flight stays put. Chats go to the processes in turn.
 */
export interface RepliesOptions {
  replies: number;
  tokensPerSec: number;
  /** With the servers up and no chat yet: how busy Redis is with no load (cron, cluster bus). */
  idleMs: number;
  /** From the first chat until the window: long enough for every chat slot to have started. */
  warmupMs: number;
  measureMs: number;
  rounds: number;
}

interface ReplyTarget {
  label: string;
  processes: number;
  redis: RedisKind | undefined;
}

const TARGETS: readonly ReplyTarget[] = [
  { label: 'streamhub ×3, one Redis', processes: 3, redis: 'one' },
  { label: 'streamhub ×3, Redis Cluster (3 masters)', processes: 3, redis: 'cluster' },
  { label: 'streamhub ×1, memory backend', processes: 1, redis: undefined },
];

/** One master's part of the window's Redis work, as fractions of all masters'. */
export interface MasterShare {
  appends: number;
  cpu: number;
}

export interface RepliesResult {
  target: ReplyTarget;
  /** Content tokens that reached the clients in the window, per second. */
  tokensPerSec: number;
  serverCpuPct: number;
  serverMicrosPerToken: number;
  serverRssMiB: number;
  /**
   * Redis, from its own counters (`INFO cpu`, `INFO commandstats`; summed over a cluster's
   * masters), so other processes on the machine do not count: its CPU per appended event
   * (XADD: the tokens plus each reply's start and end).
   */
  redisCpuPct: number | undefined;
  redisMicrosPerAppend: number | undefined;
  redisMicrosPerToken: number | undefined;
  /** Redis CPU % before the chats: a cost that does not grow with the replies. */
  redisIdleCpuPct: number | undefined;
  /** Redis CPU per append above that idle CPU: what each further reply adds. */
  redisMicrosPerAppendAboveIdle: number | undefined;
  commandsPerAppend: number | undefined;
  /** `used_memory` growth per reply finished in the window: what a retained reply costs. */
  redisBytesPerReply: number | undefined;
  /** Each master's share of the appends and of the CPU; one entry for a single Redis. */
  masters: MasterShare[];
  repliesDone: number;
  failed: number;
  /** 1-minute load average at the window's end: the machine's other tenants. */
  loadAverage: number;
}

/** Keeps `opts.replies` chats running until `stop()`, counting tokens and replies. */
function replyLoad(procs: readonly ServerProcess[], opts: RepliesOptions) {
  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  const counts = { tokens: 0, done: 0, failed: 0 };
  let running = true;
  let next = 0;
  const slot = async (index: number) => {
    // Spread over one reply's duration, so replies do not start and end in waves.
    await sleep((index * 110 * 1000) / opts.tokensPerSec / opts.replies);
    while (running) {
      const n = next++;
      const result = await streamChat({
        api: 'session',
        port: (procs[n % procs.length] as ServerProcess).port,
        agent,
        model: 'streamhub-mock',
        maxTokens: 1000,
        sessionId: `bench-reply-${n}`,
        onToken: () => counts.tokens++,
        timeoutMs: 120_000,
      });
      if (result.complete) counts.done++;
      else counts.failed++;
    }
  };
  const slots = Array.from({ length: opts.replies }, (_, i) => slot(i));
  return {
    counts,
    async stop() {
      running = false;
      await Promise.all(slots);
      agent.destroy();
    },
  };
}

const cpuOf = (procs: readonly ServerProcess[]) =>
  procs.reduce((sum, p) => sum + sampleProc(p.pid).cpuMicros, 0);

function masterShare(
  before: RedisStats,
  after: RedisStats,
  appends: number,
  cpuMicros: number,
): MasterShare {
  return {
    appends: (callsBetween(before, after).get('xadd') ?? 0) / appends,
    cpu: (after.cpuMicros - before.cpuMicros) / Math.max(1, cpuMicros),
  };
}

type RedisFigures = Pick<
  RepliesResult,
  | 'redisCpuPct'
  | 'redisMicrosPerAppend'
  | 'redisMicrosPerToken'
  | 'redisIdleCpuPct'
  | 'redisMicrosPerAppendAboveIdle'
  | 'commandsPerAppend'
  | 'redisBytesPerReply'
  | 'masters'
>;

const NO_REDIS: RedisFigures = {
  redisCpuPct: undefined,
  redisMicrosPerAppend: undefined,
  redisMicrosPerToken: undefined,
  redisIdleCpuPct: undefined,
  redisMicrosPerAppendAboveIdle: undefined,
  commandsPerAppend: undefined,
  redisBytesPerReply: undefined,
  masters: [],
};

/** Redis CPU % (all masters) over `ms` of whatever runs now. */
async function redisCpuPct(redis: BenchRedis, ms: number): Promise<number> {
  const before = { stats: await redis.stats(), t: performance.now() };
  await sleep(ms);
  const cpu = (await redis.stats()).cpuMicros - before.stats.cpuMicros;
  return (cpu / ((performance.now() - before.t) * 1000)) * 100;
}

interface Window {
  elapsedMicros: number;
  tokens: number;
  repliesDone: number;
}

/** What the masters' own counters say about the window, from their figures at its edges. */
function redisFigures(
  mastersBefore: readonly RedisStats[],
  mastersAfter: readonly RedisStats[],
  idleCpuPct: number,
  w: Window,
): RedisFigures {
  const [before, after] = [sumStats(mastersBefore), sumStats(mastersAfter)];
  const calls = callsBetween(before, after);
  const appends = Math.max(1, calls.get('xadd') ?? 0);
  const cpu = after.cpuMicros - before.cpuMicros;
  const idleCpu = (idleCpuPct / 100) * w.elapsedMicros;
  const commands = [...calls.values()].reduce((a, b) => a + b, 0);
  const grown = after.usedMemoryBytes - before.usedMemoryBytes;
  return {
    redisCpuPct: (cpu / w.elapsedMicros) * 100,
    redisMicrosPerAppend: cpu / appends,
    redisMicrosPerToken: cpu / w.tokens,
    redisIdleCpuPct: idleCpuPct,
    redisMicrosPerAppendAboveIdle: Math.max(0, cpu - idleCpu) / appends,
    commandsPerAppend: commands / appends,
    redisBytesPerReply: grown / Math.max(1, w.repliesDone),
    masters: mastersBefore.map((b, i) => masterShare(b, mastersAfter[i] ?? b, appends, cpu)),
  };
}

async function measureReplies(
  target: ReplyTarget,
  procs: readonly ServerProcess[],
  redis: BenchRedis | undefined,
  opts: RepliesOptions,
): Promise<RepliesResult> {
  const idleCpuPct = redis && (await redisCpuPct(redis, opts.idleMs));
  const load = replyLoad(procs, opts);
  try {
    await sleep(opts.warmupMs);
    const before = { ...load.counts, cpu: cpuOf(procs), t: performance.now() };
    const mastersBefore: RedisStats[] | undefined = await redis?.masterStats();
    await sleep(opts.measureMs);
    const mastersAfter = await redis?.masterStats();
    const cpu = cpuOf(procs) - before.cpu;
    const elapsedMicros = (performance.now() - before.t) * 1000;
    const tokens = Math.max(1, load.counts.tokens - before.tokens);
    const repliesDone = load.counts.done - before.done;
    const rss = procs.reduce((sum, p) => sum + sampleProc(p.pid).rssBytes, 0);
    const measured = mastersBefore && mastersAfter && idleCpuPct !== undefined;
    return {
      target,
      tokensPerSec: (tokens * 1e6) / elapsedMicros,
      serverCpuPct: (cpu / elapsedMicros) * 100,
      serverMicrosPerToken: cpu / tokens,
      serverRssMiB: rss / 2 ** 20,
      ...(measured
        ? redisFigures(mastersBefore, mastersAfter, idleCpuPct, {
            elapsedMicros,
            tokens,
            repliesDone,
          })
        : NO_REDIS),
      repliesDone,
      failed: load.counts.failed - before.failed,
      loadAverage: loadavg()[0] ?? Number.NaN,
    };
  } finally {
    await load.stop();
  }
}

/** Room for every chat: the defaults queue generations past 64 at once. */
const streamhubEnv = (opts: RepliesOptions) => ({
  MOCK_TOKENS_PER_SEC: String(opts.tokensPerSec),
  LLM_MAX_CONCURRENCY: String(opts.replies),
  LLM_QUEUE_MAX: String(opts.replies),
});

export async function runRepliesScenario(
  opts: RepliesOptions,
  attempt: Step,
): Promise<RepliesResult[]> {
  const results: RepliesResult[] = [];
  for (let round = 1; round <= opts.rounds; round++) {
    const progress = opts.rounds > 1 ? ` [round ${round}/${opts.rounds}]` : '';
    for (const target of TARGETS) {
      await attempt(target.label, true, progress, () =>
        withRedis(target.redis, async (redis) => {
          const env = redis
            ? { ...streamhubEnv(opts), BACKEND: 'redis', ...redis.env }
            : streamhubEnv(opts);
          await withServers(servers.streamhub, target.processes, env, async (procs) => {
            results.push(await measureReplies(target, procs, redis, opts));
          });
        }),
      );
    }
  }
  return results;
}

/** `34 / 33 / 33`: each master's share in %, for a cluster only. */
function shares(masters: readonly MasterShare[], of: (m: MasterShare) => number) {
  if (masters.length < 2) return undefined;
  return masters.map((m) => (of(m) * 100).toFixed(0)).join(' / ');
}

export function renderReplies(opts: RepliesOptions, results: readonly RepliesResult[]): string {
  const headers = [
    'target',
    'tokens/s delivered',
    'replies done',
    'failed',
    'server CPU %',
    'server CPU µs/token',
    'Redis CPU %',
    'Redis CPU µs/append',
    'Redis CPU µs/token',
    'Redis CPU % idle',
    'Redis CPU µs/append above idle',
    'Redis commands/append',
    'Redis KB/reply kept (log + session)',
    'masters: % of appends',
    'masters: % of Redis CPU',
    'server RSS MiB',
    'load avg (1 min)',
  ];
  const rows = results.map((r) => [
    r.target.label,
    count(r.tokensPerSec),
    count(r.repliesDone),
    count(r.failed),
    fmt(r.serverCpuPct),
    fmt(r.serverMicrosPerToken),
    fmt(r.redisCpuPct),
    fmt(r.redisMicrosPerAppend),
    fmt(r.redisMicrosPerToken),
    fmt(r.redisIdleCpuPct),
    fmt(r.redisMicrosPerAppendAboveIdle),
    fmt(r.commandsPerAppend),
    r.redisBytesPerReply === undefined ? undefined : fmt(r.redisBytesPerReply / 1024),
    shares(r.masters, (m) => m.appends),
    shares(r.masters, (m) => m.cpu),
    fmt(r.serverRssMiB),
    fmt(r.loadAverage),
  ]);
  const what = `${opts.replies} concurrent replies at ${opts.tokensPerSec} tokens/s`;
  const window = `${opts.idleMs / 1000} s idle, ${opts.warmupMs / 1000} s warm-up, ${opts.measureMs / 1000} s measured`;
  return [`### Replies: ${what} (${window})`, '', markdownTable(headers, rows)].join('\n');
}
