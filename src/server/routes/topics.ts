import type { Socket } from 'node:net';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type { StartFrom } from '../../core/hub.js';
import { checkTopic } from '../../core/names.js';
import { type InTrace, inCurrentTrace } from '../../core/tracing.js';
import type { StoredEvent } from '../../core/types.js';
import {
  HISTORY_PAGE_DEFAULT,
  HISTORY_PAGE_MAX,
  type HistoryPage,
  parseStartFrom,
  type TopicService,
} from '../../topics/topic-service.js';
import { TopicSocket } from '../../topics/ws-protocol.js';
import { sseLogSubscriber } from '../../transports/sse/log-subscriber.js';
import { WsConnection } from '../../transports/ws/ws-connection.js';
import type { Authenticator } from '../auth/authenticator.js';
import { authenticateByFirstFrame } from '../auth/first-frame.js';
import type { Principal } from '../auth/principal.js';
import { closeSocketOnExpiry } from '../auth/streams.js';
import { ApiError } from '../errors.js';
import { clientAddress } from '../limits/client-key.js';
import type { Limits } from '../limits/limits.js';
import { lastEventIdOf, openSse, type StreamDeps, singleHeader } from './sse.js';

export interface TopicRouteDeps extends StreamDeps {
  readonly service: TopicService;
  readonly maxSubscriptionsPerSocket: number;
  /** For WebSockets that authenticate with their first frame. */
  readonly auth: Authenticator;
  readonly limits: Limits;
}

type TopicParams = { Params: { topic: string } };
type StreamQuery = { last_event_id?: string; lastEventId?: string; from?: string };
type HistoryQuery = { after?: string; limit?: number };

/** `event` is untyped so that Ajv cannot coerce `42` to `"42"`: the service checks it. */
const publishSchema = {
  body: {
    type: 'object',
    required: ['data'],
    additionalProperties: false,
    properties: { data: {}, event: {} },
  },
};

const historySchema = {
  querystring: {
    type: 'object',
    properties: {
      after: { type: 'string', maxLength: 256 },
      limit: { type: 'integer', minimum: 1 },
      last_event_id: { type: 'string' },
      lastEventId: { type: 'string' },
      from: { type: 'string' },
    },
  },
};

/** Contract §2 (topics over HTTP and SSE) and §3 (topics over WebSocket). */
export function topicRoutes(app: FastifyInstance, deps: TopicRouteDeps): void {
  const { service } = deps;

  app.post<TopicParams & { Body: { data: unknown; event?: string } }>(
    '/v1/topics/:topic/events',
    { schema: publishSchema, config: { auth: 'publish' } },
    async (request, reply) => {
      const { topic } = request.params;
      const result = await service.publish(topic, {
        ...request.body,
        idempotencyKey: singleHeader(request.headers, 'idempotency-key'),
      });
      reply.code(result.duplicate ? 200 : 201);
      return { id: result.id, topic, event: result.event };
    },
  );

  app.get<TopicParams & { Querystring: StreamQuery & HistoryQuery }>(
    '/v1/topics/:topic/events',
    { schema: historySchema, config: { auth: 'subscribe' } },
    async (request, reply) => {
      const { topic } = request.params;
      if (wantsEventStream(request)) return subscribeSse(request, reply, deps);
      const limit = Math.min(request.query.limit ?? HISTORY_PAGE_DEFAULT, HISTORY_PAGE_MAX);
      const page = await service.history(topic, request.query.after, limit);
      reply.type('application/json; charset=utf-8');
      return historyJson(topic, page);
    },
  );

  app.get<TopicParams>('/v1/topics/:topic', { config: { auth: 'subscribe' } }, async (request) =>
    service.status(request.params.topic),
  );

  app.delete<TopicParams>(
    '/v1/topics/:topic',
    { config: { auth: 'publish' } },
    async (request, reply) => {
      await service.delete(request.params.topic);
      reply.code(204).send();
    },
  );

  const openConnection = (socket: WebSocket, request: FastifyRequest) => {
    const tcp = request.raw.socket as Socket;
    releaseUpgrade(socket, tcp, app.log);
    return new WsConnection(socket, tcp, {
      registry: deps.connections,
      maxBufferedBytes: deps.slowConsumerMaxBytes,
      onSlowConsumer: () => deps.metrics.slowConsumers.inc({ transport: 'ws' }),
    });
  };

  /** `address` is the upgrade request's `clientAddress`, for per-client limits; `inUpgradeTrace`
   *  its trace context, captured while its handler runs. */
  const openSocket = (
    connection: WsConnection,
    principal: Principal,
    upgrade: { address: string; inUpgradeTrace: InTrace },
    boundTopic?: string,
  ) => {
    closeSocketOnExpiry(connection, principal);
    return new TopicSocket(connection, service, {
      boundTopic,
      allows: (action, topic) => principal.rights.allows(action, topic),
      maxSubscriptions: deps.maxSubscriptionsPerSocket,
      admitPublish: deps.limits.publishGate(principal, upgrade.address),
      inUpgradeTrace: upgrade.inUpgradeTrace,
      onFrame: (outcome, code) => {
        deps.metrics.wsFrames.inc({ outcome });
        deps.limits.frameRefused(code);
      },
    });
  };

  app.route<TopicParams & { Querystring: StreamQuery }>({
    method: 'GET',
    url: '/v1/topics/:topic/ws',
    config: { auth: 'subscribe' },
    preValidation: async (request) => {
      checkTopic(request.params.topic);
      streamStart(request);
    },
    handler: upgradeRequired,
    wsHandler: (socket, request) => {
      const { topic } = request.params;
      const { principal } = request;
      const connection = openConnection(socket, request);
      openSocket(connection, principal, upgradeOf(request), topic).subscribeBound(
        streamStart(request),
      );
    },
  });

  app.route({
    method: 'GET',
    url: '/v1/ws',
    // Browsers cannot set headers on a WebSocket: without a token, the first frame brings it.
    config: { auth: 'deferred' },
    handler: upgradeRequired,
    wsHandler: (socket, request) => {
      const { principal } = request;
      const upgrade = upgradeOf(request);
      const connection = openConnection(socket, request);
      if (principal.via !== 'none') openSocket(connection, principal, upgrade);
      else
        authenticateByFirstFrame(connection, deps.auth, (authenticated) =>
          openSocket(connection, authenticated, upgrade),
        );
    },
  });
}

/** What a socket keeps of its upgrade request; called while the request's handler runs. */
function upgradeOf(request: FastifyRequest): { address: string; inUpgradeTrace: InTrace } {
  return { address: clientAddress(request), inUpgradeTrace: inCurrentTrace() };
}

/**
 * After the upgrade, nothing needs the HTTP exchange any more, but @fastify/websocket's
 * 'error' listener keeps the Fastify request and reply (with a child logger) alive, and the
 * TCP socket keeps the upgrade's ServerResponse: several KiB per idle WebSocket, measured
 * with heap snapshots. The socket still needs an 'error' listener, so it gets a light one.
 */
function releaseUpgrade(socket: WebSocket, tcp: Socket, log: FastifyBaseLogger): void {
  socket.removeAllListeners('error');
  socket.on('error', (error) => log.debug({ err: error }, 'websocket error'));
  (tcp as Socket & { _httpMessage: unknown })._httpMessage = null;
}

function subscribeSse(
  request: FastifyRequest<TopicParams & { Querystring: StreamQuery }>,
  reply: FastifyReply,
  deps: TopicRouteDeps,
): void {
  const { topic } = request.params;
  checkTopic(topic);
  const from = streamStart(request);
  const stream = openSse(request, reply, deps);
  const subscription = deps.service.subscribe(topic, from, sseLogSubscriber(stream));
  stream.onClose(() => subscription.close());
}

function streamStart(request: FastifyRequest<{ Querystring: StreamQuery }>): StartFrom {
  return parseStartFrom(lastEventIdOf(request), request.query.from);
}

function wantsEventStream(request: FastifyRequest): boolean {
  return request.headers.accept?.includes('text/event-stream') ?? false;
}

async function upgradeRequired(): Promise<never> {
  throw new ApiError(426, 'upgrade_required', 'this endpoint speaks WebSocket only');
}

/** Built by hand so each event's stored JSON text is embedded as is, not parsed again. */
function historyJson(topic: string, page: HistoryPage): string {
  const events = page.events.map(historyEventJson).join(',');
  const reset = page.reset === undefined ? '' : `,"reset":${JSON.stringify(page.reset)}`;
  return `{"topic":${JSON.stringify(topic)},"events":[${events}],"next":${JSON.stringify(page.next)}${reset}}`;
}

function historyEventJson(event: StoredEvent): string {
  const time = new Date(event.time).toISOString();
  return `{"id":"${event.id}","event":"${event.event}","data":${event.data},"time":"${time}"}`;
}
