import { chunkText } from '../../src/llm/chunks.js';
import type {
  ChatMessage,
  CompletionBody,
  GenerateRequest,
  GenerationChunk,
  ModelChunk,
} from '../../src/llm/provider.js';

/** What a consumer saw of one generation, a failure included instead of thrown. */
export interface Collected {
  readonly chunks: ModelChunk[];
  /** The text of each chunk that has some, as a text conversation reads them. */
  readonly deltas: string[];
  readonly text: string;
  readonly finish: Extract<GenerationChunk, { type: 'finish' }> | undefined;
  readonly error: unknown;
  readonly elapsedMs: number;
}

/** Consumes a generation to its end; `onDelta` sees each text delta's index as it arrives. */
export async function collect(
  stream: AsyncIterable<GenerationChunk>,
  onDelta: (index: number) => void = () => {},
): Promise<Collected> {
  const started = performance.now();
  const chunks: ModelChunk[] = [];
  const deltas: string[] = [];
  let finish: Collected['finish'];
  let error: unknown;
  try {
    for await (const chunk of stream) {
      if (finish) throw new Error('a chunk arrived after the finish');
      if (chunk.type === 'finish') {
        finish = chunk;
        continue;
      }
      chunks.push(chunk);
      const text = chunkText(chunk.json);
      if (text === '') continue;
      deltas.push(text);
      onDelta(deltas.length - 1);
    }
  } catch (caught) {
    error = caught;
  }
  const text = deltas.join('');
  return { chunks, deltas, text, finish, error, elapsedMs: performance.now() - started };
}

export const MESSAGES: readonly ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Say hello to the stream' },
];

/** A streamed request for `MESSAGES`, fields added or replaced by `fields`, with its own abort
 *  controller. */
export function chatRequest(fields: Partial<CompletionBody> = {}) {
  const controller = new AbortController();
  const request: GenerateRequest = {
    body: { model: 'gpt-4o-mini', messages: MESSAGES, stream: true, ...fields },
    signal: controller.signal,
  };
  return { request, controller };
}
