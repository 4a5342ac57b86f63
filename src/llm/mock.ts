import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  ChatMessage,
  GenerateRequest,
  GenerationChunk,
  LlmProvider,
  Usage,
} from './provider.js';

export const MOCK_MODEL = 'streamhub-mock';

const VOCABULARY = (
  'the a stream event reply token server client resume history live topic session ' +
  'network browser refresh answer moment model message signal order gap duplicate ' +
  'epoch id chunk retry backoff node process redis memory socket buffer heartbeat'
).split(' ');

/**
 * The embedded default model: a deterministic reply derived from the whole conversation,
 * streamed word by word at `tokensPerSecond`, so everything works with no key and no network.
 */
export class MockProvider implements LlmProvider {
  readonly name = 'mock';
  readonly defaultModel = MOCK_MODEL;

  constructor(readonly tokensPerSecond: number) {}

  models(): readonly string[] {
    return [MOCK_MODEL];
  }

  async *generate(request: GenerateRequest): AsyncIterable<GenerationChunk> {
    const tokens = mockReply(request.messages);
    const limit = Math.min(tokens.length, request.maxTokens ?? Number.POSITIVE_INFINITY);
    const interval = 1000 / this.tokensPerSecond;
    const started = performance.now();
    for (let i = 0; i < limit; i++) {
      // Paced against the start rather than the previous token, so timer drift does not add up.
      const due = started + i * interval - performance.now();
      if (due > 0) await sleep(due, undefined, { signal: request.signal });
      request.signal.throwIfAborted();
      yield { type: 'delta', content: tokens[i] as string };
    }
    yield {
      type: 'finish',
      finishReason: limit < tokens.length ? 'length' : 'stop',
      usage: usage(request.messages, limit),
    };
  }
}

/** The reply as tokens (words with their leading space); 20-80 of them. */
export function mockReply(messages: readonly ChatMessage[]): string[] {
  const last = messages[messages.length - 1]?.content ?? '';
  const digest = createHash('sha256')
    .update(messages.map((m) => `${m.role}:${m.content}`).join('\n'))
    .digest();
  const count = 20 + ((digest[0] as number) % 61);
  // Words, not split() pieces: surrounding whitespace would leave empty ones, and the reply
  // would come out shorter than `count`.
  const echoed = last.match(/\S+/g)?.slice(0, 8) ?? [];
  const words = [`Echo (turn ${Math.ceil(messages.length / 2)}):`, ...echoed];
  for (let i = 0; words.length < count; i++) {
    words.push(
      VOCABULARY[((digest[i % digest.length] as number) + i) % VOCABULARY.length] as string,
    );
  }
  return words.map((word, i) => (i === 0 ? word : ` ${word}`));
}

function usage(messages: readonly ChatMessage[], completionTokens: number): Usage {
  const promptTokens = messages.reduce((sum, m) => sum + (m.content.match(/\S+/g)?.length ?? 0), 0);
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}
