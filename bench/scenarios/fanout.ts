import { type Connection, closeAll, mapLimit, subscribe } from '../lib/clients.js';
import { Delivery, type Payload, PROBE } from '../lib/delivery.js';
import {
  type ProcSample,
  type ServerProcess,
  sampleMachine,
  sampleProc,
  sleep,
} from '../lib/proc.js';
import { HttpPublisher, nowMs } from '../lib/publisher.js';
import { type Subject, withServer } from '../targets.js';

export interface FanoutOptions {
  subscribers: number;
  /** Events per second, or 'max' for as fast as the server and the delivery window allow. */
  rate: number | 'max';
  warmupMs: number;
  durationMs: number;
  drainMs: number;
  /** Concurrent publisher streams (= in-flight POSTs) at max rate. */
  publishers: number;
  /** Max events a stream may be ahead of its slowest subscriber. */
  window: number;
  env?: Record<string, string>;
}

export interface FanoutResult {
  subject: Subject;
  opts: FanoutOptions;
  published: number;
  publishErrors: number;
  /** Events published during the measured window, per second. */
  publishedPerSec: number;
  deliveredPerSec: number;
  p50: number;
  p99: number;
  lost: number;
  duplicated: number;
  reordered: number;
  disconnected: number;
  drained: boolean;
  forcedAdvances: number;
  serverCpuPct: number;
  loadgenCpuPct: number;
  /** CPU used by everything else on the machine, in % of one CPU: noise from other tenants. */
  otherCpuPct: number;
  cpuMicrosPerEvent: number;
  rssMiB: number;
  /** Bytes the subscribers' sockets received in the measured window, per delivered event. */
  wireBytesPerEvent: number;
}

/** Extra measurements around the measured window, taken while the publishers keep going. */
export interface WindowHooks {
  /** Right before the window opens; `published()` counts every event published so far. */
  begin?(published: () => number): Promise<void>;
  /** Right after it closes. */
  end?(published: () => number): Promise<void>;
}

const TOPIC = 'bench.fanout';

export function runFanout(subject: Subject, opts: FanoutOptions): Promise<FanoutResult> {
  return withServer(subject.server, opts.env ?? {}, (proc) => measureFanout(subject, [proc], opts));
}

/** CPU time and RSS summed over the server processes. */
function sampleAll(procs: readonly ServerProcess[]): ProcSample {
  return procs
    .map((p) => sampleProc(p.pid))
    .reduce((a, b) => ({
      cpuMicros: a.cpuMicros + b.cpuMicros,
      rssBytes: a.rssBytes + b.rssBytes,
    }));
}

/** Opens `count` subscriptions, spread over `ports` in turn. */
async function subscribeAll(
  subject: Subject,
  ports: readonly number[],
  delivery: Delivery,
  count: number,
): Promise<Connection[]> {
  const conns: Connection[] = [];
  try {
    await mapLimit(Array.from({ length: count }), 50, async (_, i) => {
      const sub = delivery.addSubscriber();
      conns.push(
        await subscribe(subject.transport, {
          port: ports[i % ports.length] ?? 0,
          topic: TOPIC,
          compressed: subject.compressed,
          onData: (data) => delivery.receive(sub, data as Payload),
          onClose: () => delivery.close(sub),
        }),
      );
    });
    return conns;
  } catch (e) {
    closeAll(conns);
    throw e;
  }
}

/**
 * An open response or socket does not prove the server has registered the subscription:
 * publish probes until every subscriber has seen one, then start counting.
 */
async function probeUntilSubscribed(delivery: Delivery, publisher: HttpPublisher): Promise<void> {
  const probeDeadline = Date.now() + 15_000;
  while (!delivery.subscribers.every((s) => s.probed || s.closed)) {
    if (Date.now() > probeDeadline) throw new Error('subscribers never received a probe');
    await publisher.publish(TOPIC, { p: PROBE, s: 0, t: nowMs() });
    await sleep(100);
  }
}

/** Starts the publisher streams; the returned function stops them once in-flight POSTs end. */
function startPublishing(
  delivery: Delivery,
  publisher: HttpPublisher,
  opts: FanoutOptions,
): () => Promise<void> {
  const streams = opts.publishers;
  let running = true;
  const publish = async (p: number) => {
    const s = delivery.nextSeq(p);
    await publisher.publish(TOPIC, { p, s, t: nowMs() } satisfies Payload);
  };
  const paced = async (rate: number) => {
    // Stream i % streams takes tick i; a stream still waiting for its previous POST queues
    // the next one behind it, so the rate holds even when single requests are slow.
    const chains = Array.from({ length: streams }, () => Promise.resolve());
    const start = performance.now();
    for (let i = 0; running; i++) {
      await sleep(start + (i * 1000) / rate - performance.now());
      const p = i % streams;
      if (running) chains[p] = (chains[p] ?? Promise.resolve()).then(() => publish(p));
    }
    await Promise.all(chains);
  };
  const loops =
    opts.rate === 'max'
      ? Array.from({ length: streams }, async (_, p) => {
          while (running) {
            await delivery.waitForWindow(p);
            if (running) await publish(p);
          }
        })
      : [paced(opts.rate)];
  return async () => {
    running = false; // idempotent: a second call just waits for the same loops
    await Promise.all(loops);
  };
}

/** CPU of the servers, the load generator and the machine over the measured window. */
interface WindowSample {
  elapsedMs: number;
  published: number;
  serverCpu: number;
  loadgenCpu: number;
  machineCpu: number;
  rssBytes: number;
}

async function measureWindow(
  procs: readonly ServerProcess[],
  delivery: Delivery,
  durationMs: number,
  hooks: WindowHooks,
): Promise<WindowSample> {
  const published = () => delivery.published();
  await hooks.begin?.(published);
  const cpu0 = sampleAll(procs);
  const load0 = process.cpuUsage();
  const machine0 = sampleMachine();
  const published0 = published();
  const t0 = performance.now();
  delivery.measuring = true;
  await sleep(durationMs);
  delivery.measuring = false;
  const elapsedMs = performance.now() - t0;
  const cpu1 = sampleAll(procs);
  const load = process.cpuUsage(load0);
  const machine1 = sampleMachine();
  const published1 = published();
  await hooks.end?.(published);
  return {
    elapsedMs,
    published: published1 - published0,
    serverCpu: cpu1.cpuMicros - cpu0.cpuMicros,
    loadgenCpu: load.user + load.system,
    machineCpu: machine1.busyMicros - machine0.busyMicros,
    rssBytes: cpu1.rssBytes,
  };
}

/**
 * Fan-out through already running servers: subscribers are spread over `procs` in turn and
 * publishes go to them in turn, so several processes sharing a backend count as one target,
 * with their CPU time and memory summed.
 */
export async function measureFanout(
  subject: Subject,
  procs: readonly ServerProcess[],
  opts: FanoutOptions,
  hooks: WindowHooks = {},
): Promise<FanoutResult> {
  const ports = procs.map((p) => p.port);
  const delivery = new Delivery(opts.publishers, opts.window);
  const publisher = new HttpPublisher(ports, opts.publishers);
  let conns: Connection[] = [];
  let stopPublishing = async () => {};
  try {
    conns = await subscribeAll(subject, ports, delivery, opts.subscribers);
    const wireBytes = () => conns.reduce((n, conn) => n + conn.wireBytes(), 0);
    await probeUntilSubscribed(delivery, publisher);
    stopPublishing = startPublishing(delivery, publisher, opts);
    await sleep(opts.warmupMs);
    const wire0 = wireBytes();
    const w = await measureWindow(procs, delivery, opts.durationMs, hooks);
    const wire = wireBytes() - wire0;
    await stopPublishing();

    const drained = await delivery.drain(opts.drainMs);
    const totals = delivery.totals();
    const delivered = delivery.deliveredInWindow;
    const pct = (micros: number) => (micros / (w.elapsedMs * 1000)) * 100;
    return {
      subject,
      opts,
      published: delivery.published(),
      publishErrors: publisher.errors,
      publishedPerSec: (w.published * 1000) / w.elapsedMs,
      deliveredPerSec: (delivered * 1000) / w.elapsedMs,
      p50: delivery.latency.percentile(50),
      p99: delivery.latency.percentile(99),
      lost: totals.lost,
      duplicated: totals.duplicated,
      reordered: totals.reordered,
      disconnected: totals.closed,
      drained,
      forcedAdvances: delivery.forcedAdvances,
      serverCpuPct: pct(w.serverCpu),
      loadgenCpuPct: pct(w.loadgenCpu),
      otherCpuPct: Math.max(0, pct(w.machineCpu - w.serverCpu - w.loadgenCpu)),
      cpuMicrosPerEvent: delivered ? w.serverCpu / delivered : Number.NaN,
      rssMiB: w.rssBytes / 2 ** 20,
      wireBytesPerEvent: delivered ? wire / delivered : Number.NaN,
    };
  } finally {
    await stopPublishing(); // a failed run must not leave publishers spinning
    closeAll(conns);
    publisher.close();
  }
}

export interface FanoutSummary extends FanoutResult {
  rounds: number;
  cpuMin: number;
  cpuMax: number;
}

/**
 * Repeated runs of one configuration → the run with the median CPU/event, but with loss,
 * duplicates, reordering and disconnects summed over all runs so no failure is hidden.
 */
export function summarize<R extends FanoutResult>(runs: readonly R[]): R & FanoutSummary {
  const sorted = [...runs].sort((a, b) => a.cpuMicrosPerEvent - b.cpuMicrosPerEvent);
  const mid = sorted[Math.floor((sorted.length - 1) / 2)];
  if (!mid) throw new Error('no runs to summarize');
  const sum = (k: 'lost' | 'duplicated' | 'reordered' | 'disconnected' | 'publishErrors') =>
    runs.reduce((n, r) => n + r[k], 0);
  return {
    ...mid,
    lost: sum('lost'),
    duplicated: sum('duplicated'),
    reordered: sum('reordered'),
    disconnected: sum('disconnected'),
    publishErrors: sum('publishErrors'),
    drained: runs.every((r) => r.drained),
    rounds: runs.length,
    cpuMin: sorted[0]?.cpuMicrosPerEvent ?? Number.NaN,
    cpuMax: sorted[sorted.length - 1]?.cpuMicrosPerEvent ?? Number.NaN,
  };
}
