/**
 * Hostile input (issue 6): thousands of malformed requests, frames and connections thrown at a
 * real `streamhub serve` child process — random bytes, broken request lines and headers, CRLF
 * injection into the SSE cursor, chunked-encoding tricks, truncated/huge/deep JSON, path
 * tricks, WebSocket protocol violations, slowloris sockets, floods, and with authentication
 * and limits on, garbage credentials and floods past the limits — while a normal client
 * publishes and two normal subscribers (SSE and WebSocket) receive a steady stream. At the end
 * every event must have arrived exactly once and in order, the process must be the same one,
 * healthy, with nothing logged at error level, and its RSS back near its baseline.
 *
 * Inputs come from a seeded PRNG and are drawn before anything is sent, so a seed replays the
 * same inputs whatever the timing: `HOSTILE_SEED=<seed> node --test
 * dist/test/server/hostile-input.test.js`. Every error answer must have the API's error shape,
 * including those to requests that Node's HTTP parser, its server or the WebSocket library
 * refuse before any route sees them.
 */
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import net from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ALNUM,
  badFrame,
  clientFrame,
  junkCredentials,
  LogWatch,
  malformedRequests,
  mutate,
  oddFrame,
  Prng,
  PUBLISH_HEAD,
  protocolViolations,
  type RawCase,
  type RawExchange,
  type RequestSpec,
  rawHttp,
  rssMiB,
  runPool,
  signJwt,
  structuredRequests,
  templateRequest,
  toHttpResult,
  type WsFrame,
  wsKey,
} from '../helpers/hostile.js';
import {
  assertApiError,
  eventually,
  type HttpResult,
  request,
  resultOf,
  SseIdReader,
} from '../helpers/http.js';
import { PATIENCE_MS } from '../helpers/patience.js';
import { type ServerProcess, spawnServer } from '../helpers/process.js';
import { publish, waitFor } from '../helpers/server.js';
import { rawUpgradedSocket, type ServerFrame, WsTestClient, wsUrl } from '../helpers/ws-client.js';

const SEED =
  process.env.HOSTILE_SEED === undefined ? randomInt(2 ** 32) : Number(process.env.HOSTILE_SEED);
console.log(`hostile-input seed ${SEED} (replay: HOSTILE_SEED=${SEED})`);

const MAX_BODY = 8192;
/** The server's WebSocket frame limit: MAX_BODY_BYTES plus its 1 KiB envelope allowance. */
const FRAME_LIMIT = MAX_BODY + 1024;
const SERVER_ENV = {
  MAX_BODY_BYTES: String(MAX_BODY),
  MAX_HEADER_BYTES: '16384',
  // Dead WebSocket peers are found within two heartbeats, so abandoned sockets go within 10 s;
  // a shorter beat would also drop the steady client whenever this busy test process answers a
  // ping late (seen: its socket closed, missing the last events, with a beat of 1 s).
  HEARTBEAT_MS: '5000',
  SHUTDOWN_GRACE_MS: '1000',
};
const RSS_MARGIN_MIB = 40;
const STEADY = 'steady';
const STEADY_INTERVAL_MS = 10;
/**
 * A /healthz probe gives up (a failure) after HEALTH_TIMEOUT_MS; none may even come near it.
 * A server busy with the abuse answers later than an idle one, more so on a loaded machine
 * (a second has been seen): the rest is room.
 */
const HEALTH_TIMEOUT_MS = 5000;
const SLOW_HEALTH_MS = 4000;
/** A server-issued event id: `<epoch>-<seq>` (src/core/ids.ts). */
const EVENT_ID = /^[a-z0-9]{1,32}-[1-9][0-9]{0,15}$/;
/** What a response must never contain, whatever the path trick. */
const FILE_CONTENTS = /root:x?:0:0|"devDependencies"|BEGIN [A-Z ]*PRIVATE KEY/;
const SNAKE_CASE = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/;

// ---------------------------------------------------------------------------------------------
// Judging responses

/** Anything wrong, for the running test (cleared before each); it fails on any. */
const violations: string[] = [];
let judged = 0;

function clip(text: string, length = 300): string {
  return JSON.stringify(text.length > length ? `${text.slice(0, length)}…` : text);
}

/** Checks one response: never a 5xx (503 aside), errors in the API's error shape. */
function judge(what: string, result: HttpResult, method = 'GET'): void {
  judged += 1;
  if (FILE_CONTENTS.test(result.text))
    violations.push(`${what}: file contents ${clip(result.text)}`);
  if (result.status < 400 || method === 'HEAD') return;
  if (result.status >= 500 && result.status !== 503) {
    violations.push(`${what}: ${result.status} ${clip(result.text)}`);
    return;
  }
  try {
    assertApiError(result, result.status);
  } catch (error) {
    const reason = (error as Error).message.split('\n')[0];
    violations.push(`${what}: ${reason}; ${result.status} ${clip(result.text)}`);
  }
}

/** A raw exchange may end without an answer (an incomplete request, a dropped socket). */
function judgeRaw(what: string, exchange: RawExchange, expected?: readonly number[]): void {
  const { response } = exchange;
  if (expected !== undefined && !expected.includes(response?.status ?? 0)) {
    violations.push(
      `${what}: ${response?.status ?? `no answer (${exchange.end})`}, wanted ${expected}`,
    );
  }
  if (response?.complete) judge(what, toHttpResult(response));
  else if (response !== undefined && response.status >= 500 && response.status !== 503) {
    violations.push(`${what}: ${response.status}`);
  }
}

/**
 * Sends `spec`; an event stream that opens is read for a moment and then cut (`undefined`).
 * Any other answer is waited for, however long a loaded machine takes.
 */
async function answerOrStream(baseUrl: string, spec: RequestSpec): Promise<HttpResult | undefined> {
  const response = await fetch(`${baseUrl}${spec.path}`, spec.init);
  if (!spec.stream || !response.headers.get('content-type')?.startsWith('text/event-stream')) {
    return resultOf(response);
  }
  await sleep(300);
  await response.body?.cancel();
  return undefined;
}

/** Runs `specs` with `fetch`, judging each answer and its status. */
async function runSpecs(baseUrl: string, specs: readonly RequestSpec[], concurrency: number) {
  let cut = 0;
  await runPool(specs.length, concurrency, async (i) => {
    const spec = specs[i] as RequestSpec;
    const what = `${spec.what} ${spec.init.method ?? 'GET'} ${clip(spec.path, 100)}`;
    let result: HttpResult | undefined;
    try {
      result = await answerOrStream(baseUrl, spec);
    } catch (error) {
      // A refused upload may be cut by the server mid-body.
      if (spec.mayReset) cut += 1;
      else violations.push(`${what}: ${String(error)}`);
      return;
    }
    if (result === undefined) {
      if (spec.expect?.includes(200) === false) violations.push(`${what}: a stream opened`);
      cut += 1;
      return;
    }
    judge(what, result, spec.init.method);
    if (spec.expect !== undefined && !spec.expect.includes(result.status)) {
      violations.push(`${what}: ${result.status}, wanted ${spec.expect}; ${clip(result.text)}`);
    }
  });
  return cut;
}

function assertNoViolations(): void {
  assert.deepEqual(violations, [], `${violations.length} problems (seed ${SEED})`);
}

/** Error frames as docs/api.md §3 fixes them: a snake_case code, a message, no stack. */
function checkErrorFrames(what: string, frames: readonly ServerFrame[]): void {
  for (const frame of frames) {
    if (frame.type !== 'error') continue;
    const text = JSON.stringify(frame);
    if (!SNAKE_CASE.test(String(frame.code)) || typeof frame.message !== 'string') {
      violations.push(`${what}: malformed error frame ${clip(text)}`);
    }
    if (/\bat .+:\d+:\d+|node_modules|node:internal/.test(text) || 'stack' in frame) {
      violations.push(`${what}: error frame leaks internals ${clip(text)}`);
    }
  }
}

/** A WebSocket upgrade request for `path`, as raw text. */
function upgradeRequest(path: string, key: string): string {
  const upgrade = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13';
  return `GET ${path} HTTP/1.1\r\nHost: h\r\n${upgrade}\r\nSec-WebSocket-Key: ${key}\r\n\r\n`;
}

/** A JSON request for `fetch` (a POST unless `method` says otherwise). */
function jsonInit(
  body: string | undefined,
  headers: Record<string, string> = {},
  method = 'POST',
): RequestInit {
  return { method, body, headers: { ...headers, 'content-type': 'application/json' } };
}

/** The TCP socket under a `ws` client, to write frames the library would never send. */
function socketOf(client: WsTestClient): net.Socket {
  return (client.ws as unknown as { _socket: net.Socket })._socket;
}

// ---------------------------------------------------------------------------------------------
// The server process, and the normal clients that must not notice anything

interface Child {
  readonly process: ServerProcess;
  readonly url: string;
  readonly pid: number;
  readonly log: LogWatch;
  stderr: string;
  exitedWith?: string;
}

async function startChild(env: Record<string, string>, secrets: string[] = []): Promise<Child> {
  const server = await spawnServer(env);
  // spawnServer keeps the whole log to find "listening at" in it, and searches all of it again
  // on every chunk: with thousands of logged requests that costs more than the server does.
  server.child.stdout?.removeAllListeners('data');
  const child: Child = {
    process: server,
    url: server.url,
    pid: server.child.pid as number,
    log: new LogWatch(secrets),
    stderr: '',
  };
  server.child.stdout?.on('data', (chunk: string) => child.log.feed(chunk));
  server.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    child.stderr += chunk;
  });
  void server.exited.then((code) => {
    child.exitedWith = String(code);
  });
  return child;
}

async function stopChild(child: Child | undefined): Promise<void> {
  child?.process.child.kill('SIGTERM');
  await child?.process.exited;
}

/** A server child process for the enclosing `describe`; `secrets` must never be logged. */
function useChild(env: Record<string, string>, secrets: string[] = []): () => Child {
  let child: Child | undefined;
  before(async () => {
    child = await startChild(env, secrets);
  });
  after(() => stopChild(child));
  return () => child as Child;
}

/** A publisher and a health prober that behave, and SSE + WebSocket subscribers that read. */
class NormalClients {
  readonly published: string[] = [];
  readonly failures: string[] = [];
  readonly healthLatencies: number[] = [];
  sse!: SseIdReader;
  ws!: WsTestClient;
  #running = true;
  #loops: Promise<void>[] = [];

  constructor(
    readonly url: string,
    readonly headers: Record<string, string> = {},
  ) {}

  async start(): Promise<void> {
    const { url, headers } = this;
    this.sse = new SseIdReader(`${url}/v1/topics/${STEADY}/events`, headers);
    this.ws = await WsTestClient.connect(wsUrl(url, '/v1/ws'), { headers });
    await this.ws.subscribe(STEADY);
    for (let tries = 0; (await this.#subscribers()) < 2; tries++) {
      assert.ok(tries < 200, 'the steady subscribers did not appear');
      await sleep(10);
    }
    this.#loops = [this.#publishLoop(), this.#healthLoop()];
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  async #subscribers(): Promise<number> {
    const { json } = await request(`${this.url}/v1/topics/${STEADY}`, { headers: this.headers });
    return (json as { subscribers: number }).subscribers;
  }

  async #publishLoop(): Promise<void> {
    for (let n = 0; this.#running; n++) {
      try {
        this.published.push((await publish(this.url, STEADY, { n }, { headers: this.headers })).id);
      } catch (error) {
        this.failures.push(`publish ${n}: ${String(error)}`);
      }
      await sleep(STEADY_INTERVAL_MS);
    }
  }

  async #healthLoop(): Promise<void> {
    while (this.#running) {
      const started = performance.now();
      try {
        const result = await request(`${this.url}/healthz`, {
          signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS),
        });
        if (result.status !== 200) this.failures.push(`healthz ${result.status}`);
      } catch (error) {
        this.failures.push(`healthz: ${String(error)}`);
      }
      this.healthLatencies.push(performance.now() - started);
      await sleep(100);
    }
  }
}

/**
 * Once the abuse is over: the normal clients got every event exactly once and in order, were
 * always served, and the server is the same healthy process, with nothing logged at error
 * level, only the normal clients' connections left, and its RSS back near `baselineMiB`.
 */
async function assertUnharmed(
  t: { diagnostic(message: string): void },
  child: Child,
  normal: NormalClients,
  baselineMiB: number,
): Promise<void> {
  // The process first: if it died, nothing below would say why.
  const stderr = `stderr: ${clip(child.stderr, 2000)}`;
  assert.equal(child.exitedWith, undefined, `the server exited; ${stderr}`);
  assert.equal(child.process.child.exitCode, null);
  assert.equal(child.stderr, '');
  await normal.stop();
  const { published, sse, ws, headers } = normal;
  await waitFor(
    () => sse.ids.length >= published.length && ws.eventCount(STEADY) >= published.length,
    'the steady subscribers to catch up',
    PATIENCE_MS,
  ).catch(() => {});
  assert.deepEqual(normal.failures, []);
  assert.ok(published.length >= 100, `only ${published.length} steady events`);
  assert.deepEqual(sse.ids, published, 'the SSE subscriber got every event once, in order');
  assert.deepEqual(
    ws.ids(STEADY),
    published,
    `the WebSocket subscriber got every event once; it got ${ws.summary()}`,
  );
  assert.deepEqual(ws.framesOfType('reset'), []);
  assert.ok(ws.open, 'the steady WebSocket is still open');
  const worst = Math.max(...normal.healthLatencies);
  t.diagnostic(`${published.length} steady events; /healthz worst ${Math.round(worst)} ms`);
  assert.ok(worst < SLOW_HEALTH_MS, `a /healthz probe took ${Math.round(worst)} ms`);

  assert.equal((await request(`${child.url}/healthz`)).status, 200);
  assert.equal((await request(`${child.url}/readyz`)).status, 200);
  assert.deepEqual(child.log.errors, [], 'lines logged at error level or above');
  assert.deepEqual(child.log.leaks, [], 'credentials in the log');
  // Every abusive connection is gone: only the steady SSE and WebSocket subscribers remain.
  let stats: { connections: unknown; subscribers: number } | undefined;
  const onlySteadyLeft = async () => {
    stats = (await request(`${child.url}/v1/stats`, { headers })).json as typeof stats;
    return JSON.stringify(stats?.connections) === '{"sse":1,"ws":1}';
  };
  await eventually(onlySteadyLeft, 'only the steady connections left', PATIENCE_MS, 100).catch(
    () => {},
  );
  assert.deepEqual(stats?.connections, { sse: 1, ws: 1 });
  assert.equal(stats?.subscribers, 2);

  let rss = rssMiB(child.pid);
  for (let waited = 0; rss > baselineMiB + RSS_MARGIN_MIB && waited < 15_000; waited += 500) {
    await sleep(500);
    rss = rssMiB(child.pid);
  }
  t.diagnostic(`RSS ${rss.toFixed(1)} MiB, baseline ${baselineMiB.toFixed(1)} MiB`);
  assert.ok(rss <= baselineMiB + RSS_MARGIN_MIB, `RSS ${rss.toFixed(1)} MiB`);
  sse.close();
  ws.close();
}

/** Opens `count` sockets that send `first`, then one byte of `drip` a second, forever. */
async function slowSockets(baseUrl: string, count: number, first: string, drip: string) {
  const { hostname, port } = new URL(baseUrl);
  const open = () =>
    new Promise<net.Socket>((resolve, reject) => {
      const socket = net.connect({ host: hostname, port: Number(port) }, () => {
        socket.write(first);
        const timer = setInterval(() => socket.write(drip), 1000);
        socket.once('close', () => clearInterval(timer));
        resolve(socket);
      });
      socket.on('error', () => {});
      socket.once('error', reject);
    });
  const sockets: net.Socket[] = [];
  for (let i = 0; i < count; i++) sockets.push(await open());
  return sockets;
}

// ---------------------------------------------------------------------------------------------

describe('hostile input against a running server', { concurrency: false }, () => {
  const child = useChild(SERVER_ENV);
  let normal: NormalClients;
  let baselineMiB = 0;
  const slow: net.Socket[] = [];
  let slowStarted = 0;
  beforeEach(() => {
    violations.length = 0;
  });

  test('warm-up, the baseline, and the normal clients start', async (t) => {
    t.diagnostic(`seed ${SEED} (replay: HOSTILE_SEED=${SEED})`);
    const { url, pid } = child();
    // Every path warmed once: the baseline includes what any server that has served holds.
    await runPool(200, 16, async (i) => {
      await publish(url, `warm.${i % 10}`, { i });
      judge('warm-up history', await request(`${url}/v1/topics/warm.${i % 10}/events?limit=5`));
      judge('warm-up error', await request(`${url}/v1/topics/a%20b/events`));
    });
    const ws = await WsTestClient.connect(wsUrl(url, '/v1/ws'));
    await ws.request({ type: 'ping' });
    ws.close();
    normal = new NormalClients(url);
    await normal.start();
    await sleep(1500);
    baselineMiB = rssMiB(pid);
    t.diagnostic(`baseline RSS ${baselineMiB.toFixed(1)} MiB`);
  });

  test('the HTTP parser: random bytes, mutated requests, malformed framing', async (t) => {
    const { url } = child();
    const rng = new Prng(SEED + 1);
    const random = Array.from({ length: 300 }, () => ({
      bytes: rng.bytes(rng.between(1, 2048)),
      truncated: rng.chance(0.5),
    }));
    const mutated = Array.from({ length: 700 }, () => mutate(rng, templateRequest(rng)));
    const cases = malformedRequests(MAX_BODY);
    const started = performance.now();
    await runPool(random.length + mutated.length, 48, async (i) => {
      const isRandom = i < random.length;
      const { bytes, truncated } = (isRandom ? random[i] : mutated[i - random.length]) as {
        bytes: Buffer;
        truncated: boolean;
      };
      const exchange = await rawHttp(url, bytes, { timeoutMs: 300, halfClose: truncated });
      judgeRaw(
        isRandom ? `random bytes #${i}` : `mutated ${clip(bytes.toString('latin1'), 80)}`,
        exchange,
      );
    });
    await runPool(cases.length, 16, async (i) => {
      const { name, request: text, expect, halfClose } = cases[i] as RawCase;
      judgeRaw(name, await rawHttp(url, text, { halfClose }), expect);
    });
    const count = random.length + mutated.length + cases.length;
    t.diagnostic(`${count} raw requests in ${Math.round(performance.now() - started)} ms`);
    assertNoViolations();
  });

  test('CRLF injection into Last-Event-ID / last_event_id is never reflected into the stream', async (t) => {
    const { url } = child();
    const topic = 'inject';
    const ids: string[] = [];
    for (let n = 0; n < 3; n++) ids.push((await publish(url, topic, { n })).id);
    const MARK = 'INJECTED';
    // Raw header values (the parser refuses CR, LF and NUL), then query values, percent-encoded.
    const headerValues = [
      `x\rid: ${MARK}`,
      `x\nid: ${MARK}`,
      `x\r\nid: ${MARK}`,
      `x\r\n\r\nevent: ${MARK}\r\ndata: 1`,
      `x\0id: ${MARK}`,
      `x\x85id: ${MARK}`,
      `x\xe2\x80\xa8id: ${MARK}`,
      `${ids[0]}\nid: ${MARK}`,
      `${ids[2]}\r\nevent: reset\r\ndata: ${MARK}`,
      `\\r\\nid: ${MARK}`,
      `${'a'.repeat(4000)}${MARK}`,
      MARK,
      '-1',
      `${ids[0]}-${MARK}`,
    ];
    const queryValues = [
      `x%0d%0aid:%20${MARK}`,
      `x%0Aevent:%20${MARK}%0A%0Adata:%20${MARK}`,
      `x%0did:%20${MARK}`,
      `x%00${MARK}`,
      `x%E2%80%A8id:%20${MARK}`,
      `x%C0%8Aid:%20${MARK}`,
      `x%C2%85id:%20${MARK}`,
      `${ids[1]}%0a%0aid:%20${MARK}`,
      `%20${MARK}`,
    ];
    // `after`: the cursor the server sees is a real id (what precedes a CRLF, or the header,
    // which wins over the query), so the stream resumes after it; any other cursor gets a
    // reset and then every retained event.
    type Attempt = { what: string; target: string; headers: string[]; after?: string };
    const attempts: Attempt[] = [];
    for (const value of headerValues) {
      const what = `Last-Event-ID ${clip(value, 60)}`;
      const cursor = value.split('\r\n')[0] as string;
      const after = ids.includes(cursor) ? cursor : undefined;
      attempts.push({ what, target: '', headers: [`Last-Event-ID: ${value}`], after });
    }
    for (const value of queryValues) {
      for (const name of ['last_event_id', 'lastEventId']) {
        attempts.push({ what: `${name}=${value}`, target: `?${name}=${value}`, headers: [] });
      }
      const headers = [`Last-Event-ID: ${ids[0]}`];
      const what = `header + last_event_id=${value}`;
      attempts.push({ what, target: `?last_event_id=${value}`, headers, after: ids[0] });
    }
    let streams = 0;
    await runPool(attempts.length, 16, async (i) => {
      const { what, target, headers, after } = attempts[i] as Attempt;
      const head = [
        `GET /v1/topics/${topic}/events${target} HTTP/1.1`,
        'Host: h',
        'Accept: text/event-stream',
        ...headers,
      ];
      // A stream never ends: it is read for long enough to hold its replay on a loaded machine.
      const exchange = await rawHttp(url, `${head.join('\r\n')}\r\n\r\n`, { timeoutMs: 2000 });
      const response = exchange.response;
      if (response?.status !== 200) {
        judgeRaw(what, exchange);
        if (response === undefined || response.status < 400)
          violations.push(`${what}: ${response?.status}`);
        return;
      }
      streams += 1;
      const stream = response.body.toString('utf8');
      if (stream.includes(MARK))
        violations.push(`${what}: reflected into the stream ${clip(stream)}`);
      const seen: string[] = [];
      let resets = 0;
      for (const line of stream.split(/\r\n|\r|\n/)) {
        if (line === '' || line.startsWith(':') || line.startsWith('data: ')) continue;
        if (/^retry: \d+$/.test(line) || line === 'event: message') continue;
        if (line === 'event: reset') resets += 1;
        else if (line.startsWith('id: ') && EVENT_ID.test(line.slice(4))) seen.push(line.slice(4));
        else violations.push(`${what}: unexpected SSE line ${clip(line)}`);
      }
      const wanted = after === undefined ? ids : ids.slice(ids.indexOf(after) + 1);
      if (JSON.stringify(seen) !== JSON.stringify(wanted) || resets !== (after ? 0 : 1)) {
        violations.push(`${what}: ${resets} resets, then ${seen}; wanted ${wanted}`);
      }
    });
    // The same cursors on the topic-bound WebSocket: frames are JSON, and nothing is echoed.
    await Promise.all(
      queryValues.map(async (value) => {
        const client = await WsTestClient.connect(
          wsUrl(url, `/v1/topics/${topic}/ws?last_event_id=${value}`),
        );
        // No cursor here is an id: a reset, then every retained event.
        await client
          .waitForEvents(topic, ids.length)
          .catch((error: Error) => violations.push(`ws last_event_id=${value}: ${error.message}`));
        client.close();
        const frames = JSON.stringify(client.frames);
        if (
          frames.includes(MARK) ||
          client.frames.some((frame) => !['event', 'reset'].includes(frame.type))
        ) {
          violations.push(`ws last_event_id=${value}: ${clip(frames)}`);
        }
      }),
    );
    t.diagnostic(
      `${attempts.length + queryValues.length} injection attempts, ${streams} SSE streams opened`,
    );
    assert.ok(streams >= queryValues.length * 3, `only ${streams} streams opened`);
    assertNoViolations();
  });

  test('slowloris: sockets that send a header (or body) byte a second are started', async () => {
    const { url } = child();
    slow.push(...(await slowSockets(url, 64, 'GET /healthz HTTP/1.1\r\nHost: h\r\nX-Slow: ', 'a')));
    slow.push(
      ...(await slowSockets(url, 16, `${PUBLISH_HEAD}Content-Length: 4096\r\n\r\n{"data":"`, 'b')),
    );
    slowStarted = Date.now();
  });

  test('structured HTTP abuse: bad JSON, huge and deep bodies, content types, paths, ids, headers', async (t) => {
    const specs = structuredRequests(new Prng(SEED + 3), MAX_BODY);
    const started = performance.now();
    const cut = await runSpecs(child().url, specs, 24);
    const elapsed = Math.round(performance.now() - started);
    t.diagnostic(`${specs.length} requests in ${elapsed} ms (${cut} cut mid-body or mid-stream)`);
    assertNoViolations();
  });

  test('WebSocket: bad frames get error frames and the socket stays; repeat offenders are closed', async (t) => {
    const { url } = child();
    const rng = new Prng(SEED + 5);
    const sockets = Array.from({ length: 40 }, () => ({
      bad: Array.from({ length: 15 }, () => badFrame(rng)),
      odd: Array.from({ length: 10 }, () => oddFrame(rng, MAX_BODY)),
    }));
    const offenders = Array.from({ length: 10 }, () =>
      Array.from({ length: 25 }, () => badFrame(rng)),
    );
    const send = (client: WsTestClient, frames: readonly WsFrame[]) => {
      for (const frame of frames) client.ws.send(frame.data, { binary: frame.binary === true });
    };
    await runPool(sockets.length, 8, async (i) => {
      const { bad, odd } = sockets[i] as (typeof sockets)[number];
      const client = await WsTestClient.connect(wsUrl(url, '/v1/ws'));
      send(client, [...bad, ...odd]);
      const pong = await client.request({ type: 'ping' }).catch((error: Error) => error);
      if (pong instanceof Error) violations.push(`bad frames #${i}: socket lost: ${pong.message}`);
      // Refused publishes are answered asynchronously, possibly after the pong.
      const errors = () => client.framesOfType('error').length;
      await waitFor(() => errors() >= bad.length, 'error frames').catch(() => {});
      if (errors() < bad.length) violations.push(`bad frames #${i}: ${errors()} error frames`);
      checkErrorFrames(`bad frames #${i}`, client.frames);
      client.close();
    });
    await runPool(offenders.length, 5, async (i) => {
      const client = await WsTestClient.connect(wsUrl(url, '/v1/ws'));
      send(client, offenders[i] as WsFrame[]);
      const closed = await client.waitForClose().catch((error: Error) => error);
      if (closed instanceof Error || closed.code !== 1008) {
        violations.push(
          `offender #${i}: ${closed instanceof Error ? closed.message : closed.code}`,
        );
      }
      checkErrorFrames(`offender #${i}`, client.frames);
      client.close();
    });
    t.diagnostic(`${sockets.length * 25 + offenders.length * 25} bad or odd frames`);
    assertNoViolations();
  });

  test('WebSocket: protocol violations and frames after close end only their own socket', async (t) => {
    const { url } = child();
    const rng = new Prng(SEED + 6);
    const cases = [
      ...protocolViolations(FRAME_LIMIT).flatMap((violation) => [violation, violation, violation]),
      ...Array.from({ length: 60 }, (_, i) => ({
        name: `random bytes #${i}`,
        bytes: rng.bytes(rng.between(1, 512)),
        codes: undefined,
      })),
    ];
    const afterClose = Array.from({ length: 20 }, (_, i) =>
      Buffer.concat([
        clientFrame(JSON.stringify({ type: 'publish', topic: 'after.close', data: i })),
        clientFrame(JSON.stringify({ type: 'ping' })),
        rng.bytes(rng.between(1, 64)),
      ]),
    );
    await runPool(cases.length, 16, async (i) => {
      const { name, bytes, codes } = cases[i] as (typeof cases)[number];
      const client = await WsTestClient.connect(wsUrl(url, '/v1/ws'));
      socketOf(client).write(bytes);
      // Random bytes may be the start of a frame still waiting for its payload: not waited out.
      const closed = await client
        .waitForClose(codes === undefined ? 1500 : undefined)
        .catch(() => undefined);
      if (codes !== undefined && !codes.includes(closed?.code ?? 0)) {
        violations.push(`${name}: closed with ${JSON.stringify(closed)}, wanted ${codes}`);
      }
      checkErrorFrames(name, client.frames);
      client.close();
    });
    await runPool(afterClose.length, 10, async (i) => {
      const client = await WsTestClient.connect(wsUrl(url, '/v1/ws'));
      const socket = socketOf(client);
      if (i % 2 === 0) client.ws.close(1000, 'bye');
      else socket.write(clientFrame(Buffer.from([0x03, 0xe8]), { opcode: 8 }));
      socket.write(afterClose[i] as Buffer);
      const closed = await client.waitForClose().catch((error: Error) => error);
      if (closed instanceof Error) violations.push(`frames after close #${i}: ${closed.message}`);
      client.close();
    });
    // Data frames behind a close frame are ignored (RFC 6455 §5.5.1).
    const { json } = await request(`${url}/v1/topics/after.close`);
    assert.equal((json as { length: number }).length, 0, 'frames after a close were acted on');
    t.diagnostic(
      `${cases.length} protocol violations, ${afterClose.length} sockets with frames after close`,
    );
    assertNoViolations();
  });

  test('WebSocket: subscribe, ping and publish floods, and hundreds of sockets opening and closing', async (t) => {
    const { url } = child();
    const rng = new Prng(SEED + 7);
    const churn = Array.from({ length: 300 }, () => ({
      behaviour: rng.int(7),
      cut: rng.int(200),
      query: rng.pick(['from=end', 'last_event_id=&from=x', 'from=start&from=start']),
      topic: rng.pick(['a b', 'wschurn.x', 'a'.repeat(129)]),
      key: wsKey(rng),
    }));
    const cursors = Array.from({ length: 1000 }, () => rng.string(ALNUM, 10));
    const started = performance.now();

    // One socket subscribes to as many topics as it may, and more, then leaves them all.
    const subscriber = await WsTestClient.connect(wsUrl(url, '/v1/ws'));
    for (let i = 0; i < 1010; i++) subscriber.send({ type: 'subscribe', topic: `wsflood.${i}` });
    const answered = () =>
      subscriber.framesOfType('subscribed').length + subscriber.framesOfType('error').length;
    await waitFor(() => answered() >= 1010, 'subscribe flood answers', 10_000);
    assert.equal(subscriber.framesOfType('subscribed').length, 1000);
    assert.ok(
      subscriber.framesOfType('error').every((frame) => frame.code === 'too_many_subscriptions'),
    );
    for (let i = 0; i < 1000; i++) subscriber.send({ type: 'unsubscribe', topic: `wsflood.${i}` });
    // Resubscribing in a loop, with cursors that cannot be resumed from.
    for (const cursor of cursors) {
      subscriber.send({ type: 'subscribe', topic: 'wsflood.churn', last_event_id: cursor });
      subscriber.send({ type: 'unsubscribe', topic: 'wsflood.churn' });
    }
    await waitFor(
      () => subscriber.framesOfType('unsubscribed').length >= 2000,
      'unsubscribes',
      10_000,
    );
    checkErrorFrames('subscribe flood', subscriber.frames);
    subscriber.close();

    // Ping floods (read by the client) and publish floods on a few sockets at once.
    const flooders = await Promise.all(
      [0, 1, 2, 3].map(() => WsTestClient.connect(wsUrl(url, '/v1/ws'))),
    );
    flooders.forEach((client, k) => {
      for (let i = 0; i < 2500; i++) client.send({ type: 'ping', ref: i });
      for (let i = 0; i < 500; i++)
        client.send({ type: 'publish', topic: `wspub.${k}`, data: { i } });
    });
    for (const client of flooders) {
      const pongs = () => client.framesOfType('pong');
      const done = () => pongs().length >= 2500 && client.framesOfType('published').length >= 500;
      await waitFor(done, 'ping and publish flood answers', 15_000);
      assert.deepEqual(
        pongs().map((frame) => frame.ref),
        [...Array(2500).keys()],
        'pongs in order',
      );
      checkErrorFrames('ping flood', client.frames);
      client.close();
    }

    // Hundreds of sockets: closed at once, mid-handshake, after a subscribe, refused, deaf.
    let deaf = 0;
    await runPool(churn.length, 32, async (i) => {
      const { behaviour, cut, query, topic, key } = churn[i] as (typeof churn)[number];
      if (behaviour <= 3) {
        const client = await WsTestClient.connect(wsUrl(url, '/v1/ws'));
        if (behaviour === 1) client.ws.close(1000);
        if (behaviour === 2)
          client.send({ type: 'subscribe', topic: `wschurn.${i % 13}`, from: 'start' });
        if (behaviour === 3)
          await client.request({ type: 'publish', topic: `wschurn.${i % 13}`, data: i });
        if (behaviour !== 1) client.close();
      } else if (behaviour === 4) {
        const upgrade = upgradeRequest('/v1/ws', key);
        await rawHttp(url, upgrade.slice(0, (cut * upgrade.length) / 200), { timeoutMs: 50 });
      } else if (behaviour === 5) {
        const upgrade = upgradeRequest(`/v1/topics/${topic}/ws?${query}`, key);
        judgeRaw(`refused handshake ${topic} ${query}`, await rawHttp(url, upgrade), [400]);
      } else {
        // Upgraded and then deaf: never reads, never answers a ping. The heartbeat drops it.
        deaf += 1;
        const socket = await rawUpgradedSocket(url, `/v1/topics/wschurn.${i % 13}/ws`);
        socket.on('error', () => {});
      }
    });
    const elapsed = Math.round(performance.now() - started);
    t.diagnostic(
      `floods and ${churn.length} sockets of churn in ${elapsed} ms (${deaf} left deaf)`,
    );
    assertNoViolations();
  });

  test('HTTP floods: publishes, SSE opens cut at once, and reads', async (t) => {
    const { url } = child();
    const rng = new Prng(SEED + 8);
    const cuts = Array.from({ length: 300 }, () => rng.int(30));
    const READS = [
      '/healthz',
      '/readyz',
      '/v1/topics/pflood.1',
      '/v1/topics/pflood.2/events?limit=1000',
      '/v1/stats',
      '/v1/models',
      '/metrics',
    ];
    const reads = Array.from({ length: 1500 }, () => rng.pick(READS));
    const statuses = new Map<number, number>();
    const count = (status: number) => statuses.set(status, (statuses.get(status) ?? 0) + 1);
    const started = performance.now();
    await runPool(2000, 64, async (i) => {
      const init = jsonInit(JSON.stringify({ data: { i } }));
      count((await request(`${url}/v1/topics/pflood.${i % 20}/events`, init)).status);
    });
    await runPool(cuts.length, 32, async (i) => {
      const signal = AbortSignal.timeout(cuts[i] as number);
      const headers = { accept: 'text/event-stream' };
      await fetch(`${url}/v1/topics/sflood.${i % 7}/events?from=start`, { headers, signal }).then(
        (response) => response.body?.cancel(),
        () => {},
      );
    });
    await runPool(reads.length, 64, async (i) => {
      const result = await request(`${url}${reads[i]}`);
      count(result.status);
      judge(`read ${reads[i]}`, result);
    });
    const elapsed = Math.round(performance.now() - started);
    t.diagnostic(`3800 flood requests in ${elapsed} ms: ${JSON.stringify([...statuses])}`);
    assert.deepEqual([...statuses.keys()].sort(), [200, 201]);
    assertNoViolations();
  });

  test('slowloris sockets are still held by the server, which kept serving everyone else', (t) => {
    const open = slow.filter((socket) => !socket.destroyed).length;
    const seconds = ((Date.now() - slowStarted) / 1000).toFixed(1);
    // Node's headersTimeout (60 s) would drop the header dribblers eventually; nothing ever
    // drops the body dribblers (Fastify sets requestTimeout to 0): reported.
    t.diagnostic(`${open}/${slow.length} slow sockets still open after ${seconds} s`);
    for (const socket of slow) socket.destroy();
    const worst = Math.max(...normal.healthLatencies);
    assert.ok(worst < SLOW_HEALTH_MS, `a /healthz probe took ${Math.round(worst)} ms`);
    assert.deepEqual(normal.failures, []);
  });

  test('mistyped JSON fields are refused, not coerced', async () => {
    for (const sessionId of ['123', 'true', '["abc"]']) {
      const init = jsonInit(`{"session_id":${sessionId}}`);
      assertApiError(await request(`${child().url}/v1/chat/resume`, init), 400, 'invalid_request');
    }
  });

  test('afterwards: every event once and in order, healthy, the same process, memory near baseline', async (t) => {
    await assertUnharmed(t, child(), normal, baselineMiB);
    t.diagnostic(`${judged} responses judged so far`);
    assert.ok(judged >= 3000, `only ${judged} responses judged`);
  });
});

describe('hostile input with authentication and limits on', { concurrency: false }, () => {
  const SECRET = 'hostile-input-secret-0123456789abcdef';
  const API_KEY = 'hostile-input-api-key-0123456789';
  const MARKER = 'LEAKMARK';
  const PUBLISH_RATE = 100;
  const CONNECT_RATE = 20;
  const CONNECTIONS_PER_CLIENT = 4;
  const rng = new Prng(SEED + 9);
  const junk = junkCredentials(rng, SECRET, MARKER);
  const token = (sub: string, rights = ['**']) =>
    signJwt({ sub, streamhub: { publish: rights, subscribe: rights } }, SECRET);
  const narrow = token('narrow', ['other.*']);
  const bearer = (credential: string) => ({ authorization: `Bearer ${credential}` });
  // No credential may reach the log: junk ones (by their marker or tail), nor valid ones.
  const secrets = [
    MARKER,
    API_KEY,
    narrow.slice(-20),
    ...junk.map((credential) => credential.slice(-20)),
  ];
  const child = useChild(
    {
      ...SERVER_ENV,
      AUTH_JWT_SECRET: SECRET,
      API_KEYS: API_KEY,
      PUBLISH_RATE_LIMIT: String(PUBLISH_RATE),
      CONNECT_RATE_LIMIT: String(CONNECT_RATE),
      CHAT_RATE_LIMIT: '2',
      MAX_CONNECTIONS_PER_CLIENT: String(CONNECTIONS_PER_CLIENT),
      RATE_LIMIT_WINDOW_MS: '1000',
      CORS_ORIGINS: 'https://app.example',
    },
    secrets.filter((secret) => secret.length >= 8),
  );
  let normal: NormalClients;
  let baselineMiB = 0;
  beforeEach(() => {
    violations.length = 0;
  });

  test('a normal client with an API key starts', async () => {
    const { url, pid } = child();
    normal = new NormalClients(url, bearer(API_KEY));
    await normal.start();
    await sleep(1000);
    baselineMiB = rssMiB(pid);
  });

  test('garbage credentials, in headers, query strings and first frames, are refused with 401', async (t) => {
    const { url } = child();
    const routes: { method: string; path: string; body?: string }[] = [
      { method: 'POST', path: '/v1/topics/auth.x/events', body: '{"data":1}' },
      { method: 'GET', path: '/v1/topics/auth.x/events' },
      { method: 'GET', path: '/v1/topics/auth.x' },
      { method: 'DELETE', path: '/v1/topics/auth.x' },
      { method: 'POST', path: '/v1/chat', body: '{"session_id":"auth","content":"hi"}' },
      { method: 'GET', path: '/v1/sessions/auth' },
      { method: 'GET', path: '/v1/models' },
    ];
    const headerForms = (credential: string) => [
      `Bearer ${credential}`,
      `bearer  ${credential}`,
      `Basic ${credential}`,
      `Bearer ${credential} extra`,
      credential,
    ];
    const specs: RequestSpec[] = [];
    junk.forEach((credential, i) => {
      const route = routes[i % routes.length] as (typeof routes)[number];
      for (const authorization of headerForms(credential)) {
        const init = jsonInit(route.body, { authorization }, route.method);
        specs.push({ what: `junk credential #${i}`, path: route.path, init, expect: [401] });
      }
      const query = `token=${encodeURIComponent(credential)}`;
      specs.push({
        what: `junk ?token #${i}`,
        path: `/v1/topics/auth.x/events?${query}`,
        init: {},
        expect: [401],
      });
      specs.push({
        what: `junk ?token SSE #${i}`,
        path: `/v1/topics/auth.x/events?${query}&token=x`,
        init: { headers: { accept: 'text/event-stream' } },
        expect: [401],
        stream: true,
      });
    });
    for (const route of routes) {
      const init = jsonInit(route.body, {}, route.method);
      specs.push({ what: 'no credentials', path: route.path, init, expect: [401] });
      if (!route.path.includes('auth.x')) continue;
      // A valid token, for other topics only.
      const narrowInit = jsonInit(route.body, bearer(narrow), route.method);
      specs.push({
        what: 'a token without the right',
        path: route.path,
        init: narrowInit,
        expect: [403],
      });
    }
    for (const path of ['/healthz', '/readyz'])
      specs.push({ what: 'public', path, init: {}, expect: [200] });
    await runSpecs(url, specs, 16);

    // WebSockets: refused handshakes, and first frames that are not a valid auth frame.
    // Anonymous sockets count against the address's CONNECT_RATE and connections: paced.
    const firstFrames: WsFrame[] = [
      ...junk
        .slice(0, 10)
        .map((credential) => ({ data: JSON.stringify({ type: 'auth', token: credential }) })),
      { data: '{"type":"auth"}' },
      { data: '{"type":"auth","token":42}' },
      { data: '{"type":"subscribe","topic":"auth.x"}' },
      { data: rng.bytes(64), binary: true },
      { data: 'not json' },
    ];
    await runPool(junk.length, 8, async (i) => {
      const credential = junk[i] as string;
      for (const path of [
        `/v1/ws?token=${encodeURIComponent(credential)}`,
        '/v1/topics/auth.x/ws',
      ]) {
        const upgrade = upgradeRequest(path, 'AAAAAAAAAAAAAAAAAAAAAA==');
        judgeRaw(`handshake ${clip(path, 60)}`, await rawHttp(url, upgrade), [401]);
      }
    });
    await runPool(firstFrames.length, 2, async (i) => {
      await sleep(100);
      const frame = firstFrames[i] as WsFrame;
      const client = await WsTestClient.connect(wsUrl(url, '/v1/ws'));
      client.ws.send(frame.data, { binary: frame.binary === true });
      client.send({ type: 'subscribe', topic: 'auth.x' });
      const closed = await client.waitForClose().catch((error: Error) => error);
      if (
        closed instanceof Error ||
        closed.code !== 4401 ||
        client.framesOfType('subscribed').length > 0
      ) {
        violations.push(
          `first frame #${i}: ${closed instanceof Error ? closed.message : closed.code}`,
        );
      }
      checkErrorFrames(`first frame #${i}`, client.frames);
      client.close();
    });
    // A valid auth frame followed by a flood before the verdict: refused, or all answered.
    const flood = await WsTestClient.connect(wsUrl(url, '/v1/ws'));
    flood.send({ type: 'auth', token: token('flooder.ws') });
    for (let i = 0; i < 300; i++) flood.send({ type: 'ping', ref: i });
    const settled = () =>
      flood.closeInfo !== undefined || flood.framesOfType('pong').length === 300;
    await waitFor(settled, 'the pre-auth flood to settle');
    assert.ok(
      flood.closeInfo === undefined || flood.closeInfo.code === 4401,
      JSON.stringify(flood.closeInfo),
    );
    flood.close();
    t.diagnostic(
      `${specs.length} HTTP requests, ${junk.length * 2} handshakes, ${firstFrames.length} first frames`,
    );
    assertNoViolations();
  });

  test('floods past the limits get 429 with Retry-After, and only the flooder is held back', async (t) => {
    const { url } = child();
    const flooder = bearer(token('flooder'));
    const limited: HttpResult[] = [];
    const check = (what: string, result: HttpResult, allowed: readonly number[]) => {
      judge(what, result);
      if (!allowed.includes(result.status))
        violations.push(`${what}: ${result.status} ${clip(result.text)}`);
      if (result.status !== 429) return;
      limited.push(result);
      if (!/^[1-9]\d*$/.test(result.headers.get('retry-after') ?? '')) {
        violations.push(`${what}: 429 without a valid Retry-After`);
      }
    };
    // Publishes, far faster than PUBLISH_RATE a second.
    let accepted = 0;
    const started = performance.now();
    await runPool(1500, 32, async (i) => {
      const init = jsonInit(`{"data":${i}}`, flooder);
      const result = await request(`${url}/v1/topics/lflood.${i % 5}/events`, init);
      if (result.status === 201) accepted += 1;
      check('publish flood', result, [201, 429]);
    });
    const seconds = (performance.now() - started) / 1000;
    const publishRefusals = limited.length;
    assert.ok(publishRefusals > 0, 'no publish was refused');
    assert.ok(
      accepted <= PUBLISH_RATE * (seconds + 2),
      `${accepted} publishes in ${seconds.toFixed(1)} s`,
    );
    // The same budget over a WebSocket: refused frames, but the socket stays open.
    const socket = await WsTestClient.connect(wsUrl(url, '/v1/ws'), { headers: flooder });
    for (let i = 0; i < 400; i++) socket.send({ type: 'publish', topic: 'lflood.ws', data: i });
    const answers = () =>
      socket.framesOfType('published').length + socket.framesOfType('error').length;
    await waitFor(() => answers() >= 400, 'ws publish flood answers', 10_000);
    assert.ok(socket.framesOfType('error').every((frame) => frame.code === 'rate_limited'));
    assert.ok(socket.framesOfType('error').length > 0, 'no WebSocket publish was refused');
    assert.equal((await socket.request({ type: 'ping' })).type, 'pong');
    checkErrorFrames('ws publish flood', socket.frames);
    socket.close();
    // Stream opens, faster than CONNECT_RATE a second.
    await runPool(80, 16, async (i) => {
      const headers = {
        ...bearer(token(`opener.${Math.floor(i / 40)}`)),
        accept: 'text/event-stream',
      };
      const result = await request(`${url}/v1/topics/lflood.sse/events`, {
        headers,
        signal: AbortSignal.timeout(200),
      }).catch(() => undefined);
      if (result !== undefined) check('stream-open flood', result, [429]);
    });
    // Connections held open past MAX_CONNECTIONS_PER_CLIENT.
    const holder = bearer(token('holder'));
    const held = await Promise.all(
      Array.from({ length: CONNECTIONS_PER_CLIENT }, () =>
        WsTestClient.connect(wsUrl(url, '/v1/ws'), { headers: holder }),
      ),
    );
    check('one connection too many', await request(`${url}/v1/ws`, { headers: holder }), [429]);
    for (const client of held) client.close();
    // Chats: the limit applies before the body is even read.
    await runPool(20, 4, async () => {
      const init = jsonInit('{}', flooder);
      check('chat flood', await request(`${url}/v1/chat`, init), [400, 429]);
    });
    t.diagnostic(
      `${accepted}/1500 flood publishes accepted in ${seconds.toFixed(1)} s; ${limited.length} answers 429`,
    );
    assert.ok(
      limited.some(
        (result) =>
          (result.json as { error: { code: string } }).error.code === 'too_many_connections',
      ),
    );
    assertNoViolations();
  });

  test('afterwards: the API-key client got every event once and in order; no credential was logged', async (t) => {
    await assertUnharmed(t, child(), normal, baselineMiB);
  });
});

describe('a WebSocket client that floods pings and never reads its pongs', () => {
  test('is disconnected, or its backlog bounded, rather than buffered without limit', async (t) => {
    const other = await startChild({ MAX_BODY_BYTES: String(MAX_BODY) });
    try {
      const before = rssMiB(other.pid);
      const socket = await rawUpgradedSocket(other.url, '/v1/ws');
      socket.on('error', () => {});
      const frame = clientFrame(JSON.stringify({ type: 'ping', ref: 'x'.repeat(MAX_BODY) }));
      let sent = 0;
      while (sent < 96 * 2 ** 20 && !socket.destroyed) {
        sent += frame.length;
        if (!socket.write(frame)) {
          await Promise.race([
            new Promise((resolve) => socket.once('drain', resolve)),
            sleep(2000),
          ]);
        }
      }
      await sleep(1000);
      const growth = rssMiB(other.pid) - before;
      const closed = socket.destroyed ? 'closed by the server' : 'never closed';
      socket.destroy();
      t.diagnostic(
        `${(sent / 2 ** 20).toFixed(0)} MiB of pings; server RSS +${growth.toFixed(0)} MiB; ${closed}`,
      );
      assert.ok(growth < 64, `the server's RSS grew ${growth.toFixed(0)} MiB`);
    } finally {
      await stopChild(other);
    }
  });
});
