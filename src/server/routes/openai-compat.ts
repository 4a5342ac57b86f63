import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { StartFrom } from '../../core/hub.js';
import { LlmError, type LlmProvider } from '../../llm/provider.js';
import {
  InvalidParamError,
  parseCompletionRequest,
} from '../../openai-compat/completion-request.js';
import type { CompletionService } from '../../openai-compat/completion-service.js';
import { completionFeed, completionSubscriber } from '../../openai-compat/completion-stream.js';
import { ClientClosedError, errorTypeOf, statusOfLlmError } from '../../openai-compat/errors.js';
import { ModelCatalog } from '../../openai-compat/models.js';
import { errorBody } from '../../openai-compat/wire.js';
import { ApiError, logFailure, toApiError } from '../errors.js';
import { lastEventIdOf, openSse, type StreamDeps } from './sse.js';

export interface OpenAiCompatDeps extends StreamDeps {
  readonly completions: CompletionService;
  readonly provider: LlmProvider;
}

const JSON_TYPE = 'application/json; charset=utf-8';

type StreamRoute = {
  Params: { id: string };
  Querystring: { last_event_id?: string; lastEventId?: string };
};

/** Contract §5: the OpenAI-compatible front door (models, chat completions, resume). */
export function openAiCompatRoutes(app: FastifyInstance, deps: OpenAiCompatDeps): void {
  const { completions, provider } = deps;
  const models = new ModelCatalog(provider);
  const options = { errorHandler: answerOpenAiError };

  app.get('/v1/models', options, () => models.list());

  app.post('/v1/chat/completions', options, async (request, reply) => {
    const completion = parseCompletionRequest(request.body, provider.defaultModel);
    const clientGone = disconnection(reply);
    if (!completion.stream) {
      // The model server's own bytes: a string payload is sent as it is.
      return reply.type(JSON_TYPE).send(await completions.complete(completion, clientGone));
    }
    await completions.start(completion, clientGone, (id) =>
      completionFeed(openSse(request, reply, deps, completionSse(id))),
    );
  });

  app.get<StreamRoute>('/v1/chat/completions/:id/stream', options, async (request, reply) => {
    const { id } = request.params;
    const from = await completions.resumePoint(id, lastEventIdOf(request));
    streamCompletion(request, reply, deps, completions, id, from);
  });
}

/** A completion's stream: its id to resume it by, gzip with a context of its own (one viewer). */
const completionSse = (id: string) =>
  ({ headers: { 'x-stream-id': id }, gzipSharing: 'per-connection' }) as const;

function streamCompletion(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: OpenAiCompatDeps,
  completions: CompletionService,
  id: string,
  from: StartFrom,
): void {
  const stream = openSse(request, reply, deps, completionSse(id));
  const subscription = completions.watch(id, from, completionSubscriber(stream));
  stream.onClose(() => subscription.close());
}

/**
 * Aborts with ClientClosedError when the client closes the connection before its response was
 * sent, which is then what a wait for a generation slot rejects with.
 */
function disconnection(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new ClientClosedError());
  });
  return controller.signal;
}

/**
 * The API's error shape (docs/api.md §0) with OpenAI's `type` and `param`, which the SDKs read;
 * or, when the model's server rejected the request itself, its status and body as they came.
 */
function answerOpenAiError(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  if (error instanceof LlmError && error.rejection?.body !== undefined) {
    reply.code(error.rejection.status).type(JSON_TYPE).send(error.rejection.body);
    return;
  }
  const apiError = toHttpError(error);
  // Upstream failures are logged where they happen.
  if (!(error instanceof LlmError)) logFailure(request, error, apiError);
  const param = error instanceof InvalidParamError ? error.param : null;
  reply
    .code(apiError.status)
    .headers(apiError.headers)
    .send(errorBody(apiError.code, apiError.message, errorTypeOf(apiError.status), param));
}

function toHttpError(error: unknown): ApiError {
  if (error instanceof LlmError && error.rejection !== undefined) {
    return new ApiError(error.rejection.status, error.code, error.message);
  }
  if (error instanceof LlmError) {
    const headers: Record<string, string> =
      error.retryAfterMs === undefined
        ? {}
        : { 'retry-after': String(Math.ceil(error.retryAfterMs / 1000)) };
    return new ApiError(statusOfLlmError(error.code), error.code, error.message, headers);
  }
  // nginx's convention: recorded in metrics and logs, never seen by the departed client.
  if (error instanceof ClientClosedError) {
    return new ApiError(499, 'client_closed_request', error.message);
  }
  return toApiError(error);
}
