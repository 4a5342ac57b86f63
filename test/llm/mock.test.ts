import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ChatCompletion, ChatCompletionChunk } from 'openai/resources/chat/completions';
import { MOCK_MODEL, MockProvider, mockReply } from '../../src/llm/mock.js';
import { chatRequest, collect, MESSAGES } from './collect.js';

describe('MockProvider', () => {
  test('streams the same reply for the same conversation, and another for another', async () => {
    const provider = new MockProvider(100_000);
    const first = await collect(provider.generate(chatRequest().request));
    const again = await collect(provider.generate(chatRequest().request));
    const other = await collect(
      provider.generate(
        chatRequest({ messages: [{ role: 'user', content: 'something else' }] }).request,
      ),
    );
    assert.equal(first.error, undefined);
    assert.deepEqual(first.deltas, mockReply(MESSAGES));
    assert.equal(again.text, first.text);
    assert.notEqual(other.text, first.text);
    assert.deepEqual(first.finish, {
      type: 'finish',
      finishReason: 'stop',
      usage: {
        prompt_tokens: 8,
        completion_tokens: first.deltas.length,
        total_tokens: 8 + first.deltas.length,
      },
    });
    const models = await provider.listModels();
    assert.deepEqual(
      models.map(({ id, owned_by }) => ({ id, owned_by })),
      [{ id: MOCK_MODEL, owned_by: 'streamhub' }],
    );
  });

  test('answers in readable Markdown that quotes the question, 60 to 150 words', () => {
    const long = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
    for (const question of ['hi', '  spaced   out  ', 'What is streamhub?', long]) {
      for (let turn = 1; turn <= 20; turn++) {
        const earlier = Array.from({ length: turn - 1 }, (_, i) => [
          { role: 'user', content: `question ${i}` } as const,
          { role: 'assistant', content: `answer ${i}` } as const,
        ]).flat();
        const tokens = mockReply([...earlier, { role: 'user', content: question }]);
        const text = tokens.join('');
        const context = `turn ${turn}: ${text}`;
        assert.ok(tokens.length >= 60 && tokens.length <= 150, `${tokens.length} ${context}`);
        assert.match(tokens[0] ?? '', /^\S+$/, context);
        assert.ok(
          tokens.slice(1).every((token) => /^\s+\S+$/.test(token)),
          context,
        );
        const quoted = question.match(/\S+/g)?.slice(0, 8).join(' ') ?? '';
        assert.ok(text.includes(`“${quoted}`), context);
        assert.match(text, /\n\n(- |1\. )\S.*\n(- |2\. )\S.*\n(- |3\. )\S/, context);
        assert.match(text, /`[\w$ =./{}-]+`/, context);
      }
    }
  });

  test('paces the tokens at roughly tokensPerSecond', async () => {
    const tokensPerSecond = 100;
    const result = await collect(new MockProvider(tokensPerSecond).generate(chatRequest().request));
    const expectedMs = ((result.deltas.length - 1) / tokensPerSecond) * 1000;
    // Timers never fire early, so the lower bound is safe; the upper one only catches "no pacing".
    assert.ok(
      result.elapsedMs >= expectedMs * 0.9,
      `${result.elapsedMs} ms, expected ${expectedMs}`,
    );
    assert.ok(
      result.elapsedMs < expectedMs * 5 + 2000,
      `${result.elapsedMs} ms, expected ${expectedMs}`,
    );
  });

  test('stops at maxTokens with finish reason length', async () => {
    const result = await collect(
      new MockProvider(100_000).generate(chatRequest({ max_tokens: 5 }).request),
    );
    assert.deepEqual(result.deltas, mockReply(MESSAGES).slice(0, 5));
    assert.equal(result.finish?.finishReason, 'length');
    assert.equal(result.finish?.usage?.completion_tokens, 5);
  });

  test('stops promptly when the signal aborts', async () => {
    const { request, controller } = chatRequest();
    const result = await collect(new MockProvider(20).generate(request), (index) => {
      if (index === 2) controller.abort();
    });
    assert.equal((result.error as Error).name, 'AbortError');
    assert.equal(result.deltas.length, 3);
    assert.equal(result.finish, undefined);
    assert.ok(result.elapsedMs < 2000, `${result.elapsedMs} ms`);
  });

  test('streams OpenAI chunks: the role, a chunk per token, the finish, then the usage chunk', async () => {
    const result = await collect(new MockProvider(100_000).generate(chatRequest().request));
    const chunks = result.chunks.map((chunk) => JSON.parse(chunk.json) as ChatCompletionChunk);
    const tokens = mockReply(MESSAGES);
    assert.equal(chunks.length, tokens.length + 3);
    assert.deepEqual(chunks[0]?.choices[0]?.delta, {
      role: 'assistant',
      content: '',
      refusal: null,
    });
    assert.equal(chunks.at(-2)?.choices[0]?.finish_reason, 'stop');
    assert.deepEqual(chunks.at(-1)?.choices, []);
    assert.deepEqual(chunks.at(-1)?.usage, result.finish?.usage);
    assert.deepEqual(
      result.chunks.map((chunk) => chunk.usageOnly),
      chunks.map((_, i) => i === chunks.length - 1),
    );
    assert.ok(chunks.every((chunk) => chunk.id === chunks[0]?.id && chunk.model === 'gpt-4o-mini'));
  });

  test('answers a request that is not streamed with one chat.completion', async () => {
    const result = await collect(
      new MockProvider(100_000).generate(chatRequest({ stream: false }).request),
    );
    assert.equal(result.chunks.length, 1);
    const completion = JSON.parse(result.chunks[0]?.json ?? '') as ChatCompletion;
    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.choices[0]?.message.content, mockReply(MESSAGES).join(''));
    assert.deepEqual(completion.usage, result.finish?.usage);
  });

  test('calls the first tool offered after a user message, and quotes a tool’s result', async () => {
    const tools = [
      { type: 'function', function: { name: 'first' } },
      { type: 'function', function: { name: 'second' } },
    ];
    const provider = new MockProvider(100_000);
    const called = await collect(provider.generate(chatRequest({ tools }).request));
    assert.equal(called.finish?.finishReason, 'tool_calls');
    const deltas = called.chunks.map(
      (chunk) => (JSON.parse(chunk.json) as ChatCompletionChunk).choices[0]?.delta,
    );
    const [opening] = deltas[0]?.tool_calls ?? [];
    assert.equal(opening?.function?.name, 'first');
    assert.match(opening?.id ?? '', /^call_[0-9a-f]{24}$/);
    assert.equal(deltas[1]?.tool_calls?.[0]?.function?.arguments, '{}');

    const messages = [
      ...MESSAGES,
      { role: 'assistant', content: null, tool_calls: [{ id: opening?.id, type: 'function' }] },
      { role: 'tool', tool_call_id: opening?.id, content: '{"answer":42}' },
    ];
    const answered = await collect(provider.generate(chatRequest({ tools, messages }).request));
    assert.equal(answered.finish?.finishReason, 'stop');
    assert.ok(answered.text.includes('{"answer":42}'), answered.text);
  });
});
