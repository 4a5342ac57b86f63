import { Agent } from 'node:http';
import { fileURLToPath } from 'node:url';
import { type ChatApi, type ChatResult, streamChat } from '../lib/llm.js';
import { HOST, type ServerProcess, sampleMachine, sampleProc, sleep } from '../lib/proc.js';
import { LatencyHistogram, median, percentile } from '../lib/stats.js';
import type { Step } from '../lib/step.js';
import { type Server, servers, withServer } from '../targets.js';

/**
 * LLM gateway overhead: the same streaming chats read directly from a fake OpenAI-compatible
 * upstream and through streamhub in front of it, in one run, on one machine.
 */

export interface GatewayOptions {
  /** Front door throughput: completions of `tokens` tokens streamed as fast as possible. */
  throughput: { rounds: number; perRound: number; tokens: number };
  /** Front door time to first token: short paced completions, one at a time. */
  ttft: { rounds: number; perRound: number };
  /** Many concurrent paced chats. */
  chats: { count: number; tokens: number; tps: number; staggerMs: number; rounds: number };
  settleMs: number;
}

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
  label: string;
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
  streamhubMicrosPerToken: number;
  upstreamMicrosPerToken: number;
  loadgenMicrosPerToken: number;
  failures: number;
}

export interface FrontDoorReport {
  direct: FrontDoorRow;
  streamhub: FrontDoorRow;
  /** Per round: median streamhub tokens/s ÷ median direct tokens/s. */
  throughputRatio: Spread;
  /** Per round: streamhub TTFT p50 − direct TTFT p50, ms. */
  addedTtftP50: Spread;
}

export type ChatPath = 'direct' | 'session' | 'completions';

export interface ChatsRow {
  path: ChatPath;
  label: string;
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
  /** Over the run (first request → last token), in % of one CPU. */
  streamhubCpuPct: number;
  upstreamCpuPct: number;
  loadgenCpuPct: number;
  otherCpuPct: number;
  streamhubMicrosPerToken: number;
  /** streamhub RSS after warm-up, idle. */
  rssIdleMiB: number;
  /** Median streamhub RSS sample while every chat was in flight. */
  rssActiveMiB: number;
  kibPerChat: number;
  rounds: number;
}

/** Round by round, a streamhub path's gap p99 minus the direct one, ms. */
export interface AddedGap extends Spread {
  path: Exclude<ChatPath, 'direct'>;
}

export interface GatewayReport {
  opts: GatewayOptions;
  frontDoor: FrontDoorReport | undefined;
  chats: ChatsRow[];
  addedGapP99: AddedGap[];
}

const fakeLlm: Server = {
  name: 'fake-llm',
  script: fileURLToPath(new URL('../reference/fake-llm.js', import.meta.url)),
  args: (port) => ['--port', String(port)],
  env: (port) => ({ PORT: String(port), HOST }),
};

/** streamhub as a gateway in front of the fake upstream, with room for every bench chat. */
const gatewayEnv = (upstream: ServerProcess) => ({
  LLM_PROVIDER: 'openai',
  OPENAI_BASE_URL: `http://${HOST}:${upstream.port}/v1`,
  OPENAI_API_KEY: 'x',
  LLM_MAX_CONCURRENCY: '1000',
  LLM_QUEUE_MAX: '1000',
});

const PATH_LABELS: Record<ChatPath, string> = {
  direct: 'direct (fake upstream)',
  session: 'streamhub `POST /v1/chat`',
  completions: 'streamhub `POST /v1/chat/completions`',
};

const MAX_MODEL = 'bench-max';
/** TTFT completions: the first token leaves the upstream at once, then two more 10 ms apart. */
const TTFT_MODEL = 'bench-100tps';
const TTFT_TOKENS = 3;

const cpuMicros = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

const sorted = (values: readonly number[]) => [...values].sort((a, b) => a - b);

/** One path of the front-door comparison and what it measured, round by round. */
interface FrontDoorPath {
  label: string;
  port: number;
  /** One keep-alive connection, as a single client would hold. */
  agent: Agent;
  tputRounds: number[][];
  ttftRounds: number[][];
  tokens: number;
  streamhubCpu: number;
  upstreamCpu: number;
  loadgenCpu: number;
  failures: number;
}

const frontDoorPath = (label: string, port: number): FrontDoorPath => ({
  label,
  port,
  agent: new Agent({ keepAlive: true, maxSockets: 1 }),
  tputRounds: [],
  ttftRounds: [],
  tokens: 0,
  streamhubCpu: 0,
  upstreamCpu: 0,
  loadgenCpu: 0,
  failures: 0,
});

/**
 * Sequential completions over `POST /v1/chat/completions`, alternating direct and through
 * streamhub request by request (order flipped every pair), so drifting background load on a
 * shared machine hits both paths alike.
 */
async function frontDoor(upstream: ServerProcess, opts: GatewayOptions): Promise<FrontDoorReport> {
  return withServer(servers.streamhub, gatewayEnv(upstream), async (sh) => {
    const direct = frontDoorPath(PATH_LABELS.direct, upstream.port);
    const gateway = frontDoorPath('through streamhub', sh.port);
    const paths = [direct, gateway];
    const one = (p: FrontDoorPath, model: string, maxTokens: number) =>
      streamChat({ api: 'completions', port: p.port, agent: p.agent, model, maxTokens });
    const check = (p: FrontDoorPath, r: ChatResult, expected: number) => {
      if (!r.complete || r.tokens !== expected) {
        p.failures++;
        return false;
      }
      return true;
    };
    try {
      // JIT, the gateway's upstream connection pool and both keep-alive sockets warm up first.
      for (let i = 0; i < 20; i++) {
        for (const p of paths) {
          await one(p, MAX_MODEL, 50);
          await one(p, TTFT_MODEL, TTFT_TOKENS);
        }
      }
      await sleep(opts.settleMs);

      for (let round = 0; round < opts.throughput.rounds; round++) {
        for (const p of paths) p.tputRounds.push([]);
        for (let i = 0; i < opts.throughput.perRound; i++) {
          for (const p of (i + round) % 2 ? [gateway, direct] : [direct, gateway]) {
            const sh0 = sampleProc(sh.pid).cpuMicros;
            const up0 = sampleProc(upstream.pid).cpuMicros;
            const lg0 = cpuMicros();
            const r = await one(p, MAX_MODEL, opts.throughput.tokens);
            p.loadgenCpu += cpuMicros() - lg0;
            p.upstreamCpu += sampleProc(upstream.pid).cpuMicros - up0;
            if (p === gateway) p.streamhubCpu += sampleProc(sh.pid).cpuMicros - sh0;
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
          for (const p of (i + round) % 2 ? [gateway, direct] : [direct, gateway]) {
            const r = await one(p, TTFT_MODEL, TTFT_TOKENS);
            if (check(p, r, TTFT_TOKENS)) p.ttftRounds.at(-1)?.push(r.ttftMs);
          }
        }
      }
    } finally {
      for (const p of paths) p.agent.destroy();
    }

    const row = (p: FrontDoorPath): FrontDoorRow => {
      const tps = sorted(p.tputRounds.flat());
      const ttft = sorted(p.ttftRounds.flat());
      return {
        label: p.label,
        completions: tps.length,
        tokens: opts.throughput.tokens,
        tokensPerSec: median(tps),
        tokensPerSecMin: tps[0] ?? Number.NaN,
        tokensPerSecMax: tps.at(-1) ?? Number.NaN,
        ttftP50: percentile(ttft, 50),
        ttftP99: percentile(ttft, 99),
        ttftSamples: ttft.length,
        streamhubMicrosPerToken: p === gateway ? p.streamhubCpu / p.tokens : Number.NaN,
        upstreamMicrosPerToken: p.upstreamCpu / p.tokens,
        loadgenMicrosPerToken: p.loadgenCpu / p.tokens,
        failures: p.failures,
      };
    };
    // Compared within each round, then summarized: drifting background load moves both alike.
    const perRound = (
      pick: (p: FrontDoorPath) => number[][],
      f: (g: number[], d: number[]) => number,
    ) => spread(pick(gateway).map((g, i) => f(sorted(g), sorted(pick(direct)[i] ?? []))));
    const ratio = perRound(
      (p) => p.tputRounds,
      (g, d) => median(g) / median(d),
    );
    const added = perRound(
      (p) => p.ttftRounds,
      (g, d) => percentile(g, 50) - percentile(d, 50),
    );
    return {
      direct: row(direct),
      streamhub: row(gateway),
      throughputRatio: ratio,
      addedTtftP50: added,
    };
  });
}

interface ChatsRun {
  round: number;
  row: ChatsRow;
  gaps: LatencyHistogram;
  ttft: number[];
}

/**
 * `count` chats started over `staggerMs` (so connection setup is not what gets measured), each
 * streaming `tokens` tokens at `tps` from the upstream. Through streamhub, a fresh server per
 * run so its idle RSS is a clean baseline and earlier runs' retained replies do not count.
 */
async function chatsRun(
  upstream: ServerProcess,
  path: ChatPath,
  round: number,
  opts: GatewayOptions,
): Promise<ChatsRun> {
  const c = opts.chats;
  const model = `bench-${c.tps}tps`;
  const api: ChatApi = path === 'session' ? 'session' : 'completions';
  const measure = async (sh: ServerProcess | undefined): Promise<ChatsRun> => {
    const port = sh?.port ?? upstream.port;
    // A socket per chat, kept alive from the warm-up so the run measures streaming, not connects.
    const agent = new Agent({ keepAlive: true, maxSockets: c.count + 10 });
    const chat = (i: number, maxTokens: number, onGap?: (ms: number) => void) =>
      streamChat({
        api,
        port,
        agent,
        model,
        maxTokens,
        sessionId: `bench-${round}-${i}`,
        ...(onGap ? { onGap } : {}),
      });
    try {
      const warm = Array.from({ length: 20 }, (_, i) => chat(-1 - i, 5));
      await Promise.all(warm);
      await sleep(opts.settleMs);
      const rssIdle = sh ? sampleProc(sh.pid).rssBytes : Number.NaN;

      const gaps = new LatencyHistogram();
      const recordGap = (ms: number) => gaps.record(ms);
      let started = 0;
      let finished = 0;
      const rssActive: number[] = [];
      const sampler = setInterval(() => {
        if (sh && started === c.count && finished === 0)
          rssActive.push(sampleProc(sh.pid).rssBytes);
      }, 200);
      const sh0 = sh ? sampleProc(sh.pid).cpuMicros : 0;
      const up0 = sampleProc(upstream.pid).cpuMicros;
      const lg0 = cpuMicros();
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
      const shCpu = sh ? sampleProc(sh.pid).cpuMicros - sh0 : Number.NaN;
      const upCpu = sampleProc(upstream.pid).cpuMicros - up0;
      const lgCpu = cpuMicros() - lg0;
      const m1 = sampleMachine();
      const other = m1.busyMicros - m0.busyMicros - (sh ? shCpu : 0) - upCpu - lgCpu;

      const ok = results.filter((r) => r.complete && r.tokens === c.tokens);
      const failures = [...new Set(results.flatMap((r) => (r.error ? [r.error] : [])))];
      const tokens = results.reduce((n, r) => n + r.tokens, 0);
      const ttft = results.map((r) => r.ttftMs).filter((v) => !Number.isNaN(v));
      const rssActiveMedian = rssActive.length ? median(rssActive) : Number.NaN;
      const pct = (us: number) => (us / elapsedUs) * 100;
      const row: ChatsRow = {
        path,
        label: PATH_LABELS[path],
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
        streamhubCpuPct: pct(shCpu),
        upstreamCpuPct: pct(upCpu),
        loadgenCpuPct: pct(lgCpu),
        otherCpuPct: Math.max(0, pct(other)),
        streamhubMicrosPerToken: shCpu / tokens,
        rssIdleMiB: rssIdle / 2 ** 20,
        rssActiveMiB: rssActiveMedian / 2 ** 20,
        kibPerChat: (rssActiveMedian - rssIdle) / 1024 / c.count,
        rounds: 1,
      };
      return { round, row, gaps, ttft };
    } finally {
      agent.destroy();
    }
  };
  return path === 'direct'
    ? measure(undefined)
    : withServer(servers.streamhub, gatewayEnv(upstream), measure);
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
    streamhubCpuPct: mid((r) => r.streamhubCpuPct),
    upstreamCpuPct: mid((r) => r.upstreamCpuPct),
    loadgenCpuPct: mid((r) => r.loadgenCpuPct),
    otherCpuPct: mid((r) => r.otherCpuPct),
    streamhubMicrosPerToken: mid((r) => r.streamhubMicrosPerToken),
    rssIdleMiB: mid((r) => r.rssIdleMiB),
    rssActiveMiB: mid((r) => r.rssActiveMiB),
    kibPerChat: mid((r) => r.kibPerChat),
    rounds: runs.length,
  };
}

/** Label of the front-door part, for a row that could not be measured. */
export const FRONT_DOOR = 'front door (direct and through streamhub)';

/** Runs one part of the scenario; the runner reports progress and records a failed part. */
export type GatewayStep = Step;

/** The whole scenario against one fake upstream process. */
export async function runGateway(opts: GatewayOptions, step: GatewayStep): Promise<GatewayReport> {
  return withServer(fakeLlm, {}, async (upstream) => {
    const report: GatewayReport = { opts, frontDoor: undefined, chats: [], addedGapP99: [] };
    await step(FRONT_DOOR, true, '', async () => {
      report.frontDoor = await frontDoor(upstream, opts);
    });
    const paths: ChatPath[] = ['direct', 'session', 'completions'];
    const runs = new Map<ChatPath, ChatsRun[]>();
    for (let round = 1; round <= opts.chats.rounds; round++) {
      const progress = opts.chats.rounds > 1 ? ` [round ${round}/${opts.chats.rounds}]` : '';
      for (const path of paths) {
        await step(PATH_LABELS[path], path !== 'direct', progress, async () => {
          runs.set(path, [...(runs.get(path) ?? []), await chatsRun(upstream, path, round, opts)]);
        });
      }
    }
    for (const path of paths) {
      const list = runs.get(path);
      if (list?.length) report.chats.push(summarizeChats(list));
    }
    // Background load drifts between rounds and moves both paths' tails alike, so the added
    // delay is taken within each round and only then summarized.
    const direct = runs.get('direct') ?? [];
    for (const path of ['session', 'completions'] as const) {
      const added = (runs.get(path) ?? []).flatMap((r) => {
        const d = direct.find((x) => x.round === r.round);
        return d ? [r.row.gapP99 - d.row.gapP99] : [];
      });
      if (added.length) report.addedGapP99.push({ path, ...spread(added) });
    }
    return report;
  });
}
