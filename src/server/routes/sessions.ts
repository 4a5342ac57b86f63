import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { StartFrom } from '../../core/hub.js';
import { sseReplyViewer } from '../../sessions/reply-stream.js';
import type { SessionService, StartedTurn } from '../../sessions/session-service.js';
import { lastEventIdOf, openSse, type StreamDeps, singleHeader } from './sse.js';

export interface SessionRouteDeps extends StreamDeps {
  readonly sessions: SessionService;
}

type ChatBody = {
  session_id: string;
  content: string;
  model?: string;
  system?: string;
  temperature?: number;
  max_tokens?: number;
};
type ResumeBody = { session_id: string; last_event_id?: string };
type SessionParams = { Params: { id: string } };
type StreamQuery = { last_event_id?: string; lastEventId?: string };

const TEXT = { type: 'string', minLength: 1 } as const;

const chatSchema = {
  body: {
    type: 'object',
    required: ['session_id', 'content'],
    additionalProperties: false,
    properties: {
      session_id: TEXT,
      content: TEXT,
      model: { type: 'string', minLength: 1, maxLength: 256 },
      system: { type: 'string' },
      temperature: { type: 'number', minimum: 0, maximum: 2 },
      max_tokens: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    },
  },
};

const resumeSchema = {
  body: {
    type: 'object',
    required: ['session_id'],
    additionalProperties: false,
    properties: { session_id: TEXT, last_event_id: { type: 'string', maxLength: 256 } },
  },
};

/** Contract §4: resumable LLM chat sessions, each owned by the subject that created it
 *  (unowned with auth off); to anyone else it does not exist. */
export function sessionRoutes(app: FastifyInstance, deps: SessionRouteDeps): void {
  const { sessions } = deps;

  app.post<{ Body: ChatBody }>('/v1/chat', { schema: chatSchema }, async (request, reply) => {
    const { body } = request;
    const turn = await sessions.chat(
      {
        sessionId: body.session_id,
        content: body.content,
        model: body.model,
        system: body.system,
        temperature: body.temperature,
        maxTokens: body.max_tokens,
      },
      request.principal.owner,
    );
    await streamReply(request, reply, deps, body.session_id, turn.topic, { kind: 'start' }, turn);
  });

  app.post<{ Body: ResumeBody }>(
    '/v1/chat/resume',
    { schema: resumeSchema },
    async (request, reply) => {
      const lastEventId =
        singleHeader(request.headers, 'last-event-id') || request.body.last_event_id;
      await resume(request, reply, deps, request.body.session_id, lastEventId);
    },
  );

  app.get<SessionParams & { Querystring: StreamQuery }>(
    '/v1/sessions/:id/stream',
    async (request, reply) => {
      await resume(request, reply, deps, request.params.id, lastEventIdOf(request));
    },
  );

  app.post<SessionParams>('/v1/sessions/:id/cancel', async (request, reply) => {
    await sessions.cancel(request.params.id, request.principal.owner);
    reply.code(202);
    return { session_id: request.params.id, status: 'cancelling' };
  });

  app.get<SessionParams>('/v1/sessions/:id', async (request) =>
    sessions.view(request.params.id, request.principal.owner),
  );

  app.delete<SessionParams>('/v1/sessions/:id', async (request, reply) => {
    await sessions.delete(request.params.id, request.principal.owner);
    reply.code(204).send();
  });
}

async function resume(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: SessionRouteDeps,
  sessionId: string,
  lastEventId: string | undefined,
): Promise<void> {
  const { owner } = request.principal;
  const { topic, from } = await deps.sessions.resumePoint(sessionId, lastEventId, owner);
  await streamReply(request, reply, deps, sessionId, topic, from);
}

async function streamReply(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: SessionRouteDeps,
  sessionId: string,
  topic: string,
  from: StartFrom,
  /** The turn this request began, whose reply its writer feeds to this client. */
  began?: StartedTurn,
): Promise<void> {
  const claim = await deps.sessions.claimViewer(sessionId);
  const stream = openSse(request, reply, deps, { gzipSharing: 'per-connection' });
  deps.sessions.watch(sessionId, claim, topic, from, sseReplyViewer(stream), began?.creator);
}
