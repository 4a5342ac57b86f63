/**
 * Per-client rates with `BACKEND=redis` (issue 14): two streamhub processes on one Redis count a
 * client's publishes (HTTP and WebSocket) and stream opens together, so spreading requests
 * over the processes gets a client no more than the rate.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { useRedisCluster } from '../helpers/cluster.js';
import { assertApiError, postRaw, request, uniqueTopic } from '../helpers/http.js';
import { WsClientPool, wsUrl } from '../helpers/ws-client.js';

// An hour's window: no token comes back while the test runs, however slow the machine.
const setup = useRedisCluster(2, {
  TRUST_PROXY: 'loopback',
  PUBLISH_RATE_LIMIT: '4',
  CONNECT_RATE_LIMIT: '3',
  RATE_LIMIT_WINDOW_MS: '3600000',
});

/** Clients are told apart by X-Forwarded-For; each test has addresses of its own. */
let nextClient = 0;
const newClient = () => `203.0.113.${++nextClient}`;

function publishAs(url: string, client: string, topic: string) {
  return postRaw(url, topic, '{"data": 1}', {
    'x-forwarded-for': client,
    'content-type': 'application/json',
  });
}

const streams = new Set<AbortController>();
afterEach(() => {
  for (const stream of streams) stream.abort();
  streams.clear();
});

/** Opens an SSE subscription and keeps it open until the test ends: its status. */
async function subscribeAs(url: string, client: string, topic: string): Promise<number> {
  const controller = new AbortController();
  streams.add(controller);
  const response = await fetch(`${url}/v1/topics/${topic}/events`, {
    headers: { accept: 'text/event-stream', 'x-forwarded-for': client },
    signal: controller.signal,
  });
  if (response.status !== 200) await response.arrayBuffer();
  return response.status;
}

describe('rates shared by two processes on one Redis', () => {
  const pool = new WsClientPool();
  afterEach(() => pool.closeAll());

  test('publishes over HTTP and WebSocket, to either process, draw on one budget', async () => {
    const [a, b] = setup().cluster.urls as [string, string];
    const [client, other] = [newClient(), newClient()];
    const topic = uniqueTopic('shared.publish');
    assert.equal((await publishAs(a, client, topic)).status, 201);
    assert.equal((await publishAs(b, client, topic)).status, 201);
    const ws = await pool.connect(wsUrl(b, '/v1/ws'), { headers: { 'x-forwarded-for': client } });
    assert.equal((await ws.request({ type: 'publish', topic, data: 3 })).type, 'published');
    assert.equal((await publishAs(a, client, topic)).status, 201);
    // Four in all: each process alone has seen at most three.
    assertApiError(await publishAs(b, client, topic), 429, 'rate_limited');
    assertApiError(await publishAs(a, client, topic), 429, 'rate_limited');
    const refused = await ws.request({ type: 'publish', topic, data: 'one too many' });
    assert.equal(refused.code, 'rate_limited');
    assert.equal((await publishAs(b, other, topic)).status, 201, 'another client');
    const history = await request(`${a}/v1/topics/${topic}/events`);
    assert.equal((history.json as { events: unknown[] }).events.length, 5);
  });

  test('stream opens on either process draw on one budget', async () => {
    const [a, b] = setup().cluster.urls as [string, string];
    const [client, other] = [newClient(), newClient()];
    const topic = uniqueTopic('shared.connect');
    assert.equal(await subscribeAs(a, client, topic), 200);
    assert.equal(await subscribeAs(b, client, topic), 200);
    assert.equal(await subscribeAs(a, client, topic), 200);
    assert.equal(await subscribeAs(b, client, topic), 429);
    assert.equal(await subscribeAs(a, client, topic), 429);
    assert.equal(await subscribeAs(b, other, topic), 200, 'another client');
  });
});
