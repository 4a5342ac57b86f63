import type { ChatCompletion, ChatCompletionChunk } from 'openai/resources/chat/completions';
import type { Usage } from './provider.js';

/**
 * The mock model's answers in OpenAI's wire format, typed against the official SDK's own
 * definitions, so that the mock is an OpenAI-compatible server like any upstream: streamed, a
 * `chat.completion.chunk` per token; unstreamed, one `chat.completion`.
 */

/** What every object of one completion repeats. */
export interface CompletionIdentity {
  readonly id: string;
  /** Unix seconds, as OpenAI counts. */
  readonly created: number;
  readonly model: string;
}

/** A call of a tool, as the assistant message of an unstreamed answer holds it. */
export interface MockToolCall {
  readonly id: string;
  readonly name: string;
  readonly arguments: string;
}

type FinishReason = ChatCompletionChunk.Choice['finish_reason'];
type ChunkDelta = ChatCompletionChunk.Choice['delta'];

/** The identity in OpenAI's field order, which people reading raw streams are used to. */
function header<T extends string>(identity: CompletionIdentity, object: T) {
  return { id: identity.id, object, created: identity.created, model: identity.model };
}

/** The chunks of one streamed answer, each as its JSON text. */
export class MockChunks {
  constructor(
    readonly identity: CompletionIdentity,
    /** With `stream_options.include_usage`, OpenAI sends `usage: null` on every other chunk. */
    readonly includeUsage: boolean,
  ) {}

  /** OpenAI's streams open with the role and no text. */
  role(): string {
    return this.#chunk({ role: 'assistant', content: '', refusal: null });
  }

  text(content: string): string {
    return this.#chunk({ content });
  }

  /** A call's first delta (with the role, as OpenAI's opening chunk has): id, type, name. */
  toolCall(call: MockToolCall): string {
    return this.#chunk({
      role: 'assistant',
      content: null,
      tool_calls: [
        { index: 0, id: call.id, type: 'function', function: { name: call.name, arguments: '' } },
      ],
      refusal: null,
    });
  }

  toolArguments(text: string): string {
    return this.#chunk({ tool_calls: [{ index: 0, function: { arguments: text } }] });
  }

  finish(reason: string): string {
    return this.#chunk({}, reason);
  }

  /** The extra last chunk that `stream_options.include_usage` asks for. */
  usage(usage: Usage): string {
    const chunk: ChatCompletionChunk = {
      ...header(this.identity, 'chat.completion.chunk'),
      choices: [],
      usage,
    };
    return JSON.stringify(chunk);
  }

  #chunk(delta: ChunkDelta, finishReason: string | null = null): string {
    const chunk: ChatCompletionChunk = {
      ...header(this.identity, 'chat.completion.chunk'),
      choices: [{ index: 0, delta, finish_reason: finishReason as FinishReason, logprobs: null }],
      ...(this.includeUsage ? { usage: null } : {}),
    };
    return JSON.stringify(chunk);
  }
}

/** A whole unstreamed answer: text, or tool calls (then `content` is null). */
export function mockCompletion(
  identity: CompletionIdentity,
  reply: { readonly content: string } | { readonly toolCalls: readonly MockToolCall[] },
  finishReason: string,
  usage: Usage,
): string {
  const message: ChatCompletion.Choice['message'] =
    'content' in reply
      ? { role: 'assistant', content: reply.content, refusal: null }
      : {
          role: 'assistant',
          content: null,
          tool_calls: reply.toolCalls.map((call) => ({
            id: call.id,
            type: 'function',
            function: { name: call.name, arguments: call.arguments },
          })),
          refusal: null,
        };
  const completion: ChatCompletion = {
    ...header(identity, 'chat.completion'),
    choices: [
      {
        index: 0,
        message,
        finish_reason: finishReason as ChatCompletion.Choice['finish_reason'],
        logprobs: null,
      },
    ],
    usage,
  };
  return JSON.stringify(completion);
}
