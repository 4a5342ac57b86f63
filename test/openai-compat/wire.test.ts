import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MOCK_MODEL } from '../../src/llm/mock.js';
import {
  assertApiError,
  eventually,
  metricsText,
  metricValue,
  request,
  useServer,
} from '../helpers/http.js';
import {
  chunksOf,
  contentOf,
  DONE,
  expectedReply,
  postCompletion,
  untilEvents,
  userMessages,
} from './harness.js';

const COMPLETIONS = '/v1/chat/completions';

function post(url: string, body: unknown, contentType = 'application/json') {
  return request(url, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('the chat completions wire format', { timeout: 60_000 }, () => {
  const server = useServer({ MOCK_TOKENS_PER_SEC: '500' });

  test('a stream is id + data frames only, without event lines, ending with data: [DONE]', async () => {
    const messages = userMessages('show me the bytes');
    const response = await post(`${server().url}${COMPLETIONS}`, { messages, stream: true });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    assert.equal(response.headers.get('cache-control'), 'no-cache');
    const streamId = response.headers.get('x-stream-id') ?? '';
    assert.match(streamId, /^chatcmpl-[A-Za-z0-9]+$/);

    assert.ok(response.text.endsWith('\n\n'), 'the stream ends with a complete frame');
    const frames = response.text.slice(0, -2).split('\n\n');
    assert.match(frames.shift() ?? '', /^retry: \d+$/);
    assert.doesNotMatch(response.text, /^event:/m);
    const ids: string[] = [];
    const payloads: string[] = [];
    for (const frame of frames) {
      const match = /^id: (\S+)\ndata: (.+)$/.exec(frame);
      assert.ok(match, `frame is not exactly one id line and one data line: ${frame}`);
      ids.push(match[1] as string);
      payloads.push(match[2] as string);
    }
    assert.equal(new Set(ids).size, ids.length, 'every frame has its own id');
    assert.equal(payloads.pop(), DONE, 'data: [DONE] is the last frame');
    const chunks = payloads.map((payload) => JSON.parse(payload) as { id: string });
    assert.ok(chunks.every((chunk) => chunk.id === chunks[0]?.id));
    assert.equal(
      contentOf(chunksOf(payloads.map((data) => ({ event: 'message', data })))),
      expectedReply(messages),
    );
  });

  test('chunks keep OpenAI’s field order and shape', async () => {
    const client = postCompletion(server(), { messages: userMessages('shape') });
    await client.closed;
    const [first, second] = client.events;
    const firstChunk = JSON.parse(first?.data ?? '');
    assert.deepEqual(Object.keys(firstChunk), ['id', 'object', 'created', 'model', 'choices']);
    assert.deepEqual(firstChunk.choices, [
      {
        index: 0,
        delta: { role: 'assistant', content: '', refusal: null },
        finish_reason: null,
        logprobs: null,
      },
    ]);
    assert.equal(firstChunk.model, MOCK_MODEL);
    assert.deepEqual(Object.keys(JSON.parse(second?.data ?? '').choices[0].delta), ['content']);
  });

  test('the model named in the request is echoed back', async () => {
    const response = await post(`${server().url}${COMPLETIONS}`, {
      model: 'my-model',
      messages: userMessages('hi'),
    });
    assert.equal(response.status, 200, response.text);
    assert.equal((response.json as { model: string }).model, 'my-model');
  });

  test('everything else is the model’s to judge: tools, roles, content parts, options', async () => {
    const response = await post(`${server().url}${COMPLETIONS}`, {
      messages: [
        { role: 'user', content: 'hi', name: 'alice' },
        { role: 'tool', tool_call_id: 'call_1', content: 5 },
        { role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:,' } }] },
      ],
      user: 'someone',
      top_p: 0.5,
      seed: 7,
      n: 2,
      temperature: '1',
      max_tokens: 0,
      vendor_option: { anything: true },
    });
    assert.equal(response.status, 200, response.text);
  });

  const badRequests: [string, unknown, string | null][] = [
    ['no messages', {}, 'messages'],
    ['empty messages', { messages: [] }, 'messages'],
    ['messages not an array', { messages: 'hi' }, 'messages'],
    ['a message not an object', { messages: ['hi'] }, 'messages[0]'],
    ['model a number', { messages: userMessages('x'), model: 5 }, 'model'],
    ['model empty', { messages: userMessages('x'), model: '' }, 'model'],
    ['stream a string', { messages: userMessages('x'), stream: 'true' }, 'stream'],
    [
      'include_usage a string',
      { messages: userMessages('x'), stream: true, stream_options: { include_usage: 'yes' } },
      'stream_options.include_usage',
    ],
    ['n 0', { messages: userMessages('x'), n: 0 }, 'n'],
    ['n a string', { messages: userMessages('x'), n: 'two' }, 'n'],
    ['an array body', [userMessages('x')], null],
  ];
  for (const [what, body, param] of badRequests) {
    test(`400 invalid_request for ${what}`, async () => {
      const response = await post(`${server().url}${COMPLETIONS}`, body);
      assertApiError(response, 400, 'invalid_request');
      const { error } = response.json as { error: { param: unknown; type: unknown } };
      assert.equal(error.param, param);
      assert.equal(error.type, 'invalid_request_error');
    });
  }

  test('a body that is not JSON is 400 invalid_json; another content type is 415', async () => {
    assertApiError(
      await post(`${server().url}${COMPLETIONS}`, '{"messages": ['),
      400,
      'invalid_json',
    );
    assertApiError(
      await post(`${server().url}${COMPLETIONS}`, 'hello', 'text/plain'),
      415,
      'unsupported_media_type',
    );
  });

  test('generations, deltas and tokens are counted (under feature="completions"), the request once', async () => {
    const before = await metricsText(server().url);
    const count = (text: string) => ({
      done:
        metricValue(text, 'streamhub_llm_generations_total', {
          feature: 'completions',
          outcome: 'done',
        }) ?? 0,
      deltas: metricValue(text, 'streamhub_llm_deltas_total', { feature: 'completions' }) ?? 0,
      input: metricValue(text, 'streamhub_llm_tokens_total', { type: 'input' }) ?? 0,
      output: metricValue(text, 'streamhub_llm_tokens_total', { type: 'output' }) ?? 0,
      requests:
        metricValue(text, 'streamhub_http_requests_total', {
          method: 'POST',
          route: COMPLETIONS,
          status: '200',
        }) ?? 0,
    });
    const client = postCompletion(server(), { messages: userMessages('count me'), max_tokens: 5 });
    await client.closed;
    const after = count(await metricsText(server().url));
    assert.equal(after.done - count(before).done, 1);
    // Chunks relayed: the role with the first token, 5 tokens, the finish reason.
    assert.equal(after.deltas - count(before).deltas, 7);
    // The usage the model reported: the prompt's two words, the 5 tokens generated.
    assert.equal(after.input - count(before).input, 2);
    assert.equal(after.output - count(before).output, 5);
    // Counted as the stream opened, not once more when it ended.
    assert.equal(after.requests - count(before).requests, 1);
  });
});

describe('a full generation limiter', { timeout: 60_000 }, () => {
  const server = useServer({
    MOCK_TOKENS_PER_SEC: '20',
    LLM_MAX_CONCURRENCY: '1',
    LLM_QUEUE_MAX: '0',
  });

  test('answers 503 overloaded with Retry-After before anything is streamed', async () => {
    const running = postCompletion(server(), { messages: userMessages('take the only slot') });
    await untilEvents(running, 1);
    for (const stream of [true, false]) {
      const response = await post(`${server().url}${COMPLETIONS}`, {
        messages: userMessages('no room'),
        stream,
      });
      assertApiError(response, 503, 'overloaded');
      assert.equal(response.headers.get('retry-after'), '1');
      assert.equal((response.json as { error: { type: string } }).error.type, 'server_error');
    }
    running.close();
  });
});

describe('a non-streamed completion', { timeout: 60_000 }, () => {
  const server = useServer({ MOCK_TOKENS_PER_SEC: '20' });

  test('stops generating when its client leaves, since nobody could collect the answer', async () => {
    const cancelled = async () =>
      metricValue(await metricsText(server().url), 'streamhub_llm_generations_total', {
        feature: 'completions',
        outcome: 'cancelled',
      }) ?? 0;
    const before = await cancelled();
    const controller = new AbortController();
    const response = fetch(`${server().url}${COMPLETIONS}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: userMessages('I will not wait for this') }),
      signal: controller.signal,
    });
    await eventually(
      async () =>
        metricValue(await metricsText(server().url), 'streamhub_llm_generations_active') === 1,
      'the generation to start',
    );
    controller.abort();
    await assert.rejects(response);
    await eventually(async () => (await cancelled()) === before + 1, 'the generation to stop');
  });
});
