import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeBetweenMarkers } from './lib/docs.js';
import { backgroundLoad, killAll, machineInfo } from './lib/proc.js';
import { chartGrid } from './lib/svg-chart.js';
import {
  loadCharts,
  type Results,
  renderGatewayReport,
  renderLoadReport,
  renderReport,
  renderScaleOutReport,
  renderStreamsReport,
  renderTracingReport,
} from './report.js';
import { renderCompressionReport } from './report-compression.js';
import {
  type CompressionOptions,
  type CompressionReport,
  runCompressionScenario,
} from './scenarios/compression.js';
import { type FanoutOptions, type FanoutResult, runFanout, summarize } from './scenarios/fanout.js';
import {
  CHAT_PATHS,
  type GatewayOptions,
  type GatewayPath,
  runGateway,
} from './scenarios/gateway.js';
import { type IdleResult, runIdle, summarizeIdle } from './scenarios/idle.js';
import { type LoadOptions, runLoadScenario } from './scenarios/load.js';
import { runReplay } from './scenarios/replay.js';
import {
  type RepliesOptions,
  type RepliesResult,
  renderReplies,
  runRepliesScenario,
} from './scenarios/replies.js';
import {
  ALL_DEPLOYMENTS,
  type DeploymentName,
  runScaleOutScenario,
  type ScaleOutOptions,
} from './scenarios/scale-out.js';
import { runStreamsScenario, type StreamsOptions } from './scenarios/streams.js';
import { runTracingScenario, type TracingOptions } from './scenarios/tracing.js';
import { type Subject, streamhubBuilt, subjects } from './targets.js';

const quick = process.env.BENCH_QUICK === '1';
const sizes = quick
  ? { subscribers: 200, durationMs: 3000, rounds: 1, idle: 1000, idleRounds: 1, replayReps: 3 }
  : { subscribers: 1000, durationMs: 8000, rounds: 3, idle: 5000, idleRounds: 3, replayReps: 7 };
const cfg = {
  ...sizes,
  warmupMs: quick ? 1000 : 2000,
  settleMs: quick ? 1000 : 2000,
  drainMs: 10_000,
  replayEvents: 10_000,
  rounds: Number(process.env.BENCH_ROUNDS) || sizes.rounds,
};
const LIGHT_RATE = 20;
/** `BENCH_GATEWAY_PATHS=proxy,session`: these paths' concurrent chats only, no front door. */
function gatewayPaths(list: string | undefined): readonly GatewayPath[] | undefined {
  if (!list) return undefined;
  const names = list.split(',');
  const unknown = names.filter((name) => !(CHAT_PATHS as readonly string[]).includes(name));
  if (unknown.length) throw new Error(`BENCH_GATEWAY_PATHS: unknown ${unknown.join(', ')}`);
  return names as GatewayPath[];
}

const gatewaySizes = quick
  ? {
      throughput: { rounds: 3, perRound: 2, tokens: 500 },
      ttft: { rounds: 3, perRound: 7 },
      chats: { count: 100, tokens: 40, tps: 20, staggerMs: 500, rounds: 1 },
      warmup: { requests: 50, chats: 50, chatTokens: 20 },
      settleMs: 500,
    }
  : {
      throughput: { rounds: 5, perRound: 4, tokens: 2000 },
      ttft: { rounds: 5, perRound: 20 },
      chats: { count: 500, tokens: 100, tps: 20, staggerMs: 1000, rounds: 3 },
      warmup: { requests: 500, chats: 500, chatTokens: 20 },
      settleMs: 1500,
    };
const gatewayOpts: GatewayOptions = {
  ...gatewaySizes,
  paths: gatewayPaths(process.env.BENCH_GATEWAY_PATHS),
};
const fanoutBase = {
  subscribers: cfg.subscribers,
  warmupMs: cfg.warmupMs,
  durationMs: cfg.durationMs,
  drainMs: cfg.drainMs,
  publishers: 4,
  window: 64,
} satisfies Omit<FanoutOptions, 'rate'>;

/** `BENCH_SCALE_OUT=streamhubRedis,streamhubMemory`: some deployments only, a shorter run. */
function scaleOutDeployments(list: string | undefined): readonly DeploymentName[] {
  if (!list) return ALL_DEPLOYMENTS;
  const names = list.split(',');
  const unknown = names.filter((name) => !(ALL_DEPLOYMENTS as readonly string[]).includes(name));
  if (unknown.length) throw new Error(`BENCH_SCALE_OUT: unknown ${unknown.join(', ')}`);
  return names as DeploymentName[];
}

const scaleOutOpts: ScaleOutOptions = {
  fanout: fanoutBase,
  rounds: cfg.rounds,
  monitorMs: quick ? 500 : 1000,
  deployments: scaleOutDeployments(process.env.BENCH_SCALE_OUT),
};

const streamsOpts: StreamsOptions = {
  loads: quick ? [100] : [500, 100],
  chunks: 100,
  rate: 20,
  staggerMs: 1000,
  resumeEvery: 5,
  rounds: quick ? 1 : 3,
  stallMs: 15_000,
  lateMs: 15_000,
  death: { streams: quick ? 5 : 20, killAfterChunks: 20, watchMs: 25_000 },
};

const compressionOpts: CompressionOptions = {
  fanout: fanoutBase,
  rates: ['max', LIGHT_RATE],
  rounds: cfg.rounds,
  idle: { connections: cfg.idle, settleMs: cfg.settleMs, rounds: cfg.idleRounds },
  completions: { count: quick ? 5 : 20, maxTokens: 100 },
};
let compression: CompressionReport | undefined;
const repliesOpts: RepliesOptions = {
  replies: Number(process.env.BENCH_REPLIES) || (quick ? 100 : 500),
  tokensPerSec: 20,
  idleMs: quick ? 1000 : 3000,
  warmupMs: quick ? 6000 : 10_000,
  measureMs: quick ? 5000 : 20_000,
  rounds: quick ? 1 : 2,
};
let replies: RepliesResult[] | undefined;
const tracingOpts: TracingOptions = {
  fanout: fanoutBase,
  // 10 subscribers: publishing, where the spans are, is most of the work.
  loads: [{ rate: 'max' }, { rate: LIGHT_RATE }, { subscribers: 10, rate: 'max' }],
  rounds: cfg.rounds,
  baselineScript: process.env.BENCH_BASELINE_CLI,
};

const loadOpts: LoadOptions = {
  connections: [1, 4, 16, 64, 256],
  openConcurrency: [1, 4, 16, 64, 256],
  warmupMs: quick ? 500 : 1000,
  durationMs: quick ? 1000 : 3000,
  subscribers: 10,
};

const results: Results = {
  fanout: [],
  idle: [],
  replay: undefined,
  gateway: undefined,
  scaleOut: undefined,
  streams: undefined,
  tracing: undefined,
  load: undefined,
  missing: [],
};

const isStreamhub = (s: Subject) => s.server.name === 'streamhub';

/** Runs one measurement; a failure or an unbuilt streamhub becomes a "pending"/error row. */
async function attempt(
  scenario: string,
  label: string,
  needsStreamhub: boolean,
  fn: () => Promise<void>,
  progress = '',
) {
  const known = results.missing.some((m) => m.scenario === scenario && m.label === label);
  if (needsStreamhub && !streamhubBuilt()) {
    if (!known) results.missing.push({ scenario, label, reason: 'pending (streamhub not built)' });
    return;
  }
  const t0 = Date.now();
  try {
    await fn();
    console.error(`  ✓ ${label}${progress} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    console.error(`  ✗ ${label}${progress}: ${message}`);
    if (!known)
      results.missing.push({ scenario, label, reason: `error: ${message.split('\n')[0]}` });
  }
}

/** Rounds interleave the targets so that background load drifting over time hits all alike. */
async function fanout(scenario: string, list: Subject[]) {
  const runs = new Map<string, FanoutResult[]>();
  for (let round = 1; round <= cfg.rounds; round++) {
    for (const rate of ['max', LIGHT_RATE] as const) {
      for (const s of list) {
        const label = `${s.label} @ ${rate}`;
        const progress = cfg.rounds > 1 ? ` [round ${round}/${cfg.rounds}]` : '';
        await attempt(
          scenario,
          label,
          isStreamhub(s),
          async () => {
            const r = await runFanout(s, { ...fanoutBase, rate });
            runs.set(label, [...(runs.get(label) ?? []), r]);
          },
          progress,
        );
      }
    }
  }
  for (const list of runs.values()) results.fanout.push(summarize(list));
}

const scenarios: Record<string, () => Promise<void>> = {
  'sse-fanout': () => fanout('sse-fanout', [subjects.streamhubSse, subjects.rawSse]),
  'ws-fanout': () =>
    fanout('ws-fanout', [
      subjects.streamhubWs,
      subjects.streamhubMux,
      subjects.rawWs,
      subjects.socketio,
    ]),
  'idle-memory': async () => {
    const list = [
      subjects.streamhubSse,
      subjects.streamhubWs,
      subjects.streamhubMux,
      subjects.rawSse,
      subjects.rawWs,
      subjects.socketio,
    ];
    const runs = new Map<Subject, IdleResult[]>();
    for (let round = 1; round <= cfg.idleRounds; round++) {
      for (const s of list) {
        const progress = cfg.idleRounds > 1 ? ` [round ${round}/${cfg.idleRounds}]` : '';
        await attempt(
          'idle-memory',
          s.label,
          isStreamhub(s),
          async () => {
            runs.set(s, [...(runs.get(s) ?? []), await runIdle(s, cfg.idle, cfg.settleMs)]);
          },
          progress,
        );
      }
    }
    for (const r of runs.values()) results.idle.push(summarizeIdle(r));
  },
  replay: () =>
    attempt('replay', 'streamhub', true, async () => {
      results.replay = await runReplay(cfg.replayEvents, cfg.replayReps);
    }),
  gateway: () =>
    attempt('gateway', 'gateway scenario', false, async () => {
      results.gateway = await runGateway(gatewayOpts, (label, needsStreamhub, progress, fn) =>
        attempt('gateway', label, needsStreamhub, fn, progress),
      );
    }),
  'scale-out': async () => {
    results.scaleOut = await runScaleOutScenario(
      scaleOutOpts,
      (label, needsStreamhub, progress, fn) =>
        attempt('scale-out', label, needsStreamhub, fn, progress),
    );
  },
  compression: async () => {
    compression = await runCompressionScenario(
      compressionOpts,
      (label, needsStreamhub, progress, fn) =>
        attempt('compression', label, needsStreamhub, fn, progress),
    );
  },
  replies: async () => {
    replies = await runRepliesScenario(repliesOpts, (label, needsStreamhub, progress, fn) =>
      attempt('replies', label, needsStreamhub, fn, progress),
    );
  },
  streams: async () => {
    results.streams = await runStreamsScenario(streamsOpts, (label, needsStreamhub, progress, fn) =>
      attempt('streams', label, needsStreamhub, fn, progress),
    );
  },
  tracing: async () => {
    results.tracing = await runTracingScenario(tracingOpts, (label, needsStreamhub, progress, fn) =>
      attempt('tracing', label, needsStreamhub, fn, progress),
    );
  },
  load: async () => {
    results.load = await runLoadScenario(loadOpts, (label, needsStreamhub, progress, fn) =>
      attempt('load', label, needsStreamhub, fn, progress),
    );
  },
};

/** Scenarios whose results go to their own block of the doc instead of the main one. */
const OWN_BLOCK = new Set([
  'gateway',
  'scale-out',
  'replies',
  'streams',
  'tracing',
  'load',
  'compression',
]);

/** The load scenario's curves, next to docs/benchmarks.md, which links them by this name. */
const LOAD_CHART = 'bench-load.svg';
const LOAD_CHART_TITLE =
  'Publish QPS and p99 latency, SSE opens/s and time to open, streamhub vs raw SSE';

/** `npm run check` formats Markdown and SVG too: lay generated files out the way biome wants. */
function formatWithBiome(file: string): void {
  const biome = fileURLToPath(new URL('../../node_modules/.bin/biome', import.meta.url));
  try {
    execFileSync(biome, ['format', '--write', file], { stdio: 'ignore' });
  } catch {
    console.error(`note: could not run biome on ${file}; \`npm run lint\` checks it`);
  }
}

function openFileLimit(): number {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  return Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1] ?? Number.POSITIVE_INFINITY);
}

function header(argv: string[], background: number, details: string[]): string {
  const m = machineInfo();
  const command =
    process.env.npm_lifecycle_event === 'bench'
      ? 'npm run bench'
      : `node dist/bench/run.js${argv.length ? ` ${argv.join(' ')}` : ''}`;
  return [
    `- Command: \`${quick ? 'BENCH_QUICK=1 ' : ''}${command}\`${quick ? ' (smoke run, small numbers)' : ''}`,
    `- Date: ${new Date().toISOString()}`,
    `- Node ${m.node}; ${m.nproc} CPUs: ${m.cpu}; ${process.platform} ${process.arch}`,
    `- Machine load from other processes before the run: ${background.toFixed(0)} % of all CPUs (see _other CPU %_ per row)`,
    ...details,
  ].join('\n');
}

function mainDetails(): string[] {
  return [
    `- Fan-out: ${cfg.subscribers} subscribers, ${cfg.warmupMs / 1000} s warm-up, ${cfg.durationMs / 1000} s measured, ${cfg.rounds} round(s) per row; max rate = ${fanoutBase.publishers} publisher streams, each at most ${fanoutBase.window} events ahead of the slowest subscriber; light rate = ${LIGHT_RATE} events/s`,
    `- Idle memory: ${cfg.idle} connections, median of ${cfg.idleRounds} round(s); replay: ${cfg.replayEvents} events, median of ${cfg.replayReps} after a warm-up round`,
  ];
}

function gatewayDetails(): string[] {
  const { throughput: t, ttft, chats: c, warmup: w } = gatewayOpts;
  return [
    `- Warm-up: ${w.requests} sequential pairs of completions per path before the front door's rounds; ${w.chats} concurrent chats of ${w.chatTokens} tokens in each chat process before its measured chats`,
    gatewayOpts.paths === undefined
      ? `- Front door: ${t.rounds} rounds of ${t.perRound} completions × ${t.tokens} tokens per path (upstream as fast as possible), then ${ttft.rounds} rounds of ${ttft.perRound} TTFT requests per path, rotating direct, raw proxy and streamhub request by request`
      : `- Front door: not run (\`BENCH_GATEWAY_PATHS=${gatewayOpts.paths.join(',')}\`)`,
    `- Concurrent chats: ${c.count} chats started over ${c.staggerMs / 1000} s, ${c.tokens} tokens each at ${c.tps} tokens/s from the upstream, ${c.rounds} round(s) of ${gatewayOpts.paths?.join(', ') ?? 'every path'}, a fresh gateway process per run`,
  ];
}

function scaleOutDetails(): string[] {
  const f = scaleOutOpts.fanout;
  return [
    `- ${f.subscribers} WebSocket subscribers of 1 topic, spread in turn over the processes; publishes (\`POST\`) go to the processes in turn`,
    `- ${f.warmupMs / 1000} s warm-up, ${f.durationMs / 1000} s measured, ${scaleOutOpts.rounds} round(s) per row, fresh processes and a fresh redis-server (or cluster) per run; max rate = ${f.publishers} publisher streams, each at most ${f.window} events ahead of the slowest subscriber; ½ max = half of streamhub-on-Redis's max rate of the same round, for every target`,
    `- Round trips: MONITOR for at least ${scaleOutOpts.monitorMs / 1000} s and 300 publishes (at most 5 s) after each measured window, outside the CPU window`,
  ];
}

function streamsDetails(): string[] {
  const o = streamsOpts;
  return [
    `- ${o.loads.join(' and ')} streams of ${o.chunks} SSE chunks at ${o.rate} chunks/s, started over ${o.staggerMs / 1000} s, each with one consumer from its start; every ${o.resumeEvery}th also with a consumer joining half-way that reads it from its start (resume time: request → first chunk); ${o.rounds} round(s), a fresh redis-server and server process per run; CPU, server RSS and Redis \`used_memory\` from before the first stream to after the last consumer`,
    `- streamhub's producer is this load generator, uploading each stream (\`POST /v1/streams/{id}\`, \`text/event-stream\`); resumable-stream's producer is a timer in its own server process, its first consumer the \`POST\` that starts it (the shape its README documents), later ones \`resumeExistingStream\`; streamhub in memory is the same upload, hub and delivery with nothing stored in Redis (what durable storage costs)`,
    `- Consumers are waited for while any of them still receives: _hung_ are those still open once no consumer got anything for ${o.stallMs / 1000} s (stuck), _late_ those that ended over ${o.lateMs / 1000} s after their stream's last chunk was due (behind a saturated server, but whole); _latest end_: the latest any consumer ended after its stream's last chunk was due`,
    `- Producer death: 2 processes on one Redis, ${o.death.streams} streams produced through process A and read from process B; A gets SIGKILL after ${o.death.killAfterChunks} chunks; B's readers watched for ${o.death.watchMs / 1000} s (streamhub: \`SESSION_LEASE_MS\` 10 s, its default)`,
  ];
}

function compressionDetails(): string[] {
  const { fanout: f, idle, completions: c } = compressionOpts;
  return [
    `- Fan-out: 1 topic × ${f.subscribers} subscribers that all ask for compression (\`Accept-Encoding: gzip\`, permessage-deflate), against the same server with \`COMPRESSION=off\`; ${f.warmupMs / 1000} s warm-up, ${f.durationMs / 1000} s measured, ${compressionOpts.rounds} round(s) per row, on and off interleaved; max and ${LIGHT_RATE} events/s as in (a); _wire B/event_ = bytes read by the subscribers' sockets in the window ÷ events delivered`,
    `- Idle memory: ${idle.connections} connections, median of ${idle.rounds} round(s); completions: ${c.count} concurrent streamed completions of ${c.maxTokens} tokens from the mock model at its default 50 tokens/s, per way of asking`,
    '- WebSocket subscribers, on and off alike: the minimal client of `bench/lib/deflate-ws.ts`, which inflates synchronously (`ws` inflates on the thread pool, and its 1,000 clients fell behind); gzip SSE subscribers inflate each flushed segment synchronously too (`bench/lib/gzip-sse.ts`) instead of a `zlib.createGunzip()` per connection; both keep recent inflated segments by their compressed bytes, which every subscriber gets alike; every event is still parsed and checked in order per subscriber',
  ];
}

function tracingDetails(): string[] {
  const baseline = tracingOpts.baselineScript;
  return [
    ...mainDetails().slice(0, 1),
    '- Also at max rate with 10 subscribers, where publishing (and its spans) is most of the work',
    '- Tracing on: `OTEL_EXPORTER_OTLP_ENDPOINT` set (OTLP/HTTP protobuf, the default protocol, to a sink in the load generator that reads and acknowledges each export), `OTEL_TRACES_SAMPLER=always_on`, batching at its defaults; off: no `OTEL_*` variable, so the SDK is not even loaded',
    ...(baseline === undefined
      ? []
      : [`- Baseline build: \`${baseline}\` (\`BENCH_BASELINE_CLI\`)`]),
  ];
}

function loadDetails(): string[] {
  const o = loadOpts;
  return [
    `- Publish: autocannon, ${o.connections.join(', ')} keep-alive connections each sending \`POST /v1/topics/{topic}/events\` back to back, ${o.warmupMs / 1000} s warm-up then ${o.durationMs / 1000} s measured per step; ${o.subscribers} SSE subscribers on the topic, so each publish is delivered ${o.subscribers} times; latency at autocannon's 1 ms resolution`,
    `- SSE opens: ${o.openConcurrency.join(', ')} opens in flight, each a fresh connection that waits for the response headers (sent with the stream's \`retry:\` line) and hangs up, same warm-up and window`,
    '- Both servers run during the whole scenario and every step alternates between them, so load from other tenants drifting over time hits both alike',
  ];
}

async function main() {
  const argv = process.argv.slice(2);
  const flags = new Set(argv.filter((a) => a.startsWith('--')));
  const picked = argv.filter((a) => !a.startsWith('--'));
  const unknown = picked.filter((p) => !(p in scenarios));
  if (unknown.length || flags.has('--help')) {
    console.error(
      `usage: node dist/bench/run.js [${Object.keys(scenarios).join('|')} ...] [--write-docs|--no-docs]`,
    );
    console.error(
      'env: BENCH_QUICK=1 for a ~1 minute smoke run, BENCH_ROUNDS=n fan-out repetitions, BENCH_BASELINE_CLI=<another build of dist/src/cli/main.js> for a baseline row in tracing, BENCH_SERVER_NODE_FLAGS="--cpu-prof ..." Node flags for every server started',
    );
    process.exit(unknown.length ? 2 : 0);
  }
  const names = picked.length ? picked : Object.keys(scenarios);
  if (openFileLimit() < cfg.idle * 2 + 500) {
    console.error(
      `warning: open file limit ${openFileLimit()} is low for ${cfg.idle} connections; run \`ulimit -n 20000\` first`,
    );
  }
  if (!streamhubBuilt())
    console.error('note: dist/src/cli/main.js missing, streamhub rows will be pending');

  const background = await backgroundLoad(2000);
  for (const name of names) {
    console.error(`• ${name}`);
    await scenarios[name]?.();
  }

  // Each block only when one of its scenarios ran, so a partial run leaves the other alone.
  const blocks: [string, string][] = [];
  if (names.some((n) => !OWN_BLOCK.has(n))) {
    blocks.push(['results', renderReport(results, header(argv, background, mainDetails()))]);
  }
  if (names.includes('gateway')) {
    blocks.push([
      'gateway',
      renderGatewayReport(results, header(argv, background, gatewayDetails())),
    ]);
  }
  if (names.includes('scale-out')) {
    blocks.push([
      'scale-out',
      renderScaleOutReport(results, header(argv, background, scaleOutDetails())),
    ]);
  }
  if (replies !== undefined) {
    blocks.push([
      'replies',
      `${header(argv, background, [])}\n\n${renderReplies(repliesOpts, replies)}`,
    ]);
  }
  if (names.includes('streams')) {
    blocks.push([
      'streams',
      renderStreamsReport(results, header(argv, background, streamsDetails())),
    ]);
  }
  if (compression !== undefined) {
    blocks.push([
      'compression',
      renderCompressionReport(compression, header(argv, background, compressionDetails())),
    ]);
  }
  if (names.includes('tracing')) {
    blocks.push([
      'tracing',
      renderTracingReport(results, header(argv, background, tracingDetails())),
    ]);
  }
  if (names.includes('load')) {
    blocks.push([
      'load',
      renderLoadReport(
        results,
        header(argv, background, loadDetails()),
        LOAD_CHART,
        LOAD_CHART_TITLE,
      ),
    ]);
  }
  for (const [, text] of blocks) console.log(text);
  // Only a complete full-size run replaces the published numbers, unless asked explicitly.
  const writeDocs =
    flags.has('--write-docs') ||
    (!flags.has('--no-docs') && !quick && !picked.length && gatewayOpts.paths === undefined);
  if (writeDocs) {
    const doc = fileURLToPath(new URL('../../docs/benchmarks.md', import.meta.url));
    for (const [name, text] of blocks) writeBetweenMarkers(doc, text, name);
    if (results.load) {
      const chart = join(dirname(doc), LOAD_CHART);
      writeFileSync(chart, chartGrid(LOAD_CHART_TITLE, loadCharts(results.load)));
      formatWithBiome(chart);
    }
    formatWithBiome(doc);
    console.error(`wrote ${doc}`);
  }
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    killAll();
    process.exit(130);
  });
}
process.on('exit', killAll);

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    killAll();
    process.exit(1);
  },
);
