import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { tracingWanted } from '../../src/server/tracing/index.js';
import { MockUpstream, upstream } from '../helpers/mock-upstream.js';
import { OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';
import { type ServerProcess, spawnServer } from '../helpers/process.js';
import { waitFor } from '../helpers/server.js';
import { uniqueRef, WsTestClient, wsUrl } from '../helpers/ws-client.js';

const SERVER = 2;
const CLIENT = 3;
const PRODUCER = 4;
const ERROR = 2;

/** The span of a client calling streamhub, as a `traceparent` names it. */
interface ClientSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly traceparent: string;
}

function clientSpan(): ClientSpan {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

describe('tracing over OTLP', { timeout: 60_000 }, () => {
  let receiver: OtlpReceiver;
  let mock: MockUpstream;
  let server: ServerProcess;
  /** The server's log lines so far, parsed. */
  const logLines: Record<string, unknown>[] = [];

  before(async () => {
    receiver = await OtlpReceiver.start();
    mock = await MockUpstream.start();
    server = await spawnServer({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'streamhub-under-test',
      OTEL_BSP_SCHEDULE_DELAY: '20',
      LLM_PROVIDER: 'openai',
      OPENAI_BASE_URL: mock.baseURL,
      OPENAI_API_KEY: 'test-key',
      LLM_MAX_RETRIES: '0',
    });
    let partial = '';
    server.child.stdout?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() as string;
      for (const line of lines) logLines.push(JSON.parse(line) as Record<string, unknown>);
    });
  });

  after(async () => {
    server?.child.kill();
    await server?.exited;
    await mock?.close();
    await receiver?.close();
  });

  function post(path: string, client: ClientSpan | undefined, body: unknown): Promise<Response> {
    return fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(client && { traceparent: client.traceparent }),
      },
      body: JSON.stringify(body),
    });
  }

  /** The first span of `client`'s trace named `name`. */
  function spanOf(client: ClientSpan, name: string): Promise<ReceivedSpan> {
    return receiver.span(name, (span) => span.traceId === client.traceId && span.name === name);
  }

  /** The names of `span`'s ancestors, nearest first, up to the client's span (which must be
   *  the root of them all), and the last of them: the server's span for the request. */
  async function ancestorsUpToClient(
    span: ReceivedSpan,
    client: ClientSpan,
  ): Promise<{ names: string[]; request: ReceivedSpan }> {
    const names: string[] = [];
    let current = span;
    while (current.parentSpanId !== client.spanId) {
      assert.notEqual(
        current.parentSpanId,
        '',
        `${current.name} is a root, not the client's child`,
      );
      const parentId = current.parentSpanId;
      current = await receiver.span(`the parent of ${current.name}`, (s) => s.spanId === parentId);
      assert.equal(current.traceId, client.traceId);
      names.push(current.name);
    }
    return { names, request: current };
  }

  test('a streamed completion: request → completion → upstream request, which carries the trace', async () => {
    const client = clientSpan();
    const response = await post('/v1/chat/completions', client, {
      model: 'gpt-4o-mini',
      stream: true,
      messages: [{ role: 'user', content: 'trace me' }],
    });
    assert.equal(response.status, 200);
    await response.text();

    const llm = await spanOf(client, 'chat gpt-4o-mini');
    assert.equal(llm.kind, CLIENT);
    assert.equal(llm.service, 'streamhub-under-test');
    assert.equal(llm.attributes['gen_ai.operation.name'], 'chat');
    assert.equal(llm.attributes['gen_ai.request.model'], 'gpt-4o-mini');
    assert.equal(llm.attributes['gen_ai.usage.input_tokens'], 2);
    assert.ok((llm.attributes['gen_ai.usage.output_tokens'] as number) > 0);
    assert.deepEqual(llm.attributes['gen_ai.response.finish_reasons'], ['stop']);
    assert.equal(typeof llm.attributes['gen_ai.response.time_to_first_chunk'], 'number');
    assert.ok(llm.events.some((event) => event.name === 'gen_ai.first_chunk'));

    const { names, request } = await ancestorsUpToClient(llm, client);
    assert.deepEqual(names, [
      'chat completion',
      'handler /v1/chat/completions',
      'POST /v1/chat/completions',
    ]);
    assert.equal(request.kind, SERVER);
    assert.equal(request.attributes['http.response.status_code'], 200);

    const sent = mock.completionRequests.find((r) => JSON.stringify(r.body).includes('trace me'));
    assert.equal(sent?.headers.traceparent, `00-${client.traceId}-${llm.spanId}-01`);
  });

  test('a chat turn is the child of the request that started it', async () => {
    const client = clientSpan();
    const response = await post('/v1/chat', client, {
      session_id: `traced-${randomUUID()}`,
      content: 'hello',
      model: 'mock-upstream-model',
    });
    assert.equal(response.status, 200);
    await response.text();

    const llm = await spanOf(client, 'chat mock-upstream-model');
    const turn = await spanOf(client, 'chat turn');
    assert.equal(turn.attributes['streamhub.generation.outcome'], 'done');
    assert.equal(turn.attributes['streamhub.session.turn'], 1);
    const { names } = await ancestorsUpToClient(llm, client);
    assert.deepEqual(names, ['chat turn', 'handler /v1/chat', 'POST /v1/chat']);
  });

  test('an upstream failure marks the model request span as failed', async () => {
    mock.enqueue(upstream.status500());
    const client = clientSpan();
    const response = await post('/v1/chat/completions', client, {
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'fail' }],
    });
    assert.equal(response.status, 502);
    await response.text();
    const llm = await spanOf(client, 'chat gpt-4o-mini');
    assert.equal(llm.statusCode, ERROR);
  });

  test('publishes and appends have spans; the request log line carries the trace', async () => {
    const client = clientSpan();
    assert.equal((await post('/v1/topics/traced/events', client, { data: 1 })).status, 201);
    const publish = await spanOf(client, 'publish');
    assert.equal(publish.kind, PRODUCER);
    assert.equal(publish.attributes['messaging.destination.name'], 'traced');
    const { request } = await ancestorsUpToClient(publish, client);
    assert.equal(request.name, 'POST /v1/topics/:topic/events');

    await waitFor(
      () =>
        logLines.some(
          (line) => line.msg === 'request completed' && line.trace_id === client.traceId,
        ),
      'the request log line with its trace id',
    );
    const line = logLines.find(
      (l) => l.msg === 'request completed' && l.trace_id === client.traceId,
    );
    assert.equal(line?.span_id, request.spanId);

    assert.equal((await post('/v1/streams/traced/events', client, { data: 2 })).status, 201);
    const append = await spanOf(client, 'append');
    assert.equal(append.attributes['streamhub.stream.id'], 'traced');
  });

  test("a WebSocket publish joins the trace of the socket's upgrade request", async () => {
    const client = clientSpan();
    const topic = `traced-ws-${randomUUID()}`;
    const socket = await WsTestClient.connect(wsUrl(server.url, '/v1/ws'), {
      headers: { traceparent: client.traceparent },
    });
    try {
      const reply = await socket.request({ type: 'publish', topic, data: 1, ref: uniqueRef() });
      assert.equal(reply.type, 'published');
    } finally {
      socket.ws.close();
    }
    const publish = await spanOf(client, 'publish');
    assert.equal(publish.kind, PRODUCER);
    assert.equal(publish.attributes['messaging.destination.name'], topic);
    const { names, request } = await ancestorsUpToClient(publish, client);
    assert.deepEqual(names, ['GET /v1/ws']);
    assert.equal(request.kind, SERVER);
    assert.equal(request.attributes['http.response.status_code'], 101);
  });

  test('a request without traceparent starts a trace of its own', async () => {
    const topic = `untraced-${randomUUID()}`;
    assert.equal((await post(`/v1/topics/${topic}/events`, undefined, { data: 1 })).status, 201);
    const publish = await receiver.span(
      'the publish span',
      (span) => span.attributes['messaging.destination.name'] === topic,
    );
    const parentId = publish.parentSpanId;
    const handler = await receiver.span('its handler span', (span) => span.spanId === parentId);
    const requestId = handler.parentSpanId;
    const request = await receiver.span('its request span', (span) => span.spanId === requestId);
    assert.equal(request.parentSpanId, '');
  });
});

describe('when tracing is on', () => {
  test('only when an OTLP endpoint is set, and not turned off by OTEL_* variables', () => {
    const endpoint = 'http://127.0.0.1:4318';
    assert.equal(tracingWanted({}), false);
    assert.equal(tracingWanted({ OTEL_SERVICE_NAME: 'streamhub' }), false);
    assert.equal(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint }), true);
    assert.equal(tracingWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: endpoint }), true);
    assert.equal(
      tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SDK_DISABLED: 'true' }),
      false,
    );
    assert.equal(
      tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_TRACES_EXPORTER: 'none' }),
      false,
    );
  });
});
