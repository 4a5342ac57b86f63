import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { continuedReply } from './continuation.js';
import { conversationDigest, type MockMessage, mockReply, tokensAfter } from './mock-reply.js';
import {
  type CompletionIdentity,
  MockChunks,
  type MockToolCall,
  mockCompletion,
} from './mock-wire.js';
import type {
  CompletionBody,
  GenerateRequest,
  GenerationChunk,
  LlmProvider,
  ModelEntry,
  Usage,
} from './provider.js';

export { mockReply } from './mock-reply.js';

export const MOCK_MODEL = 'streamhub-mock';

/** What the mock answers: text as tokens, or one call of a tool. */
type MockAnswer = (
  | { readonly kind: 'text'; readonly tokens: readonly string[] }
  | { readonly kind: 'tool'; readonly call: MockToolCall }
) & { readonly finishReason: string };

/**
 * The embedded default model, an OpenAI-compatible server of its own: a deterministic reply
 * derived from the whole conversation, streamed word by word at `tokensPerSecond` as
 * `chat.completion.chunk`s (or answered whole), so everything works with no key and no
 * network. It plays tools too (docs/api.md §5.1): offered tools after a user message, it calls
 * the first one with no arguments; after a tool's result, it answers with that result. Asked
 * to continue a partial reply of its own (either strategy of `continuation.ts`), it streams
 * exactly the rest of the reply it would have given (docs/api.md §13).
 */
export class MockProvider implements LlmProvider {
  readonly name = 'mock';
  readonly #models: readonly ModelEntry[];

  constructor(
    readonly tokensPerSecond: number,
    /** The name it goes by (LLM_MODEL); it answers to any. */
    readonly defaultModel = MOCK_MODEL,
  ) {
    const created = unixSeconds();
    this.#models = [...new Set([defaultModel, MOCK_MODEL])].map((id) => ({
      id,
      object: 'model',
      created,
      owned_by: 'streamhub',
    }));
  }

  async listModels(): Promise<readonly ModelEntry[]> {
    return this.#models;
  }

  async *generate({ body, signal }: GenerateRequest): AsyncIterable<GenerationChunk> {
    const messages = readMessages(body.messages);
    const answer = answerTo(messages, body);
    const identity: CompletionIdentity = {
      id: `chatcmpl-${randomUUID().replaceAll('-', '')}`,
      created: unixSeconds(),
      model: body.model,
    };
    const steps = answer.kind === 'text' ? answer.tokens.length : 2;
    const usage = countUsage(messages, steps);
    const due = pacer(this.tokensPerSecond, signal);
    if (body.stream === true) {
      const chunks = new MockChunks(identity, body.stream_options?.include_usage === true);
      for (const [step, texts] of streamSteps(answer, chunks).entries()) {
        await due(step);
        for (const json of texts) yield chunk(json);
      }
      yield chunk(chunks.finish(answer.finishReason));
      yield { type: 'chunk', json: chunks.usage(usage), usageOnly: true };
    } else {
      await due(steps - 1);
      const reply =
        answer.kind === 'text' ? { content: answer.tokens.join('') } : { toolCalls: [answer.call] };
      yield chunk(mockCompletion(identity, reply, answer.finishReason, usage));
    }
    yield { type: 'finish', finishReason: answer.finishReason, usage };
  }
}

/** Waits until step `n` is due, paced against the start so that timer drift does not add up. */
function pacer(tokensPerSecond: number, signal: AbortSignal) {
  const started = performance.now();
  return async (n: number) => {
    const due = started + (n * 1000) / tokensPerSecond - performance.now();
    if (due > 0) await sleep(due, undefined, { signal });
    signal.throwIfAborted();
  };
}

/** The streamed answer's chunks at each step of the pace; the role comes with the first token. */
function streamSteps(answer: MockAnswer, chunks: MockChunks): string[][] {
  if (answer.kind === 'tool') {
    return [[chunks.toolCall(answer.call)], [chunks.toolArguments(answer.call.arguments)]];
  }
  return answer.tokens.map((token, i) =>
    i === 0 ? [chunks.role(), chunks.text(token)] : [chunks.text(token)],
  );
}

function chunk(json: string): GenerationChunk {
  return { type: 'chunk', json, usageOnly: false };
}

function unixSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * A tool's result is answered with that result; a user's message with a call of the first
 * tool offered, if any; anything else with the Markdown reply, cut at `max_completion_tokens`
 * (or `max_tokens`).
 */
function answerTo(messages: readonly MockMessage[], body: CompletionBody): MockAnswer {
  const last = messages[messages.length - 1];
  const tool = firstToolName(body.tools);
  if (last?.role === 'user' && tool !== undefined) {
    const id = `call_${conversationDigest(messages).toString('hex').slice(0, 24)}`;
    return { kind: 'tool', call: { id, name: tool, arguments: '{}' }, finishReason: 'tool_calls' };
  }
  const tokens =
    last?.role === 'tool'
      ? (`The tool returned: ${last.content}`.match(/\s*\S+/g) ?? [])
      : (restOfOwnReply(messages) ?? mockReply(messages));
  const limit = maxTokens(body) ?? tokens.length;
  return {
    kind: 'text',
    tokens: tokens.slice(0, limit),
    finishReason: limit < tokens.length ? 'length' : 'stop',
  };
}

/** The rest of the mock's own reply that a continuation request asks it to go on with. */
function restOfOwnReply(messages: readonly MockMessage[]): string[] | undefined {
  const continued = continuedReply(messages);
  if (continued === undefined) return undefined;
  return tokensAfter(mockReply(continued.conversation), continued.partial);
}

/** The messages' roles and texts: `developer` is `system`, text parts are joined by lines. */
function readMessages(messages: readonly unknown[]): MockMessage[] {
  return messages.map((message) => {
    const { role, content } = (message ?? {}) as { role?: unknown; content?: unknown };
    return { role: role === 'developer' ? 'system' : String(role), content: textOf(content) };
  });
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .flatMap((part: { type?: unknown; text?: unknown } | null) =>
      part?.type === 'text' && typeof part.text === 'string' ? [part.text] : [],
    )
    .join('\n');
}

function firstToolName(tools: unknown): string | undefined {
  const first = (Array.isArray(tools) ? tools[0] : undefined) as
    | { function?: { name?: unknown } }
    | undefined;
  const name = first?.function?.name;
  return typeof name === 'string' ? name : undefined;
}

/** The newer name wins: OpenAI deprecated max_tokens in its favour. */
function maxTokens(body: CompletionBody): number | undefined {
  const limit = body.max_completion_tokens ?? body.max_tokens;
  return typeof limit === 'number' && Number.isInteger(limit) && limit > 0 ? limit : undefined;
}

/** Tokens counted as words. */
function countUsage(messages: readonly MockMessage[], completionTokens: number): Usage {
  const promptTokens = messages.reduce((sum, m) => sum + (m.content.match(/\S+/g)?.length ?? 0), 0);
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}
