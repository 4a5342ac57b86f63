/** Reading a lost completion's partial reply, and making its continuation's chunks its own. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { StoredEvent } from '../../src/core/types.js';
import { continuationBody, Seam } from '../../src/llm/continuation.js';
import type { GenerationSink } from '../../src/llm/generation.js';
import type { ModelChunk } from '../../src/llm/provider.js';
import {
  completionPartial,
  continuedChunks,
} from '../../src/openai-compat/completion-continuation.js';

const FIRST = { id: 'chatcmpl-first', object: 'chat.completion.chunk', created: 100, model: 'm' };

function chunkJson(delta: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    ...FIRST,
    choices: [{ index: 0, delta, finish_reason: null }],
    ...extra,
  });
}

function events(...data: string[]): StoredEvent[] {
  return data.map((json, i) => ({
    id: `e-${i + 1}`,
    seq: i + 1,
    event: 'chunk',
    data: json,
    time: 0,
  }));
}

/** The JSON of the chunks `sink` passed on, parsed. */
function recording(): { sink: GenerationSink; chunks: Record<string, unknown>[] } {
  const chunks: Record<string, unknown>[] = [];
  const sink: GenerationSink = {
    chunk: async (chunk) => void chunks.push(JSON.parse(chunk.json)),
    finish: async () => {},
    fail: async () => {},
    cancelled: async () => {},
  };
  return { sink, chunks };
}

const modelChunk = (json: string, usageOnly = false): ModelChunk => ({
  type: 'chunk',
  json,
  usageOnly,
});

describe('the partial reply of a lost completion', () => {
  test('is the text of choice 0, counted in chunks of text, with the first chunk’s identity', () => {
    const partial = completionPartial(
      events(
        chunkJson({ role: 'assistant', content: '', refusal: null }),
        chunkJson({ content: 'Hello' }),
        chunkJson({ content: ', wor' }),
      ),
    );
    assert.deepEqual(partial, {
      kind: 'text',
      reply: { text: 'Hello, wor', chunks: 2 },
      identity: { id: 'chatcmpl-first', created: 100, model: 'm' },
    });
  });

  test('tool calls, a refusal, a second choice or no choices array cannot be continued faithfully', () => {
    const toolCall = { tool_calls: [{ index: 0, id: 'call_1', function: { name: 'f' } }] };
    for (const delta of [toolCall, { refusal: 'no' }]) {
      assert.equal(completionPartial(events(chunkJson(delta))).kind, 'not_text');
    }
    const second = JSON.stringify({ ...FIRST, choices: [{ index: 1, delta: { content: 'x' } }] });
    assert.equal(completionPartial(events(second)).kind, 'not_text');
    const odd = JSON.stringify({ ...FIRST, choices: 'none' });
    assert.equal(completionPartial(events(odd)).kind, 'not_text');
  });

  test('a finish reason means it was complete; no chunk means it never opened', () => {
    const finished = JSON.stringify({
      ...FIRST,
      choices: [{ index: 0, delta: {}, finish_reason: 'stop' }],
    });
    assert.equal(
      completionPartial(events(chunkJson({ content: 'Hi' }), finished)).kind,
      'finished',
    );
    assert.equal(completionPartial([]).kind, 'unopened');
  });
});

describe('a continuation’s chunks', () => {
  const identity = { id: 'chatcmpl-first', created: 100, model: 'm' };
  const partial = { text: 'Hello, wor', chunks: 2 };
  const upstream = (delta: Record<string, unknown>, finish: string | null = null) =>
    JSON.stringify({
      id: 'chatcmpl-other',
      object: 'chat.completion.chunk',
      created: 200,
      model: 'm-2',
      choices: [{ index: 0, delta, finish_reason: finish }],
    });

  test('carry the first chunk’s identity, announce no role again, and drop what says nothing', async () => {
    const { sink, chunks } = recording();
    const continued = continuedChunks(sink, identity, partial, 1, undefined);
    await continued.chunk(modelChunk(upstream({ role: 'assistant', content: '' })));
    await continued.chunk(modelChunk(upstream({ content: 'ld' })));
    await continued.chunk(modelChunk(upstream({}, 'stop')));
    assert.deepEqual(
      chunks.map((chunk) => [chunk.id, chunk.created, chunk.model]),
      [
        ['chatcmpl-first', 100, 'm'],
        ['chatcmpl-first', 100, 'm'],
      ],
    );
    assert.deepEqual(
      chunks.map((chunk) => (chunk.choices as { delta: unknown }[])[0]?.delta),
      [{ content: 'ld' }, {}],
    );
  });

  test('trim a repetition at the seam, flushing what it held before the finishing chunk', async () => {
    const { sink, chunks } = recording();
    const continued = continuedChunks(sink, identity, partial, 1, new Seam(partial.text));
    for (const content of ['wor', 'ld']) await continued.chunk(modelChunk(upstream({ content })));
    await continued.chunk(modelChunk(upstream({ content: '!' }, 'stop')));
    const text = chunks.map(
      (chunk) => (chunk.choices as { delta: { content?: string } }[])[0]?.delta.content ?? '',
    );
    assert.equal(text.join(''), 'ld!');
  });

  test('count the lost requests in the usage', async () => {
    const { sink, chunks } = recording();
    const continued = continuedChunks(sink, identity, partial, 1, undefined);
    const usage = { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 };
    await continued.chunk(
      modelChunk(JSON.stringify({ ...FIRST, id: 'x', choices: [], usage }), true),
    );
    // The lost request: the prompt less the partial's 2 chunks; together they wrote the partial.
    assert.deepEqual(chunks[0]?.usage, {
      prompt_tokens: 22,
      completion_tokens: 5,
      total_tokens: 27,
    });
    assert.equal(chunks[0]?.id, 'chatcmpl-first');
  });
});

test('a continuation request keeps the client’s fields and its token limits, less what was sent', () => {
  const body = {
    model: 'm',
    messages: [{ role: 'user', content: 'hi' }],
    stream: true,
    temperature: 0.3,
    max_completion_tokens: 10,
  };
  const continued = continuationBody(body, { text: 'Hello', chunks: 4 }, 'prefix');
  assert.equal(continued.temperature, 0.3);
  assert.equal(continued.max_completion_tokens, 6);
  assert.equal(continued.max_tokens, undefined);
  assert.deepEqual(continued.messages, [
    { role: 'user', content: 'hi' },
    { role: 'assistant', content: 'Hello', prefix: true },
  ]);
});
