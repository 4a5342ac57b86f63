import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { OpenAiProvider } from '../../src/llm/openai.js';
import { retryAfter } from '../../src/llm/openai-errors.js';
import { LlmError, type LlmErrorCode } from '../../src/llm/provider.js';
import {
  DEFAULT_REPLY,
  MockUpstream,
  tokenize,
  type UpstreamBehaviour,
  upstream,
} from '../helpers/mock-upstream.js';
import { UNREACHABLE_URL, waitFor } from '../helpers/server.js';
import { chatRequest, collect } from './collect.js';

let mock: MockUpstream;
let provider: OpenAiProvider;

before(async () => {
  mock = await MockUpstream.start();
  provider = new OpenAiProvider({
    baseURL: mock.baseURL,
    apiKey: 'test-key',
    defaultModel: 'gpt-4o-mini',
  });
});
after(() => mock.close());
afterEach(() => mock.reset());

function assertLlmError(error: unknown, code: LlmErrorCode, retryable: boolean): LlmError {
  assert.ok(error instanceof LlmError, `expected an LlmError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  assert.equal(error.retryable, retryable, `retryable of ${error.code}: ${error.message}`);
  return error;
}

describe('OpenAiProvider', () => {
  test('streams the reply chunk by chunk, as sent, then the finish reason and usage', async () => {
    const { request } = chatRequest({ temperature: 0.3, max_tokens: 100 });
    const result = await collect(provider.generate(request));
    assert.equal(result.error, undefined);
    assert.deepEqual(result.deltas, tokenize(DEFAULT_REPLY));
    assert.deepEqual(
      result.chunks.map((chunk) => chunk.json),
      mock.answers[0]?.events.slice(0, -1),
    );
    assert.deepEqual(
      result.chunks.map((chunk) => chunk.usageOnly),
      result.chunks.map((_, i) => i === result.chunks.length - 1),
    );
    assert.deepEqual(result.finish, {
      type: 'finish',
      finishReason: 'stop',
      usage: { prompt_tokens: 8, completion_tokens: 9, total_tokens: 17 },
    });
  });

  test('sends the body as given, asking for usage, with its own key and no other header', async () => {
    const fields = {
      model: 'gpt-test',
      temperature: 0.3,
      tools: [{ type: 'function', function: { name: 'f' } }],
      stream_options: { include_usage: false, vendor: 1 },
      unknown_field: { kept: true },
    };
    const { request } = chatRequest(fields);
    await collect(provider.generate(request));
    const [sent] = mock.completionRequests;
    assert.ok(sent);
    assert.equal(sent.method, 'POST');
    assert.equal(sent.headers.authorization, 'Bearer test-key');
    assert.deepEqual(sent.body, {
      ...request.body,
      stream_options: { include_usage: true, vendor: 1 },
    });
    assert.deepEqual(Object.keys(sent.headers).sort(), [
      'accept',
      'authorization',
      'connection',
      'content-length',
      'content-type',
      'host',
    ]);
  });

  test('an unstreamed request goes upstream as it is and its answer comes back whole', async () => {
    mock.enqueue(upstream.toolCalls([{ name: 'f', arguments: '{"a":1}' }], { format: 'python' }));
    const { request } = chatRequest({ stream: false });
    const result = await collect(provider.generate(request));
    assert.deepEqual(mock.completionRequests[0]?.body, request.body);
    assert.deepEqual(
      result.chunks.map((chunk) => chunk.json),
      [mock.answers[0]?.body],
    );
    assert.equal(result.finish?.finishReason, 'tool_calls');
    assert.equal(result.finish?.usage?.prompt_tokens, 8);
  });

  test('reports the finish reason the upstream gives (length at max_tokens)', async () => {
    const result = await collect(provider.generate(chatRequest({ max_tokens: 3 }).request));
    assert.deepEqual(result.deltas, tokenize(DEFAULT_REPLY).slice(0, 3));
    assert.equal(result.finish?.finishReason, 'length');
    assert.equal(result.finish?.usage?.completion_tokens, 3);
  });

  test('finishes with usage null when the upstream sends no usage chunk', async () => {
    mock.enqueue(upstream.ok({ usage: false }));
    const result = await collect(provider.generate(chatRequest().request));
    assert.deepEqual(result.finish, { type: 'finish', finishReason: 'stop', usage: null });
  });

  test('n = 2: finished once both choices are', async () => {
    mock.enqueue(upstream.choices(['one two', 'three four five']), upstream.choices(['a', 'b']));
    const result = await collect(provider.generate(chatRequest({ n: 2 }).request));
    assert.equal(result.finish?.finishReason, 'stop');
    assert.equal(result.chunks.length + 1, mock.answers[0]?.events.length);
  });

  test('sends no Authorization header without an API key', async () => {
    const keyless = new OpenAiProvider({ baseURL: mock.baseURL, defaultModel: 'local' });
    const result = await collect(keyless.generate(chatRequest().request));
    assert.equal(result.text, DEFAULT_REPLY);
    assert.equal(mock.completionRequests[0]?.headers.authorization, undefined);
  });

  test('lists the upstream’s models as it gives them', async () => {
    assert.equal(provider.name, 'openai');
    const models = await provider.listModels(new AbortController().signal);
    assert.deepEqual(
      models,
      mock.models.map((id) => ({ id, object: 'model', created: 0, owned_by: 'mock' })),
    );
    mock.modelsStatus = 404;
    await assert.rejects(provider.listModels(new AbortController().signal), LlmError);
  });

  const failures: {
    name: string;
    behaviour: UpstreamBehaviour;
    code: LlmErrorCode;
    retryable: boolean;
    deltas?: number;
    retryAfterMs?: number;
  }[] = [
    {
      name: '429 with Retry-After in seconds',
      behaviour: upstream.status429('2'),
      code: 'upstream_rate_limited',
      retryable: true,
      retryAfterMs: 2000,
    },
    {
      name: '429 with retry-after-ms',
      behaviour: upstream.status429('7', { 'retry-after-ms': '250' }),
      code: 'upstream_rate_limited',
      retryable: true,
      retryAfterMs: 250,
    },
    { name: '500', behaviour: upstream.status500(), code: 'upstream_error', retryable: true },
    { name: '503', behaviour: upstream.status(503), code: 'upstream_unavailable', retryable: true },
    { name: '400', behaviour: upstream.status(400), code: 'invalid_request', retryable: false },
    { name: '401', behaviour: upstream.status(401), code: 'upstream_error', retryable: false },
    {
      name: 'a reset before the first token',
      behaviour: upstream.resetBeforeFirstToken(),
      code: 'upstream_unavailable',
      retryable: true,
    },
    {
      name: 'a reset after 3 tokens',
      behaviour: upstream.resetAfterTokens(3),
      code: 'upstream_error',
      retryable: true,
      deltas: 3,
    },
    {
      name: 'a stream that ends without finish reason or [DONE]',
      behaviour: upstream.endAfterTokens(2),
      code: 'upstream_error',
      retryable: true,
      deltas: 2,
    },
    {
      name: 'a malformed first chunk',
      behaviour: upstream.malformedChunk(),
      code: 'upstream_error',
      retryable: false,
    },
    {
      name: 'a malformed chunk after 2 tokens',
      behaviour: upstream.malformedChunk(2),
      code: 'upstream_error',
      retryable: false,
      deltas: 2,
    },
  ];
  for (const failure of failures) {
    test(`maps ${failure.name} to ${failure.code}`, async () => {
      mock.enqueue(failure.behaviour);
      const result = await collect(provider.generate(chatRequest().request));
      const error = assertLlmError(result.error, failure.code, failure.retryable);
      assert.equal(result.deltas.length, failure.deltas ?? 0);
      assert.equal(result.finish, undefined);
      assert.equal(error.retryAfterMs, failure.retryAfterMs);
      assert.equal(mock.completionRequests.length, 1);
    });
  }

  test('keeps a 4xx refusal whole for the client; the message of an auth failure stays vague', async () => {
    mock.enqueue(
      upstream.badRequest("model 'x' does not exist", 'model', 'model_not_found'),
      upstream.status(401, {}, { error: { message: 'Incorrect API key provided: sk-abc***' } }),
      upstream.status(422, {}, 'not an OpenAI error body'),
    );
    const invalid = await collect(provider.generate(chatRequest().request));
    const error = assertLlmError(invalid.error, 'invalid_request', false);
    assert.match(error.message, /model 'x' does not exist/);
    assert.deepEqual(error.rejection, { status: 400, body: mock.answers[0]?.body });
    const unauthorized = await collect(provider.generate(chatRequest().request));
    const authError = assertLlmError(unauthorized.error, 'upstream_error', false);
    assert.doesNotMatch(authError.message, /sk-/);
    assert.deepEqual(authError.rejection, { status: 401, body: mock.answers[1]?.body });
    const unshaped = await collect(provider.generate(chatRequest().request));
    const unshapedError = assertLlmError(unshaped.error, 'invalid_request', false);
    assert.deepEqual(unshapedError.rejection, { status: 422, body: undefined });
  });

  test('maps a refused connection to upstream_unavailable', async () => {
    const baseURL = `${UNREACHABLE_URL}/v1`;
    const unreachable = new OpenAiProvider({ baseURL, apiKey: 'k', defaultModel: 'm' });
    const result = await collect(unreachable.generate(chatRequest().request));
    const error = assertLlmError(result.error, 'upstream_unavailable', true);
    assert.match(error.message, /ECONNREFUSED/);
  });

  for (const [name, behaviour, abortAfterDeltas] of [
    ['while waiting for the response', upstream.stallBeforeHeaders(), 0],
    ['while waiting for the first token', upstream.stallBeforeFirstToken(), 0],
    ['mid-stream', upstream.stallAfterTokens(2), 2],
    ['while tokens drip in', upstream.slowDrip(100), 1],
  ] as const) {
    test(`an abort ${name} closes the upstream request`, async () => {
      mock.enqueue(behaviour);
      const { request, controller } = chatRequest();
      const reason = new Error('client went away');
      if (abortAfterDeltas === 0) {
        void waitFor(() => mock.completionRequests.length === 1, 'the upstream request').then(() =>
          controller.abort(reason),
        );
      }
      const result = await collect(provider.generate(request), (index) => {
        if (index + 1 === abortAfterDeltas) controller.abort(reason);
      });
      assert.equal(result.error, reason);
      assert.equal(result.deltas.length, abortAfterDeltas);
      await waitFor(() => mock.abortedRequests === 1, 'the upstream to see the connection close');
    });
  }

  test('a consumer that stops reading closes the upstream request', async () => {
    mock.enqueue(upstream.slowDrip(100));
    for await (const chunk of provider.generate(chatRequest().request)) {
      assert.equal(chunk.type, 'chunk');
      break;
    }
    await waitFor(() => mock.abortedRequests === 1, 'the upstream to see the connection close');
  });
});

describe('retryAfter', () => {
  const headers = (values: Record<string, string>) => new Headers(values);

  test('reads seconds, an HTTP date and retry-after-ms', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(retryAfter(headers({ 'retry-after': '3' }), now), 3000);
    assert.equal(retryAfter(headers({ 'retry-after': '0.5' }), now), 500);
    assert.equal(
      retryAfter(headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' }), now),
      5000,
    );
    assert.equal(retryAfter(headers({ 'retry-after': 'Wed, 31 Dec 2025 23:00:00 GMT' }), now), 0);
    assert.equal(retryAfter(headers({ 'retry-after': '3', 'retry-after-ms': '120' }), now), 120);
  });

  test('ignores missing or unreadable values', () => {
    assert.equal(retryAfter(undefined), undefined);
    assert.equal(retryAfter(headers({})), undefined);
    assert.equal(retryAfter(headers({ 'retry-after': 'soon' })), undefined);
    assert.equal(retryAfter(headers({ 'retry-after': '-4' })), undefined);
  });
});

describe('MockUpstream', () => {
  test('speaks the format the official SDK parses, streaming or not, and lists models', async () => {
    const client = new OpenAI({ baseURL: mock.baseURL, apiKey: 'k', maxRetries: 0 });
    const completion = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi there' }],
    });
    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.choices[0]?.message.content, DEFAULT_REPLY);
    assert.equal(completion.choices[0]?.finish_reason, 'stop');
    assert.deepEqual(completion.usage, {
      prompt_tokens: 2,
      completion_tokens: 9,
      total_tokens: 11,
    });

    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi there' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.ok(chunks.every((chunk) => chunk.object === 'chat.completion.chunk'));
    assert.equal(
      chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join(''),
      DEFAULT_REPLY,
    );
    assert.equal(chunks.at(-1)?.choices.length, 0);
    assert.equal(chunks.at(-1)?.usage?.completion_tokens, 9);

    const models = await client.models.list();
    assert.deepEqual(
      models.data.map((model) => model.id),
      mock.models,
    );
  });

  test('frames the stream byte for byte like OpenAI', async () => {
    const response = await fetch(`${mock.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [], stream: true }),
    });
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    const body = await response.text();
    const events = body.split('\n\n');
    assert.equal(events.pop(), '');
    assert.equal(events.pop(), 'data: [DONE]');
    for (const event of events) assert.match(event, /^data: \{"id":"chatcmpl-.*\}$/);
  });
});
