import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { MockUpstream, upstream } from '../helpers/mock-upstream.js';
import { runCli, spawnServer } from '../helpers/process.js';
import { publish, waitFor } from '../helpers/server.js';
import { RawSseClient } from '../helpers/sse-client.js';

test('SIGTERM ends SSE streams and WebSockets so clients reconnect, then exits 0', async () => {
  const server = await spawnServer({ SHUTDOWN_GRACE_MS: '5000' });
  const sse = new RawSseClient(`${server.url}/v1/topics/t/events`);
  await sse.opened;
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/ws`);
  await new Promise((resolve) => ws.once('open', resolve));
  const wsClosed = new Promise<number>((resolve) => ws.once('close', resolve));
  await publish(server.url, 't', 'before shutdown');

  server.child.kill('SIGTERM');

  await sse.closed;
  assert.equal(sse.ended, true, 'the SSE response ended cleanly, not torn');
  assert.equal(await wsClosed, 1001);
  assert.equal(await server.exited, 0);
  await assert.rejects(fetch(`${server.url}/healthz`), 'no longer accepting connections');
});

test('an invalid setting stops the program at start with one message naming it', async () => {
  const result = await runCli(['serve', '--heartbeat-ms', 'soon'], { HISTORY_MAX_EVENTS: '0' });
  assert.equal(result.code, 2);
  assert.equal(result.stderr.trim().split('\n').length, 1);
  assert.match(result.stderr, /HEARTBEAT_MS \(--heartbeat-ms\) = "soon"/);
  assert.match(result.stderr, /HISTORY_MAX_EVENTS \(--history-max-events\) = "0"/);
});

describe('shutdown with replies being generated', () => {
  let mock: MockUpstream;
  before(async () => {
    mock = await MockUpstream.start();
  });
  after(() => mock.close());

  async function shutDownMidReply(graceMs: number, msPerToken: number): Promise<void> {
    mock.enqueue(upstream.slowDrip(msPerToken, 'one two three four five six'));
    const server = await spawnServer({
      LLM_PROVIDER: 'openai',
      OPENAI_BASE_URL: mock.baseURL,
      SHUTDOWN_GRACE_MS: String(graceMs),
    });
    const chat = new RawSseClient(`${server.url}/v1/chat`, {}, { session_id: 's', content: 'x' });
    await waitFor(() => chat.messages.some((m) => m.event === 'delta'), 'the first delta');
    server.child.kill('SIGTERM');
    await chat.closed;
    assert.equal(await server.exited, 0);
  }

  test('a reply that finishes within the grace period is not cut off', async () => {
    const aborted = mock.abortedRequests;
    await shutDownMidReply(10_000, 50);
    assert.equal(mock.abortedRequests, aborted);
  });

  test('a reply still running when the grace period ends is stopped upstream too', async () => {
    const aborted = mock.abortedRequests;
    await shutDownMidReply(300, 2_000);
    // The server's exit and the upstream's sight of the aborted request race: wait for it.
    await waitFor(() => mock.abortedRequests === aborted + 1, 'the upstream request to be aborted');
  });
});
