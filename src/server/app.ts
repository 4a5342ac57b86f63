import fastifyWebsocket from '@fastify/websocket';
import Fastify, { type FastifyInstance } from 'fastify';
import { MemoryEventLog } from '../backends/memory/memory-log.js';
import { MemorySessionStore } from '../backends/memory/memory-session-store.js';
import type { EventLog } from '../core/event-log.js';
import { TopicHub } from '../core/hub.js';
import type { SessionStore } from '../core/session-store.js';
import { ConcurrencyLimiter } from '../llm/limiter.js';
import { SessionService } from '../sessions/session-service.js';
import { TopicService } from '../topics/topic-service.js';
import { ConnectionRegistry } from '../transports/connections.js';
import { type Config, ConfigError } from './config.js';
import { installErrorHandling } from './errors.js';
import { Metrics } from './metrics.js';
import { createProvider } from './provider.js';
import { openAiCompatRoutes } from './routes/openai-compat.js';
import { operationRoutes } from './routes/operations.js';
import { sessionRoutes } from './routes/sessions.js';
import { topicRoutes } from './routes/topics.js';

/** Room for the JSON envelope around a `data` of MAX_BODY_BYTES in a WebSocket frame. */
const WS_FRAME_OVERHEAD = 1024;

export interface Streamhub {
  readonly app: FastifyInstance;
  readonly log: EventLog;
  readonly hub: TopicHub;
  readonly connections: ConnectionRegistry;
  readonly metrics: Metrics;
  readonly sessions: SessionService;
}

/** A backend's event log with the given retention (topics and replies retain differently). */
export function createEventLog(
  config: Config,
  retention: { maxEvents: number; ttlMs: number },
): EventLog {
  if (config.BACKEND === 'redis') {
    throw new ConfigError('BACKEND=redis: the Redis backend is not available in this version yet');
  }
  return new MemoryEventLog({ ...retention, idempotencyTtlMs: config.IDEMPOTENCY_TTL_MS });
}

function createSessionStore(config: Config): SessionStore {
  return new MemorySessionStore({
    ttlMs: config.SESSION_TTL_MS,
    maxMessages: config.SESSION_MAX_MESSAGES,
  });
}

/** Wires backend, hub, features and routes into one Fastify app (not yet listening). */
export async function buildStreamhub(config: Config): Promise<Streamhub> {
  const log = createEventLog(config, {
    maxEvents: config.HISTORY_MAX_EVENTS,
    ttlMs: config.HISTORY_TTL_MS,
  });
  const connections = new ConnectionRegistry(config.HEARTBEAT_MS);
  const metrics = new Metrics(connections);
  const hub = new TopicHub(log, { observer: metrics.hubObserver });
  const service = new TopicService(log, hub, () => metrics.published.inc());
  const replyLog = createEventLog(config, {
    maxEvents: config.REPLY_MAX_EVENTS,
    ttlMs: config.SESSION_TTL_MS,
  });
  const replies = { log: replyLog, hub: new TopicHub(replyLog) };
  const provider = createProvider(config, metrics.upstreamObserver);
  const limiter = new ConcurrencyLimiter(config.LLM_MAX_CONCURRENCY, config.LLM_QUEUE_MAX);
  metrics.watchGenerations(limiter, provider);
  const sessionStore = createSessionStore(config);
  const sessions = new SessionService(sessionStore, replies, provider, limiter, {
    takeover: config.SESSION_TAKEOVER,
    onGeneration: (outcome) => metrics.generations.inc({ feature: 'chat', outcome }),
    onDelta: () => metrics.generatedDeltas.inc({ feature: 'chat' }),
    onInternalError: (error) => app.log.error({ err: error }, 'recording a reply failed'),
  });

  const app = Fastify({
    logger: { level: config.LOG_LEVEL },
    bodyLimit: config.MAX_BODY_BYTES,
    // Names are up to 128 chars, which percent-encoding can triple; Fastify's default of 100
    // would answer 414 for valid topics and session ids.
    routerOptions: { maxParamLength: 1024 },
    // An unknown field is a client's mistake to report, not to drop silently (Fastify's default).
    ajv: { customOptions: { removeAdditional: false } },
    // Closing idle keep-alive sockets lets shutdown finish promptly.
    forceCloseConnections: 'idle',
  });
  installErrorHandling(app);
  // Every API body is JSON: anything else is 415, not a string that fails validation later.
  app.removeContentTypeParser('text/plain');
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpRequests.inc({
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      status: reply.statusCode,
    });
  });
  app.addHook('onClose', async () => {
    await sessions.drain(0);
    await Promise.all([log.close(), replyLog.close(), sessionStore.close()]);
  });
  await app.register(fastifyWebsocket, {
    options: { maxPayload: config.MAX_BODY_BYTES + WS_FRAME_OVERHEAD, perMessageDeflate: false },
  });
  operationRoutes(app, log, metrics);
  topicRoutes(app, { service, connections, metrics, config });
  sessionRoutes(app, { sessions, connections, metrics, config });
  openAiCompatRoutes(app, { replies, provider, limiter, connections, metrics, config });
  return { app, log, hub, connections, metrics, sessions };
}
