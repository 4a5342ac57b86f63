/** A chat message of a text conversation (`/v1/chat` sessions). */
export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

export interface Usage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
}

/**
 * A Chat Completions request body (docs/api.md §5.1) as a client sent it, `model` set: the fields
 * streamhub reads are typed, every other one travels to the model's server untouched.
 */
export interface CompletionBody {
  readonly model: string;
  readonly messages: readonly unknown[];
  readonly stream?: boolean | null;
  readonly stream_options?: Readonly<Record<string, unknown>> | null;
  /** How many choices to generate; 1 when absent. */
  readonly n?: number | null;
  readonly [field: string]: unknown;
}

export interface GenerateRequest {
  readonly body: CompletionBody;
  /** Aborting it must abort the upstream request. */
  readonly signal: AbortSignal;
}

/**
 * What a provider yields: chunks, then exactly one finish. A chunk is the JSON text of one
 * `chat.completion.chunk` exactly as the model's server sent it, or, for a request with
 * `stream` not true, the whole `chat.completion` object as the only chunk.
 */
export type GenerationChunk =
  | {
      readonly type: 'chunk';
      readonly json: string;
      /** The chunk `stream_options.include_usage` asks for: no choices, only usage. */
      readonly usageOnly: boolean;
    }
  | { readonly type: 'finish'; readonly finishReason: string; readonly usage: Usage | null };

export type ModelChunk = Extract<GenerationChunk, { type: 'chunk' }>;
export type GenerationFinish = Extract<GenerationChunk, { type: 'finish' }>;

/** Where a provider pushes a generation's chunks as they arrive (see `LlmProvider.stream`). */
export interface ChunkReceiver {
  /**
   * One chunk. A promise it returns holds the next chunk (and the finish) back until it
   * settles; a throw or a rejection stops the generation, which then rejects with that error.
   */
  chunk(chunk: ModelChunk): Promise<unknown> | undefined;
}

/** One model of a provider's list, as OpenAI's `GET /models` shows it. */
export interface ModelEntry {
  readonly id: string;
  readonly [field: string]: unknown;
}

export type LlmErrorCode =
  | 'upstream_error'
  | 'upstream_timeout'
  | 'upstream_rate_limited'
  | 'upstream_unavailable'
  | 'circuit_open'
  | 'invalid_request';

/**
 * The upstream's refusal of a request (a 4xx other than 429), which a client of the front door
 * gets as it came: its status, and its body when that is an OpenAI error object.
 */
export interface UpstreamRejection {
  readonly status: number;
  readonly body: string | undefined;
}

/** A generation failure, with a code clients see in `error` events. */
export class LlmError extends Error {
  constructor(
    readonly code: LlmErrorCode,
    message: string,
    /** Worth another attempt (before any token was sent): 429, 5xx, resets, timeouts. */
    readonly retryable = false,
    /** Milliseconds the upstream asked to wait (Retry-After), if it said. */
    readonly retryAfterMs?: number,
    readonly rejection?: UpstreamRejection,
  ) {
    super(message);
  }
}

/** An LLM backend that speaks OpenAI's Chat Completions. */
export interface LlmProvider {
  readonly name: string;
  readonly defaultModel: string;
  /** The models it serves; rejects when it cannot tell. */
  listModels(signal: AbortSignal): Promise<readonly ModelEntry[]>;
  /** Streams the reply; throws LlmError on failure; stops promptly when the signal aborts. */
  generate(request: GenerateRequest): AsyncIterable<GenerationChunk>;
  /**
   * The same generation pushed: each chunk goes to `receiver` as it arrives, with no async
   * layer per chunk; resolves to the finish, rejects as `generate` throws. Optional: see
   * `streamFrom` for a provider without it.
   */
  stream?(request: GenerateRequest, receiver: ChunkReceiver): Promise<GenerationFinish>;
}
