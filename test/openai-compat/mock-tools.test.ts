import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from 'openai/resources/chat/completions';
import { MOCK_MODEL } from '../../src/llm/mock.js';
import { request, useServer } from '../helpers/http.js';
import { DONE, postCompletion, sdkClient } from './harness.js';

const TOOLS: ChatCompletionTool[] = [
  {
    type: 'function',
    function: { name: 'lookup_order', parameters: { type: 'object', properties: {} } },
  },
  { type: 'function', function: { name: 'never_called', parameters: { type: 'object' } } },
];

const QUESTION: ChatCompletionMessageParam = { role: 'user', content: 'Where is my order?' };

describe('the mock model plays tools, with no key', { timeout: 60_000 }, () => {
  const server = useServer({ MOCK_TOKENS_PER_SEC: '1000' });

  test('through the SDK: a call of the first tool, then an answer quoting the tool’s result', async () => {
    const client = sdkClient(server());
    const called = await client.chat.completions
      .stream({ model: MOCK_MODEL, messages: [QUESTION], tools: TOOLS, stream: true })
      .finalChatCompletion();
    const [choice] = called.choices;
    assert.equal(choice?.finish_reason, 'tool_calls');
    const [call, ...others] = choice?.message.tool_calls ?? [];
    assert.deepEqual(others, []);
    assert.ok(call?.type === 'function');
    assert.equal(call.function.name, 'lookup_order');
    assert.equal(call.function.arguments, '{}');
    assert.match(call.id, /^call_[A-Za-z0-9]+$/);

    const result = '{"status":"shipped","eta":"Tuesday"}';
    const answered = await client.chat.completions.create({
      model: MOCK_MODEL,
      tools: TOOLS,
      messages: [
        QUESTION,
        { role: 'assistant', content: null, tool_calls: [call] },
        { role: 'tool', tool_call_id: call.id, content: result },
      ],
    });
    assert.equal(answered.choices[0]?.finish_reason, 'stop');
    assert.ok(answered.choices[0]?.message.content?.includes(result));
  });

  test('through /v1/chat/completions: tool-call delta chunks, then finish_reason tool_calls and [DONE]', async () => {
    const client = postCompletion(server(), { messages: [QUESTION], tools: TOOLS });
    await client.closed;
    const payloads = client.events.map((event) => event.data);
    assert.equal(payloads.pop(), DONE);
    const chunks = payloads.map((data) => JSON.parse(data) as ChatCompletionChunk);
    const deltas = chunks.map((chunk) => chunk.choices[0]?.delta);
    assert.deepEqual(deltas[0], {
      role: 'assistant',
      content: null,
      tool_calls: [
        {
          index: 0,
          id: chunks[0]?.choices[0]?.delta.tool_calls?.[0]?.id,
          type: 'function',
          function: { name: 'lookup_order', arguments: '' },
        },
      ],
      refusal: null,
    });
    const argumentText = deltas
      .flatMap((delta) => delta?.tool_calls ?? [])
      .map((call) => call.function?.arguments ?? '')
      .join('');
    assert.equal(argumentText, '{}');
    assert.equal(chunks.at(-1)?.choices[0]?.finish_reason, 'tool_calls');
    assert.ok(chunks.slice(0, -1).every((chunk) => chunk.choices[0]?.finish_reason === null));

    const whole = await request(`${server().url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [QUESTION], tools: TOOLS }),
    });
    const completion = whole.json as ChatCompletion;
    assert.equal(completion.choices[0]?.finish_reason, 'tool_calls');
    assert.deepEqual(completion.choices[0]?.message.tool_calls, [
      {
        id: chunks[0]?.choices[0]?.delta.tool_calls?.[0]?.id,
        type: 'function',
        function: { name: 'lookup_order', arguments: '{}' },
      },
    ]);
  });

  test('without tools, or when the last message is not the user’s, the mock answers in text', async () => {
    const client = sdkClient(server());
    const plain = await client.chat.completions.create({ model: MOCK_MODEL, messages: [QUESTION] });
    assert.equal(plain.choices[0]?.finish_reason, 'stop');
    assert.equal(plain.choices[0]?.message.tool_calls, undefined);
  });
});
