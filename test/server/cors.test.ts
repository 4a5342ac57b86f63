import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/server/config.js';
import {
  assertApiError,
  type HttpResult,
  request,
  uniqueTopic,
  useServer,
} from '../helpers/http.js';

const APP = 'https://app.example.com';
const DEV = 'http://localhost:5173';
const EVIL = 'https://evil.example.net';

/** A browser's preflight for `method` with `headers` to `path`. */
function preflight(
  baseUrl: string,
  path: string,
  origin: string,
  method = 'POST',
  headers = 'authorization,content-type,last-event-id',
): Promise<HttpResult> {
  return request(`${baseUrl}${path}`, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': method,
      'access-control-request-headers': headers,
    },
  });
}

/** The header's comma-separated values, lower-cased. */
function listed(result: HttpResult, header: string): string[] {
  return (result.headers.get(header) ?? '').split(',').map((value) => value.trim().toLowerCase());
}

/** Opens an SSE stream with `headers`, checks the status and returns the response's headers. */
async function sseHeaders(url: string, init: RequestInit): Promise<Headers> {
  const controller = new AbortController();
  const response = await fetch(url, { ...init, signal: controller.signal });
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
  controller.abort();
  await response.body?.cancel().catch(() => {});
  return response.headers;
}

const publishBody = { method: 'POST', body: '{"data": 1}' } as const;

describe('CORS_ORIGINS unset: no cross-origin access', () => {
  const server = useServer();

  test('no CORS headers, and no preflight answer', async () => {
    const { url } = server();
    const actual = await request(`${url}/v1/topics/${uniqueTopic('cors')}`, {
      headers: { origin: APP },
    });
    assert.equal(actual.status, 200);
    assert.equal(actual.headers.get('access-control-allow-origin'), null);
    const answer = await preflight(url, '/v1/chat', APP);
    assertApiError(answer, 404);
    assert.equal(answer.headers.get('access-control-allow-origin'), null);
  });
});

describe(`CORS_ORIGINS=${APP},${DEV}`, () => {
  const server = useServer({ CORS_ORIGINS: `${APP}, ${DEV}`, PUBLISH_RATE_LIMIT: '1' });

  test('a preflight from an allowed origin allows the API headers', async () => {
    const { url } = server();
    for (const origin of [APP, DEV]) {
      const answer = await preflight(url, '/v1/chat', origin);
      assert.equal(answer.status, 204);
      assert.equal(answer.headers.get('access-control-allow-origin'), origin);
      assert.ok(listed(answer, 'vary').includes('origin'));
      assert.ok(listed(answer, 'access-control-allow-methods').includes('post'));
      const allowed = listed(answer, 'access-control-allow-headers');
      for (const header of ['authorization', 'content-type', 'last-event-id', 'idempotency-key']) {
        assert.ok(allowed.includes(header), `${header} in ${allowed}`);
      }
      assert.equal(answer.headers.get('access-control-max-age'), '600');
    }
    const del = await preflight(url, `/v1/topics/${uniqueTopic('cors')}`, APP, 'DELETE', '');
    assert.ok(listed(del, 'access-control-allow-methods').includes('delete'));
  });

  test('POST-based SSE (chat) and completions: the origin is allowed, x-stream-id exposed', async () => {
    const { url } = server();
    const chat = await sseHeaders(`${url}/v1/chat`, {
      method: 'POST',
      headers: { origin: APP, 'content-type': 'application/json', authorization: 'Bearer x' },
      body: JSON.stringify({ session_id: 'cors-chat', content: 'hi' }),
    });
    assert.equal(chat.get('access-control-allow-origin'), APP);
    const completion = await sseHeaders(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { origin: DEV, 'content-type': 'application/json' },
      body: JSON.stringify({ stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(completion.get('access-control-allow-origin'), DEV);
    assert.ok(completion.get('x-stream-id'));
    const exposed = (completion.get('access-control-expose-headers') ?? '').toLowerCase();
    assert.match(exposed, /x-stream-id/);
    assert.match(exposed, /retry-after/);
  });

  test('refusals carry the CORS headers, so a page can read them (429 with Retry-After)', async () => {
    const { url } = server();
    const topic = uniqueTopic('cors.refused');
    const headers = { origin: APP, 'content-type': 'application/json' };
    const publishUrl = `${url}/v1/topics/${topic}/events`;
    assert.equal((await request(publishUrl, { ...publishBody, headers })).status, 201);
    const refused = await request(publishUrl, { ...publishBody, headers });
    assertApiError(refused, 429, 'rate_limited');
    assert.equal(refused.headers.get('access-control-allow-origin'), APP);
    assert.ok(refused.headers.get('retry-after'));
    const missing = await request(`${url}/v1/sessions/nope`, { headers: { origin: APP } });
    assertApiError(missing, 404, 'session_not_found');
    assert.equal(missing.headers.get('access-control-allow-origin'), APP);
  });

  test('another origin gets no CORS headers, on preflights or requests', async () => {
    const { url } = server();
    const answer = await preflight(url, '/v1/chat', EVIL);
    assert.equal(answer.headers.get('access-control-allow-origin'), null);
    assert.equal(answer.headers.get('access-control-allow-headers'), null);
    const topic = uniqueTopic('cors.denied');
    const actual = await request(`${url}/v1/topics/${topic}`, { headers: { origin: EVIL } });
    assert.equal(actual.headers.get('access-control-allow-origin'), null);
    const stream = await sseHeaders(`${url}/v1/topics/${topic}/events`, {
      headers: { origin: EVIL, accept: 'text/event-stream' },
    });
    assert.equal(stream.get('access-control-allow-origin'), null);
  });
});

describe('CORS_ORIGINS=* with authentication on', () => {
  const key = 'cors-test-key-0123456789';
  const server = useServer({ CORS_ORIGINS: '*', API_KEYS: key });

  test('any origin; a preflight needs no credentials; a 401 is readable cross-origin', async () => {
    const { url } = server();
    const answer = await preflight(url, '/v1/chat/resume', EVIL);
    assert.equal(answer.status, 204);
    assert.equal(answer.headers.get('access-control-allow-origin'), '*');
    const topic = uniqueTopic('cors.any');
    const unauthorized = await request(`${url}/v1/topics/${topic}`, { headers: { origin: EVIL } });
    assertApiError(unauthorized, 401, 'unauthorized');
    assert.equal(unauthorized.headers.get('access-control-allow-origin'), '*');
    const stream = await sseHeaders(`${url}/v1/topics/${topic}/events`, {
      headers: { origin: APP, accept: 'text/event-stream', authorization: `Bearer ${key}` },
    });
    assert.equal(stream.get('access-control-allow-origin'), '*');
  });
});

test('CORS_ORIGINS is validated and normalized as browsers send origins', () => {
  const origins = (value: string) => loadConfig({ CORS_ORIGINS: value }).CORS_ORIGINS;
  assert.equal(origins('*'), '*');
  assert.deepEqual(origins('HTTPS://App.Example.com:443/, http://localhost:5173'), [APP, DEV]);
  assert.equal(loadConfig({}).CORS_ORIGINS, undefined);
  for (const bad of [
    'app.example.com',
    'https://app.example.com/path',
    'ftp://x.org',
    `*,${APP}`,
  ]) {
    assert.throws(
      () => origins(bad),
      (error: Error) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /CORS_ORIGINS/);
        return true;
      },
    );
  }
});
