import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { afterEach, describe, test } from 'node:test';
import { loadConfig } from '../../src/server/config.js';
import {
  assertApiError,
  type HttpResult,
  metricsText,
  metricValue,
  postRaw,
  request,
  uniqueTopic,
  useServer,
} from '../helpers/http.js';
import { waitFor } from '../helpers/server.js';
import { WsClientPool, wsUrl } from '../helpers/ws-client.js';

/**
 * Distinct clients without authentication are distinct IP addresses: every 127.x.y.z is
 * loopback on Linux, so a request bound to 127.0.0.2 comes from another client. Each test
 * uses addresses of its own, so that budgets spent by one test do not leak into another.
 */
let nextHost = 1;
function newClient(): string {
  nextHost += 1;
  return `127.0.1.${nextHost}`;
}

/** A response whose body is not read yet: an SSE stream, or a refusal. */
interface Opened {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The response, or for a WebSocket upgrade (status 101) the upgraded socket. */
  readonly stream: IncomingMessage | Socket;
}

interface CallOptions {
  readonly from: string;
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: unknown;
}

const open = new Set<IncomingMessage | Socket>();
afterEach(() => {
  for (const stream of open) stream.destroy();
  open.clear();
});

/** One request from the address `from`; resolves once the response (or upgrade) starts. */
function call(url: string, options: CallOptions): Promise<Opened> {
  const { from, method = 'GET', headers = {}, body } = options;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method,
      localAddress: from,
      agent: false,
      headers: payload === undefined ? headers : { 'content-type': 'application/json', ...headers },
    });
    req.on('response', (res) => {
      open.add(res);
      resolve({ status: res.statusCode ?? 0, headers: res.headers, stream: res });
    });
    req.on('upgrade', (res, socket) => {
      open.add(socket);
      resolve({ status: res.statusCode ?? 0, headers: res.headers, stream: socket });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

async function readAll(opened: Opened): Promise<HttpResult> {
  const chunks: Buffer[] = [];
  for await (const chunk of opened.stream) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString();
  const isJson = opened.headers['content-type']?.startsWith('application/json') ?? false;
  const headers = new Headers(
    Object.entries(opened.headers).filter(
      (entry): entry is [string, string] => typeof entry[1] === 'string',
    ),
  );
  return { status: opened.status, headers, text, json: isJson ? JSON.parse(text) : undefined };
}

/** A complete request from `from`, read to the end. */
async function fetchFrom(url: string, options: CallOptions): Promise<HttpResult> {
  return readAll(await call(url, options));
}

/** Asserts a refusal in the API's error shape with a `Retry-After` of 1 to `maxSeconds`. */
async function assertRefused(
  opened: Opened | HttpResult,
  status: number,
  code: string,
  maxSeconds: number,
): Promise<number> {
  const result = 'text' in opened ? opened : await readAll(opened);
  assertApiError(result, status, code);
  const retryAfter = Number(result.headers.get('retry-after'));
  assert.ok(retryAfter >= 1 && retryAfter <= maxSeconds, `Retry-After ${retryAfter}`);
  return retryAfter;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A refusal must not depend on how fast the machine sends a burst: windows are long enough
 * that no budget comes back during one, even on a loaded machine. Tests that see a budget
 * recover wait for the Retry-After the server gave, never for less.
 */
const HOUR_WINDOW = { RATE_LIMIT_WINDOW_MS: String(60 * 60 * 1000) };

function publishFrom(baseUrl: string, from: string, topic: string): Promise<HttpResult> {
  return fetchFrom(`${baseUrl}/v1/topics/${topic}/events`, {
    from,
    method: 'POST',
    body: { data: { from } },
  });
}

function subscribeSse(baseUrl: string, from: string, topic: string): Promise<Opened> {
  return call(`${baseUrl}/v1/topics/${topic}/events`, {
    from,
    headers: { accept: 'text/event-stream' },
  });
}

/** A WebSocket handshake from `from`: 101 with the socket, or the refusal. */
function upgradeFrom(baseUrl: string, from: string, path = '/v1/ws'): Promise<Opened> {
  return call(`${baseUrl}${path}`, {
    from,
    headers: {
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-version': '13',
      'sec-websocket-key': randomBytes(16).toString('base64'),
    },
  });
}

async function refusals(baseUrl: string, limit: string): Promise<number> {
  return metricValue(await metricsText(baseUrl), 'streamhub_limit_refusals_total', { limit }) ?? 0;
}

test('per-client limits are off by default; the overall connection cap is on', () => {
  const config = loadConfig({});
  assert.equal(config.PUBLISH_RATE_LIMIT, 0);
  assert.equal(config.CHAT_RATE_LIMIT, 0);
  assert.equal(config.CONNECT_RATE_LIMIT, 0);
  assert.equal(config.MAX_CONNECTIONS_PER_CLIENT, 0);
  assert.equal(config.MAX_CONNECTIONS, 100_000);
  assert.equal(config.MAX_SUBSCRIPTIONS_PER_SOCKET, 1000);
  assert.equal(config.MAX_HEADER_BYTES, 16 * 1024);
});

describe('publish rate (PUBLISH_RATE_LIMIT=5 per 10 s)', () => {
  // A token every 2 s: a burst of a few requests stays well inside one.
  const server = useServer({ PUBLISH_RATE_LIMIT: '5', RATE_LIMIT_WINDOW_MS: '10000' });
  const pool = new WsClientPool();
  afterEach(() => pool.closeAll());

  test('the 6th publish in a burst is 429 rate_limited; others are unaffected; it recovers', async () => {
    const { url } = server();
    const [client, other] = [newClient(), newClient()];
    const topic = uniqueTopic('limits.publish');
    for (let i = 0; i < 5; i++) assert.equal((await publishFrom(url, client, topic)).status, 201);
    const refusalsBefore = await refusals(url, 'publish_rate');
    const retryAfter = await assertRefused(
      await publishFrom(url, client, topic),
      429,
      'rate_limited',
      2,
    );
    assert.equal((await publishFrom(url, other, topic)).status, 201, 'another client');
    await sleep(retryAfter * 1000);
    assert.equal((await publishFrom(url, client, topic)).status, 201, 'after Retry-After');
    assert.equal(await refusals(url, 'publish_rate'), refusalsBefore + 1);
  });

  test('WebSocket publish frames share the budget; a refused one is an error frame, the socket stays', async () => {
    const { url } = server();
    const client = newClient();
    const topic = uniqueTopic('limits.ws');
    const ws = await pool.connect(wsUrl(url, '/v1/ws'), { localAddress: client });
    for (let i = 0; i < 3; i++) {
      assert.equal((await ws.request({ type: 'publish', topic, data: i })).type, 'published');
    }
    for (let i = 0; i < 2; i++) assert.equal((await publishFrom(url, client, topic)).status, 201);
    const refused = await ws.request({ type: 'publish', topic, data: 'one too many' });
    assert.equal(refused.type, 'error');
    assert.equal(refused.code, 'rate_limited');
    const retryAfterMs = Number(refused.retry_after_ms);
    assert.ok(retryAfterMs > 0 && retryAfterMs <= 2000, `retry_after_ms ${retryAfterMs}`);
    await assertRefused(await publishFrom(url, client, topic), 429, 'rate_limited', 2);
    // Refusals are not strikes: a client that keeps trying is not disconnected for it.
    for (let i = 0; i < 30; i++) ws.send({ type: 'publish', topic, data: i });
    assert.equal((await ws.request({ type: 'ping' })).type, 'pong');
    assert.ok(ws.open);
    await sleep(retryAfterMs);
    assert.equal((await ws.request({ type: 'publish', topic, data: 'later' })).type, 'published');
  });
});

describe('chat and stream-open rates (CHAT_RATE_LIMIT=2, CONNECT_RATE_LIMIT=3 per 4 s)', () => {
  // Fixed windows: a burst of a few requests stays well inside one.
  const server = useServer({
    CHAT_RATE_LIMIT: '2',
    CONNECT_RATE_LIMIT: '3',
    RATE_LIMIT_WINDOW_MS: '4000',
    MOCK_TOKENS_PER_SEC: '100000',
  });

  const chat = (client: string, n: number) =>
    call(`${server().url}/v1/chat`, {
      from: client,
      method: 'POST',
      body: { session_id: `limits-${client}-${n}`, content: 'hi' },
    });

  test('chats: the 3rd in a window is 429, /v1/chat/completions included; it recovers', async () => {
    const { url } = server();
    const [client, other] = [newClient(), newClient()];
    assert.equal((await readAll(await chat(client, 1))).status, 200);
    assert.equal((await readAll(await chat(client, 2))).status, 200);
    const retryAfter = await assertRefused(await chat(client, 3), 429, 'rate_limited', 4);
    const completion = await fetchFrom(`${url}/v1/chat/completions`, {
      from: client,
      method: 'POST',
      body: { model: 'streamhub-mock', messages: [{ role: 'user', content: 'hi' }] },
    });
    // Refused in the same window: what is left of it, a moment later.
    assert.equal(completion.status, 429);
    const left = Number(completion.headers.get('retry-after'));
    assert.ok(left >= 1 && left <= retryAfter, `Retry-After ${left} after ${retryAfter}`);
    assert.equal((await readAll(await chat(other, 1))).status, 200, 'another client');
    await sleep(retryAfter * 1000);
    assert.equal((await readAll(await chat(client, 4))).status, 200, 'after Retry-After');
    assert.ok((await refusals(url, 'chat_rate')) >= 2);
  });

  test('stream opens: SSE and WebSocket upgrades count, history pages do not; it recovers', async () => {
    const { url } = server();
    const [client, other] = [newClient(), newClient()];
    const topic = uniqueTopic('limits.connect');
    assert.equal((await subscribeSse(url, client, topic)).status, 200);
    assert.equal((await upgradeFrom(url, client)).status, 101);
    assert.equal((await subscribeSse(url, client, topic)).status, 200);
    const retryAfter = await assertRefused(
      await subscribeSse(url, client, topic),
      429,
      'rate_limited',
      4,
    );
    await assertRefused(await upgradeFrom(url, client), 429, 'rate_limited', 4);
    const history = await fetchFrom(`${url}/v1/topics/${topic}/events`, { from: client });
    assert.equal(history.status, 200, 'a history page is no stream');
    assert.equal((await subscribeSse(url, other, topic)).status, 200, 'another client');
    await sleep(retryAfter * 1000);
    assert.equal((await subscribeSse(url, client, topic)).status, 200, 'after Retry-After');
    assert.ok((await refusals(url, 'connect_rate')) >= 2);
  });
});

describe('connection caps (MAX_CONNECTIONS_PER_CLIENT=3, MAX_CONNECTIONS=5)', () => {
  const server = useServer({ MAX_CONNECTIONS_PER_CLIENT: '3', MAX_CONNECTIONS: '5' });

  test('per client: 429 too_many_connections; overall: 503 overloaded; both recover', async () => {
    const { url, limits } = server();
    const [first, second, third] = [newClient(), newClient(), newClient()];
    const topic = uniqueTopic('limits.caps');
    const held = [
      await subscribeSse(url, first, topic),
      await upgradeFrom(url, first),
      await upgradeFrom(url, first, `/v1/topics/${topic}/ws`),
    ];
    assert.deepEqual(
      held.map((opened) => opened.status),
      [200, 101, 101],
    );
    await assertRefused(await subscribeSse(url, first, topic), 429, 'too_many_connections', 5);
    await assertRefused(await upgradeFrom(url, first), 429, 'too_many_connections', 5);
    // Requests that open no stream are not counted.
    assert.equal((await publishFrom(url, first, topic)).status, 201);

    held.push(await subscribeSse(url, second, topic), await upgradeFrom(url, second));
    assert.deepEqual(
      held.slice(3).map((opened) => opened.status),
      [200, 101],
    );
    await assertRefused(await subscribeSse(url, third, topic), 503, 'overloaded', 5);
    await assertRefused(await upgradeFrom(url, third), 503, 'overloaded', 5);

    const metrics = await metricsText(url);
    assert.equal(metricValue(metrics, 'streamhub_limit_connections'), 5);
    assert.equal(metricValue(metrics, 'streamhub_limit_connected_clients'), 2);
    assert.equal(metricValue(metrics, 'streamhub_limit_busiest_client_connections'), 3);
    const refused = (limit: string) =>
      metricValue(metrics, 'streamhub_limit_refusals_total', { limit });
    assert.equal(refused('connections_per_client'), 2);
    assert.equal(refused('connections_total'), 2);
    assert.equal(
      metricValue(metrics, 'streamhub_limit_configured', { limit: 'connections_total' }),
      5,
    );

    // Closing one SSE stream and one WebSocket frees a slot of the first client and one overall.
    held[0]?.stream.destroy();
    held[1]?.stream.destroy();
    await waitFor(() => limits.slots.total === 3, 'two slots released');
    assert.equal((await subscribeSse(url, third, topic)).status, 200, 'overall cap recovered');
    assert.equal((await upgradeFrom(url, first)).status, 101, 'per-client cap recovered');
  });

  test('a stream refused for another reason gives its slot back', async () => {
    const { url, limits } = server();
    const client = newClient();
    await waitFor(() => limits.slots.total === 0, 'the streams of the last test released');
    for (let i = 0; i < 5; i++) {
      const result = await fetchFrom(`${url}/v1/sessions/no-such-session/stream`, { from: client });
      assertApiError(result, 404, 'session_not_found');
    }
    await waitFor(() => limits.slots.total === 0, 'slots of refused streams released');
  });
});

describe('subscriptions per WebSocket (MAX_SUBSCRIPTIONS_PER_SOCKET=3)', () => {
  const server = useServer({ MAX_SUBSCRIPTIONS_PER_SOCKET: '3' });
  const pool = new WsClientPool();
  afterEach(() => pool.closeAll());

  test('a 4th topic is refused with an error frame; the socket and its subscriptions stay', async () => {
    const { url } = server();
    const ws = await pool.connect(wsUrl(url, '/v1/ws'));
    const topics = [1, 2, 3, 4].map(() => uniqueTopic('limits.subs'));
    for (const topic of topics.slice(0, 3)) await ws.subscribe(topic);
    const refused = await ws.request({ type: 'subscribe', topic: topics[3] });
    assert.equal(refused.type, 'error');
    assert.equal(refused.code, 'too_many_subscriptions');
    assert.equal((await ws.request({ type: 'subscribe', topic: topics[0] })).type, 'subscribed');
    await ws.request({ type: 'unsubscribe', topic: topics[1] });
    await ws.subscribe(topics[3] as string);
    assert.ok(ws.open);
    const metrics = await metricsText(url);
    const refusals = { limit: 'subscriptions_per_socket' };
    assert.equal(metricValue(metrics, 'streamhub_limit_refusals_total', refusals), 1);
  });
});

describe('header size (MAX_HEADER_BYTES=2048)', () => {
  const server = useServer({ MAX_HEADER_BYTES: '2048' });

  test('a larger request head is 431 header_too_large; the server goes on serving', async () => {
    const { url } = server();
    assert.equal(
      (await request(`${url}/healthz`, { headers: { 'x-pad': 'a'.repeat(1000) } })).status,
      200,
    );
    const result = await fetchFrom(`${url}/healthz`, {
      from: newClient(),
      headers: { 'x-pad': 'a'.repeat(4096) },
    });
    assertApiError(result, 431, 'header_too_large');
    assert.equal((await request(`${url}/healthz`)).status, 200);
    assert.equal(await refusals(url, 'header_size'), 1);
  });
});

describe('with authentication, a client is its credentials, not its address', () => {
  const keys = ['limits-key-one-0123456789', 'limits-key-two-0123456789'];
  const server = useServer({ API_KEYS: keys.join(','), PUBLISH_RATE_LIMIT: '2', ...HOUR_WINDOW });

  test('two API keys from one address have a budget each', async () => {
    const { url } = server();
    const topic = uniqueTopic('limits.keys');
    const publishWith = (key: string) =>
      postRaw(url, topic, '{"data": 1}', {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
      });
    const [one, two] = keys as [string, string];
    assert.equal((await publishWith(one)).status, 201);
    assert.equal((await publishWith(one)).status, 201);
    await assertRefused(await publishWith(one), 429, 'rate_limited', 30 * 60);
    assert.equal((await publishWith(two)).status, 201, 'the other key');
  });
});

describe('behind a proxy (TRUST_PROXY=loopback)', () => {
  const server = useServer({ TRUST_PROXY: 'loopback', PUBLISH_RATE_LIMIT: '1', ...HOUR_WINDOW });

  test('clients are told apart by X-Forwarded-For', async () => {
    const { url } = server();
    const topic = uniqueTopic('limits.proxy');
    const publishAs = (address: string) =>
      postRaw(url, topic, '{"data": 1}', {
        'x-forwarded-for': address,
        'content-type': 'application/json',
      });
    assert.equal((await publishAs('203.0.113.1')).status, 201);
    assert.equal((await publishAs('203.0.113.1')).status, 429);
    assert.equal((await publishAs('203.0.113.2')).status, 201);
  });
});

test('TRUST_PROXY takes true/false, a hop count, or addresses and CIDR ranges', () => {
  const trust = (value: string) => loadConfig({ TRUST_PROXY: value }).TRUST_PROXY;
  assert.equal(trust('false'), false);
  assert.equal(trust('true'), true);
  assert.equal(typeof trust('2'), 'function');
  assert.deepEqual(trust('10.0.0.0/8, ::1, loopback'), ['10.0.0.0/8', '::1', 'loopback']);
  for (const bad of ['10.0.0.0/33', 'proxy.example.com', 'yes']) {
    assert.throws(() => trust(bad), /TRUST_PROXY/);
  }
});
