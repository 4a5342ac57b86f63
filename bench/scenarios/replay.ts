import { type Connection, subscribe, type Transport } from '../lib/clients.js';
import type { Payload } from '../lib/delivery.js';
import { HttpPublisher, nowMs } from '../lib/publisher.js';
import { median } from '../lib/stats.js';
import { type Subject, servers, withServer } from '../targets.js';

export interface ReplayResult {
  label: string;
  events: number;
  /** Median over the repetitions, from opening the connection to the last event received. */
  ms: number;
  eventsPerSec: number;
  /** From the fastest repetition. */
  bestPerSec: number;
  ok: boolean;
  note: string;
}

export interface ReplayReport {
  publishPerSec: number;
  results: ReplayResult[];
}

const TOPIC = 'bench.replay';

interface Mode {
  label: string;
  transport: Transport;
  query?: string;
  /** Resume after the first event instead of replaying everything. */
  resume?: boolean;
}

const MODES: Mode[] = [
  { label: 'SSE `?from=start`', transport: 'sse', query: 'from=start' },
  { label: 'SSE `Last-Event-ID` = first event', transport: 'sse', resume: true },
  { label: 'WS (per-topic) `?from=start`', transport: 'ws', query: 'from=start' },
];

/** Receives until `expected` events arrived (checking their order) or the timeout hits. */
async function timeReplay(
  port: number,
  mode: Mode,
  lastEventId: string | undefined,
  firstSeq: number,
  expected: number,
  timeoutMs: number,
): Promise<{ ms: number; ok: boolean; note: string }> {
  let received = 0;
  let outOfOrder = 0;
  let resets = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => {
    done = r;
  });
  const start = nowMs();
  let conn: Connection | undefined;
  try {
    conn = await subscribe(mode.transport, {
      port,
      topic: TOPIC,
      ...(mode.query ? { query: mode.query } : {}),
      ...(lastEventId ? { lastEventId } : {}),
      onData: (data) => {
        const d = data as Payload | { reason?: string };
        if (!('s' in d)) {
          resets++; // e.g. an SSE `reset` frame; streamhub should not send one here
          return;
        }
        if (d.s !== firstSeq + received) outOfOrder++;
        if (++received === expected) done();
      },
      onClose: () => done(),
      timeoutMs,
    });
    const timer = setTimeout(done, timeoutMs);
    await finished;
    clearTimeout(timer);
  } finally {
    conn?.close();
  }
  const ms = nowMs() - start;
  const problems = [
    received !== expected && `received ${received}/${expected}`,
    outOfOrder && `${outOfOrder} out of order`,
    resets && `${resets} non-event frames`,
  ].filter(Boolean);
  return { ms, ok: problems.length === 0, note: problems.join(', ') };
}

export async function runReplay(
  events: number,
  repetitions: number,
  subject: Subject = {
    label: 'streamhub',
    server: servers.streamhub,
    transport: 'sse',
  },
): Promise<ReplayReport> {
  const env = { HISTORY_MAX_EVENTS: String(events) };
  return withServer(subject.server, env, async (proc) => {
    const publisher = new HttpPublisher(proc.port, 1);
    const ids: string[] = [];
    const t0 = nowMs();
    try {
      // One request at a time so that ids[i] is the id of seq i.
      for (let s = 0; s < events; s++) {
        const { id } = await publisher.publish(TOPIC, { p: 0, s, t: nowMs() } satisfies Payload);
        if (id === undefined) throw new Error(`publish ${s} failed`);
        ids.push(id);
      }
    } finally {
      publisher.close();
    }
    const publishPerSec = (events * 1000) / (nowMs() - t0);

    // A 10,000-event replay takes tens of milliseconds, so JIT warm-up and scheduling noise
    // matter: one discarded round first, then rounds that interleave the modes.
    const runs = MODES.map(() => ({ ms: [] as number[], notes: new Set<string>() }));
    for (let round = 0; round <= repetitions; round++) {
      for (const [i, mode] of MODES.entries()) {
        const r = await timeReplay(
          proc.port,
          mode,
          mode.resume ? ids[0] : undefined,
          mode.resume ? 1 : 0,
          mode.resume ? events - 1 : events,
          30_000,
        );
        if (r.note) runs[i]?.notes.add(r.note);
        if (round > 0) runs[i]?.ms.push(r.ms);
      }
    }
    const results = MODES.map((mode, i): ReplayResult => {
      const run = runs[i] ?? { ms: [], notes: new Set() };
      const expected = mode.resume ? events - 1 : events;
      const ms = median(run.ms);
      const best = Math.min(...run.ms);
      return {
        label: mode.label,
        events: expected,
        ms,
        eventsPerSec: (expected * 1000) / ms,
        bestPerSec: (expected * 1000) / best,
        ok: run.notes.size === 0,
        note: [...run.notes].join('; '),
      };
    });
    return { publishPerSec, results };
  });
}
