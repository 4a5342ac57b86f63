import {
  type BenchRedis,
  callsBetween,
  type RedisKind,
  type RedisStats,
  startBenchRedis,
} from '../lib/redis.js';
import type { Step } from '../lib/step.js';
import { type Subject, servers, withServers } from '../targets.js';
import {
  type FanoutOptions,
  type FanoutResult,
  type FanoutSummary,
  measureFanout,
  summarize,
  type WindowHooks,
} from './fanout.js';

/** One target of the scale-out comparison: N processes of a server, sharing a Redis or not. */
export interface Deployment {
  subject: Subject;
  processes: number;
  /** The processes share a private Redis (or cluster), started fresh for every run. */
  redis: RedisKind | undefined;
  env: Record<string, string>;
}

// streamhub's subscribers use the per-topic WebSocket, the transport closest to Socket.IO's.
export const deployments = {
  streamhubRedis: {
    subject: {
      label: 'streamhub ×3, Redis backend',
      server: servers.streamhub,
      transport: 'ws',
    },
    processes: 3,
    redis: 'one',
    env: { BACKEND: 'redis' },
  },
  streamhubCluster: {
    subject: {
      label: 'streamhub ×3, Redis Cluster (3 masters)',
      server: servers.streamhub,
      transport: 'ws',
    },
    processes: 3,
    redis: 'cluster',
    env: { BACKEND: 'redis' },
  },
  streamhubMemory: {
    subject: { label: 'streamhub ×1, memory backend', server: servers.streamhub, transport: 'ws' },
    processes: 1,
    redis: undefined,
    env: {},
  },
  socketioRedis: {
    subject: {
      label: 'Socket.IO 4 ×3, Redis streams adapter',
      server: servers.socketioRedis,
      transport: 'socketio',
    },
    processes: 3,
    redis: 'one',
    env: {},
  },
} satisfies Record<string, Deployment>;

/** What Redis did for the published events, over the same window as the servers' CPU. */
export interface RedisLoad {
  cpuPct: number;
  cpuMicrosPerPublished: number;
  /** From `INFO commandstats`: includes the commands Lua scripts run. */
  commandsPerPublished: number;
  /** The most called commands, calls per published event, most first. */
  topCommands: [string, number][];
  /** From a MONITOR sample after the window: commands sent by clients, per published event. */
  roundTripsPerPublished: number;
  topRoundTrips: [string, number][];
}

export type RateKind = 'max' | 'half';

export interface ScaleOutResult extends FanoutResult {
  deployment: Deployment;
  kind: RateKind;
  redis: RedisLoad | undefined;
}

export type ScaleOutSummary = ScaleOutResult &
  FanoutSummary & {
    /** p99 latency of the fastest and slowest round: how much a busy machine moved it. */
    p99Min: number;
    p99Max: number;
  };

function summarizeScaleOut(runs: readonly ScaleOutResult[]): ScaleOutSummary {
  const p99s = runs.map((r) => r.p99);
  return { ...summarize(runs), p99Min: Math.min(...p99s), p99Max: Math.max(...p99s) };
}

export interface ScaleOutOptions {
  fanout: Omit<FanoutOptions, 'rate'>;
  rounds: number;
  /** How long MONITOR watches at least after each window to count round trips. */
  monitorMs: number;
  /** The deployments to measure (default: all), e.g. to measure only streamhub's. */
  deployments: readonly DeploymentName[];
}

export interface ScaleOutReport {
  opts: ScaleOutOptions;
  rows: ScaleOutSummary[];
}

const perEvent = (calls: Map<string, number>, published: number): [string, number][] =>
  [...calls]
    .map(([name, n]): [string, number] => [name, n / published])
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));

const total = (calls: Map<string, number>) => [...calls.values()].reduce((a, b) => a + b, 0);

/**
 * Long enough for a few hundred publishes: the POSTs in flight at the sample's edges are
 * counted as published but may not have reached Redis yet, an error of ~publishers ÷ events.
 */
function monitorDuration(minMs: number, events: number, elapsedMs: number): number {
  const msFor300 = (300 * elapsedMs) / events;
  return Math.min(5000, Math.max(minMs, msFor300));
}

/**
 * Samples Redis around the measured window: INFO at its edges (CPU, commandstats), then a
 * MONITOR sample while the load still runs. MONITOR makes Redis echo every command, so it must
 * stay out of the CPU window; it is the only way to tell a client's round trip from a command
 * a Lua script runs, which commandstats counts alike.
 */
function redisProbe(redis: BenchRedis, monitorMs: number) {
  let before: { stats: RedisStats; published: number; t: number } | undefined;
  let load: RedisLoad | undefined;
  const hooks: WindowHooks = {
    async begin(published) {
      before = { stats: await redis.stats(), published: published(), t: performance.now() };
    },
    async end(published) {
      if (!before) return;
      const stats = await redis.stats();
      const elapsedMs = performance.now() - before.t;
      const events = Math.max(1, published() - before.published);
      const calls = callsBetween(before.stats, stats);
      const cpuMicros = stats.cpuMicros - before.stats.cpuMicros;
      const duration = monitorDuration(monitorMs, events, elapsedMs);
      const sample = await redis.sampleCommands(duration, published);
      const sampled = Math.max(1, sample.counted);
      load = {
        cpuPct: (cpuMicros / (elapsedMs * 1000)) * 100,
        cpuMicrosPerPublished: cpuMicros / events,
        commandsPerPublished: total(calls) / events,
        topCommands: perEvent(calls, events),
        roundTripsPerPublished: sample.clientCommands / sampled,
        topRoundTrips: perEvent(sample.byCommand, sampled),
      };
    },
  };
  return { hooks, result: () => load };
}

/** Runs `fn` with a fresh private Redis of `kind` (none if undefined), stopped afterwards. */
export async function withRedis<T>(
  kind: RedisKind | undefined,
  fn: (redis: BenchRedis | undefined) => Promise<T>,
): Promise<T> {
  const redis = kind ? await startBenchRedis(kind) : undefined;
  try {
    return await fn(redis);
  } finally {
    await redis?.stop();
  }
}

/** One run on fresh processes (and a fresh Redis), so no run inherits another's state. */
export function runScaleOut(
  d: Deployment,
  kind: RateKind,
  opts: FanoutOptions,
  monitorMs: number,
): Promise<ScaleOutResult> {
  return withRedis(d.redis, (redis) => {
    const env = { ...d.env, ...redis?.env };
    return withServers(d.subject.server, d.processes, env, async (procs) => {
      const probe = redis ? redisProbe(redis, monitorMs) : undefined;
      const r = await measureFanout(d.subject, procs, opts, probe?.hooks);
      const load = probe?.result();
      // Redis is part of the system under test, not background noise.
      const otherCpuPct = Math.max(0, r.otherCpuPct - (load?.cpuPct ?? 0));
      return { ...r, otherCpuPct, deployment: d, kind, redis: load };
    });
  });
}

const isStreamhub = (d: Deployment) => d.subject.server === servers.streamhub;

export type DeploymentName = keyof typeof deployments;

/** Every deployment, in the order a round runs them. */
export const ALL_DEPLOYMENTS: readonly DeploymentName[] = [
  'streamhubRedis',
  'streamhubCluster',
  'streamhubMemory',
  'socketioRedis',
];

/**
 * Every round measures each deployment's maximum rate, then all of them at one common rate:
 * half of streamhub-on-Redis's maximum of that round (the latency target), so the
 * half-rate rows compare the same load. Rounds interleave the deployments so that background
 * load drifting over time hits all alike.
 */
export async function runScaleOutScenario(
  opts: ScaleOutOptions,
  attempt: Step,
): Promise<ScaleOutReport> {
  const runs = new Map<string, ScaleOutResult[]>();
  const keep = (r: ScaleOutResult) => {
    const key = `${r.deployment.subject.label} @ ${r.kind}`;
    runs.set(key, [...(runs.get(key) ?? []), r]);
  };
  for (let round = 1; round <= opts.rounds; round++) {
    const progress = opts.rounds > 1 ? ` [round ${round}/${opts.rounds}]` : '';
    const maxRates = new Map<Deployment, number>();
    const measure = (d: Deployment, kind: RateKind, rate: number | 'max') =>
      attempt(`${d.subject.label} @ ${kind}`, isStreamhub(d), progress, async () => {
        const r = await runScaleOut(d, kind, { ...opts.fanout, rate }, opts.monitorMs);
        if (kind === 'max') maxRates.set(d, r.publishedPerSec);
        keep(r);
      });
    const order = opts.deployments.map((name) => deployments[name]);
    for (const d of order) await measure(d, 'max', 'max');
    const common = maxRates.get(deployments.streamhubRedis);
    for (const d of order) {
      // Without streamhub's own maximum (e.g. its run failed), each falls back on its own.
      const max = common ?? maxRates.get(d);
      if (max) await measure(d, 'half', Math.max(1, Math.round(max / 2)));
    }
  }
  return { opts, rows: [...runs.values()].map(summarizeScaleOut) };
}
