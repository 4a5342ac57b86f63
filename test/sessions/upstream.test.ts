import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_REPLY, upstream } from '../helpers/mock-upstream.js';
import { waitFor } from '../helpers/server.js';
import { RawSseClient, type SseMessage } from '../helpers/sse-client.js';
import { useServerBehindUpstream } from '../helpers/upstream-server.js';

/** Sessions over LLM_PROVIDER=openai, against a real HTTP upstream that misbehaves on cue. */
describe('chat sessions over an OpenAI-compatible upstream', () => {
  const env = useServerBehindUpstream({
    LLM_MAX_RETRIES: '2',
    LLM_BREAKER_FAILURES: '3',
    LLM_BREAKER_COOLDOWN_MS: '60000',
    LLM_TIMEOUT_MS: '2000',
  });
  let sequence = 0;

  const chat = (content = 'hi') =>
    new RawSseClient(`${env.server.url}/v1/chat`, {}, { session_id: `u${++sequence}`, content });
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
    env.mock.enqueue(upstream.ok());
    const client = chat('what is streamhub?');
    await client.closed;
    assert.equal(text(client.messages), DEFAULT_REPLY);
    assert.equal(ending(client).event, 'done');
    assert.ok(ending(client).data.usage.total_tokens > 0);
    const sent = env.mock.completionRequests.at(-1)?.body as { stream: boolean; messages: unknown };
    assert.equal(sent.stream, true);
    assert.deepEqual(sent.messages, [{ role: 'user', content: 'what is streamhub?' }]);
  });

  test('failures before the first token are retried; the client sees one clean reply', async () => {
    env.mock.enqueue(upstream.status500(), upstream.resetBeforeFirstToken(), upstream.ok());
    const before = env.mock.completionRequests.length;
    const client = chat();
    await client.closed;
    assert.equal(env.mock.completionRequests.length - before, 3);
    assert.equal(text(client.messages), DEFAULT_REPLY);
    assert.equal(ending(client).event, 'done');
  });

  test('a failure after tokens ends the stream with an error event, never a clean end', async () => {
    env.mock.enqueue(upstream.resetAfterTokens(3));
    const before = env.mock.completionRequests.length;
    const client = chat();
    await client.closed;
    assert.equal(env.mock.completionRequests.length - before, 1, 'no retry after the first token');
    assert.equal(client.messages.filter((m) => m.event === 'delta').length, 3);
    assert.equal(ending(client).event, 'error');
    assert.equal(typeof ending(client).data.code, 'string');
    assert.equal(
      client.messages.some((m) => m.event === 'done'),
      false,
    );
  });

  test('cancel aborts the upstream request itself', async () => {
    env.mock.enqueue(upstream.slowDrip(100));
    const aborted = env.mock.abortedRequests;
    const client = chat();
    const sessionId = `u${sequence}`;
    await waitFor(() => client.messages.length >= 3, 'a few deltas');
    const cancel = await fetch(`${env.server.url}/v1/sessions/${sessionId}/cancel`, {
      method: 'POST',
    });
    assert.equal(cancel.status, 202);
    await client.closed;
    assert.deepEqual(ending(client), { event: 'abort', data: { reason: 'cancelled' } });
    await waitFor(() => env.mock.abortedRequests > aborted, 'the upstream to see the abort');
  });

  test('after repeated failures the circuit opens and replies fail fast with circuit_open', async () => {
    // Three generations that fail for good (a malformed chunk is not retried) open the circuit.
    for (let i = 0; i < 3; i++) {
      env.mock.enqueue(upstream.malformedChunk());
      const failing = chat();
      await failing.closed;
      assert.equal(ending(failing).event, 'error');
    }
    const requests = env.mock.completionRequests.length;
    const refused = chat();
    await refused.closed;
    assert.equal(ending(refused).event, 'error');
    assert.equal(ending(refused).data.code, 'circuit_open');
    assert.equal(env.mock.completionRequests.length, requests, 'no upstream request while open');
    const metrics = await (await fetch(`${env.server.url}/metrics`)).text();
    assert.match(metrics, /streamhub_llm_circuit_open 1/);
    assert.match(metrics, /streamhub_llm_upstream_errors_total\{code="upstream_error"\} [1-9]/);
  });
});
