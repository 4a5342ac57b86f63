import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import OpenAI from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { assertApiError, request } from '../helpers/http.js';
import { DEFAULT_REPLY, tokenize, upstream } from '../helpers/mock-upstream.js';
import { useServerBehindUpstream } from '../helpers/upstream-server.js';
import {
  chunksOf,
  contentOf,
  DONE,
  postCompletion,
  resumeCompletion,
  sdkClient,
  userMessages,
} from './harness.js';

describe('the front door over a real OpenAI-compatible upstream', { timeout: 60_000 }, () => {
  const env = useServerBehindUpstream({ LLM_MAX_RETRIES: '0', LLM_BREAKER_FAILURES: '1000' });
  afterEach(() => {
    env.mock.defaultBehaviour = upstream.ok();
  });

  test('a streamed completion relays the upstream reply', async () => {
    const client = postCompletion(env.server, {
      messages: userMessages('hello'),
      stream_options: { include_usage: true },
    });
    await client.closed;
    assert.equal(contentOf(chunksOf(client.events)), DEFAULT_REPLY);
    assert.equal(client.events[client.events.length - 1]?.data, DONE);
  });

  test('an upstream failure mid-stream ends with an error chunk and no [DONE]', async () => {
    env.mock.enqueue(upstream.resetAfterTokens(3));
    const client = postCompletion(env.server, { messages: userMessages('fail half way') });
    await client.closed;
    assert.equal(client.status, 200);
    assert.ok(
      client.events.every((event) => event.data !== DONE),
      'no [DONE] after a failure',
    );
    assert.equal(contentOf(chunksOf(client.events)), tokenize(DEFAULT_REPLY).slice(0, 3).join(''));
    const last = client.events[client.events.length - 1];
    assert.ok(last?.id, 'the error chunk is stored, with an id');
    const { error } = JSON.parse(last.data) as { error: Record<string, unknown> };
    assert.equal(error.code, 'upstream_error');
    assert.equal(error.type, 'server_error');
    assert.equal(typeof error.message, 'string');

    // A resume of the failed completion ends the same way.
    const resumed = resumeCompletion(env.server, client.headers['x-stream-id'] as string);
    await resumed.closed;
    assert.deepEqual(resumed.events, client.events);
  });

  test('the SDK throws on that error chunk instead of ending quietly', async () => {
    env.mock.enqueue(upstream.resetAfterTokens(2));
    const stream = await sdkClient(env.server).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: userMessages('fail for the sdk'),
      stream: true,
    });
    const chunks: ChatCompletionChunk[] = [];
    await assert.rejects(
      async () => {
        for await (const chunk of stream) chunks.push(chunk);
      },
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.APIError, String(error));
        assert.equal(error.code, 'upstream_error');
        return true;
      },
    );
    assert.equal(contentOf(chunks), tokenize(DEFAULT_REPLY).slice(0, 2).join(''));
  });

  test('a non-streamed completion answers an upstream failure with 502', async () => {
    env.mock.enqueue(upstream.status500());
    const response = await request(`${env.server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: userMessages('fail whole') }),
    });
    assertApiError(response, 502, 'upstream_error');
  });

  test('an unavailable upstream is 503 with its Retry-After', async () => {
    env.mock.enqueue(upstream.status(503, { 'retry-after': '7' }));
    const response = await request(`${env.server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: userMessages('unavailable') }),
    });
    assertApiError(response, 503, 'upstream_unavailable');
    assert.equal(response.headers.get('retry-after'), '7');
  });
});
