/**
 * Tools and inputs for the hostile-input test (test/server/hostile-input.test.ts): a seeded
 * PRNG, raw HTTP exchanges and hand-made WebSocket frames for bytes no client library sends,
 * and generators of malformed requests, frames and credentials.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import type { HttpResult } from './http.js';

/**
 * A seeded pseudo-random generator (sfc32), so that a fuzz run that fails can be replayed
 * exactly from the seed it printed.
 */
export class Prng {
  #a = 0x9e3779b9;
  #b = 0x243f6a88;
  #c = 0xb7e15162;
  #d: number;

  constructor(readonly seed: number) {
    this.#d = seed >>> 0;
    for (let i = 0; i < 16; i++) this.uint32();
  }

  uint32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** An integer in [0, max). */
  int(max: number): number {
    return Math.floor((this.uint32() / 2 ** 32) * max);
  }

  /** An integer in [min, max]. */
  between(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  chance(probability: number): boolean {
    return this.uint32() / 2 ** 32 < probability;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  bytes(length: number): Buffer {
    const bytes = Buffer.allocUnsafe(length);
    for (let i = 0; i < length; i++) bytes[i] = this.int(256);
    return bytes;
  }

  string(alphabet: string, length: number): string {
    let text = '';
    for (let i = 0; i < length; i++) text += alphabet[this.int(alphabet.length)];
    return text;
  }
}

export const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** Runs `task(0)` … `task(count - 1)` with at most `concurrency` of them in flight. */
export async function runPool(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

/** The resident set size of a process (Linux), in MiB. */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  if (kib === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kib) / 1024;
}

/**
 * Reads a server's log (pino JSON lines): keeps lines at `error` level or above, and lines
 * that contain one of `secrets` (credentials that must never be logged).
 */
export class LogWatch {
  readonly errors: string[] = [];
  readonly leaks: string[] = [];
  #pending = '';

  constructor(readonly secrets: readonly string[] = []) {}

  feed(chunk: string): void {
    const lines = (this.#pending + chunk).split('\n');
    this.#pending = lines.pop() ?? '';
    for (const line of lines) {
      const level = Number(/"level":(\d+)/.exec(line)?.[1] ?? 0);
      if (level >= 50) this.errors.push(line.slice(0, 2000));
      if (this.secrets.some((secret) => line.includes(secret)))
        this.leaks.push(line.slice(0, 2000));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP

/** One HTTP response read off a raw socket; header names lower-cased. */
export interface RawResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** The body, de-chunked; only what arrived when the exchange ended. */
  readonly body: Buffer;
  /** Whether the whole body arrived (false for a stream cut by the timeout). */
  readonly complete: boolean;
}

export interface RawExchange {
  /** The first response, complete or not; undefined when not even its head arrived. */
  readonly response: RawResponse | undefined;
  /** `response`: a whole response arrived; `closed`: the server closed first; `timeout`. */
  readonly end: 'response' | 'closed' | 'timeout';
}

export interface RawHttpOptions {
  /** Gives up (and closes) after this long; what arrived so far is returned. Default 5 s. */
  readonly timeoutMs?: number;
  /** Half-closes after writing, as a client that has nothing more to send. */
  readonly halfClose?: boolean;
}

/**
 * Writes `request` as is to a fresh TCP connection to `baseUrl`'s host and port and reads the
 * first response, for requests that no HTTP client would send. The socket is always destroyed
 * at the end.
 */
export function rawHttp(
  baseUrl: string,
  request: Buffer | string,
  { timeoutMs = 5000, halfClose = false }: RawHttpOptions = {},
): Promise<RawExchange> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    const socket = net.connect({ host: hostname, port: Number(port) }, () => {
      socket.write(typeof request === 'string' ? Buffer.from(request, 'latin1') : request);
      if (halfClose) socket.end();
    });
    const finish = (end: RawExchange['end']) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ response: parseResponse(received), end });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (parseResponse(received)?.complete) finish('response');
    });
    // An error (e.g. a reset after the server's answer) is followed by 'close'.
    socket.on('error', () => {});
    socket.on('close', () => finish('closed'));
  });
}

/** The first HTTP response in `bytes`, as far as it arrived. */
export function parseResponse(bytes: Buffer): RawResponse | undefined {
  const headEnd = bytes.indexOf('\r\n\r\n');
  if (headEnd < 0) return undefined;
  const [statusLine = '', ...lines] = bytes.subarray(0, headEnd).toString('latin1').split('\r\n');
  const statusText = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1];
  if (statusText === undefined) return undefined;
  const status = Number(statusText);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const rest = bytes.subarray(headEnd + 4);
  // 1xx answers (100 Continue, 101 Switching Protocols) have no body.
  if (status < 200) return { status, headers, body: Buffer.alloc(0), complete: true };
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    return { status, headers, ...dechunk(rest) };
  }
  const length = headers['content-length'];
  if (length === undefined) return { status, headers, body: rest, complete: false };
  const body = rest.subarray(0, Number(length));
  return { status, headers, body, complete: body.length === Number(length) };
}

/** An HTTP/1.1 chunked body, decoded as far as it arrived. */
function dechunk(bytes: Buffer): { body: Buffer; complete: boolean } {
  const parts: Buffer[] = [];
  let position = 0;
  for (;;) {
    const lineEnd = bytes.indexOf('\r\n', position);
    if (lineEnd < 0) break;
    const size = Number.parseInt(bytes.subarray(position, lineEnd).toString('latin1'), 16);
    if (Number.isNaN(size)) break;
    if (size === 0) return { body: Buffer.concat(parts), complete: true };
    const start = lineEnd + 2;
    parts.push(bytes.subarray(start, Math.min(start + size, bytes.length)));
    if (bytes.length < start + size + 2) break;
    position = start + size + 2;
  }
  return { body: Buffer.concat(parts), complete: false };
}

/** A raw response as the shared `HttpResult`, for `assertApiError` and friends. */
export function toHttpResult(response: RawResponse): HttpResult {
  const text = response.body.toString('utf8');
  const headers = new Headers();
  for (const [name, value] of Object.entries(response.headers)) {
    // A header the Fetch API refuses (none should be) is left out rather than thrown on.
    try {
      headers.append(name, value);
    } catch {}
  }
  return { status: response.status, headers, text, json: parseJson(text) };
}

/** The JSON value of `text`, or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Malformed HTTP requests

export function wsKey(rng: Prng): string {
  return rng.bytes(16).toString('base64');
}

/** A well-formed request of one of the server's kinds, as text, to be mutated. */
export function templateRequest(rng: Prng): string {
  const topic = `fuzz.${rng.int(20)}`;
  const body = JSON.stringify({ data: { n: rng.int(1000), s: rng.string(ALNUM, rng.int(20)) } });
  const host = 'Host: 127.0.0.1\r\n';
  const json = 'Content-Type: application/json\r\n';
  return rng.pick([
    `POST /v1/topics/${topic}/events HTTP/1.1\r\n${host}${json}Content-Length: ${body.length}\r\n\r\n${body}`,
    `POST /v1/topics/${topic}/events HTTP/1.1\r\n${host}${json}Transfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
    `GET /v1/topics/${topic}/events?limit=${rng.between(1, 50)}&after=${rng.string(ALNUM, 8)}-1 HTTP/1.1\r\n${host}\r\n`,
    `GET /v1/topics/${topic}/events HTTP/1.1\r\n${host}Accept: text/event-stream\r\nLast-Event-ID: ${rng.string(ALNUM, 12)}\r\n\r\n`,
    `GET /v1/topics/${topic} HTTP/1.1\r\n${host}Connection: close\r\n\r\n`,
    `DELETE /v1/topics/${topic}.gone HTTP/1.1\r\n${host}\r\n`,
    `GET /healthz HTTP/1.1\r\n${host}Connection: keep-alive\r\n\r\n`,
    `GET /v1/topics/${topic}/ws HTTP/1.1\r\n${host}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${wsKey(rng)}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  ]);
}

const INSERTS = [
  '\r',
  '\n',
  '\r\n',
  '\0',
  ' ',
  '\t',
  ':',
  '%',
  '%00',
  '%zz',
  '\x7f',
  '\xff',
  '\xc3\x28',
  '\r\n\r\n',
  '\r\n ',
  'Content-Length: 7\r\n',
  'Transfer-Encoding: chunked\r\n',
  'Host: x\r\n',
  '../',
  '?',
  '#',
  '"',
  '\\',
  'ffffffffffffffff\r\n',
];

/** 1–4 byte-level mutations: overwrite, insert, delete, duplicate, truncate. */
export function mutate(rng: Prng, text: string): { bytes: Buffer; truncated: boolean } {
  let bytes = Buffer.from(text, 'latin1');
  let truncated = false;
  for (let count = rng.between(1, 4); count > 0 && bytes.length > 0; count--) {
    const at = rng.int(bytes.length);
    const span = rng.between(1, 16);
    const insert = Buffer.from(rng.pick(INSERTS), 'latin1');
    switch (rng.int(5)) {
      case 0:
        bytes[at] = rng.int(256);
        break;
      case 1:
        bytes = Buffer.concat([bytes.subarray(0, at), insert, bytes.subarray(at)]);
        break;
      case 2:
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + span)]);
        break;
      case 3:
        bytes = Buffer.concat([bytes.subarray(0, at + span), bytes.subarray(at)]);
        break;
      default:
        bytes = bytes.subarray(0, at);
        truncated = true;
    }
  }
  return { bytes, truncated };
}

export interface RawCase {
  readonly name: string;
  readonly request: string;
  /** Statuses the first answer may have; omitted: anything but a 5xx, or no answer. */
  readonly expect?: readonly number[];
  readonly halfClose?: boolean;
}

export const PUBLISH_HEAD =
  'POST /v1/topics/raw/events HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n';
const BODY = '{"data":1}';
const WS_HEAD = 'Upgrade: websocket\r\nConnection: Upgrade\r\n';

/** Request lines, headers and framing that no HTTP client sends, with what must answer them. */
export function malformedRequests(maxBodyBytes: number): RawCase[] {
  const big = 'a'.repeat(20_000);
  const manyHeaders = Array.from({ length: 1500 }, (_, i) => `x${i}: 1\r\n`).join('');
  const get = (headers: string) => `GET /healthz HTTP/1.1\r\nHost: h\r\n${headers}\r\n`;
  const post = (headers: string, body = BODY) => `${PUBLISH_HEAD}${headers}\r\n${body}`;
  const chunked = (chunks: string) => post('Transfer-Encoding: chunked\r\n', chunks);
  const oversized = `{"data":"${'x'.repeat(maxBodyBytes)}"}`;
  return [
    { name: 'HTTP/1.1 without Host', request: 'GET /healthz HTTP/1.1\r\n\r\n', expect: [400] },
    { name: 'HTTP/1.0 without Host', request: 'GET /healthz HTTP/1.0\r\n\r\n', expect: [200] },
    { name: 'HTTP/2.0 request line', request: 'GET /healthz HTTP/2.0\r\nHost: h\r\n\r\n' },
    { name: 'HTTP/9.9 request line', request: 'GET /healthz HTTP/9.9\r\nHost: h\r\n\r\n' },
    { name: 'no version', request: 'GET /healthz\r\nHost: h\r\n\r\n' },
    {
      name: 'lower-case method',
      request: 'get /healthz HTTP/1.1\r\nHost: h\r\n\r\n',
      expect: [400],
    },
    { name: 'unknown method', request: 'FOO /healthz HTTP/1.1\r\nHost: h\r\n\r\n', expect: [400] },
    { name: 'TRACE', request: 'TRACE /healthz HTTP/1.1\r\nHost: h\r\n\r\n', expect: [404] },
    { name: 'CONNECT', request: 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: h\r\n\r\n' },
    {
      name: 'absolute-form',
      request: 'GET http://evil.example/healthz HTTP/1.1\r\nHost: h\r\n\r\n',
    },
    { name: 'asterisk-form', request: 'OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n' },
    {
      name: 'space in target',
      request: 'GET /v1/topics/a b HTTP/1.1\r\nHost: h\r\n\r\n',
      expect: [400],
    },
    { name: 'bare LF line ends', request: 'GET /healthz HTTP/1.1\nHost: h\n\n' },
    { name: 'header without colon', request: get('NoColon\r\n'), expect: [400] },
    {
      name: 'space before colon',
      request: 'GET /healthz HTTP/1.1\r\nHost : h\r\n\r\n',
      expect: [400],
    },
    { name: 'obs-fold header', request: get('X-A: 1\r\n 2\r\n'), expect: [400] },
    { name: 'NUL in header value', request: get('X-A: a\0b\r\n'), expect: [400] },
    { name: 'bare CR in header value', request: get('X-A: a\rb\r\n'), expect: [400] },
    { name: 'non-token header name', request: get('X(A): 1\r\n'), expect: [400] },
    { name: 'oversized header', request: get(`X-Big: ${big}\r\n`), expect: [431] },
    {
      name: 'oversized URL',
      request: `GET /${big} HTTP/1.1\r\nHost: h\r\n\r\n`,
      expect: [414, 431],
    },
    { name: '1500 headers', request: get(manyHeaders) },
    { name: 'two Host headers', request: 'GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n' },
    {
      name: 'two different Content-Lengths',
      request: post('Content-Length: 10\r\nContent-Length: 11\r\n', `${BODY} `),
      expect: [400],
    },
    {
      name: 'Content-Length with Transfer-Encoding',
      request: post('Content-Length: 10\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n'),
      expect: [400],
    },
    { name: 'negative Content-Length', request: post('Content-Length: -1\r\n'), expect: [400] },
    { name: 'signed Content-Length', request: post('Content-Length: +10\r\n'), expect: [400] },
    { name: 'hex Content-Length', request: post('Content-Length: 0xa\r\n'), expect: [400] },
    { name: 'huge Content-Length', request: post('Content-Length: 999999999\r\n'), expect: [413] },
    {
      name: 'body past the body limit',
      request: post(`Content-Length: ${oversized.length}\r\n`, oversized),
      expect: [413],
    },
    {
      name: 'Content-Length longer than the body',
      request: post('Content-Length: 100\r\n'),
      halfClose: true,
    },
    {
      name: 'body longer than Content-Length',
      request: post('Content-Length: 10\r\n', `${BODY}GARBAGE\r\n\r\n`),
      expect: [201, 400],
    },
    { name: 'chunked: bad size', request: chunked(`zz\r\n${BODY}\r\n0\r\n\r\n`), expect: [400] },
    {
      name: 'chunked: size overflow',
      request: chunked(`fffffffffffffffffff\r\n${BODY}\r\n0\r\n\r\n`),
      expect: [400, 413],
    },
    {
      name: 'chunked: chunks past the body limit',
      request: chunked(`${`1000\r\n${'x'.repeat(4096)}\r\n`.repeat(maxBodyBytes / 2048)}0\r\n\r\n`),
      expect: [413],
    },
    {
      name: 'chunked: extension',
      request: chunked(`a;name=value\r\n${BODY}\r\n0\r\n\r\n`),
      expect: [201],
    },
    {
      name: 'chunked: 20 KB extension',
      request: chunked(`a;x=${big}\r\n${BODY}\r\n0\r\n\r\n`),
      expect: [400, 413],
    },
    {
      name: 'chunked: trailer',
      request: chunked(`a\r\n${BODY}\r\n0\r\nLast-Event-ID: x\r\n\r\n`),
      expect: [201],
    },
    { name: 'chunked: no last chunk', request: chunked(`a\r\n${BODY}\r\n`), halfClose: true },
    {
      name: 'chunked: no CRLF after data',
      request: chunked(`a\r\n${BODY}XX0\r\n\r\n`),
      expect: [400],
    },
    {
      name: 'Transfer-Encoding: gzip, chunked',
      request: post('Transfer-Encoding: gzip, chunked\r\n', `a\r\n${BODY}\r\n0\r\n\r\n`),
    },
    {
      name: 'Transfer-Encoding: chunked twice',
      request: post(
        'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n',
        `a\r\n${BODY}\r\n0\r\n\r\n`,
      ),
    },
    {
      name: 'Transfer-Encoding: identity',
      request: post('Transfer-Encoding: identity\r\n'),
      expect: [400, 501],
    },
    {
      name: 'Expect: 100-continue',
      request: post('Content-Length: 10\r\nExpect: 100-continue\r\n', ''),
    },
    {
      name: 'unknown Expect',
      request: post('Content-Length: 10\r\nExpect: 200-ok\r\n'),
      expect: [417],
    },
    {
      name: 'Upgrade: h2c (curl --http2)',
      request: get(
        'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n',
      ),
      expect: [400],
    },
    {
      name: 'Upgrade: websocket on a plain route',
      request: get(
        `${WS_HEAD}Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n`,
      ),
    },
    {
      name: 'WebSocket: bad version',
      request: `GET /v1/ws HTTP/1.1\r\nHost: h\r\n${WS_HEAD}Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 99\r\n\r\n`,
      expect: [400, 426],
    },
    {
      name: 'WebSocket: no key',
      request: `GET /v1/ws HTTP/1.1\r\nHost: h\r\n${WS_HEAD}Sec-WebSocket-Version: 13\r\n\r\n`,
      expect: [400],
    },
    {
      name: 'WebSocket route without upgrade',
      request: 'GET /v1/ws HTTP/1.1\r\nHost: h\r\n\r\n',
      expect: [426],
    },
    { name: '50 pipelined requests', request: get('').repeat(50), expect: [200] },
  ];
}

// ---------------------------------------------------------------------------------------------
// WebSocket frames

export interface FrameOptions {
  /** 1 text, 2 binary, 0 continuation, 8 close, 9 ping, 10 pong, others reserved. */
  readonly opcode?: number;
  readonly fin?: boolean;
  /** Clients must mask (RFC 6455 §5.3); an unmasked client frame is a protocol error. */
  readonly masked?: boolean;
  /** RSV1-3 bits (0x40, 0x20, 0x10): set without an extension, a protocol error. */
  readonly rsv?: number;
}

/** A client → server WebSocket frame, built by hand so that it can break the rules. */
export function clientFrame(
  payload: Buffer | string,
  { opcode = 1, fin = true, masked = true, rsv = 0 }: FrameOptions = {},
): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const length = data.length;
  const lengthBytes = length < 126 ? 0 : length < 65_536 ? 2 : 8;
  const maskStart = 2 + lengthBytes;
  const payloadStart = maskStart + (masked ? 4 : 0);
  const frame = Buffer.alloc(payloadStart + length);
  frame[0] = (fin ? 0x80 : 0) | rsv | opcode;
  const maskBit = masked ? 0x80 : 0;
  if (lengthBytes === 0) frame[1] = maskBit | length;
  else if (lengthBytes === 2) {
    frame[1] = maskBit | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = maskBit | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  if (!masked) {
    data.copy(frame, payloadStart);
    return frame;
  }
  const mask = randomBytes(4);
  mask.copy(frame, maskStart);
  for (let i = 0; i < length; i++) {
    frame[payloadStart + i] = (data[i] as number) ^ (mask[i & 3] as number);
  }
  return frame;
}

/** A frame for `ws.send`: text unless `binary`. */
export interface WsFrame {
  readonly data: string | Buffer;
  readonly binary?: boolean;
}

const BAD_TOPICS: unknown[] = ['', '../x', 'a'.repeat(129), 1, null, {}, 'a b', 'a/b', '\u0000'];

function jsonFrame(value: unknown): WsFrame {
  return { data: JSON.stringify(value) };
}

/** A frame the server must answer with an error frame (each one is a strike). */
export function badFrame(rng: Prng): WsFrame {
  switch (rng.int(12)) {
    case 0:
      return { data: rng.bytes(rng.between(1, 300)), binary: true };
    case 1:
      return { data: `x${rng.string(`${ALNUM}{}[]:,"`, rng.between(0, 200))}` };
    case 2: {
      const text = JSON.stringify({ type: 'publish', topic: 'ok', data: rng.string(ALNUM, 30) });
      return { data: text.slice(0, rng.between(1, text.length - 1)) };
    }
    case 3:
      return { data: rng.pick(['[]', 'null', '1', '"s"', 'true', '[{"type":"ping"}]']) };
    case 4:
      return jsonFrame({ type: rng.string(ALNUM, rng.between(1, 20)), topic: 'ok' });
    case 5:
      return jsonFrame({ topic: 'ok', ref: rng.int(100) });
    case 6: {
      const type = rng.pick(['subscribe', 'unsubscribe', 'publish']);
      return jsonFrame({ type, topic: rng.pick(BAD_TOPICS), data: 1 });
    }
    case 7:
      return jsonFrame({
        type: 'subscribe',
        topic: 'ok',
        last_event_id: rng.pick([1, {}, [], true]),
      });
    case 8:
      return jsonFrame({ type: 'subscribe', topic: 'ok', from: rng.pick(['end', 'START', 0, {}]) });
    case 9:
      return jsonFrame({ type: 'publish', topic: 'ok' });
    case 10: {
      const event = rng.pick(['', 'a b', 'a\nb', 7, 'e'.repeat(65)]);
      return jsonFrame({ type: 'publish', topic: 'ok', data: 1, event });
    }
    default:
      // An own "__proto__" key: JSON.parse never makes it the prototype, so there is no type.
      return { data: '{"__proto__":{"type":"ping"}}' };
  }
}

/** A frame the server answers without an error, however odd (not a strike). */
export function oddFrame(rng: Prng, maxBodyBytes: number): WsFrame {
  switch (rng.int(5)) {
    case 0: {
      const ref = rng.pick(['x'.repeat(maxBodyBytes), { a: [{ b: null }] }, -0, 1e308]);
      return jsonFrame({ type: 'ping', ref });
    }
    case 1:
      return { data: '{"type":"ping","ref":{"__proto__":{"polluted":1}},"constructor":{"a":1}}' };
    case 2: {
      const topic = `wsodd.${rng.int(5)}`;
      return jsonFrame({ type: 'subscribe', topic, last_event_id: rng.string(ALNUM, 20) });
    }
    case 3:
      return jsonFrame({ type: 'unsubscribe', topic: `never.${rng.int(1e6)}` });
    default:
      return jsonFrame({
        type: 'publish',
        topic: `wsodd.${rng.int(5)}`,
        data: [[[[[]]]]],
        event: 'a.b',
      });
  }
}

export interface ProtocolViolation {
  readonly name: string;
  readonly bytes: Buffer;
  /** The close codes the server may answer with. */
  readonly codes: readonly number[];
}

/** Frames that break RFC 6455, for a server whose frame limit is `frameLimit` bytes. */
export function protocolViolations(frameLimit: number): ProtocolViolation[] {
  const close = (payload: number[]) => clientFrame(Buffer.from(payload), { opcode: 8 });
  return [
    {
      name: 'invalid UTF-8 text',
      bytes: clientFrame(Buffer.from([0x7b, 0xff, 0x7d])),
      codes: [1007],
    },
    { name: 'overlong UTF-8 text', bytes: clientFrame(Buffer.from([0xc0, 0xaf])), codes: [1007] },
    { name: 'UTF-8 surrogate', bytes: clientFrame(Buffer.from([0xed, 0xa0, 0x80])), codes: [1007] },
    { name: 'frame over the limit', bytes: clientFrame('x'.repeat(frameLimit + 1)), codes: [1009] },
    {
      name: 'length field of 2^63-1',
      bytes: Buffer.from([0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
      codes: [1009],
    },
    {
      name: 'fragments over the limit',
      bytes: Buffer.concat([
        clientFrame('x'.repeat(frameLimit - 10), { fin: false }),
        clientFrame('x'.repeat(100), { opcode: 0 }),
      ]),
      codes: [1009],
    },
    {
      name: 'unmasked frame',
      bytes: clientFrame('{"type":"ping"}', { masked: false }),
      codes: [1002],
    },
    { name: 'RSV1 without extension', bytes: clientFrame('{}', { rsv: 0x40 }), codes: [1002] },
    { name: 'reserved opcode 3', bytes: clientFrame('x', { opcode: 3 }), codes: [1002] },
    { name: 'reserved opcode 0xB', bytes: clientFrame('x', { opcode: 0xb }), codes: [1002] },
    { name: 'continuation without start', bytes: clientFrame('x', { opcode: 0 }), codes: [1002] },
    {
      name: 'text frame inside a fragmented message',
      bytes: Buffer.concat([clientFrame('{"type":', { fin: false }), clientFrame('"ping"}')]),
      codes: [1002],
    },
    { name: 'fragmented ping', bytes: clientFrame('x', { opcode: 9, fin: false }), codes: [1002] },
    {
      name: 'ping over 125 bytes',
      bytes: clientFrame(Buffer.alloc(200), { opcode: 9 }),
      codes: [1002],
    },
    { name: 'close code 5', bytes: close([0, 5]), codes: [1002] },
    { name: 'close with a 1-byte body', bytes: close([3]), codes: [1002] },
    { name: 'close reason not UTF-8', bytes: close([0x03, 0xe8, 0xff]), codes: [1007] },
  ];
}

// ---------------------------------------------------------------------------------------------
// Credentials

function base64url(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url');
}

/** A JWT signed with HMAC-SHA256 (`header` may claim another algorithm: it is signed anyway). */
export function signJwt(
  payload: Record<string, unknown>,
  secret: string,
  header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' },
): string {
  const signed = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
  return `${signed}.${createHmac('sha256', secret).update(signed).digest('base64url')}`;
}

/**
 * Credentials that must all be refused with 401 by a server whose HS256 secret is `secret`:
 * garbage, unsigned and wrongly signed tokens, and correctly signed ones that are expired, not
 * yet valid, of another algorithm, or whose subject is missing or poses as the API keys' owner.
 * Those that are not correctly signed contain `marker`.
 */
export function junkCredentials(rng: Prng, secret: string, marker: string): string[] {
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: 'mallory', streamhub: { publish: ['**'], subscribe: ['**'] } };
  const unsigned = (header: Record<string, unknown>, signature: string) =>
    `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}.${signature}`;
  const tokens = [
    marker,
    `${marker}.${marker}.${marker}`,
    unsigned({ alg: 'none', typ: 'JWT' }, ''),
    unsigned({ alg: 'none' }, marker),
    unsigned({ alg: 'HS256' }, marker),
    `${signJwt(claims, secret).slice(0, -8)}${marker}`,
    signJwt(claims, `${secret}-but-not-quite`),
    signJwt({ ...claims, exp: now - 3600 }, secret),
    signJwt({ ...claims, nbf: now + 3600 }, secret),
    signJwt({ ...claims, sub: '\u0000api-key' }, secret),
    signJwt({ ...claims, sub: 'x'.repeat(300) }, secret),
    signJwt({ ...claims, sub: 42 }, secret),
    signJwt({ streamhub: claims.streamhub }, secret),
    signJwt(claims, secret, { alg: 'HS512' }),
    signJwt(claims, secret, { alg: 'RS256' }),
    signJwt(claims, secret, { alg: 'HS256', crit: ['x'] }),
    `${marker}${'A'.repeat(8000)}`,
  ];
  for (let i = 0; i < 30; i++) {
    const junk = rng.string(`${ALNUM}-_.~+/=`, rng.between(0, 300));
    tokens.push(rng.chance(0.5) ? `${junk}${marker}` : `${marker}.${junk}.${junk}`);
  }
  return tokens;
}

// ---------------------------------------------------------------------------------------------
// Structured HTTP abuse (well-formed HTTP, bad content)

/** One request for `fetch`, and the statuses that may answer it (any but 5xx when omitted). */
export interface RequestSpec {
  readonly what: string;
  readonly path: string;
  readonly init: RequestInit;
  readonly expect?: readonly number[];
  /** The server may cut the connection while the body is still being sent (refused uploads). */
  readonly mayReset?: boolean;
  /** An event stream may open: read it for a moment, then cut it. */
  readonly stream?: boolean;
}

const JSON_HEADERS = { 'content-type': 'application/json' };
const JSON_TOKENS = [
  '{',
  '}',
  '[',
  ']',
  ':',
  ',',
  '"data"',
  '"x"',
  '1',
  '-0',
  '1e999',
  'true',
  'null',
  '"\\ud800"',
  '"\\u0000"',
  'NaN',
  "'a'",
  '/*',
  '\\',
];
const CONTENT_TYPES = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
  'application/jsonx',
  'application/json-patch+json',
  'application/octet-stream',
  'text/event-stream',
  '*/*',
  'application/json, text/plain',
  'json',
  'application/',
];
const POISONED = [
  '{"data":1,"__proto__":{"x":1}}',
  '{"data":{"__proto__":{"x":1}}}',
  '{"data":{"constructor":{"prototype":{"x":1}}}}',
  '{"data":[{"__proto__":null}]}',
];
const WRONG_SHAPES = [
  '[]',
  'null',
  '"s"',
  '1',
  '{}',
  '{"event":"x"}',
  '{"data":1,"event":42}',
  '{"data":1,"event":""}',
  '{"data":1,"event":"a b"}',
  `{"data":1,"event":"${'e'.repeat(65)}"}`,
  '{"data":1,"extra":1}',
  '{"data":1,"event":"a\\nb"}',
  '',
];
/** Path segments: traversal in every encoding, NUL, CRLF, bidi overrides, overlong names. */
const PATH_TRICKS = [
  '..%2f..%2fetc',
  '..%2F..%2Fetc%2Fpasswd',
  '%2e%2e',
  '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
  '%252e%252e%252f',
  '..%5c..%5cwindows',
  '..%c0%af..%c0%afetc',
  '%00',
  'a%00b',
  '%0d%0aSet-Cookie:%20x=1',
  '%E2%80%AE',
  '%',
  '%zz',
  '%e9',
  't%20',
  '..',
  '.',
  'a'.repeat(129),
  'a'.repeat(1025),
  '%41'.repeat(400),
  'b'.repeat(5000),
  '%F0%9F%92%A9',
  'con',
  'a;b',
  'a%3Bb',
  'a%2Fb',
  '~root',
];
const PATH_ROUTES = [
  '/v1/topics/$/events',
  '/v1/topics/$',
  '/v1/topics/$/ws',
  '/v1/sessions/$',
  '/v1/sessions/$/stream',
  '/v1/chat/completions/$/stream',
  '/client/$',
  '/$',
  '/v1/topics/x/events/$',
];
const JUNK_IDS = [
  '-',
  '0-0',
  'a-01',
  'Z-1',
  `${'a'.repeat(33)}-1`,
  '1-99999999999999999',
  'x'.repeat(300),
  '%00',
  '..%2f',
  'a-1-1',
  ' ',
  '%ff%fe',
  '-1',
];
const JUNK_LIMITS = [
  '0',
  '-1',
  '1.5',
  '1e3',
  'abc',
  '',
  '99999999999999999999',
  'NaN',
  'Infinity',
  '0x10',
  '%205',
  '1&limit=2',
];
const ANY_ROUTES = [
  '/v1/topics/m/events',
  '/v1/topics/m',
  '/v1/ws',
  '/v1/chat',
  '/v1/chat/resume',
  '/v1/models',
  '/v1/chat/completions',
  '/v1/sessions/m',
  '/v1/sessions/m/cancel',
  '/healthz',
  '/metrics',
  '/v1/stats',
  '/',
];
/** Chat bodies that are all invalid: none may start a generation. */
const BAD_CHATS = [
  '{}',
  '{"session_id":"../x","content":"hi"}',
  '{"session_id":"s","content":""}',
  '{"session_id":"s","content":"hi","temperature":"hot"}',
  '{"session_id":"s","content":"hi","temperature":9}',
  '{"session_id":"s","content":"hi","max_tokens":-1}',
  '{"session_id":"s","content":"hi","max_tokens":1e12}',
  `{"session_id":"s","content":"hi","model":"${'m'.repeat(300)}"}`,
  '{"session_id":"s","content":"hi","extra":1}',
  `{"session_id":"${'s'.repeat(200)}","content":"hi"}`,
  '{"session_id":null,"content":"hi"}',
  '[]',
  '{"session_id":"s","content":"hi"',
];
const USER = '{"role":"user","content":"x"}';
const BAD_COMPLETIONS = [
  '{}',
  '{"messages":"hi"}',
  '{"messages":[]}',
  '{"messages":[1,2]}',
  `{"messages":[${USER}],"stream":"yes"}`,
  `{"messages":[${USER}],"n":-5}`,
  `{"model":{},"messages":[${USER}]}`,
  `{"messages":${'['.repeat(3000)}${']'.repeat(3000)}}`,
];

/**
 * About 1,500 well-formed HTTP requests with bad content: truncated JSON, token soup, bodies
 * past the limit, deep nesting, wrong content types, invalid UTF-8, prototype keys, wrong
 * shapes, path tricks, junk ids and query strings, odd methods and headers, and invalid chat,
 * completion and session requests.
 */
export function structuredRequests(rng: Prng, maxBodyBytes: number): RequestSpec[] {
  const specs: RequestSpec[] = [];
  const post = (
    what: string,
    path: string,
    body: BodyInit,
    expect?: readonly number[],
    headers: Record<string, string> = JSON_HEADERS,
  ) => specs.push({ what, path, init: { method: 'POST', headers, body }, expect });
  const publishPath = () => `/v1/topics/abuse.${rng.int(10)}/events`;
  const validBody = () =>
    JSON.stringify({ data: { s: rng.string(ALNUM, rng.between(0, 40)) }, event: 'e.x' });
  const printable = (length: number) =>
    rng.string(' !"#$%&\'()*+,-./09:;<=>?@AZaz[\\]^_`{|}~\x80\xa0\xff', length);

  for (let i = 0; i < 150; i++) {
    const body = validBody();
    post('truncated JSON', publishPath(), body.slice(0, rng.between(1, body.length - 1)), [400]);
  }
  for (let i = 0; i < 150; i++) {
    const tokens = Array.from({ length: rng.between(1, 30) }, () => rng.pick(JSON_TOKENS));
    post('token soup', publishPath(), tokens.join(rng.pick(['', ' ', '\n'])), [201, 400]);
  }
  for (let i = 0; i < 40; i++) {
    const size = rng.between(maxBodyBytes + 1, maxBodyBytes * 16);
    const body = `{"data":"${'x'.repeat(size)}"}`;
    specs.push({
      what: `body of ${size} B`,
      path: publishPath(),
      init: { method: 'POST', headers: JSON_HEADERS, body },
      expect: [413],
      mayReset: true,
    });
  }
  for (let i = 0; i < 60; i++) {
    const depth = rng.between(10, maxBodyBytes / 2 - 10);
    const nested =
      rng.chance(0.5) && depth < maxBodyBytes / 6
        ? `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`
        : `${'['.repeat(depth)}${']'.repeat(depth)}`;
    post(`depth ${depth}`, publishPath(), `{"data":${nested}}`, [201, 400]);
  }
  for (let i = 0; i < 80; i++) {
    post('content type', publishPath(), validBody(), [415], {
      'content-type': rng.pick(CONTENT_TYPES),
    });
  }
  for (let i = 0; i < 60; i++) {
    const high = Buffer.from(
      Array.from({ length: rng.between(1, 40) }, () => rng.between(0x80, 0xff)),
    );
    post(
      'invalid UTF-8',
      publishPath(),
      Buffer.concat([Buffer.from('{"data":"'), high, Buffer.from('"}')]),
      [201, 400],
    );
  }
  for (const body of POISONED) post('prototype keys', publishPath(), body, [400]);
  for (let i = 0; i < 80; i++) post('wrong shape', publishPath(), rng.pick(WRONG_SHAPES), [400]);

  for (const segment of PATH_TRICKS) {
    for (const route of PATH_ROUTES)
      specs.push({ what: 'path trick', path: route.replace('$', segment), init: {} });
  }
  for (let i = 0; i < 100; i++) {
    const segment = rng
      .string("abz09.-_~!$&'()*+,;=@/%\\", rng.between(1, 40))
      .replace(/%(?![0-9a-fA-F]{2})/g, () => `%${rng.pick(['zz', '2f', '00', 'c0', '2e', 'ff'])}`);
    specs.push({
      what: 'random path',
      path: rng.pick(PATH_ROUTES).replace('$', segment),
      init: { method: rng.pick(['GET', 'DELETE', 'POST']) },
    });
  }

  for (let i = 0; i < 150; i++) {
    const query = rng.pick([
      () => `after=${rng.pick(JUNK_IDS)}`,
      () => `limit=${rng.pick(JUNK_LIMITS)}`,
      () => `after=${rng.pick(JUNK_IDS)}&limit=${rng.pick(JUNK_LIMITS)}`,
      () => 'after=a&after=b',
      () =>
        `last_event_id=${rng.pick(JUNK_IDS)}&from=${rng.pick(['start', 'end', '', 'START', '0'])}`,
    ])();
    const stream = rng.chance(0.3);
    specs.push({
      what: `query ${query}${stream ? ' (SSE)' : ''}`,
      path: `/v1/topics/abuse.${rng.int(10)}/events?${query}`,
      init: stream ? { headers: { accept: 'text/event-stream' } } : {},
      expect: [200, 400],
      stream,
    });
  }
  for (let i = 0; i < 100; i++) {
    const method = rng.pick(['PUT', 'PATCH', 'OPTIONS', 'DELETE', 'HEAD', 'POST', 'GET']);
    const path = rng.pick(ANY_ROUTES);
    const body =
      method === 'GET' || method === 'HEAD' ? {} : { body: rng.pick(['', '{', '{}', 'x']) };
    specs.push({ what: method, path, init: { method, ...body } });
  }
  for (let i = 0; i < 150; i++) {
    switch (rng.int(5)) {
      case 0: {
        const key = printable(rng.between(0, 300));
        const headers = { ...JSON_HEADERS, 'idempotency-key': key };
        specs.push({
          what: `Idempotency-Key ${JSON.stringify(key.slice(0, 40))}`,
          path: publishPath(),
          init: { method: 'POST', headers, body: validBody() },
          expect: [200, 201, 400],
        });
        break;
      }
      case 1: {
        const accept = rng.pick([
          'text/event-stream;q=0',
          'text/event-streamx',
          '*/*',
          printable(1000),
          'application/json, text/event-stream',
        ]);
        specs.push({
          what: 'odd Accept',
          path: '/v1/topics/abuse.0/events',
          init: { headers: { accept } },
          expect: [200],
          stream: true,
        });
        break;
      }
      case 2: {
        const headers: Record<string, string> = {};
        for (let h = rng.between(1, 100); h > 0; h--)
          headers[`x-${rng.string(ALNUM, 8)}`] = printable(rng.between(0, 60));
        specs.push({
          what: 'many odd headers',
          path: '/v1/topics/abuse.0',
          init: { headers },
          expect: [200],
        });
        break;
      }
      case 3: {
        const headers = {
          'last-event-id': printable(200),
          'x-forwarded-for': printable(30),
          cookie: printable(100),
        };
        specs.push({
          what: 'history with junk headers',
          path: '/v1/topics/abuse.1/events',
          init: { headers },
          expect: [200],
        });
        break;
      }
      default:
        specs.push({
          what: 'CORS preflight',
          path: '/v1/topics/abuse.1/events',
          init: {
            method: 'OPTIONS',
            headers: {
              origin: printable(40),
              'access-control-request-method': rng.pick(['POST', 'PUT', 'FOO']),
            },
          },
        });
    }
  }
  for (let i = 0; i < 150; i++) {
    switch (rng.int(5)) {
      case 0:
        post('bad chat', '/v1/chat', rng.pick(BAD_CHATS), [400]);
        break;
      case 1:
        post('bad completion', '/v1/chat/completions', rng.pick(BAD_COMPLETIONS), [400]);
        break;
      case 2: {
        const body = rng.pick([
          `{"session_id":"none.${rng.int(1e6)}"}`,
          '{"session_id":"a b"}',
          '{}',
          `{"session_id":"x","last_event_id":"${'z'.repeat(300)}"}`,
        ]);
        post('resume of nothing', '/v1/chat/resume', body, [400, 404]);
        break;
      }
      case 3: {
        const path = `/v1/sessions/none.${rng.int(1e6)}${rng.pick(['', '/stream', '/cancel'])}`;
        specs.push({
          what: 'unknown session',
          path,
          init: { method: rng.pick(['GET', 'POST', 'DELETE']) },
          expect: [204, 400, 404, 409],
        });
        break;
      }
      default: {
        const path = `/v1/chat/completions/${rng.string(ALNUM, 20)}/stream`;
        specs.push({
          what: 'unknown completion',
          path,
          init: { headers: { 'last-event-id': rng.string(ALNUM, 10) } },
          expect: [404],
        });
      }
    }
  }
  return specs;
}
