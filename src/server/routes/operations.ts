import type { FastifyInstance } from 'fastify';
import type { Counter } from 'prom-client';
import type { EventLog } from '../../core/event-log.js';
import type { TopicHub } from '../../core/hub.js';
import type { RunningGenerations } from '../../llm/running.js';
import type { ConnectionRegistry } from '../../transports/connections.js';
import type { Metrics } from '../metrics.js';

/** Contract §6: liveness, readiness and Prometheus metrics. */
export function operationRoutes(app: FastifyInstance, log: EventLog, metrics: Metrics): void {
  // Probes need no credentials (docs/api.md §7); metrics do.
  const open = { config: { auth: 'public' } } as const;
  app.get('/healthz', open, async () => ({ status: 'ok' }));

  app.get('/readyz', open, async (_request, reply) => {
    const ready = await log.isReady().catch(() => false);
    reply.code(ready ? 200 : 503);
    return { status: ready ? 'ready' : 'unavailable' };
  });

  app.get('/metrics', async (_request, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}

/** What `GET /v1/stats` reads: live objects of this process. */
export interface StatsSources {
  readonly metrics: Metrics;
  readonly connections: ConnectionRegistry;
  readonly hub: TopicHub;
  readonly generations: RunningGenerations;
}

/**
 * `GET /v1/stats`: a small JSON summary of this process for dashboards (the demo page's status
 * strip); `/metrics` has the full picture. Rates are averaged over the last few seconds.
 */
export function statsRoute(app: FastifyInstance, sources: StatsSources): void {
  const { metrics, connections, hub, generations } = sources;
  const rates = new RateWindow();
  // Polled every second by each open demo page: not worth two log lines a poll.
  app.get('/v1/stats', { logLevel: 'warn' }, async () => {
    const events = {
      published: await total(metrics.published),
      delivered: await total(metrics.delivered),
      deltas: await total(metrics.generatedDeltas.counter),
    };
    return {
      connections: { sse: connections.count('sse'), ws: connections.count('ws') },
      subscribers: hub.totalSubscribers,
      generations: generations.size,
      events,
      per_second: rates.observe(Date.now(), events),
      uptime_s: Math.round(process.uptime()),
    };
  });
}

async function total(counter: Counter<string>): Promise<number> {
  return (await counter.get()).values.reduce((sum, { value }) => sum + value, 0);
}

type Totals = Record<string, number>;

const RATE_WINDOW_MS = 5000;
/** A base older than this says more about the past than about now. */
const RATE_STALE_MS = 60_000;

/**
 * Per-second rates of growing totals, from samples taken when asked (at most one a second,
 * so at most a handful are kept): no timer wakes an idle server.
 */
class RateWindow {
  #samples: { time: number; totals: Totals }[] = [];

  /** Rates since about RATE_WINDOW_MS ago; null until there is an earlier sample. */
  observe(time: number, totals: Totals): Totals | null {
    const samples = this.#samples;
    while (samples.length > 1 && time - (samples[1]?.time ?? time) >= RATE_WINDOW_MS) {
      samples.shift();
    }
    if (samples.length > 0 && time - (samples[0]?.time ?? time) > RATE_STALE_MS) samples.length = 0;
    const base = samples[0];
    const newest = samples[samples.length - 1];
    if (newest === undefined || time - newest.time >= 1000) samples.push({ time, totals });
    if (base === undefined || time <= base.time) return null;
    const seconds = (time - base.time) / 1000;
    return Object.fromEntries(
      Object.entries(totals).map(([name, value]) => [
        name,
        Math.round(((value - (base.totals[name] ?? 0)) / seconds) * 10) / 10,
      ]),
    );
  }
}
