import type { ChatCompletion, ChatCompletionChunk } from 'openai/resources/chat/completions';
import type { Usage } from '../llm/provider.js';

/**
 * OpenAI's wire objects, typed against the official SDK's own definitions so that what the
 * front door sends is what its clients parse.
 */

/** What every object of one completion repeats. */
export interface CompletionIdentity {
  readonly id: string;
  /** Unix seconds, as OpenAI counts. */
  readonly created: number;
  readonly model: string;
}

/** The identity in OpenAI's field order, which people reading raw streams are used to. */
function header<T extends string>(identity: CompletionIdentity, object: T) {
  return { id: identity.id, object, created: identity.created, model: identity.model };
}

type FinishReason = ChatCompletionChunk.Choice['finish_reason'];
type ChunkDelta = ChatCompletionChunk.Choice['delta'];

export function completionChunk(
  identity: CompletionIdentity,
  delta: ChunkDelta,
  finishReason: string | null,
  includeUsage: boolean,
): ChatCompletionChunk {
  return {
    ...header(identity, 'chat.completion.chunk'),
    choices: [{ index: 0, delta, finish_reason: finishReason as FinishReason, logprobs: null }],
    // With include_usage, OpenAI sends `usage: null` on every chunk but the last.
    ...(includeUsage ? { usage: null } : {}),
  };
}

/** The extra last chunk that `stream_options.include_usage` asks for. */
export function usageChunk(identity: CompletionIdentity, usage: Usage | null): ChatCompletionChunk {
  return { ...header(identity, 'chat.completion.chunk'), choices: [], usage };
}

export function chatCompletion(
  identity: CompletionIdentity,
  content: string,
  finishReason: string,
  usage: Usage | null,
): ChatCompletion {
  return {
    ...header(identity, 'chat.completion'),
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content, refusal: null },
        finish_reason: finishReason as ChatCompletion.Choice['finish_reason'],
        logprobs: null,
      },
    ],
    ...(usage === null ? {} : { usage }),
  };
}

export interface ModelList {
  readonly object: 'list';
  readonly data: readonly {
    readonly id: string;
    readonly object: 'model';
    readonly created: number;
    readonly owned_by: string;
  }[];
}

export function modelList(models: readonly string[], created: number): ModelList {
  return {
    object: 'list',
    data: models.map((id) => ({ id, object: 'model', created, owned_by: 'streamhub' })),
  };
}

/**
 * The API's error shape (docs/api.md §0) plus OpenAI's `type` and `param`, which the SDKs expose as
 * `error.type` / `error.param`. Used for HTTP errors and for the in-stream error chunk alike.
 */
export interface OpenAiErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly type: string;
    readonly param: string | null;
  };
}

export function errorBody(
  code: string,
  message: string,
  type: string,
  param: string | null = null,
): OpenAiErrorBody {
  return { error: { code, message, type, param } };
}
