import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { EventSource } from 'eventsource';
import { SignJWT } from 'jose';
import type { RunningServer } from '../../src/server/server.js';
import { assertApiError, type HttpResult, request, uniqueTopic } from '../helpers/http.js';
import { PATIENCE_MS } from '../helpers/patience.js';
import { startTestServer, waitFor } from '../helpers/server.js';
import { RawSseClient } from '../helpers/sse-client.js';
import { rejectedHandshake, WsClientPool, type WsTestClient, wsUrl } from '../helpers/ws-client.js';

const SECRET = 'streamhub-auth-test-secret-0123456789';
const API_KEY = 'server-key-0123456789abcdef';
const OTHER_API_KEY = 'other-server-key-0123456789';

interface Claims {
  readonly sub?: unknown;
  readonly publish?: unknown;
  readonly subscribe?: unknown;
}

interface SignOptions {
  /** `exp` in seconds since the epoch (default: in an hour). */
  readonly exp?: number;
  readonly nbf?: number;
  readonly secret?: string;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** An HS256 token with the documented claims. */
async function token(claims: Claims, options: SignOptions = {}): Promise<string> {
  const { sub, publish, subscribe } = claims;
  const streamhub =
    publish === undefined && subscribe === undefined ? undefined : { publish, subscribe };
  const jwt = new SignJWT({ ...(streamhub === undefined ? {} : { streamhub }) })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime(options.exp ?? nowSeconds() + 3600);
  if (sub !== undefined) jwt.setSubject(sub as string);
  if (options.nbf !== undefined) jwt.setNotBefore(options.nbf);
  return jwt.sign(new TextEncoder().encode(options.secret ?? SECRET));
}

const bearer = (credential: string) => ({ authorization: `Bearer ${credential}` });
const JSON_HEADERS = { 'content-type': 'application/json' };

let server: RunningServer;
const pool = new WsClientPool();

before(async () => {
  server = await startTestServer({
    AUTH_JWT_SECRET: SECRET,
    API_KEYS: `${OTHER_API_KEY}, ${API_KEY}`,
    MOCK_TOKENS_PER_SEC: '2000',
  });
});
afterEach(() => pool.closeAll());
after(() => server.shutdown());

function call(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<HttpResult> {
  return request(`${server.url}${path}`, {
    method,
    headers: body === undefined ? headers : { ...JSON_HEADERS, ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

const publishAs = (credential: string, topic: string, data: unknown = { n: 1 }) =>
  call('POST', `/v1/topics/${topic}/events`, bearer(credential), { data });

const topicInfoAs = (credential: string, topic: string) =>
  call('GET', `/v1/topics/${topic}`, bearer(credential));

/** A multiplexed socket (a stream of its own); `query` e.g. `?token=...`. */
function multiplexed(query = ''): Promise<WsTestClient> {
  return pool.connect(wsUrl(server.url, `/v1/ws${query}`));
}

/** Every endpoint that needs credentials, one request each (bodies valid for auth off). */
const PROTECTED: readonly [method: string, path: string, body?: unknown][] = [
  ['GET', '/v1/topics/news/events'],
  ['POST', '/v1/topics/news/events', { data: 1 }],
  ['GET', '/v1/topics/news'],
  ['DELETE', '/v1/topics/news'],
  ['POST', '/v1/chat', { session_id: 's', content: 'hi' }],
  ['POST', '/v1/chat/resume', { session_id: 's' }],
  ['GET', '/v1/sessions/s/stream'],
  ['POST', '/v1/sessions/s/cancel'],
  ['GET', '/v1/sessions/s'],
  ['DELETE', '/v1/sessions/s'],
  ['GET', '/v1/models'],
  ['POST', '/v1/chat/completions', { model: 'm', messages: [{ role: 'user', content: 'hi' }] }],
  ['GET', '/v1/chat/completions/chatcmpl-abc/stream'],
  ['GET', '/v1/stats'],
  ['GET', '/metrics'],
];

describe('credentials', () => {
  test('every endpoint but the probes and the demo page answers 401 without them', async () => {
    for (const [method, path, body] of PROTECTED) {
      const result = await call(method, path, {}, body);
      assertApiError(result, 401, 'unauthorized');
      assert.equal(result.headers.get('www-authenticate'), 'Bearer', `${method} ${path}`);
    }
    const sse = await call('GET', '/v1/topics/news/events', { accept: 'text/event-stream' });
    assertApiError(sse, 401, 'unauthorized');
    for (const path of ['/v1/topics/news/ws', '/v1/topics/news/ws?token=']) {
      const handshake = await rejectedHandshake(wsUrl(server.url, path));
      assert.equal(handshake.status, 401);
    }
    for (const path of ['/healthz', '/readyz', '/', '/demo/app.js', '/client/index.js']) {
      assert.equal((await call('GET', path)).status, 200, path);
    }
    // An unknown route is still just unknown.
    assertApiError(await call('GET', '/v1/nothing-here'), 404, 'not_found');
  });

  test('bad tokens all get the same 401, which never echoes them', async () => {
    const now = nowSeconds();
    const valid = await token({ sub: 'alice' });
    const [header, payload] = valid.split('.');
    const bad = [
      'not-a-jwt',
      `${valid.slice(0, -4)}AAAA`, // bad signature
      await token({ sub: 'alice' }, { secret: 'another-secret-of-at-least-32-chars!!' }),
      await token({ sub: 'alice' }, { exp: now - 60 }), // expired
      await token({ sub: 'alice' }, { nbf: now + 60 }), // not yet valid
      await token({}), // no subject
      await token({ sub: '' }),
      await token({ sub: '\u0000api-key' }), // would pose as the API keys' sessions' owner
      `${Buffer.from('{"alg":"none"}').toString('base64url')}.${payload}.`,
      `${header}.${payload}`,
      `${API_KEY}x`,
    ];
    const messages = new Set<string>();
    for (const credential of bad) {
      const result = await call('GET', '/v1/models', bearer(credential));
      assertApiError(result, 401, 'unauthorized');
      assert.match(result.headers.get('www-authenticate') ?? '', /^Bearer error="invalid_token"/);
      assert.ok(!result.text.includes(credential), 'the token is echoed');
      messages.add((result.json as { error: { message: string } }).error.message);
    }
    for (const authorization of ['Basic YWxpY2U6cHc=', 'Bearer', `Bearer ${valid} extra`]) {
      assertApiError(await call('GET', '/v1/models', { authorization }), 401, 'unauthorized');
    }
    assert.equal(messages.size, 1, `one message for every failure: ${[...messages].join(' | ')}`);
  });

  test('exp and nbf are checked with a few seconds of tolerance for clock skew', async () => {
    // Dates relative to the moment of each request: a token that expires now is still valid
    // for the tolerance (at least a second more), which must not be spent by earlier requests.
    const ok = async (dates: (now: number) => SignOptions) =>
      (await call('GET', '/v1/models', bearer(await token({ sub: 'alice' }, dates(nowSeconds())))))
        .status;
    assert.equal(await ok((now) => ({ exp: now - 60 })), 401);
    assert.equal(await ok((now) => ({ nbf: now + 60 })), 401);
    assert.equal(await ok((now) => ({ exp: now })), 200);
    assert.equal(await ok((now) => ({ nbf: now + 1 })), 200);
  });

  test('a valid token opens the chat, session, completion and operations endpoints', async () => {
    const credential = bearer(await token({ sub: 'alice' }));
    assert.equal((await call('GET', '/v1/models', credential)).status, 200);
    assert.equal((await call('GET', '/v1/stats', credential)).status, 200);
    assert.equal((await call('GET', '/metrics', credential)).status, 200);
    // Looked up only once authenticated: an unknown session is now a 404.
    assertApiError(await call('GET', '/v1/sessions/nobody', credential), 404, 'session_not_found');
    const completion = await call('POST', '/v1/chat/completions', credential, {
      model: 'streamhub-mock',
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(completion.status, 200, completion.text);
  });

  test('a token is not taken from the query string of a POST', async () => {
    const credential = await token({ sub: 'alice', publish: ['**'] });
    const result = await call(
      'POST',
      `/v1/topics/news/events?token=${credential}`,
      {},
      { data: 1 },
    );
    assertApiError(result, 401, 'unauthorized');
  });
});

describe('topic rights', () => {
  test('publishing covers publish and delete, subscribing history, info, SSE and WebSocket', async () => {
    const topic = uniqueTopic('rights');
    const reader = await token({ sub: 'reader', subscribe: [topic] });
    const writer = await token({ sub: 'writer', publish: [topic] });

    assert.equal((await publishAs(writer, topic)).status, 201);
    const denied = await publishAs(reader, topic);
    assertApiError(denied, 403, 'forbidden');
    assert.equal(denied.headers.get('www-authenticate'), 'Bearer error="insufficient_scope"');
    assertApiError(await call('DELETE', `/v1/topics/${topic}`, bearer(reader)), 403, 'forbidden');

    for (const [credential, status] of [
      [reader, 200],
      [writer, 403],
    ] as const) {
      assert.equal((await topicInfoAs(credential, topic)).status, status);
      assert.equal(
        (await call('GET', `/v1/topics/${topic}/events`, bearer(credential))).status,
        status,
      );
      const sse = new RawSseClient(`${server.url}/v1/topics/${topic}/events`, bearer(credential));
      await sse.opened;
      assert.equal(sse.status, status);
      sse.close();
    }
    const refused = await rejectedHandshake(
      wsUrl(server.url, `/v1/topics/${topic}/ws?token=${writer}`),
    );
    assert.equal(refused.status, 403);
    assert.ok(!refused.body.includes(writer));
    assert.equal((await call('DELETE', `/v1/topics/${topic}`, bearer(writer))).status, 204);
  });

  test('rights are checked before the topic name: a token without them learns nothing', async () => {
    const credential = await token({ sub: 'alice', subscribe: ['news.**'] });
    const invalidName = 'x'.repeat(200);
    assertApiError(await topicInfoAs(credential, invalidName), 403, 'forbidden');
    assertApiError(await topicInfoAs(API_KEY, invalidName), 400, 'invalid_topic');
  });

  test('patterns: * is one segment, ** the rest, {sub} the subject', async () => {
    const credential = await token({
      sub: 'alice',
      subscribe: ['a.*', 'b.**', 'user.{sub}', 'inbox.{sub}.**', 'x-{sub}.*.y', 'exact'],
    });
    const allowed = [
      'a.1',
      'b.1',
      'b.1.2.3',
      'user.alice',
      'inbox.alice.1',
      'x-alice.q.y',
      'exact',
    ];
    const denied = [
      'a',
      'a.1.2',
      'a.',
      'b',
      'user.bob',
      'user.alice.1',
      'user.alicex',
      'inbox.alice',
      'inbox.bob.1',
      'x-bob.q.y',
      'x-alice.q.z',
      'exactly',
      'other',
    ];
    for (const topic of allowed) {
      assert.equal((await topicInfoAs(credential, topic)).status, 200, topic);
    }
    for (const topic of denied) {
      assert.equal((await topicInfoAs(credential, topic)).status, 403, topic);
    }
  });

  test('a hostile subject never widens a {sub} pattern', async () => {
    const patterns = ['user.{sub}', 'user.{sub}.inbox', 'home-{sub}.**'];
    const hostile = ['*', '**', 'bob.*', 'bob.**', 'a.b', '{sub}', 'bob/../x', 'bob inbox', ''];
    for (const sub of hostile) {
      const credential = await token({ sub: sub === '' ? 'x\u0000' : sub, subscribe: patterns });
      for (const topic of [
        'user.bob',
        'user.bob.x',
        'user.a.b',
        'user.a.b.inbox',
        'user.bob.inbox',
        'home-bob.1',
        'home-a.b.1',
      ]) {
        assert.notEqual((await topicInfoAs(credential, topic)).status, 200, `${sub} → ${topic}`);
      }
    }
    // Malformed claims grant nothing, and do not make the token invalid.
    for (const claim of [
      { subscribe: 'user.**' },
      { subscribe: [42, null, 'a.**.b', 'a*', '{x}'] },
    ]) {
      const credential = await token({ sub: 'carol', ...claim });
      assert.equal((await call('GET', '/v1/models', bearer(credential))).status, 200);
      for (const topic of ['user.carol', 'a.1.b', 'a*', 'a']) {
        assert.equal((await topicInfoAs(credential, topic)).status, 403, topic);
      }
    }
  });

  test('an API key has every right', async () => {
    const topic = uniqueTopic('keyed');
    assert.equal((await publishAs(API_KEY, topic)).status, 201);
    assert.equal((await publishAs(OTHER_API_KEY, topic)).status, 201);
    assert.equal((await topicInfoAs(API_KEY, topic)).status, 200);
    assert.equal((await call('DELETE', `/v1/topics/${topic}`, bearer(API_KEY))).status, 204);
    const socket = await multiplexed(`?token=${API_KEY}`);
    assert.equal((await socket.request({ type: 'subscribe', topic })).type, 'subscribed');
    assert.equal((await socket.request({ type: 'publish', topic, data: 1 })).type, 'published');
  });
});

describe('browsers: ?token= and the first WebSocket frame', () => {
  test('an EventSource subscribes with ?token=', async () => {
    const topic = uniqueTopic('es');
    const credential = await token({ sub: 'browser', subscribe: [topic] });
    const source = new EventSource(`${server.url}/v1/topics/${topic}/events?token=${credential}`);
    const received: string[] = [];
    source.addEventListener('message', (event) => received.push(event.data));
    try {
      await new Promise((resolve, reject) => {
        source.addEventListener('open', resolve);
        source.addEventListener('error', reject);
      });
      await waitFor(() => server.hub.subscriberCount(topic) === 1, 'the subscription');
      assert.equal((await publishAs(API_KEY, topic, { hello: 'browser' })).status, 201);
      await waitFor(() => received.length === 1, 'the event');
      assert.deepEqual(JSON.parse(received[0] as string), { hello: 'browser' });
    } finally {
      source.close();
    }
  });

  test('WebSockets take ?token=, and frames are checked per topic and action', async () => {
    const topic = uniqueTopic('ws.mine');
    const other = uniqueTopic('ws.theirs');
    const credential = await token({ sub: 'browser', subscribe: [topic], publish: [topic] });

    const boundSocket = await pool.connect(
      wsUrl(server.url, `/v1/topics/${topic}/ws?token=${credential}`),
    );
    const forbiddenSubscribe = await boundSocket.request({ type: 'subscribe', topic: other });
    assert.equal(forbiddenSubscribe.code, 'forbidden');

    const socket = await multiplexed(`?token=${credential}`);
    assert.equal((await socket.request({ type: 'subscribe', topic })).type, 'subscribed');
    for (const frame of [
      { type: 'subscribe', topic: other },
      { type: 'publish', topic: other, data: 1 },
    ]) {
      const reply = await socket.request(frame);
      assert.equal(reply.type, 'error');
      assert.equal(reply.code, 'forbidden');
    }
    // The socket stays open and keeps working.
    assert.equal((await socket.request({ type: 'publish', topic, data: 2 })).type, 'published');
    assert.deepEqual(
      (await socket.waitForEvents(topic, 1)).map((event) => event.data),
      [2],
    );
    await boundSocket.waitForEvents(topic, 1);
    assert.equal((await socket.request({ type: 'ping' })).type, 'pong');

    const refused = await rejectedHandshake(wsUrl(server.url, '/v1/ws?token=garbage'));
    assert.equal(refused.status, 401);
  });

  test('/v1/ws without a token authenticates with its first frame', async () => {
    const topic = uniqueTopic('first');
    const credential = await token({ sub: 'browser', subscribe: [topic] });
    const socket = await multiplexed();
    // Frames sent right behind the auth frame wait for it, in order.
    socket.send({ type: 'auth', token: credential, ref: 'auth' });
    socket.send({ type: 'subscribe', topic, ref: 'sub' });
    socket.send({ type: 'subscribe', topic: 'elsewhere', ref: 'denied' });
    const refs = async () => {
      await socket.waitForFrame((frame) => frame.ref === 'denied', 'the last reply');
      return socket.frames.map((frame) => `${frame.type}:${frame.ref}`);
    };
    assert.deepEqual(await refs(), ['authenticated:auth', 'subscribed:sub', 'error:denied']);
    await waitFor(() => server.hub.subscriberCount(topic) === 1, 'the subscription');
    await publishAs(API_KEY, topic);
    await socket.waitForEvents(topic, 1);
  });

  test('/v1/ws closes with 4401 on a missing or bad first-frame token', async () => {
    const cases: [frame: unknown, ref: unknown][] = [
      [{ type: 'subscribe', topic: 'news', ref: 1 }, 1],
      [{ type: 'auth', token: 'garbage', ref: 2 }, 2],
      [{ type: 'auth', token: await token({ sub: 'a' }, { exp: nowSeconds() - 60 }), ref: 3 }, 3],
      [{ type: 'auth', ref: 4 }, 4],
      ['not json', undefined],
    ];
    for (const [frame, ref] of cases) {
      const socket = await multiplexed();
      if (typeof frame === 'string') socket.ws.send(frame);
      else socket.send(frame);
      const close = await socket.waitForClose();
      assert.equal(close.code, 4401);
      assert.equal(socket.frames.length, 1);
      assert.equal(socket.frames[0]?.code, 'unauthorized');
      assert.equal(socket.frames[0]?.ref, ref);
    }
  });
});

describe('chat sessions', () => {
  /** Runs one chat turn to its end and returns the stream's status and event types. */
  async function chat(credential: string, sessionId: string) {
    const stream = new RawSseClient(`${server.url}/v1/chat`, bearer(credential), {
      session_id: sessionId,
      content: 'hello',
    });
    await stream.closed;
    return { status: stream.status, events: stream.messages.map((message) => message.event) };
  }

  test('belong to the subject that created them: to anyone else they do not exist', async () => {
    const alice = await token({ sub: 'alice' });
    const bob = await token({ sub: 'bob' });
    const sessionId = `owned-${process.pid}`;
    const created = await chat(alice, sessionId);
    assert.equal(created.status, 200);
    assert.equal(created.events.at(-1), 'done');

    const path = `/v1/sessions/${sessionId}`;
    for (const credential of [bob, API_KEY]) {
      assertApiError(await call('GET', path, bearer(credential)), 404, 'session_not_found');
      assertApiError(await call('GET', `${path}/stream`, bearer(credential)), 404);
      assertApiError(await call('POST', `${path}/cancel`, bearer(credential)), 404);
      assertApiError(
        await call('POST', '/v1/chat/resume', bearer(credential), { session_id: sessionId }),
        404,
      );
      assertApiError(
        await call('POST', '/v1/chat', bearer(credential), { session_id: sessionId, content: 'x' }),
        404,
      );
      assertApiError(await call('DELETE', path, bearer(credential)), 404);
    }
    // A fresh token of the same subject is the same owner.
    const aliceAgain = await token({ sub: 'alice' }, { exp: nowSeconds() + 120 });
    const view = await call('GET', path, bearer(aliceAgain));
    assert.equal(view.status, 200);
    assert.equal((view.json as { messages: unknown[] }).messages.length, 2);
    assert.equal((await chat(aliceAgain, sessionId)).events.at(-1), 'done');
    assert.equal((await call('DELETE', path, bearer(alice))).status, 204);
  });

  test("the API keys' sessions are theirs alone", async () => {
    const sessionId = `keyed-${process.pid}`;
    assert.equal((await chat(API_KEY, sessionId)).status, 200);
    const path = `/v1/sessions/${sessionId}`;
    assert.equal((await call('GET', path, bearer(OTHER_API_KEY))).status, 200);
    const bob = await token({ sub: 'bob' });
    assertApiError(await call('GET', path, bearer(bob)), 404, 'session_not_found');
  });
});

describe('expiry', () => {
  test('streams close within a few seconds of their token expiring', async () => {
    const topic = uniqueTopic('expiring');
    const exp = nowSeconds() + 2;
    const credential = await token({ sub: 'short', subscribe: [topic] }, { exp });
    const sse = new RawSseClient(`${server.url}/v1/topics/${topic}/events?token=${credential}`);
    const bound = await pool.connect(
      wsUrl(server.url, `/v1/topics/${topic}/ws?token=${credential}`),
    );
    const byFrame = await multiplexed();
    byFrame.send({ type: 'auth', token: credential, ref: 'auth' });
    await byFrame.subscribe(topic);
    await sse.opened;
    assert.equal(sse.status, 200);

    // Valid until exp plus the clock tolerance (2 s), at most 5 s from now.
    const [closes] = await Promise.all([
      Promise.all([bound.waitForClose(PATIENCE_MS), byFrame.waitForClose(PATIENCE_MS)]),
      sse.closed,
    ]);
    // Then closed on the next tick of the server's one-second expiry clock; the rest of the
    // bound is room for a loaded machine, and still far from streams that never close.
    const late = Date.now() - (exp + 2) * 1000;
    assert.ok(late >= 0 && late < 4000, `closed ${late} ms after the end of validity`);
    assert.ok(sse.ended, 'the SSE response ended cleanly');
    const last = sse.messages.at(-1);
    assert.equal(last?.event, 'error');
    assert.equal(last?.id, undefined);
    assert.equal((JSON.parse(last?.data ?? '{}') as { code: string }).code, 'token_expired');
    for (const [index, socket] of [bound, byFrame].entries()) {
      assert.equal(closes[index]?.code, 4401);
      assert.equal(socket.frames.at(-1)?.code, 'token_expired');
    }
    // Reconnecting with the same token is refused.
    const again = await call('GET', `/v1/topics/${topic}/events?token=${credential}`);
    assertApiError(again, 401, 'unauthorized');
  });
});
