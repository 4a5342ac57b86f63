/** A chat message as the models see it. */
export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

export interface Usage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
}

export interface GenerateRequest {
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  readonly temperature?: number;
  readonly maxTokens?: number;
  /** Aborting it must abort the upstream request. */
  readonly signal: AbortSignal;
}

/** What a provider streams: text deltas, then exactly one finish. */
export type GenerationChunk =
  | { readonly type: 'delta'; readonly content: string }
  | { readonly type: 'finish'; readonly finishReason: string; readonly usage: Usage | null };

export type LlmErrorCode =
  | 'upstream_error'
  | 'upstream_timeout'
  | 'upstream_rate_limited'
  | 'upstream_unavailable'
  | 'circuit_open'
  | 'invalid_request';

/** A generation failure, with a code clients see in `error` events. */
export class LlmError extends Error {
  constructor(
    readonly code: LlmErrorCode,
    message: string,
    /** Worth another attempt (before any token was sent): 429, 5xx, resets, timeouts. */
    readonly retryable = false,
    /** Milliseconds the upstream asked to wait (Retry-After), if it said. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** An LLM backend that streams a chat completion. */
export interface LlmProvider {
  readonly name: string;
  readonly defaultModel: string;
  models(): readonly string[];
  /** Streams the reply; throws LlmError on failure; stops promptly when the signal aborts. */
  generate(request: GenerateRequest): AsyncIterable<GenerationChunk>;
}
