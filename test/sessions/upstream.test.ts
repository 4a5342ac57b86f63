import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningServer } from '../../src/server/server.js';
import { DEFAULT_REPLY, MockUpstream, upstream } from '../helpers/mock-upstream.js';
import { startTestServer, waitFor } from '../helpers/server.js';
import { RawSseClient, type SseMessage } from '../helpers/sse-client.js';

/** Sessions over LLM_PROVIDER=openai, against a real HTTP upstream that misbehaves on cue. */
describe('chat sessions over an OpenAI-compatible upstream', () => {
  let mock: MockUpstream;
  let server: RunningServer;
  let sequence = 0;

  before(async () => {
    mock = await MockUpstream.start();
    server = await startTestServer({
      LLM_PROVIDER: 'openai',
      OPENAI_BASE_URL: mock.baseURL,
      OPENAI_API_KEY: 'test-key',
      LLM_MAX_RETRIES: '2',
      LLM_BREAKER_FAILURES: '3',
      LLM_BREAKER_COOLDOWN_MS: '60000',
      LLM_TIMEOUT_MS: '2000',
    });
  });
  after(async () => {
    await server.shutdown();
    await mock.close();
  });

  const chat = (content = 'hi') =>
    new RawSseClient(`${server.url}/v1/chat`, {}, { session_id: `u${++sequence}`, content });
  const text = (messages: readonly SseMessage[]) =>
    messages
      .filter((m) => m.event === 'delta')
      .map((m) => (JSON.parse(m.data) as { content: string }).content)
      .join('');
  const ending = (client: RawSseClient) => {
    const last = client.messages[client.messages.length - 1];
    return { event: last?.event, data: JSON.parse(last?.data ?? 'null') };
  };

  test('a reply streams from the upstream with the conversation and usage', async () => {
    mock.enqueue(upstream.ok());
    const client = chat('what is streamhub?');
    await client.closed;
    assert.equal(text(client.messages), DEFAULT_REPLY);
    assert.equal(ending(client).event, 'done');
    assert.ok(ending(client).data.usage.total_tokens > 0);
    const sent = mock.completionRequests.at(-1)?.body as { stream: boolean; messages: unknown };
    assert.equal(sent.stream, true);
    assert.deepEqual(sent.messages, [{ role: 'user', content: 'what is streamhub?' }]);
  });

  test('failures before the first token are retried; the client sees one clean reply', async () => {
    mock.enqueue(upstream.status500(), upstream.resetBeforeFirstToken(), upstream.ok());
    const before = mock.completionRequests.length;
    const client = chat();
    await client.closed;
    assert.equal(mock.completionRequests.length - before, 3);
    assert.equal(text(client.messages), DEFAULT_REPLY);
    assert.equal(ending(client).event, 'done');
  });

  test('a failure after tokens ends the stream with an error event, never a clean end', async () => {
    mock.enqueue(upstream.resetAfterTokens(3));
    const before = mock.completionRequests.length;
    const client = chat();
    await client.closed;
    assert.equal(mock.completionRequests.length - before, 1, 'no retry after the first token');
    assert.equal(client.messages.filter((m) => m.event === 'delta').length, 3);
    assert.equal(ending(client).event, 'error');
    assert.equal(typeof ending(client).data.code, 'string');
    assert.equal(
      client.messages.some((m) => m.event === 'done'),
      false,
    );
  });

  test('cancel aborts the upstream request itself', async () => {
    mock.enqueue(upstream.slowDrip(100));
    const aborted = mock.abortedRequests;
    const client = chat();
    const sessionId = `u${sequence}`;
    await waitFor(() => client.messages.length >= 3, 'a few deltas');
    const cancel = await fetch(`${server.url}/v1/sessions/${sessionId}/cancel`, { method: 'POST' });
    assert.equal(cancel.status, 202);
    await client.closed;
    assert.deepEqual(ending(client), { event: 'abort', data: { reason: 'cancelled' } });
    await waitFor(() => mock.abortedRequests > aborted, 'the upstream to see the abort');
  });

  test('after repeated failures the circuit opens and replies fail fast with circuit_open', async () => {
    // Three generations that fail for good (401 is not retried) open the circuit.
    for (let i = 0; i < 3; i++) {
      mock.enqueue(upstream.status(401));
      const failing = chat();
      await failing.closed;
      assert.equal(ending(failing).event, 'error');
    }
    const requests = mock.completionRequests.length;
    const refused = chat();
    await refused.closed;
    assert.equal(ending(refused).event, 'error');
    assert.equal(ending(refused).data.code, 'circuit_open');
    assert.equal(mock.completionRequests.length, requests, 'no upstream request while open');
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /streamhub_llm_circuit_open 1/);
    assert.match(metrics, /streamhub_llm_upstream_errors_total\{code="upstream_error"\} [1-9]/);
  });
});
