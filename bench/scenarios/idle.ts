import { type Connection, closeAll, mapLimit, subscribe } from '../lib/clients.js';
import { sampleProc, sleep } from '../lib/proc.js';
import { HttpPublisher } from '../lib/publisher.js';
import { median } from '../lib/stats.js';
import { type Subject, withServer } from '../targets.js';

export interface IdleResult {
  subject: Subject;
  connections: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  kibPerConnection: number;
}

const TOPIC = 'bench.idle';
const noop = () => {};

export async function runIdle(
  subject: Subject,
  connections: number,
  settleMs: number,
): Promise<IdleResult> {
  return withServer(subject.server, {}, async (proc) => {
    const conns: Connection[] = [];
    const open = () =>
      subscribe(subject.transport, {
        port: proc.port,
        topic: TOPIC,
        onData: noop,
        onClose: noop,
        compressed: subject.compressed,
      });
    try {
      // Exercise the subscribe and publish paths once so lazily loaded code and JIT warm-up
      // land in the baseline, not in the per-connection figure.
      const warm = await mapLimit(Array.from({ length: 10 }), 10, open);
      const publisher = new HttpPublisher(proc.port, 1);
      await publisher.publish(TOPIC, { warm: true });
      publisher.close();
      closeAll(warm);
      await sleep(settleMs);
      const before = sampleProc(proc.pid).rssBytes;

      await mapLimit(Array.from({ length: connections }), 100, async () => {
        conns.push(await open());
      });
      await sleep(settleMs);
      const after = sampleProc(proc.pid).rssBytes;
      return {
        subject,
        connections,
        rssBeforeMiB: before / 2 ** 20,
        rssAfterMiB: after / 2 ** 20,
        kibPerConnection: (after - before) / 1024 / connections,
      };
    } finally {
      closeAll(conns);
    }
  });
}

export interface IdleSummary extends IdleResult {
  rounds: number;
  kibMin: number;
  kibMax: number;
}

/** RSS moves in GC-sized steps, so one sample is noisy: report the median round and the spread. */
export function summarizeIdle(runs: readonly IdleResult[]): IdleSummary {
  const kib = runs.map((r) => r.kibPerConnection);
  const mid = median(kib);
  const run = runs.find((r) => r.kibPerConnection === mid);
  if (!run) throw new Error('no runs to summarize');
  return { ...run, rounds: runs.length, kibMin: Math.min(...kib), kibMax: Math.max(...kib) };
}
