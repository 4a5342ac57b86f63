import { z } from 'zod';
import { StreamhubError } from '../core/errors.js';
import type { CompletionBody } from '../llm/provider.js';

/** A Chat Completions request as the front door reads it. */
export interface CompletionRequest {
  /** The body as the client sent it, every field in its place, `model` set. */
  readonly body: CompletionBody;
  readonly stream: boolean;
  /** The client asked for the usage chunk (`stream_options.include_usage`). */
  readonly includeUsage: boolean;
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

/**
 * The fields streamhub itself reads; everything else (tools, content parts, roles, sampling
 * options, vendor fields) is the model server's to judge. `null` means "not set", as in
 * OpenAI's API.
 */
const schema = z.object({
  messages: z
    .array(z.looseObject({}), { error: 'messages must be a non-empty array of objects' })
    .min(1, { error: 'messages must be a non-empty array' }),
  model: z.string().min(1).max(256).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  n: z.int().min(1).max(128).nullish(),
});

/** Checks a request body; throws InvalidParamError naming the first bad field. */
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
  const { model, stream, stream_options: options } = parsed.data;
  return {
    body: (model == null ? { ...body, model: defaultModel } : body) as CompletionBody,
    stream: stream ?? false,
    includeUsage: options?.include_usage ?? false,
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
