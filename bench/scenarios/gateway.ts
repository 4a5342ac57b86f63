import { Agent } from 'node:http';
import { type ChatApi, type ChatResult, streamChat } from '../lib/llm.js';
import { HOST, type ServerProcess, sampleMachine, sampleProc, sleep } from '../lib/proc.js';
import { LatencyHistogram, median, percentile } from '../lib/stats.js';
import type { Step } from '../lib/step.js';
import { type Server, servers, withServer } from '../targets.js';

/**
 * LLM gateway overhead: the same streaming chats read directly from a fake OpenAI-compatible
 * upstream, through a bare `node:http` pass-through proxy (the floor of one Node hop) and
 * through streamhub, in one run, on one machine.
 */

export interface GatewayOptions {
  /** Front door throughput: completions of `tokens` tokens streamed as fast as possible. */
  throughput: { rounds: number; perRound: number; tokens: number };
  /** Front door time to first token: short paced completions, one at a time. */
  ttft: { rounds: number; perRound: number };
  /** Many concurrent paced chats. */
  chats: { count: number; tokens: number; tps: number; staggerMs: number; rounds: number };
  /**
   * Before measuring, each path serves `requests` sequential pairs of front-door completions,
   * and each chat process `chats` concurrent chats of `chatTokens` tokens: a gateway still
   * compiling its hot functions (streamhub, with more code than the raw proxy, was after 2,500
   * requests) would be measured at its start-up, not as it serves.
   */
  warmup: { requests: number; chats: number; chatTokens: number };
  settleMs: number;
  /** Only these paths' concurrent chats, without the front door (`BENCH_GATEWAY_PATHS`). */
  paths?: readonly GatewayPath[];
}

/**
 * How a chat reaches the upstream: directly, through the raw proxy, or through streamhub's
 * front door (`POST /v1/chat/completions`) or its chat sessions (`POST /v1/chat`).
 */
export type GatewayPath = 'direct' | 'proxy' | 'completions' | 'session';

export const PATH_LABELS: Record<GatewayPath, string> = {
  direct: 'direct (fake upstream)',
  proxy: 'raw proxy (`node:http` pipe)',
  completions: 'streamhub `POST /v1/chat/completions`',
  session: 'streamhub `POST /v1/chat`',
};

/** A per-round figure over the rounds: the median round and the extremes. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  rounds: number;
}

function spread(values: readonly number[]): Spread {
  const s = sorted(values);
  return {
    median: median(s),
    min: s[0] ?? Number.NaN,
    max: s.at(-1) ?? Number.NaN,
    rounds: s.length,
  };
}

/** One path of the sequential front-door comparison. */
export interface FrontDoorRow {
  path: GatewayPath;
  completions: number;
  tokens: number;
  /** Median over completions of tokens ÷ (request sent → last token). */
  tokensPerSec: number;
  tokensPerSecMin: number;
  tokensPerSecMax: number;
  ttftP50: number;
  ttftP99: number;
  ttftSamples: number;
  /** CPU per streamed token, summed over this path's throughput completions only. */
  gatewayMicrosPerToken: number;
  upstreamMicrosPerToken: number;
  loadgenMicrosPerToken: number;
  failures: number;
}

/** `path` against `against`, each figure compared within a round, then over the rounds. */
export interface FrontDoorComparison {
  path: GatewayPath;
  against: GatewayPath;
  /** Median tokens/s of `path` ÷ that of `against`. */
  throughputRatio: Spread;
  /** TTFT p50 of `path` − that of `against`, ms. */
  addedTtftP50: Spread;
}

export interface FrontDoorReport {
  rows: FrontDoorRow[];
  comparisons: FrontDoorComparison[];
}

export interface ChatsRow {
  path: GatewayPath;
  chats: number;
  complete: number;
  tokens: number;
  failures: string[];
  gapP50: number;
  gapP99: number;
  gapP999: number;
  gapMax: number;
  ttftP50: number;
  ttftP99: number;
  /** The process between client and upstream (none for `direct`), over the run, in % of one CPU. */
  gatewayCpuPct: number;
  upstreamCpuPct: number;
  loadgenCpuPct: number;
  otherCpuPct: number;
  gatewayMicrosPerToken: number;
  /** Gateway RSS after warm-up, idle. */
  rssIdleMiB: number;
  /** Median gateway RSS sample while every chat was in flight. */
  rssActiveMiB: number;
  kibPerChat: number;
  rounds: number;
}

/** `path` against `against`, round by round. */
export interface ChatsComparison {
  path: GatewayPath;
  against: GatewayPath;
  /** Gap p99 of `path` − that of `against`, ms. */
  addedGapP99: Spread;
  /** Gateway CPU per token of `path` ÷ that of `against` (NaN against `direct`). */
  cpuPerTokenRatio: Spread;
}

export interface GatewayReport {
  opts: GatewayOptions;
  frontDoor: FrontDoorReport | undefined;
  chats: ChatsRow[];
  chatComparisons: ChatsComparison[];
}

const FRONT_DOOR_PATHS: readonly GatewayPath[] = ['direct', 'proxy', 'completions'];
export const CHAT_PATHS: readonly GatewayPath[] = ['direct', 'proxy', 'completions', 'session'];
/** Each hop against the floor below it, and streamhub against the client's own view. */
const FRONT_DOOR_PAIRS = [
  ['proxy', 'direct'],
  ['completions', 'proxy'],
  ['completions', 'direct'],
] as const satisfies readonly (readonly [GatewayPath, GatewayPath])[];
const CHAT_PAIRS = [
  ['proxy', 'direct'],
  ['completions', 'proxy'],
  ['completions', 'direct'],
  ['session', 'proxy'],
  ['session', 'direct'],
] as const satisfies readonly (readonly [GatewayPath, GatewayPath])[];

/** streamhub as a gateway in front of the fake upstream, with room for every bench chat. */
const streamhubEnv = (upstream: ServerProcess) => ({
  LLM_PROVIDER: 'openai',
  OPENAI_BASE_URL: `http://${HOST}:${upstream.port}/v1`,
  OPENAI_API_KEY: 'x',
  LLM_MAX_CONCURRENCY: '1000',
  LLM_QUEUE_MAX: '1000',
});

/** The process a path goes through, in front of the upstream; none for `direct`. */
function gatewayOf(
  path: GatewayPath,
  upstream: ServerProcess,
): { server: Server; env: Record<string, string> } | undefined {
  if (path === 'direct') return undefined;
  if (path === 'proxy') {
    return { server: servers.rawProxy, env: { UPSTREAM_URL: `http://${HOST}:${upstream.port}` } };
  }
  return { server: servers.streamhub, env: streamhubEnv(upstream) };
}

/** Starts `path`'s gateway process (if it has one), runs `fn`, and stops it. */
function withGateway<T>(
  path: GatewayPath,
  upstream: ServerProcess,
  fn: (gateway: ServerProcess | undefined) => Promise<T>,
): Promise<T> {
  const gateway = gatewayOf(path, upstream);
  return gateway ? withServer(gateway.server, gateway.env, fn) : fn(undefined);
}

const MAX_MODEL = 'bench-max';
/** TTFT completions: the first token leaves the upstream at once, then two more 10 ms apart. */
const TTFT_MODEL = 'bench-100tps';
const TTFT_TOKENS = 3;

const cpuMicros = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

interface CpuTimes {
  /** NaN without a gateway process. */
  gateway: number;
  upstream: number;
  loadgen: number;
}

/** Starts a CPU stopwatch on the gateway (if any), the upstream and this load generator. */
function cpuStopwatch(gateway: ServerProcess | undefined, upstream: ServerProcess) {
  const read = (): CpuTimes => ({
    gateway: gateway ? sampleProc(gateway.pid).cpuMicros : Number.NaN,
    upstream: sampleProc(upstream.pid).cpuMicros,
    loadgen: cpuMicros(),
  });
  const start = read();
  return (): CpuTimes => {
    const now = read();
    return {
      gateway: now.gateway - start.gateway,
      upstream: now.upstream - start.upstream,
      loadgen: now.loadgen - start.loadgen,
    };
  };
}

const sorted = (values: readonly number[]) => [...values].sort((a, b) => a - b);

/** `list` rotated left by `by`: each path takes each place in turn. */
const rotate = <T>(list: readonly T[], by: number) => {
  const k = by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
};

/** One path of the front-door comparison and what it measured, round by round. */
interface FrontDoorPath {
  path: GatewayPath;
  port: number;
  gateway: ServerProcess | undefined;
  /** One keep-alive connection, as a single client would hold. */
  agent: Agent;
  tputRounds: number[][];
  ttftRounds: number[][];
  tokens: number;
  cpu: CpuTimes;
  failures: number;
}

const frontDoorPath = (
  path: GatewayPath,
  upstream: ServerProcess,
  gateway: ServerProcess | undefined,
): FrontDoorPath => ({
  path,
  port: (gateway ?? upstream).port,
  gateway,
  agent: new Agent({ keepAlive: true, maxSockets: 1 }),
  tputRounds: [],
  ttftRounds: [],
  tokens: 0,
  cpu: { gateway: 0, upstream: 0, loadgen: 0 },
  failures: 0,
});

/**
 * Sequential completions over `POST /v1/chat/completions`, rotating through the paths request
 * by request, so drifting background load on a shared machine hits every path alike.
 */
async function frontDoor(upstream: ServerProcess, opts: GatewayOptions): Promise<FrontDoorReport> {
  return withGateway('proxy', upstream, (proxy) =>
    withGateway('completions', upstream, async (streamhub) => {
      const gateways: Partial<Record<GatewayPath, ServerProcess>> = {
        proxy,
        completions: streamhub,
      };
      const paths = FRONT_DOOR_PATHS.map((path) => frontDoorPath(path, upstream, gateways[path]));
      try {
        await measureFrontDoor(paths, upstream, opts);
      } finally {
        for (const p of paths) p.agent.destroy();
      }
      return {
        rows: paths.map((p) => frontDoorRow(p, opts)),
        comparisons: FRONT_DOOR_PAIRS.map(([path, against]) =>
          compareFrontDoor(pathOf(paths, path), pathOf(paths, against)),
        ),
      };
    }),
  );
}

const pathOf = <T extends { path: GatewayPath }>(list: readonly T[], path: GatewayPath): T => {
  const found = list.find((p) => p.path === path);
  if (!found) throw new Error(`no ${path} path measured`);
  return found;
};

async function measureFrontDoor(
  paths: FrontDoorPath[],
  upstream: ServerProcess,
  opts: GatewayOptions,
): Promise<void> {
  const one = (p: FrontDoorPath, model: string, maxTokens: number) =>
    streamChat({ api: 'completions', port: p.port, agent: p.agent, model, maxTokens });
  const check = (p: FrontDoorPath, r: ChatResult, expected: number) => {
    if (!r.complete || r.tokens !== expected) {
      p.failures++;
      return false;
    }
    return true;
  };
  // JIT, the gateways' upstream connection pools and the keep-alive sockets warm up first.
  for (let i = 0; i < opts.warmup.requests; i++) {
    for (const p of paths) {
      await one(p, MAX_MODEL, 50);
      await one(p, TTFT_MODEL, TTFT_TOKENS);
    }
  }
  await sleep(opts.settleMs);

  for (let round = 0; round < opts.throughput.rounds; round++) {
    for (const p of paths) p.tputRounds.push([]);
    for (let i = 0; i < opts.throughput.perRound; i++) {
      for (const p of rotate(paths, i + round)) {
        const elapsed = cpuStopwatch(p.gateway, upstream);
        const r = await one(p, MAX_MODEL, opts.throughput.tokens);
        const cpu = elapsed();
        p.cpu.gateway += cpu.gateway;
        p.cpu.upstream += cpu.upstream;
        p.cpu.loadgen += cpu.loadgen;
        p.tokens += r.tokens;
        if (check(p, r, opts.throughput.tokens)) {
          p.tputRounds.at(-1)?.push((r.tokens * 1000) / r.lastTokenMs);
        }
      }
    }
  }

  for (let round = 0; round < opts.ttft.rounds; round++) {
    for (const p of paths) p.ttftRounds.push([]);
    for (let i = 0; i < opts.ttft.perRound; i++) {
      for (const p of rotate(paths, i + round)) {
        const r = await one(p, TTFT_MODEL, TTFT_TOKENS);
        if (check(p, r, TTFT_TOKENS)) p.ttftRounds.at(-1)?.push(r.ttftMs);
      }
    }
  }
}

function frontDoorRow(p: FrontDoorPath, opts: GatewayOptions): FrontDoorRow {
  const tps = sorted(p.tputRounds.flat());
  const ttft = sorted(p.ttftRounds.flat());
  return {
    path: p.path,
    completions: tps.length,
    tokens: opts.throughput.tokens,
    tokensPerSec: median(tps),
    tokensPerSecMin: tps[0] ?? Number.NaN,
    tokensPerSecMax: tps.at(-1) ?? Number.NaN,
    ttftP50: percentile(ttft, 50),
    ttftP99: percentile(ttft, 99),
    ttftSamples: ttft.length,
    gatewayMicrosPerToken: p.cpu.gateway / p.tokens,
    upstreamMicrosPerToken: p.cpu.upstream / p.tokens,
    loadgenMicrosPerToken: p.cpu.loadgen / p.tokens,
    failures: p.failures,
  };
}

/** Compared within each round, then summarized: drifting background load moves both alike. */
function compareFrontDoor(a: FrontDoorPath, b: FrontDoorPath): FrontDoorComparison {
  const perRound = (
    pick: (p: FrontDoorPath) => number[][],
    f: (x: number[], y: number[]) => number,
  ) => spread(pick(a).map((x, i) => f(sorted(x), sorted(pick(b)[i] ?? []))));
  return {
    path: a.path,
    against: b.path,
    throughputRatio: perRound(
      (p) => p.tputRounds,
      (x, y) => median(x) / median(y),
    ),
    addedTtftP50: perRound(
      (p) => p.ttftRounds,
      (x, y) => percentile(x, 50) - percentile(y, 50),
    ),
  };
}

interface ChatsRun {
  round: number;
  row: ChatsRow;
  gaps: LatencyHistogram;
  ttft: number[];
}

/**
 * `count` chats started over `staggerMs` (so connection setup is not what gets measured), each
 * streaming `tokens` tokens at `tps` from the upstream. Through a gateway, a fresh process per
 * run so its idle RSS is a clean baseline and earlier runs' retained replies do not count.
 */
function chatsRun(
  upstream: ServerProcess,
  path: GatewayPath,
  round: number,
  opts: GatewayOptions,
): Promise<ChatsRun> {
  const c = opts.chats;
  const model = `bench-${c.tps}tps`;
  const api: ChatApi = path === 'session' ? 'session' : 'completions';
  return withGateway(path, upstream, async (gateway) => {
    // A socket per chat, kept alive from the warm-up so the run measures streaming, not connects.
    const agent = new Agent({ keepAlive: true, maxSockets: c.count + 10 });
    const chat = (i: number, maxTokens: number, onGap?: (ms: number) => void) =>
      streamChat({
        api,
        port: (gateway ?? upstream).port,
        agent,
        model,
        maxTokens,
        sessionId: `bench-${round}-${i}`,
        ...(onGap ? { onGap } : {}),
      });
    const rss = () => (gateway ? sampleProc(gateway.pid).rssBytes : Number.NaN);
    try {
      const warm = Array.from({ length: opts.warmup.chats }, (_, i) =>
        chat(-1 - i, opts.warmup.chatTokens),
      );
      await Promise.all(warm);
      await sleep(opts.settleMs);
      const rssIdle = rss();

      const gaps = new LatencyHistogram();
      const recordGap = (ms: number) => gaps.record(ms);
      let started = 0;
      let finished = 0;
      const rssActive: number[] = [];
      const sampler = setInterval(() => {
        if (gateway && started === c.count && finished === 0) rssActive.push(rss());
      }, 200);
      const elapsed = cpuStopwatch(gateway, upstream);
      const m0 = sampleMachine();
      const t0 = performance.now();
      const results = await Promise.all(
        Array.from({ length: c.count }, async (_, i) => {
          await sleep(t0 + (i * c.staggerMs) / c.count - performance.now());
          started++;
          const r = await chat(i, c.tokens, recordGap);
          finished++;
          return r;
        }),
      );
      const elapsedUs = (performance.now() - t0) * 1000;
      clearInterval(sampler);
      const cpu = elapsed();
      const m1 = sampleMachine();
      const ours = (gateway ? cpu.gateway : 0) + cpu.upstream + cpu.loadgen;
      const other = m1.busyMicros - m0.busyMicros - ours;

      const ok = results.filter((r) => r.complete && r.tokens === c.tokens);
      const failures = [...new Set(results.flatMap((r) => (r.error ? [r.error] : [])))];
      const tokens = results.reduce((n, r) => n + r.tokens, 0);
      const ttft = results.map((r) => r.ttftMs).filter((v) => !Number.isNaN(v));
      const rssActiveMedian = rssActive.length ? median(rssActive) : Number.NaN;
      const pct = (us: number) => (us / elapsedUs) * 100;
      const row: ChatsRow = {
        path,
        chats: c.count,
        complete: ok.length,
        tokens,
        failures,
        gapP50: gaps.percentile(50),
        gapP99: gaps.percentile(99),
        gapP999: gaps.percentile(99.9),
        gapMax: gaps.percentile(100),
        ttftP50: percentile(sorted(ttft), 50),
        ttftP99: percentile(sorted(ttft), 99),
        gatewayCpuPct: pct(cpu.gateway),
        upstreamCpuPct: pct(cpu.upstream),
        loadgenCpuPct: pct(cpu.loadgen),
        otherCpuPct: Math.max(0, pct(other)),
        gatewayMicrosPerToken: cpu.gateway / tokens,
        rssIdleMiB: rssIdle / 2 ** 20,
        rssActiveMiB: rssActiveMedian / 2 ** 20,
        kibPerChat: (rssActiveMedian - rssIdle) / 1024 / c.count,
        rounds: 1,
      };
      return { round, row, gaps, ttft };
    } finally {
      agent.destroy();
    }
  });
}

/** Rounds of one path: gaps and TTFT pooled; CPU and memory from the median round. */
function summarizeChats(runs: readonly ChatsRun[]): ChatsRow {
  const first = runs[0];
  if (!first) throw new Error('no runs to summarize');
  const gaps = new LatencyHistogram();
  for (const r of runs) gaps.merge(r.gaps);
  const ttft = sorted(runs.flatMap((r) => r.ttft));
  const mid = (pick: (row: ChatsRow) => number) => median(runs.map((r) => pick(r.row)));
  return {
    ...first.row,
    chats: runs.reduce((n, r) => n + r.row.chats, 0),
    complete: runs.reduce((n, r) => n + r.row.complete, 0),
    tokens: runs.reduce((n, r) => n + r.row.tokens, 0),
    failures: [...new Set(runs.flatMap((r) => r.row.failures))],
    gapP50: gaps.percentile(50),
    gapP99: gaps.percentile(99),
    gapP999: gaps.percentile(99.9),
    gapMax: gaps.percentile(100),
    ttftP50: percentile(ttft, 50),
    ttftP99: percentile(ttft, 99),
    gatewayCpuPct: mid((r) => r.gatewayCpuPct),
    upstreamCpuPct: mid((r) => r.upstreamCpuPct),
    loadgenCpuPct: mid((r) => r.loadgenCpuPct),
    otherCpuPct: mid((r) => r.otherCpuPct),
    gatewayMicrosPerToken: mid((r) => r.gatewayMicrosPerToken),
    rssIdleMiB: mid((r) => r.rssIdleMiB),
    rssActiveMiB: mid((r) => r.rssActiveMiB),
    kibPerChat: mid((r) => r.kibPerChat),
    rounds: runs.length,
  };
}

/**
 * Background load drifts between rounds and moves every path's tail alike, so each figure is
 * compared within a round and only then summarized over the rounds.
 */
function compareChats(
  runs: ReadonlyMap<GatewayPath, ChatsRun[]>,
  path: GatewayPath,
  against: GatewayPath,
): ChatsComparison {
  const pairs = (runs.get(path) ?? []).flatMap((a) => {
    const b = runs.get(against)?.find((r) => r.round === a.round);
    return b ? [[a.row, b.row] as const] : [];
  });
  return {
    path,
    against,
    addedGapP99: spread(pairs.map(([a, b]) => a.gapP99 - b.gapP99)),
    cpuPerTokenRatio: spread(
      pairs.map(([a, b]) => a.gatewayMicrosPerToken / b.gatewayMicrosPerToken),
    ),
  };
}

/** Label of the front-door part, for a row that could not be measured. */
export const FRONT_DOOR = 'front door (direct, raw proxy and streamhub)';

/** The whole scenario against one fake upstream process. */
export async function runGateway(opts: GatewayOptions, step: Step): Promise<GatewayReport> {
  return withServer(servers.fakeLlm, {}, async (upstream) => {
    const report: GatewayReport = { opts, frontDoor: undefined, chats: [], chatComparisons: [] };
    if (opts.paths === undefined) {
      await step(FRONT_DOOR, true, '', async () => {
        report.frontDoor = await frontDoor(upstream, opts);
      });
    }
    const chatPaths = opts.paths ?? CHAT_PATHS;
    const runs = new Map<GatewayPath, ChatsRun[]>();
    for (let round = 1; round <= opts.chats.rounds; round++) {
      const progress = opts.chats.rounds > 1 ? ` [round ${round}/${opts.chats.rounds}]` : '';
      for (const path of chatPaths) {
        const needsStreamhub = gatewayOf(path, upstream)?.server === servers.streamhub;
        await step(PATH_LABELS[path], needsStreamhub, progress, async () => {
          runs.set(path, [...(runs.get(path) ?? []), await chatsRun(upstream, path, round, opts)]);
        });
      }
    }
    for (const path of chatPaths) {
      const list = runs.get(path);
      if (list?.length) report.chats.push(summarizeChats(list));
    }
    report.chatComparisons = CHAT_PAIRS.filter(
      (pair) => chatPaths.includes(pair[0]) && chatPaths.includes(pair[1]),
    ).map(([path, against]) => compareChats(runs, path, against));
    return report;
  });
}
