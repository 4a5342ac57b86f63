import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  CONTINUE_INSTRUCTION,
  type ContinuationStrategy,
  continuationRequest,
  Seam,
} from '../../src/llm/continuation.js';
import { MockProvider, mockReply } from '../../src/llm/mock.js';
import { chatRequest, collect, MESSAGES } from './collect.js';

/** What a seam passes on of `pieces`, streamed after `partial`. */
function throughSeam(partial: string, pieces: readonly string[]): string {
  const seam = new Seam(partial);
  return pieces.map((piece) => seam.push(piece)).join('') + seam.flush();
}

describe('continuation requests', () => {
  test('prefix: the partial reply is the last message, from the assistant, to be completed', () => {
    const request = continuationRequest(MESSAGES, 'Hello, str', 'prefix');
    assert.deepEqual(request.messages, [
      ...MESSAGES,
      { role: 'assistant', content: 'Hello, str', prefix: true },
    ]);
    assert.deepEqual(request.fields, {
      continue_final_message: true,
      add_generation_prompt: false,
    });
  });

  test('instruction: the partial reply, then a user message asking to continue it', () => {
    const request = continuationRequest(MESSAGES, 'Hello, str', 'instruction');
    assert.deepEqual(request.messages, [
      ...MESSAGES,
      { role: 'assistant', content: 'Hello, str' },
      { role: 'user', content: CONTINUE_INSTRUCTION },
    ]);
    assert.deepEqual(request.fields, {});
  });
});

describe('the seam of an instruction continuation', () => {
  test('drops the end of the partial text that the model repeats, however it is chunked', () => {
    const partial = 'The quick brown fox jumps over';
    const continuation = ['jumps', ' over', ' the', ' lazy dog.'];
    assert.equal(throughSeam(partial, continuation), ' the lazy dog.');
    assert.equal(throughSeam(partial, [' jumps over the lazy dog.']), ' the lazy dog.');
    assert.equal(throughSeam(partial, [...'fox jumps over the lazy dog.']), ' the lazy dog.');
  });

  test('completes a cut word without repeating its start', () => {
    assert.equal(throughSeam('Hello, wor', ['world', '!']), 'ld!');
  });

  test('passes a continuation that repeats nothing through unchanged, whitespace included', () => {
    const partial = 'The quick brown fox jumps over';
    assert.equal(throughSeam(partial, [' the', ' lazy dog.']), ' the lazy dog.');
    // Starts like an earlier stretch of the partial text, then goes elsewhere.
    assert.equal(throughSeam(partial, [' quick', ' thinking.']), ' quick thinking.');
    assert.equal(throughSeam('', ['anything']), 'anything');
  });

  test('a continuation that ends inside a possible repetition is kept whole', () => {
    assert.equal(throughSeam('one two three', [' two']), ' two');
  });
});

describe('the mock continues its own reply exactly', () => {
  const reference = mockReply(MESSAGES);
  for (const strategy of ['prefix', 'instruction'] as const satisfies ContinuationStrategy[]) {
    test(`${strategy}: cut after any token, it streams exactly the rest`, async () => {
      const provider = new MockProvider(1_000_000);
      for (let cut = 0; cut <= reference.length; cut += 7) {
        const partial = reference.slice(0, cut).join('');
        const { messages, fields } = continuationRequest(MESSAGES, partial, strategy);
        const rest = await collect(provider.generate(chatRequest({ messages, ...fields }).request));
        assert.deepEqual(rest.deltas, reference.slice(cut), `cut after ${cut} tokens`);
        assert.equal(rest.finish?.finishReason, 'stop');
      }
    });
  }

  test('cut inside a token, it streams the rest of that token first', async () => {
    const provider = new MockProvider(1_000_000);
    const whole = reference.join('');
    const partial = `${reference.slice(0, 3).join('')}${reference[3]?.slice(0, 2)}`;
    const { messages, fields } = continuationRequest(MESSAGES, partial, 'prefix');
    const rest = await collect(provider.generate(chatRequest({ messages, ...fields }).request));
    assert.equal(partial + rest.text, whole);
  });

  test('a partial reply that is not its own is answered as any conversation', async () => {
    const provider = new MockProvider(1_000_000);
    const { messages } = continuationRequest(MESSAGES, 'Something I never said', 'instruction');
    const reply = await collect(provider.generate(chatRequest({ messages }).request));
    assert.deepEqual(reply.deltas, mockReply(messages as typeof MESSAGES));
  });
});
