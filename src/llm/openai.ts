import OpenAI from 'openai';
import type { ChatCompletionCreateParamsStreaming } from 'openai/resources/chat/completions';
import { malformedChunk, upstreamFailure } from './openai-errors.js';
import {
  type GenerateRequest,
  type GenerationChunk,
  LlmError,
  type LlmProvider,
  type Usage,
} from './provider.js';

export const OPENAI_DEFAULT_MODEL = 'gpt-4o-mini';

/** setTimeout's longest delay: the SDK's own timer must never fire first (withResilience owns
 *  timeouts), and anything longer would overflow to 1 ms. */
const NO_SDK_TIMEOUT_MS = 2 ** 31 - 1;

export interface OpenAiProviderOptions {
  /** Up to and including `/v1`, e.g. `https://api.openai.com/v1`. */
  readonly baseURL: string;
  /** Omit it for OpenAI-compatible upstreams that need no key (then no Authorization is sent). */
  readonly apiKey?: string | undefined;
  readonly defaultModel: string;
}

/**
 * Any OpenAI-compatible upstream, over streaming `/chat/completions`. One attempt per
 * `generate`, no retries and no timeouts of its own: that policy lives in `withResilience`.
 */
export class OpenAiProvider implements LlmProvider {
  readonly name = 'openai';
  readonly defaultModel: string;
  readonly #client: OpenAI;

  constructor(options: OpenAiProviderOptions) {
    this.defaultModel = options.defaultModel;
    this.#client = new OpenAI({
      baseURL: options.baseURL,
      // The SDK insists on a key; without one it gets a placeholder that is never sent.
      apiKey: options.apiKey || 'none',
      ...(options.apiKey ? {} : { defaultHeaders: { Authorization: null } }),
      // The SDK would otherwise pick an admin key up from the environment and send it along.
      adminAPIKey: null,
      maxRetries: 0,
      timeout: NO_SDK_TIMEOUT_MS,
    });
  }

  models(): readonly string[] {
    return [this.defaultModel];
  }

  async *generate(request: GenerateRequest): AsyncIterable<GenerationChunk> {
    let finishReason: string | undefined;
    let usage: Usage | null = null;
    try {
      const stream = await this.#client.chat.completions.create(requestBody(request), {
        signal: request.signal,
      });
      for await (const raw of stream) {
        const chunk = readChunk(raw);
        if (chunk.content) yield { type: 'delta', content: chunk.content };
        finishReason = chunk.finishReason ?? finishReason;
        usage = chunk.usage ?? usage;
      }
    } catch (error) {
      request.signal.throwIfAborted();
      // Lost after the finish reason, only the usage trailer or [DONE] is missing: the reply
      // itself is complete, so it is reported as finished.
      if (finishReason === undefined) throw upstreamFailure(error);
    }
    // The SDK ends an aborted stream quietly, as if it were complete.
    request.signal.throwIfAborted();
    if (finishReason === undefined) {
      throw new LlmError(
        'upstream_error',
        'the upstream stream ended before the reply finished',
        true,
      );
    }
    yield { type: 'finish', finishReason, usage };
  }
}

function requestBody(request: GenerateRequest): ChatCompletionCreateParamsStreaming {
  return {
    model: request.model,
    messages: request.messages.map(({ role, content }) => ({ role, content })),
    stream: true,
    stream_options: { include_usage: true },
    ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
    ...(request.maxTokens === undefined ? {} : { max_tokens: request.maxTokens }),
  };
}

interface ChunkContent {
  readonly content: string;
  readonly finishReason: string | undefined;
  readonly usage: Usage | undefined;
}

/** Reads one `chat.completion.chunk` defensively: the SDK parses JSON but checks no shape. */
function readChunk(raw: unknown): ChunkContent {
  const chunk = raw as { choices?: unknown; usage?: unknown } | null;
  if (typeof chunk !== 'object' || chunk === null || !Array.isArray(chunk.choices ?? [])) {
    throw malformedChunk();
  }
  const choice = (chunk.choices as unknown[] | undefined)?.[0] as
    | { delta?: { content?: unknown }; finish_reason?: unknown }
    | undefined;
  const content = choice?.delta?.content ?? '';
  const finishReason = choice?.finish_reason ?? undefined;
  if (
    typeof content !== 'string' ||
    !(finishReason === undefined || typeof finishReason === 'string')
  ) {
    throw malformedChunk();
  }
  return { content, finishReason, usage: readUsage(chunk.usage) };
}

function readUsage(raw: unknown): Usage | undefined {
  const usage = raw as Partial<Record<keyof Usage, unknown>> | null | undefined;
  const { prompt_tokens, completion_tokens, total_tokens } = usage ?? {};
  return typeof prompt_tokens === 'number' &&
    typeof completion_tokens === 'number' &&
    typeof total_tokens === 'number'
    ? { prompt_tokens, completion_tokens, total_tokens }
    : undefined;
}
