import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type AppendBody, appendedEvents } from '../../streams/append-request.js';
import { bodyTypeOf, STREAM_CONTENT_TYPES } from '../../streams/body-events.js';
import { checkStreamId } from '../../streams/errors.js';
import { streamSubscriber } from '../../streams/stream-log.js';
import type { StreamService } from '../../streams/stream-service.js';
import { ApiError } from '../errors.js';
import { allowUnboundedBody } from '../limits/client-errors.js';
import { lastEventIdOf, openSse, type StreamDeps } from './sse.js';

export interface StreamRouteDeps extends StreamDeps {
  readonly streams: StreamService;
}

type StreamParams = { Params: { id: string } };
type ReadQuery = { last_event_id?: string; lastEventId?: string; if_active?: string };

/** `event` is untyped so that Ajv cannot coerce `42` to `"42"`: the service checks it. */
const EVENT = {
  type: 'object',
  required: ['data'],
  additionalProperties: false,
  properties: { data: {}, event: {} },
} as const;

const appendSchema = {
  body: {
    type: 'object',
    additionalProperties: false,
    properties: { data: {}, event: {}, events: { type: 'array', minItems: 1, items: EVENT } },
    anyOf: [{ required: ['data'] }, { required: ['events'] }],
  },
};

/** docs/api.md §9: streams from any producer, resumable by any consumer. */
export async function streamRoutes(app: FastifyInstance, deps: StreamRouteDeps): Promise<void> {
  const { streams } = deps;

  // Only the producer's route takes streamed bodies: handed over unread, never buffered whole
  // and never capped by the body limit (each event is, as it is parsed).
  await app.register(async (producing) => {
    producing.addContentTypeParser(STREAM_CONTENT_TYPES, (_request, body, done) =>
      done(null, body),
    );
    producing.post<StreamParams>(
      '/v1/streams/:id',
      { config: { auth: 'publish' } },
      async (request, reply) => {
        const id = checkStreamId(request.params.id);
        const type = bodyTypeOf(request.headers['content-type']);
        if (type === undefined) throw unsupportedBody();
        const release = allowUnboundedBody(request.raw.socket);
        try {
          return await streams.produce(id, type, request.raw);
        } catch (error) {
          // What is left of the body is not read: an HTTP/1.1 connection cannot carry another
          // request. An HTTP/2 stream ends alone, and HTTP/2 forbids the header.
          if (request.raw.httpVersionMajor === 1) reply.header('connection', 'close');
          throw error;
        } finally {
          release();
        }
      },
    );
  });

  app.post<StreamParams & { Body: AppendBody }>(
    '/v1/streams/:id/events',
    { schema: appendSchema, config: { auth: 'publish' } },
    async (request, reply) => {
      const id = checkStreamId(request.params.id);
      const lastEventId = await streams.append(id, appendedEvents(request.body));
      reply.code(201);
      return { last_event_id: lastEventId };
    },
  );

  const actions = [
    ['POST', '/v1/streams/:id/end', (id: string) => streams.end(id), 204],
    ['POST', '/v1/streams/:id/cancel', (id: string) => streams.cancel(id), 202],
    ['DELETE', '/v1/streams/:id', (id: string) => streams.delete(id), 204],
  ] as const;
  for (const [method, url, action, status] of actions) {
    app.route<StreamParams>({
      method,
      url,
      config: { auth: 'publish' },
      handler: async (request, reply) => {
        await action(checkStreamId(request.params.id));
        reply.code(status).send();
      },
    });
  }

  app.get<StreamParams & { Querystring: ReadQuery }>(
    '/v1/streams/:id',
    { config: { auth: 'subscribe' } },
    async (request, reply) => {
      const id = checkStreamId(request.params.id);
      if (request.query.if_active === 'true') {
        if (!(await streams.isActive(id))) return reply.code(204).send();
      } else if (!wantsEventStream(request)) {
        return streams.view(id);
      }
      const from = await streams.resumePoint(id, lastEventIdOf(request));
      const stream = openSse(request, reply, deps, { gzipSharing: 'per-connection' });
      if (from === 'ended') return stream.end();
      const subscription = streams.watch(id, from, streamSubscriber(stream));
      stream.onClose(() => subscription.close());
    },
  );
}

function wantsEventStream(request: FastifyRequest): boolean {
  return request.headers.accept?.includes('text/event-stream') ?? false;
}

function unsupportedBody(): ApiError {
  return new ApiError(
    415,
    'unsupported_media_type',
    `a stream's body is one of ${STREAM_CONTENT_TYPES.join(', ')}`,
  );
}
