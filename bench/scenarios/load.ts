import autocannon from 'autocannon';
import { type Connection, closeAll, mapLimit, subscribe } from '../lib/clients.js';
import { HOST, type ServerProcess, sampleMachine, sampleProc, sleep } from '../lib/proc.js';
import { percentile } from '../lib/stats.js';
import type { Step } from '../lib/step.js';
import { type Server, servers, withServer } from '../targets.js';

export interface LoadOptions {
  /** Concurrent publishing connections, one step each. */
  connections: readonly number[];
  /** Concurrent SSE opens in flight, one step each. */
  openConcurrency: readonly number[];
  warmupMs: number;
  durationMs: number;
  /** SSE subscribers of the topic while publishing, so that every publish fans out. */
  subscribers: number;
}

/** CPU over a measured step, in % of one CPU; _other_ is everything else on the machine. */
export interface CpuShare {
  serverCpuPct: number;
  loadgenCpuPct: number;
  otherCpuPct: number;
}

export interface PublishStep extends CpuShare {
  target: string;
  connections: number;
  /** Answered with 2xx, per second. */
  qps: number;
  p50: number;
  p99: number;
  /** Connection errors and timeouts, plus answers other than 2xx. */
  errors: number;
  non2xx: number;
}

export interface OpenStep extends CpuShare {
  target: string;
  concurrency: number;
  opensPerSec: number;
  /** Request → response headers, which both servers send with the `retry:` line, in ms. */
  p50: number;
  p99: number;
  errors: number;
}

export interface LoadReport {
  publish: PublishStep[];
  open: OpenStep[];
}

interface Target {
  label: string;
  server: Server;
}

export const LOAD_TARGETS: readonly Target[] = [
  { label: 'streamhub', server: servers.streamhub },
  { label: 'raw SSE', server: servers.rawSse },
];

const TOPIC = 'bench.load';
const EVENTS_PATH = `/v1/topics/${encodeURIComponent(TOPIC)}/events`;
const noop = () => {};

/** Runs `fn` and measures the CPU the server, this process and the rest of the machine used. */
async function withCpu<T>(pid: number, fn: () => Promise<T>): Promise<[T, CpuShare]> {
  const server0 = sampleProc(pid).cpuMicros;
  const loadgen0 = process.cpuUsage();
  const machine0 = sampleMachine().busyMicros;
  const t0 = performance.now();
  const result = await fn();
  const elapsedMicros = (performance.now() - t0) * 1000;
  const server = sampleProc(pid).cpuMicros - server0;
  const loadgenUsage = process.cpuUsage(loadgen0);
  const loadgen = loadgenUsage.user + loadgenUsage.system;
  const machine = sampleMachine().busyMicros - machine0;
  const pct = (micros: number) => (micros / elapsedMicros) * 100;
  return [
    result,
    {
      serverCpuPct: pct(server),
      loadgenCpuPct: pct(loadgen),
      otherCpuPct: Math.max(0, pct(machine - server - loadgen)),
    },
  ];
}

function publishLoad(port: number, connections: number, ms: number) {
  return autocannon({
    url: `http://${HOST}:${port}${EVENTS_PATH}`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ data: { load: true } }),
    connections,
    duration: ms / 1000,
  });
}

async function publishStep(
  target: string,
  proc: ServerProcess,
  connections: number,
  opts: LoadOptions,
): Promise<PublishStep> {
  await publishLoad(proc.port, connections, opts.warmupMs);
  const [r, cpu] = await withCpu(proc.pid, () =>
    publishLoad(proc.port, connections, opts.durationMs),
  );
  return {
    target,
    connections,
    qps: r['2xx'] / r.duration,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.non2xx,
    non2xx: r.non2xx,
    ...cpu,
  };
}

/** Opens one SSE stream, hangs up once it is open and resolves to the time that took. */
async function openOnce(port: number): Promise<number> {
  const t0 = performance.now();
  const conn = await subscribe('sse', { port, topic: TOPIC, onData: noop, onClose: noop });
  const ms = performance.now() - t0;
  conn.close();
  return ms;
}

/**
 * Opens streams back to back for `ms`, `concurrency` at a time. Not autocannon: an SSE response
 * never ends, so autocannon would only count timeouts; what matters is request → stream open.
 */
async function openLoop(port: number, concurrency: number, ms: number) {
  const times: number[] = [];
  let errors = 0;
  const deadline = performance.now() + ms;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        await openOnce(port).then(
          (t) => times.push(t),
          () => errors++,
        );
      }
    }),
  );
  return { times, errors, elapsedMs: performance.now() - t0 };
}

async function openStep(
  target: string,
  proc: ServerProcess,
  concurrency: number,
  opts: LoadOptions,
): Promise<OpenStep> {
  await openLoop(proc.port, concurrency, opts.warmupMs);
  const [r, cpu] = await withCpu(proc.pid, () => openLoop(proc.port, concurrency, opts.durationMs));
  const sorted = r.times.sort((a, b) => a - b);
  return {
    target,
    concurrency,
    opensPerSec: (sorted.length * 1000) / r.elapsedMs,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    errors: r.errors,
    ...cpu,
  };
}

/** Starts every target at once so each step can alternate between them (drifting load hits both). */
async function withTargets<T>(
  targets: readonly Target[],
  fn: (procs: ServerProcess[]) => Promise<T>,
  procs: ServerProcess[] = [],
): Promise<T> {
  const [first, ...rest] = targets;
  if (!first) return fn(procs);
  return withServer(first.server, {}, (proc) => withTargets(rest, fn, [...procs, proc]));
}

export async function runLoadScenario(opts: LoadOptions, step: Step): Promise<LoadReport> {
  const report: LoadReport = { publish: [], open: [] };
  await withTargets(LOAD_TARGETS, async (procs) => {
    const pairs = LOAD_TARGETS.map((t, i) => ({ ...t, proc: procs[i] as ServerProcess }));
    const subscribers: Connection[] = [];
    try {
      await mapLimit(
        pairs.flatMap((p) => Array.from({ length: opts.subscribers }, () => p.proc.port)),
        20,
        async (port) => {
          subscribers.push(
            await subscribe('sse', { port, topic: TOPIC, onData: noop, onClose: noop }),
          );
        },
      );
      for (const connections of opts.connections) {
        for (const { label, proc } of pairs) {
          await step(`publish ${label} × ${connections}`, label === 'streamhub', '', async () => {
            report.publish.push(await publishStep(label, proc, connections, opts));
          });
        }
      }
    } finally {
      closeAll(subscribers);
    }
    // Let the hung-up subscribers' sockets close before measuring opens.
    await sleep(500);
    for (const concurrency of opts.openConcurrency) {
      for (const { label, proc } of pairs) {
        await step(`SSE open ${label} × ${concurrency}`, label === 'streamhub', '', async () => {
          report.open.push(await openStep(label, proc, concurrency, opts));
        });
      }
    }
  });
  return report;
}
