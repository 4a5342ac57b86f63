import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import OpenAI from 'openai';
import type {
  ChatCompletion,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionCreateParamsStreaming,
  ChatCompletionTool,
} from 'openai/resources/chat/completions';
import { request } from '../helpers/http.js';
import {
  type MockUpstream,
  openAiError,
  type RecordedRequest,
  upstream,
} from '../helpers/mock-upstream.js';
import { waitFor } from '../helpers/server.js';
import { callId, textReply, tokenize } from '../helpers/upstream-replies.js';
import { useServerBehindUpstream } from '../helpers/upstream-server.js';
import {
  assertNoDuplicateIds,
  CLIENT_SECRETS,
  DONE,
  isUsageChunk,
  postCompletion,
  resumeCompletion,
  sseEvents,
  tappedSdkClient,
  untilEvents,
  type WireTap,
  wireTap,
} from './harness.js';

const TOOLS: ChatCompletionTool[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'The weather in a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string' } },
        required: ['city'],
        additionalProperties: false,
      },
      strict: true,
    },
  },
  {
    type: 'function',
    function: {
      name: 'get_time',
      parameters: { type: 'object', properties: { zone: { type: 'string' } } },
    },
  },
];

const WEATHER_CALL = { name: 'get_weather', arguments: '{"city":"Paris, Île-de-France"}' };
const TIME_CALL = { name: 'get_time', arguments: '{"zone":"Europe/Paris"}' };

/** What the upstream received for one request, and what it sent back. */
function upstreamSide(mock: MockUpstream, index = 0) {
  const answer = mock.answers[index];
  assert.ok(answer, `the upstream answered request ${index}`);
  return answer;
}

/** A streamed request: the upstream gets it as sent, with `stream_options.include_usage`. */
function assertForwardedStreamed(received: RecordedRequest, sent: object): void {
  const { stream_options: options, ...rest } = sent as { stream_options?: object };
  assert.deepEqual(received.body, { ...rest, stream_options: { ...options, include_usage: true } });
}

/**
 * Every event of the client's stream has an id, the data are the upstream's chunks byte for
 * byte (the usage chunk only when the client asked for usage), and `[DONE]` ends it.
 */
async function assertRelayed(tap: WireTap, upstreamEvents: readonly string[], usage: boolean) {
  const events = sseEvents(await (tap.bodies[0] as Promise<string>));
  assert.ok(
    events.every((event) => event.id !== undefined),
    'every event has an id',
  );
  assertNoDuplicateIds(events.map(({ id, data }) => ({ id, data, event: 'message' })));
  const expected = upstreamEvents.filter((data) => usage || !isUsageChunk(data));
  assert.deepEqual(
    events.map((event) => event.data),
    expected,
  );
  assert.equal(expected.at(-1), DONE);
}

function assertHeadersNotForwarded(received: RecordedRequest): void {
  assert.equal(received.headers.authorization, 'Bearer test-key');
  const sent = JSON.stringify(received.headers);
  for (const secret of Object.values(CLIENT_SECRETS)) {
    assert.ok(!sent.includes(secret), `${secret} reached the upstream: ${sent}`);
  }
  assert.equal(received.headers.cookie, undefined);
  assert.deepEqual(
    Object.keys(received.headers).filter((name) => name.startsWith('x-')),
    [],
  );
}

describe('the front door as a faithful gateway', { timeout: 60_000 }, () => {
  const env = useServerBehindUpstream({
    LLM_MODEL: 'house-model',
    LLM_MAX_RETRIES: '2',
    LLM_BREAKER_FAILURES: '1000',
  });
  afterEach(() => env.mock.reset());

  test('tools, tool_choice and parallel calls: the request goes upstream as sent, the chunks come back byte for byte', async () => {
    env.mock.enqueue(upstream.toolCalls([WEATHER_CALL, TIME_CALL], { format: 'python' }));
    const tap = wireTap();
    const body = {
      model: 'gpt-4o',
      messages: [
        { role: 'system', content: 'Use the tools.' },
        { role: 'user', content: 'Weather and time in Paris?' },
      ],
      tools: TOOLS,
      tool_choice: 'auto',
      parallel_tool_calls: true,
      seed: 7,
      top_p: 0.9,
      stop: ['\n\n'],
      user: 'user-42',
      metadata: { app: 'gateway-test' },
      vendor_option: { keep: ['me', 1, null] },
      stream: true,
    } as const;
    const stream = tappedSdkClient(env.server, tap).chat.completions.stream(
      body as unknown as ChatCompletionCreateParamsStreaming,
    );
    const final = await stream.finalChatCompletion();

    const answer = upstreamSide(env.mock);
    assertForwardedStreamed(answer.request, body);
    assertHeadersNotForwarded(answer.request);
    await assertRelayed(tap, answer.events, false);
    const [choice] = final.choices;
    assert.equal(choice?.finish_reason, 'tool_calls');
    assert.deepEqual(
      choice?.message.tool_calls?.map((call) => ({
        id: call.id,
        name: call.type === 'function' ? call.function.name : undefined,
        arguments: call.type === 'function' ? call.function.arguments : undefined,
      })),
      [WEATHER_CALL, TIME_CALL].map((call, index) => ({ id: callId(index), ...call })),
    );
  });

  test('a tool-role follow-up with an image part and response_format, unstreamed: the answer is the upstream’s bytes', async () => {
    env.mock.enqueue(
      upstream.script(textReply(tokenize('{"sky": "sunny", "°C": 21}')), { format: 'python' }),
    );
    const tap = wireTap();
    const body: ChatCompletionCreateParamsNonStreaming = {
      model: 'gpt-4o',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is the weather where this photo was taken?' },
            {
              type: 'image_url',
              image_url: { url: 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==', detail: 'low' },
            },
          ],
        },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            {
              id: callId(0),
              type: 'function',
              function: { name: WEATHER_CALL.name, arguments: WEATHER_CALL.arguments },
            },
          ],
        },
        { role: 'tool', tool_call_id: callId(0), content: '{"sky":"sunny","celsius":21}' },
      ],
      tools: TOOLS,
      tool_choice: 'none',
      response_format: {
        type: 'json_schema',
        json_schema: {
          name: 'weather',
          strict: true,
          schema: { type: 'object', properties: { sky: { type: 'string' } } },
        },
      },
      logprobs: false,
      n: 1,
    };
    const completion = await tappedSdkClient(env.server, tap).chat.completions.create(body);

    const answer = upstreamSide(env.mock);
    assert.deepEqual(answer.request.body, body);
    assertHeadersNotForwarded(answer.request);
    const received = await (tap.bodies[0] as Promise<string>);
    assert.equal(received, answer.body);
    assert.deepEqual(completion, JSON.parse(received) as ChatCompletion);
  });

  test('without a model, LLM_MODEL is the only field streamhub adds', async () => {
    const body = { messages: [{ role: 'user', content: 'hi' }], temperature: 0 };
    const response = await request(`${env.server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(response.status, 200, response.text);
    assert.deepEqual(upstreamSide(env.mock).request.body, { ...body, model: 'house-model' });
    assert.equal(response.text, upstreamSide(env.mock).body);
  });

  test('the usage chunk reaches the client only when it asked for usage', async () => {
    for (const includeUsage of [true, false]) {
      env.mock.reset();
      const tap = wireTap();
      const body: ChatCompletionCreateParamsStreaming = {
        model: 'gpt-4o',
        messages: [{ role: 'user', content: 'count' }],
        stream: true,
        stream_options: { include_usage: includeUsage },
      };
      const stream = await tappedSdkClient(env.server, tap).chat.completions.create(body);
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      const answer = upstreamSide(env.mock);
      assertForwardedStreamed(answer.request, body);
      assert.ok(answer.events.some(isUsageChunk), 'the upstream sent usage');
      await assertRelayed(tap, answer.events, includeUsage);
      assert.equal(
        chunks.some((chunk) => chunk.usage != null),
        includeUsage,
      );
    }
  });

  const relayed = [
    ['a refusal', upstream.refusal('I can’t help with that.', { format: 'python' })],
    ['logprobs', upstream.logprobs('Four words of text.')],
    ['a vendor’s fields', upstream.vendorFields('Let me think.', 'Done thinking.')],
    [
      'two choices (n = 2)',
      upstream.choices(['First answer here.', 'Second, longer answer here.']),
    ],
  ] as const;
  for (const [what, behaviour] of relayed) {
    test(`${what}: every chunk as the upstream sent it, streamed and not`, async () => {
      env.mock.enqueue(behaviour, behaviour);
      const tap = wireTap();
      const client = tappedSdkClient(env.server, tap);
      const body = {
        model: 'gpt-4o',
        messages: [{ role: 'user' as const, content: 'go' }],
        n: what.startsWith('two') ? 2 : 1,
        logprobs: what === 'logprobs',
      };
      const final = await client.chat.completions
        .stream({ ...body, stream: true })
        .finalChatCompletion();
      const whole = await client.chat.completions.create(body);
      await assertRelayed(tap, upstreamSide(env.mock, 0).events, false);
      assert.equal(await tap.bodies[1], upstreamSide(env.mock, 1).body);
      // The SDK assembles the stream into what the upstream answers whole.
      assert.deepEqual(
        final.choices.map(({ message }) => [message.content, message.refusal ?? null]),
        whole.choices.map(({ message }) => [message.content, message.refusal ?? null]),
      );
    });
  }

  test('a resumed stream replays the same bytes: a dropped client misses nothing', async () => {
    env.mock.enqueue(
      upstream.toolCalls([WEATHER_CALL, TIME_CALL], { tokenDelayMs: 15, pieceChars: 2 }),
    );
    const body = { messages: [{ role: 'user', content: 'call slowly' }], tools: TOOLS };
    const first = postCompletion(env.server, body);
    await untilEvents(first, 4);
    first.close();
    const seen = [...first.events];
    const streamId = first.headers['x-stream-id'] as string;
    assert.match(streamId, /^chatcmpl-/);
    const rest = resumeCompletion(env.server, streamId, seen.at(-1)?.id);
    await rest.closed;
    assert.equal(rest.headers['x-stream-id'], streamId);
    const all = [...seen, ...rest.events];
    assertNoDuplicateIds(all);
    const expected = upstreamSide(env.mock).events.filter((data) => !isUsageChunk(data));
    assert.deepEqual(
      all.map((event) => event.data),
      expected,
    );
    // The chunks keep the upstream's own id; x-stream-id is streamhub's handle.
    assert.notEqual(JSON.parse(seen[0]?.data ?? '{}').id, streamId);
  });
});

describe('an upstream 400 through the gateway', { timeout: 60_000 }, () => {
  // One failure would open this circuit.
  const env = useServerBehindUpstream({ LLM_MAX_RETRIES: '2', LLM_BREAKER_FAILURES: '1' });
  const messages = [{ role: 'user' as const, content: 'hello' }];

  test('an upstream 400 reaches the client with its status and body, is not retried and does not open the circuit', async () => {
    for (const stream of [true, false, true]) {
      env.mock.reset();
      env.mock.enqueue(
        upstream.badRequest(
          "Invalid schema for function 'get_weather': 'object' is not valid under any of the given schemas.",
          'tools[0].function.parameters',
          'invalid_function_parameters',
        ),
      );
      const tap = wireTap();
      await assert.rejects(
        tappedSdkClient(env.server, tap).chat.completions.create({
          model: 'gpt-4o',
          messages,
          tools: TOOLS,
          stream,
        }),
        (error: unknown) => {
          assert.ok(error instanceof OpenAI.BadRequestError, String(error));
          assert.equal(error.param, 'tools[0].function.parameters');
          assert.equal(error.code, 'invalid_function_parameters');
          assert.equal(error.type, 'invalid_request_error');
          assert.match(error.message, /^400 Invalid schema for function 'get_weather'/);
          return true;
        },
      );
      assert.equal(await tap.bodies[0], upstreamSide(env.mock).body);
      assert.equal(env.mock.completionRequests.length, 1, 'not retried');
    }
    const completion = await tappedSdkClient(env.server, wireTap()).chat.completions.create({
      model: 'gpt-4o',
      messages,
    });
    assert.equal(completion.choices[0]?.finish_reason, 'stop');
  });
});

describe('upstream refusals and failures through the gateway', { timeout: 60_000 }, () => {
  const env = useServerBehindUpstream({ LLM_MAX_RETRIES: '2', LLM_BREAKER_FAILURES: '1000' });
  afterEach(() => env.mock.reset());
  const messages = [{ role: 'user' as const, content: 'hello' }];

  const otherRefusals = [
    [404, 'model_not_found', OpenAI.NotFoundError, true],
    [401, 'invalid_api_key', OpenAI.AuthenticationError, false],
    [409, 'conflict', OpenAI.ConflictError, true],
  ] as const;
  for (const [status, code, errorClass, stream] of otherRefusals) {
    test(`other 4xx pass through too, not retried: ${status} ${code}`, async () => {
      const body = openAiError(`the upstream says ${code}`, 'invalid_request_error', code);
      env.mock.enqueue(upstream.status(status, {}, body));
      const tap = wireTap();
      await assert.rejects(
        tappedSdkClient(env.server, tap).chat.completions.create({
          model: 'gpt-4o',
          messages,
          stream,
        }),
        (error: unknown) => {
          assert.ok(error instanceof errorClass, String(error));
          assert.equal(error.code, code);
          return true;
        },
      );
      assert.equal(await tap.bodies[0], upstreamSide(env.mock).body);
      assert.equal(env.mock.completionRequests.length, 1);
    });
  }

  test('a 429 is retried: the client sees one clean answer', async () => {
    env.mock.enqueue(upstream.status429('0'));
    const tap = wireTap();
    const stream = await tappedSdkClient(env.server, tap).chat.completions.create({
      model: 'gpt-4o',
      messages,
      stream: true,
    });
    for await (const _ of stream);
    assert.equal(env.mock.completionRequests.length, 2);
    assert.deepEqual(
      env.mock.completionRequests[0]?.rawBody,
      env.mock.completionRequests[1]?.rawBody,
    );
    await assertRelayed(tap, upstreamSide(env.mock, 1).events, false);
  });

  test('5xx: retried, then answered 502 before any chunk, streamed or not', async () => {
    for (const stream of [true, false]) {
      env.mock.reset();
      env.mock.enqueue(upstream.status500(), upstream.status500(), upstream.status500());
      await assert.rejects(
        tappedSdkClient(env.server, wireTap()).chat.completions.create({
          model: 'gpt-4o',
          messages,
          stream,
        }),
        (error: unknown) => {
          assert.ok(error instanceof OpenAI.InternalServerError, String(error));
          assert.equal(error.status, 502);
          assert.equal(error.code, 'upstream_error');
          return true;
        },
      );
      assert.equal(env.mock.completionRequests.length, 3);
    }
  });

  test('a client that leaves while its request waits for the upstream cancels it', async () => {
    env.mock.enqueue(upstream.stallBeforeHeaders());
    const waiting = postCompletion(env.server, { messages, stream: true });
    await waitFor(() => env.mock.completionRequests.length === 1, 'the upstream request');
    waiting.close();
    await waitFor(() => env.mock.abortedRequests === 1, 'the upstream to see the abort');
  });
});

describe('GET /v1/models through the gateway', { timeout: 60_000 }, () => {
  const env = useServerBehindUpstream({ LLM_MODEL: 'house-model' });
  const modelsRequests = () => env.mock.requests.filter((r) => r.path === '/v1/models');

  test('lists the upstream’s models, asking the upstream once for a while', async () => {
    const client = tappedSdkClient(env.server, wireTap());
    for (let i = 0; i < 3; i++) {
      const page = await client.models.list();
      assert.deepEqual(
        page.data.map(({ id, owned_by }) => ({ id, owned_by })),
        env.mock.models.map((id) => ({ id, owned_by: 'mock' })),
      );
    }
    assert.equal(modelsRequests().length, 1);
    assertHeadersNotForwarded(modelsRequests()[0] as RecordedRequest);
  });
});

describe('GET /v1/models when the upstream has no list', { timeout: 60_000 }, () => {
  const env = useServerBehindUpstream({ LLM_MODEL: 'house-model' });

  test('falls back to LLM_MODEL', async () => {
    env.mock.modelsStatus = 404;
    const page = await tappedSdkClient(env.server, wireTap()).models.list();
    assert.deepEqual(
      page.data.map(({ id }) => id),
      ['house-model'],
    );
  });
});
