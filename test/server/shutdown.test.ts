import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { runCli, spawnServer } from '../helpers/process.js';
import { publish } from '../helpers/server.js';
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
