import { z } from 'zod';
import { StreamhubError } from '../core/errors.js';
import type { ChatMessage } from '../llm/provider.js';

/** A Chat Completions request as the front door understands it. */
export interface CompletionRequest {
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  readonly stream: boolean;
  readonly includeUsage: boolean;
  readonly temperature?: number;
  readonly maxTokens?: number;
}

/** A 400 that names the offending field, as OpenAI's `param` does, so SDKs can show it. */
export class InvalidParamError extends StreamhubError {
  constructor(
    readonly param: string | null,
    message: string,
  ) {
    super('invalid', 'invalid_request', message);
  }
}

const textPart = z.object({
  type: z.literal('text', { error: 'only text content parts are supported' }),
  text: z.string(),
});

const message = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant'], {
    error: 'role must be one of system, developer, user, assistant',
  }),
  content: z.union([z.string(), z.array(textPart)], {
    error: 'content must be a string or an array of text parts',
  }),
});

const maxTokens = z.int().min(1).max(1_000_000);

/**
 * The fields the front door acts on. Unknown fields are ignored, as OpenAI-compatible servers
 * do (clients send vendor options freely), but a known field of the wrong type is refused
 * rather than coerced. `null` means "not set", as in OpenAI's API.
 */
const schema = z.object({
  messages: z.array(message).min(1, { error: 'messages must be a non-empty array' }),
  model: z.string().min(1).max(256).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  max_tokens: maxTokens.nullish(),
  max_completion_tokens: maxTokens.nullish(),
  n: z.literal(1, { error: 'only n=1 is supported' }).nullish(),
});

/** Validates a request body; throws InvalidParamError naming the first bad field. */
export function parseCompletionRequest(body: unknown, defaultModel: string): CompletionRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidParamError(null, 'the request body must be a JSON object');
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0] as z.core.$ZodIssue;
    const param = paramName(issue.path);
    throw new InvalidParamError(
      param,
      param === null ? issue.message : `${param}: ${issue.message}`,
    );
  }
  const request = parsed.data;
  return {
    model: request.model ?? defaultModel,
    messages: request.messages.map(({ role, content }) => ({
      role: role === 'developer' ? 'system' : role,
      content: typeof content === 'string' ? content : content.map((part) => part.text).join('\n'),
    })),
    stream: request.stream ?? false,
    includeUsage: request.stream_options?.include_usage ?? false,
    temperature: request.temperature ?? undefined,
    // The newer name wins: OpenAI deprecated max_tokens in its favour.
    maxTokens: request.max_completion_tokens ?? request.max_tokens ?? undefined,
  };
}

/** `['messages', 0, 'role']` → `messages[0].role`, OpenAI's spelling of a field path. */
function paramName(path: readonly PropertyKey[]): string | null {
  let name = '';
  for (const key of path) {
    name += typeof key === 'number' ? `[${key}]` : `${name === '' ? '' : '.'}${String(key)}`;
  }
  return name === '' ? null : name;
}
