import type { ChatMessage, GenerateRequest, GenerationChunk } from '../../src/llm/provider.js';

/** What a consumer saw of one generation, a failure included instead of thrown. */
export interface Collected {
  readonly deltas: string[];
  readonly text: string;
  readonly finish: Extract<GenerationChunk, { type: 'finish' }> | undefined;
  readonly error: unknown;
  readonly elapsedMs: number;
}

/** Consumes a generation to its end; `onDelta` sees each delta's index as it arrives. */
export async function collect(
  stream: AsyncIterable<GenerationChunk>,
  onDelta: (index: number) => void = () => {},
): Promise<Collected> {
  const started = performance.now();
  const deltas: string[] = [];
  let finish: Collected['finish'];
  let error: unknown;
  try {
    for await (const chunk of stream) {
      if (finish) throw new Error('a chunk arrived after the finish');
      if (chunk.type === 'delta') {
        deltas.push(chunk.content);
        onDelta(deltas.length - 1);
      } else {
        finish = chunk;
      }
    }
  } catch (caught) {
    error = caught;
  }
  return { deltas, text: deltas.join(''), finish, error, elapsedMs: performance.now() - started };
}

export const MESSAGES: readonly ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Say hello to the stream' },
];

/** A request with its own abort controller. */
export function chatRequest(overrides: Partial<Omit<GenerateRequest, 'signal'>> = {}) {
  const controller = new AbortController();
  const request: GenerateRequest = {
    model: 'gpt-4o-mini',
    messages: MESSAGES,
    ...overrides,
    signal: controller.signal,
  };
  return { request, controller };
}
