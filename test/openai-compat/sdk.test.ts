import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import OpenAI from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { MOCK_MODEL, mockReply } from '../../src/llm/mock.js';
import { useServer } from '../helpers/http.js';
import { contentOf, expectedReply, sdkClient, userMessages } from './harness.js';

async function collectChunks(stream: AsyncIterable<ChatCompletionChunk>) {
  const chunks: ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

describe('the official openai SDK against the front door', { timeout: 60_000 }, () => {
  const server = useServer({ MOCK_TOKENS_PER_SEC: '500' });

  test('models.list() lists the provider models', async () => {
    const models = [];
    for await (const model of sdkClient(server()).models.list()) models.push(model);
    assert.deepEqual(
      models.map(({ id, object, owned_by }) => ({ id, object, owned_by })),
      [{ id: MOCK_MODEL, object: 'model', owned_by: 'streamhub' }],
    );
    assert.ok(Number.isInteger(models[0]?.created));
  });

  test('a streamed completion yields chat.completion.chunk objects that add up to the reply', async () => {
    const messages = userMessages('stream me a reply please');
    const chunks = await collectChunks(
      await sdkClient(server()).chat.completions.create({
        model: MOCK_MODEL,
        messages,
        stream: true,
      }),
    );
    assert.equal(contentOf(chunks), expectedReply(messages));
    const first = chunks[0];
    const last = chunks[chunks.length - 1];
    assert.equal(first?.choices[0]?.delta.role, 'assistant');
    assert.equal(last?.choices[0]?.finish_reason, 'stop');
    assert.ok(chunks.slice(0, -1).every((chunk) => chunk.choices[0]?.finish_reason === null));
    assert.match(first?.id ?? '', /^chatcmpl-[A-Za-z0-9]+$/);
    for (const chunk of chunks) {
      assert.equal(chunk.id, first?.id);
      assert.equal(chunk.object, 'chat.completion.chunk');
      assert.equal(chunk.model, MOCK_MODEL);
      assert.equal(chunk.created, first?.created);
      assert.equal(chunk.choices.length, 1);
      assert.equal(chunk.choices[0]?.index, 0);
      assert.equal(chunk.choices[0]?.logprobs, null);
      assert.equal(chunk.usage, undefined);
    }
  });

  test('stream_options.include_usage adds a last chunk with usage and no choices', async () => {
    const messages = userMessages('count my tokens');
    const chunks = await collectChunks(
      await sdkClient(server()).chat.completions.create({
        messages,
        model: MOCK_MODEL,
        stream: true,
        stream_options: { include_usage: true },
      }),
    );
    const usageChunk = chunks[chunks.length - 1];
    assert.deepEqual(usageChunk?.choices, []);
    const replyTokens = mockReply(messages).length;
    assert.deepEqual(usageChunk?.usage, {
      prompt_tokens: 3,
      completion_tokens: replyTokens,
      total_tokens: 3 + replyTokens,
    });
    assert.ok(chunks.slice(0, -1).every((chunk) => chunk.usage === null));
    assert.equal(chunks[chunks.length - 2]?.choices[0]?.finish_reason, 'stop');
    assert.equal(contentOf(chunks), expectedReply(messages));
  });

  test('stream: false answers one chat.completion object with the same reply', async () => {
    const messages = userMessages('answer me whole');
    const completion = await sdkClient(server()).chat.completions.create({
      model: MOCK_MODEL,
      messages,
    });
    assert.match(completion.id, /^chatcmpl-[A-Za-z0-9]+$/);
    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.model, MOCK_MODEL);
    assert.ok(Math.abs(completion.created - Date.now() / 1000) < 60);
    assert.deepEqual(completion.choices, [
      {
        index: 0,
        message: { role: 'assistant', content: expectedReply(messages), refusal: null },
        finish_reason: 'stop',
        logprobs: null,
      },
    ]);
    const replyTokens = mockReply(messages).length;
    assert.deepEqual(completion.usage, {
      prompt_tokens: 3,
      completion_tokens: replyTokens,
      total_tokens: 3 + replyTokens,
    });
  });

  test('max_completion_tokens cuts the reply with finish_reason length', async () => {
    const messages = userMessages('a long answer please');
    const chunks = await collectChunks(
      await sdkClient(server()).chat.completions.create({
        model: MOCK_MODEL,
        messages,
        stream: true,
        max_completion_tokens: 4,
      }),
    );
    assert.equal(contentOf(chunks), mockReply(messages).slice(0, 4).join(''));
    assert.equal(chunks[chunks.length - 1]?.choices[0]?.finish_reason, 'length');
  });

  test('developer messages and text parts reach the model as system messages and text', async () => {
    const client = sdkClient(server());
    const completion = await client.chat.completions.create({
      model: MOCK_MODEL,
      messages: [
        { role: 'developer', content: 'be brief' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'first part' },
            { type: 'text', text: 'second part' },
          ],
        },
      ],
    });
    const expected = expectedReply([
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'first part\nsecond part' },
    ]);
    assert.equal(completion.choices[0]?.message.content, expected);
  });

  test('a bad request surfaces as the SDK’s BadRequestError with the server’s message', async () => {
    const client = sdkClient(server());
    await assert.rejects(
      client.chat.completions.create({ model: MOCK_MODEL, messages: [], stream: true }),
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.BadRequestError, String(error));
        assert.equal(error.status, 400);
        assert.equal(error.code, 'invalid_request');
        assert.equal(error.type, 'invalid_request_error');
        assert.equal(error.param, 'messages');
        assert.match(error.message, /^400 messages: messages must be a non-empty array$/);
        return true;
      },
    );
  });

  test('withResponse() exposes x-stream-id, the handle to resume the stream by', async () => {
    const { data: stream, response } = await sdkClient(server())
      .chat.completions.create({
        model: MOCK_MODEL,
        messages: userMessages('which id am I'),
        stream: true,
      })
      .withResponse();
    const streamId = response.headers.get('x-stream-id');
    assert.match(streamId ?? '', /^chatcmpl-[A-Za-z0-9]+$/);
    const chunks = await collectChunks(stream);
    assert.ok(chunks.length > 2);
    // The chunks carry the model's own id, whatever streamhub's handle is.
    assert.match(chunks[0]?.id ?? '', /^chatcmpl-[A-Za-z0-9]+$/);
    assert.ok(chunks.every((chunk) => chunk.id === chunks[0]?.id));
  });
});
