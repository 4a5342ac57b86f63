import fastifyWebsocket from '@fastify/websocket';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { EventLog } from '../core/event-log.js';
import type { TopicHub } from '../core/hub.js';
import { ConnectionRegistry } from '../transports/connections.js';
import { Authenticator } from './auth/authenticator.js';
import { installAuth, requestForLog } from './auth/hook.js';
import type { Config } from './config.js';
import { registerCors } from './cors.js';
import { demoPage } from './demo/plugin.js';
import { installErrorHandling, toApiError } from './errors.js';
import { compressJsonAnswers } from './json-compression.js';
import { type LimitSettings, Limits } from './limits/limits.js';
import {
  type Listener,
  type ListenerSettings,
  prepareListener,
  serverOptions,
} from './listener.js';
import { Metrics } from './metrics.js';
import { answerHandshakeRefusals, installHttpRefusals } from './protocol-errors.js';
import { lazyRequestLogger } from './request-logger.js';
import { openAiCompatRoutes } from './routes/openai-compat.js';
import { operationRoutes, statsRoute } from './routes/operations.js';
import { sessionRoutes } from './routes/sessions.js';
import { streamRoutes } from './routes/streams.js';
import { topicRoutes } from './routes/topics.js';
import { createServices, type Services } from './services.js';
import { tlsMaterial } from './tls.js';
import { type Tracing, traceIdsForLog, traceRequests } from './tracing/index.js';
import { installValidation } from './validation.js';

/** Room for the JSON envelope around a `data` of MAX_BODY_BYTES in a WebSocket frame. */
const WS_FRAME_OVERHEAD = 1024;
/** Fastify's default. */
const KEEP_ALIVE_TIMEOUT_MS = 72_000;
/**
 * No context takeover either way: every message is compressed on its own, so one compressed
 * frame of a batch suits every socket, and no socket keeps a compression window between
 * messages. `ws` itself compresses nothing (threshold): event frames are compressed once per
 * batch by the topic transport, and control replies are small.
 */
const WS_DEFLATE = {
  serverNoContextTakeover: true,
  clientNoContextTakeover: true,
  threshold: Number.POSITIVE_INFINITY,
};

export interface Streamhub {
  readonly app: FastifyInstance;
  /** The topics' log and fan-out. */
  readonly log: EventLog;
  readonly hub: TopicHub;
  readonly connections: ConnectionRegistry;
  readonly metrics: Metrics;
  readonly services: Services;
  readonly limits: Limits;
  readonly listener: Listener;
}

/** Wires backends, features and routes into one Fastify app (not yet listening). */
export async function buildStreamhub(config: Config, tracing?: Tracing): Promise<Streamhub> {
  const connections = new ConnectionRegistry(config.HEARTBEAT_MS);
  const metrics = new Metrics(connections);
  const services = createServices(
    config,
    metrics,
    (error) => app.log.error({ err: error }, 'recording a reply failed'),
    tracing !== undefined,
  );

  const auth = Authenticator.create({
    jwtSecret: config.AUTH_JWT_SECRET,
    jwtPublicKeyFile: config.AUTH_JWT_PUBLIC_KEY_FILE,
    apiKeys: config.API_KEYS,
  });
  const limits = new Limits(limitSettings(config), metrics.registry, services.sharedRates);
  const listenerSettings: ListenerSettings = {
    tls: tlsMaterial(config),
    maxHeaderBytes: config.MAX_HEADER_BYTES,
    requestTimeoutMs: config.REQUEST_TIMEOUT_MS,
    keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
  };
  const app = Fastify({
    ...serverOptions(listenerSettings),
    logger: {
      level: config.LOG_LEVEL,
      serializers: { req: requestForLog },
      ...(tracing && { mixin: traceIdsForLog }),
    },
    childLoggerFactory: lazyRequestLogger,
    bodyLimit: config.MAX_BODY_BYTES,
    // Names are up to 128 chars, which percent-encoding can triple; Fastify's default of 100
    // would answer 414 for valid topics and session ids.
    routerOptions: { maxParamLength: 1024 },
    // Closing idle keep-alive sockets lets shutdown finish promptly.
    forceCloseConnections: 'idle',
    // Fastify's own routing errors answer in the API's error shape, like every other error.
    frameworkErrors: (error, _request, reply) => {
      const apiError = toApiError(error);
      (reply as FastifyReply).code(apiError.status).send(apiError.toJSON());
    },
    clientErrorHandler: limits.answerClientError,
    trustProxy: config.TRUST_PROXY,
  });
  const listener = prepareListener(app.server, listenerSettings);
  // Before every other hook, so that they all run inside the request's span.
  if (tracing !== undefined) await traceRequests(app, tracing);
  installErrorHandling(app);
  installValidation(app);
  installHttpRefusals(app);
  // First of the hooks after the Host check: preflights are answered before auth, and every
  // answer has CORS headers.
  await registerCors(app, config.CORS_ORIGINS);
  // Every API body is JSON: anything else is 415, not a string that fails validation later.
  app.removeContentTypeParser('text/plain');
  app.addHook('onResponse', (request, reply, done) => {
    metrics.responded(request, reply);
    done();
  });
  app.addHook('onClose', () => services.close());
  const compression = config.COMPRESSION === 'on';
  // JSON answers only: SSE routes take the response over (hijack), which skips onSend hooks,
  // and compress their streams themselves, once per batch. Request bodies stay as sent.
  if (compression) compressJsonAnswers(app);
  await app.register(fastifyWebsocket, {
    options: {
      maxPayload: config.MAX_BODY_BYTES + WS_FRAME_OVERHEAD,
      perMessageDeflate: compression && WS_DEFLATE,
    },
  });
  answerHandshakeRefusals(app.websocketServer);
  installAuth(app, auth);
  await limits.install(app);
  const streams = {
    connections,
    metrics,
    slowConsumerMaxBytes: config.SLOW_CONSUMER_MAX_BYTES,
    compression,
  };
  operationRoutes(app, services.topicLog.log, metrics);
  const { generations, topicLog } = services;
  statsRoute(app, { metrics, connections, hub: topicLog.hub, generations });
  topicRoutes(app, {
    ...streams,
    service: services.topics,
    maxSubscriptionsPerSocket: config.MAX_SUBSCRIPTIONS_PER_SOCKET,
    auth,
    limits,
  });
  sessionRoutes(app, { ...streams, sessions: services.sessions });
  openAiCompatRoutes(app, {
    ...streams,
    completions: services.completions,
    provider: services.provider,
  });
  await streamRoutes(app, { ...streams, streams: services.streams });
  await app.register(demoPage);
  const { log, hub } = services.topicLog;
  return { app, log, hub, connections, metrics, services, limits, listener };
}

function limitSettings(config: Config): LimitSettings {
  return {
    rates: {
      publish: config.PUBLISH_RATE_LIMIT,
      chat: config.CHAT_RATE_LIMIT,
      connect: config.CONNECT_RATE_LIMIT,
    },
    rateWindowMs: config.RATE_LIMIT_WINDOW_MS,
    maxConnections: config.MAX_CONNECTIONS,
    maxConnectionsPerClient: config.MAX_CONNECTIONS_PER_CLIENT,
    maxSubscriptionsPerSocket: config.MAX_SUBSCRIPTIONS_PER_SOCKET,
    maxHeaderBytes: config.MAX_HEADER_BYTES,
  };
}
