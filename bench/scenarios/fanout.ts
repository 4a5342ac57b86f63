import { type Connection, closeAll, mapLimit, subscribe } from '../lib/clients.js';
import { Delivery, type Payload, PROBE } from '../lib/delivery.js';
import { sampleMachine, sampleProc, sleep } from '../lib/proc.js';
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
}

const TOPIC = 'bench.fanout';

export async function runFanout(subject: Subject, opts: FanoutOptions): Promise<FanoutResult> {
  return withServer(subject.server, opts.env ?? {}, async (proc) => {
    const streams = opts.publishers;
    const delivery = new Delivery(streams, opts.window);
    const publisher = new HttpPublisher(proc.port, streams);
    const conns: Connection[] = [];
    try {
      await mapLimit(Array.from({ length: opts.subscribers }), 50, async () => {
        const sub = delivery.addSubscriber();
        conns.push(
          await subscribe(subject.transport, {
            port: proc.port,
            topic: TOPIC,
            onData: (data) => delivery.receive(sub, data as Payload),
            onClose: () => delivery.close(sub),
          }),
        );
      });

      // An open response or socket does not prove the server has registered the subscription:
      // publish probes until every subscriber has seen one, then start counting.
      const probeDeadline = Date.now() + 15_000;
      while (!delivery.subscribers.every((s) => s.probed || s.closed)) {
        if (Date.now() > probeDeadline) throw new Error('subscribers never received a probe');
        await publisher.publish(TOPIC, { p: PROBE, s: 0, t: nowMs() });
        await sleep(100);
      }

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

      await sleep(opts.warmupMs);
      const cpu0 = sampleProc(proc.pid);
      const load0 = process.cpuUsage();
      const machine0 = sampleMachine();
      const t0 = performance.now();
      delivery.measuring = true;
      await sleep(opts.durationMs);
      delivery.measuring = false;
      const elapsedMs = performance.now() - t0;
      const cpu1 = sampleProc(proc.pid);
      const load = process.cpuUsage(load0);
      const machine1 = sampleMachine();
      running = false;
      await Promise.all(loops);

      const drained = await delivery.drain(opts.drainMs);
      const totals = delivery.totals();
      const delivered = delivery.deliveredInWindow;
      const serverCpu = cpu1.cpuMicros - cpu0.cpuMicros;
      const loadgenCpu = load.user + load.system;
      const otherCpu = machine1.busyMicros - machine0.busyMicros - serverCpu - loadgenCpu;
      return {
        subject,
        opts,
        published: delivery.published(),
        publishErrors: publisher.errors,
        deliveredPerSec: (delivered * 1000) / elapsedMs,
        p50: delivery.latency.percentile(50),
        p99: delivery.latency.percentile(99),
        lost: totals.lost,
        duplicated: totals.duplicated,
        reordered: totals.reordered,
        disconnected: totals.closed,
        drained,
        forcedAdvances: delivery.forcedAdvances,
        serverCpuPct: (serverCpu / (elapsedMs * 1000)) * 100,
        loadgenCpuPct: (loadgenCpu / (elapsedMs * 1000)) * 100,
        otherCpuPct: Math.max(0, (otherCpu / (elapsedMs * 1000)) * 100),
        cpuMicrosPerEvent: delivered ? serverCpu / delivered : Number.NaN,
        rssMiB: cpu1.rssBytes / 2 ** 20,
      };
    } finally {
      closeAll(conns);
      publisher.close();
    }
  });
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
export function summarize(runs: readonly FanoutResult[]): FanoutSummary {
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
