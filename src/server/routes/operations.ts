import type { FastifyInstance } from 'fastify';
import type { EventLog } from '../../core/event-log.js';
import type { Metrics } from '../metrics.js';

/** Contract §6: liveness, readiness and Prometheus metrics. */
export function operationRoutes(app: FastifyInstance, log: EventLog, metrics: Metrics): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const ready = await log.isReady().catch(() => false);
    reply.code(ready ? 200 : 503);
    return { status: ready ? 'ready' : 'unavailable' };
  });

  app.get('/metrics', async (_request, reply) => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}
