/**
 * Requests refused before any route handles them — by Fastify's router, Node's HTTP parser and
 * server, or the WebSocket library — answer in the error shape of docs/api.md §0 with a fitting status.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { clientErrorHandler } from '../../src/server/limits/client-errors.js';
import type { RunningServer } from '../../src/server/server.js';
import { rawHttp, toHttpResult } from '../helpers/hostile.js';
import { assertApiError, type HttpResult, publishMany } from '../helpers/http.js';
import { startTestServer } from '../helpers/server.js';

const UPGRADE = 'Upgrade: websocket\r\nConnection: Upgrade\r\n';
const KEY = 'Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n';

let server: RunningServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.shutdown());

async function send(request: string): Promise<HttpResult> {
  const { response, end } = await rawHttp(server.url, request, { timeoutMs: 5000 });
  assert.ok(response?.complete, `a whole answer, not ${end}`);
  return toHttpResult(response);
}

const get = (path: string, headers = '') => `GET ${path} HTTP/1.1\r\nHost: h\r\n${headers}\r\n`;

describe('refusals before routing, in the API error shape', () => {
  const cases: [what: string, request: string, status: number, code: string][] = [
    ['a badly percent-encoded path', get('/v1/topics/a%zz'), 400, 'invalid_url'],
    ['a path segment too long', get(`/v1/topics/${'a'.repeat(2000)}`), 414, 'uri_too_long'],
    ['a folded header', get('/healthz', 'X-A: 1\r\n 2\r\n'), 400, 'bad_request'],
    [
      'a request head too large',
      get('/healthz', `X-Big: ${'a'.repeat(20_000)}\r\n`),
      431,
      'header_too_large',
    ],
    ['HTTP/1.1 without Host', 'GET /healthz HTTP/1.1\r\n\r\n', 400, 'missing_host'],
    [
      'an Expect other than 100-continue',
      'POST /v1/topics/t/events HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n' +
        'Content-Length: 10\r\nExpect: 200-ok\r\n\r\n{"data":1}',
      417,
      'expectation_failed',
    ],
    [
      'Upgrade: h2c',
      get(
        '/healthz',
        'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n',
      ),
      400,
      'invalid_handshake',
    ],
    [
      'a WebSocket handshake without a key',
      get('/v1/ws', `${UPGRADE}Sec-WebSocket-Version: 13\r\n`),
      400,
      'invalid_handshake',
    ],
  ];
  for (const [what, request, status, code] of cases) {
    test(`${what}: ${status} ${code}`, async () => {
      assertApiError(await send(request), status, code);
    });
  }

  test('a WebSocket handshake of an unknown version names the versions spoken', async () => {
    const result = await send(get('/v1/ws', `${UPGRADE}${KEY}Sec-WebSocket-Version: 99\r\n`));
    assertApiError(result, 400, 'invalid_handshake');
    assert.equal(result.headers.get('sec-websocket-version'), '13, 8');
  });

  test('HTTP/1.0 needs no Host, and Expect: 100-continue is honoured', async () => {
    assert.equal((await send('GET /healthz HTTP/1.0\r\n\r\n')).status, 200);
    const publish =
      'POST /v1/topics/t/events HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n' +
      'Content-Length: 10\r\nExpect: 100-continue\r\n\r\n{"data":1}';
    const { response } = await rawHttp(server.url, publish, { timeoutMs: 5000 });
    assert.equal(response?.status, 100);
  });
});

/**
 * Writes `request` to a fresh connection and, once what arrived includes `then`, writes
 * `more`, then runs `afterMore`; reads until `done` holds for what arrived, the server
 * closes, or 10 s pass (then the test fails rather than hangs). Returns the bytes, as latin1.
 */
function exchangeRaw(
  request: string,
  then: string,
  more: string,
  done: (text: string) => boolean,
  afterMore: () => Promise<void>,
): Promise<string> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    let text = '';
    let wroteMore = false;
    const socket = net.connect({ host: hostname, port: Number(port) }, () =>
      socket.write(Buffer.from(request, 'latin1')),
    );
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no end in 10 s; got ${JSON.stringify(text.slice(0, 500))}`));
    }, 10_000);
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(text);
    };
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (!wroteMore && text.includes(then)) {
        wroteMore = true;
        socket.write(Buffer.from(more, 'latin1'), () => void afterMore().catch(reject));
      }
      if (done(text)) finish();
    });
    socket.on('error', () => {});
    socket.on('close', finish);
  });
}

test('a malformed request pipelined behind an event stream under way leaves the stream whole', async () => {
  const stream = get('/v1/topics/pipelined/events', 'Accept: text/event-stream\r\n');
  let id: string | undefined;
  // Once the stream is open, the garbage goes after it; the event is published only then, so
  // the server has read the garbage (which reached it first) before it delivers the event.
  const text = await exchangeRaw(
    stream,
    'retry: ',
    'GARBAGE\r\n\r\n',
    (received) => id !== undefined && received.includes(`id: ${id}`),
    async () => {
      [id] = await publishMany(server.url, 'pipelined', 1);
    },
  );
  assert.match(text, /^HTTP\/1\.1 200 /);
  assert.ok(id !== undefined && text.includes(`id: ${id}`), `the event in ${text}`);
  assert.doesNotMatch(text, /HTTP\/1\.1 400/);
});

test('a socket that keeps sending garbage behind an answer under way is closed once, after it', () => {
  const answer = Object.assign(new EventEmitter(), { headersSent: true });
  let written = 0;
  let destroyed = 0;
  const socket = Object.assign(new EventEmitter(), {
    destroyed: false,
    writable: true,
    _httpMessage: answer,
    write: () => written++,
    destroy: () => destroyed++,
  });
  const handle = clientErrorHandler(() => {});
  const garbage = Object.assign(new Error('Parse Error'), { code: 'HPE_INVALID_METHOD' });
  // Node reports every read that fails to parse: here, eleven.
  for (let i = 0; i < 11; i++) handle(garbage, socket as unknown as net.Socket);
  assert.equal(answer.listenerCount('close'), 1);
  assert.equal(written, 0, 'nothing written into the answer');
  assert.equal(destroyed, 0, 'the answer goes on');
  answer.emit('close');
  assert.equal(destroyed, 1, 'closed once the answer ended');
});
