import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { RunningServer } from '../../src/server/server.js';

import { publish, type Settings, startTestServer } from './server.js';

// Defined beside PATIENCE_MS, so that the cluster fixture (used by bench/ too) needs no more;
// kept importable from here, where most tests look for it.
export { eventually } from './patience.js';

/** A response read to the end, for assertions on status, headers and body. */
export interface HttpResult {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** The body parsed as JSON, or `undefined` when it is not JSON. */
  readonly json: unknown;
}

export async function request(url: string, init: RequestInit = {}): Promise<HttpResult> {
  return resultOf(await fetch(url, init));
}

/** A response read to the end. */
export async function resultOf(response: Response): Promise<HttpResult> {
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** POSTs a raw body (any bytes, any content type) to a topic's publish endpoint. */
export function postRaw(
  baseUrl: string,
  topic: string,
  body: string,
  headers: Record<string, string> = { 'content-type': 'application/json' },
): Promise<HttpResult> {
  return request(`${baseUrl}/v1/topics/${topic}/events`, { method: 'POST', headers, body });
}

const STACK_FRAME = /\bat .+:\d+:\d+|node_modules|node:internal|\.(?:js|ts):\d+/;

/**
 * Asserts the error shape of docs/api.md §0 `{"error": {"code", "message"}}` with a snake_case code,
 * the expected status (and code, when given), a JSON content type, and no leaked stack trace.
 */
export function assertApiError(result: HttpResult, status: number, code?: string): void {
  assert.equal(result.status, status, `status of ${result.text}`);
  assert.match(result.headers.get('content-type') ?? '', /^application\/json/);
  const body = result.json as { error?: { code?: unknown; message?: unknown } } | undefined;
  assert.ok(body?.error !== undefined, `error envelope in ${result.text}`);
  assert.deepEqual(Object.keys(body).sort(), ['error']);
  assert.match(String(body.error.code), /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/);
  assert.equal(typeof body.error.message, 'string');
  if (code !== undefined) assert.equal(body.error.code, code);
  assert.doesNotMatch(result.text, STACK_FRAME, 'error body leaks a stack trace');
  assert.ok(!('stack' in body.error), 'error body leaks a stack trace');
}

export interface HistoryEvent {
  readonly id: string;
  readonly event: string;
  readonly data: unknown;
  readonly time: string;
}

export interface HistoryPageJson {
  readonly topic: string;
  readonly events: HistoryEvent[];
  readonly next: string | null;
}

/** GETs `url`, which must answer 200, and returns its JSON body. */
export async function getJson<T>(url: string): Promise<T> {
  const result = await request(url);
  assert.equal(result.status, 200, result.text);
  return result.json as T;
}

/** One history page; `query` is appended as is (e.g. `after=...&limit=5`). */
export function historyPage(baseUrl: string, topic: string, query = ''): Promise<HistoryPageJson> {
  return getJson(`${baseUrl}/v1/topics/${topic}/events${query ? `?${query}` : ''}`);
}

/** Every retained event id of a topic, oldest first, following `next` across pages. */
export async function allHistoryIds(baseUrl: string, topic: string): Promise<string[]> {
  const ids: string[] = [];
  let query = 'limit=1000';
  for (;;) {
    const page = await historyPage(baseUrl, topic, query);
    ids.push(...page.events.map((event) => event.id));
    if (page.next === null) return ids;
    query = `limit=1000&after=${encodeURIComponent(page.next)}`;
  }
}

/**
 * Publishes `count` events `{ n: i }` with `concurrency` requests in flight and returns the
 * ids in the order the server answered. `beforeEach` may pause the loop (e.g. to drop a
 * subscriber at a chosen point).
 */
export async function publishMany(
  baseUrl: string,
  topic: string,
  count: number,
  options: {
    concurrency?: number;
    data?: (n: number) => unknown;
    beforeEach?: (n: number) => Promise<void> | void;
  } = {},
): Promise<string[]> {
  const { concurrency = 1, data = (n: number) => ({ n }), beforeEach } = options;
  const ids: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const n = next++;
      await beforeEach?.(n);
      ids.push((await publish(baseUrl, topic, data(n))).id);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return ids;
}

let topicCounter = 0;

/** A topic name no other test uses. */
export function uniqueTopic(prefix: string): string {
  topicCounter += 1;
  return `${prefix}.${process.pid}.${topicCounter}`;
}

/**
 * Records the server side of every SSE response so a test can cut them, as a proxy timeout
 * or a network failure would; the client sees a dropped connection and has to resume.
 */
export function trackSseResponses(server: RunningServer): { dropAll(): number } {
  const open = new Set<ServerResponse>();
  server.app.server.on('request', (req, res: ServerResponse) => {
    if (!req.headers.accept?.includes('text/event-stream')) return;
    open.add(res);
    res.on('close', () => open.delete(res));
  });
  return {
    dropAll() {
      const count = open.size;
      for (const res of open) res.destroy();
      open.clear();
      return count;
    },
  };
}

/**
 * A sample's value in Prometheus text format, `undefined` when absent. `labels` must list
 * every label of the sample (in any order).
 */
export function metricValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (match === null || match[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      found[pair[1] as string] = pair[2] as string;
    }
    const wanted = Object.entries(labels);
    if (
      wanted.length === Object.keys(found).length &&
      wanted.every(([key, value]) => found[key] === value)
    ) {
      return Number(match[3]);
    }
  }
  return undefined;
}

export async function metricsText(baseUrl: string): Promise<string> {
  const result = await request(`${baseUrl}/metrics`);
  assert.equal(result.status, 200);
  return result.text;
}

let collectGarbage: (() => void) | undefined;

/** A full garbage collection, whether or not node runs with --expose-gc. */
export function forceGc(): void {
  if (collectGarbage === undefined) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (exposed !== undefined) collectGarbage = exposed;
    else {
      setFlagsFromString('--expose-gc');
      collectGarbage = runInNewContext('gc') as () => void;
    }
  }
  collectGarbage();
  collectGarbage();
}

/**
 * A lean SSE reader that keeps only event ids (and counts heartbeat comments), for tests that
 * move megabytes and must not hold them in the test process.
 */
export class SseIdReader {
  readonly ids: string[] = [];
  readonly #controller = new AbortController();
  readonly done: Promise<void>;

  constructor(url: string, headers: Record<string, string> = {}) {
    this.done = this.#read(url, headers).catch(() => {});
  }

  close(): void {
    this.#controller.abort();
  }

  async #read(url: string, headers: Record<string, string>): Promise<void> {
    const response = await fetch(url, {
      headers: { accept: 'text/event-stream', ...headers },
      signal: this.#controller.signal,
    });
    const reader = response.body?.getReader();
    if (reader === undefined) return;
    const decoder = new TextDecoder();
    let pending = '';
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      pending += decoder.decode(chunk.value, { stream: true });
      let start = 0;
      for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n', start)) {
        // Copied: a slice would keep the whole chunk, payload included, alive in V8.
        if (pending.startsWith('id: ', start)) this.ids.push(copy(pending.slice(start + 4, end)));
        start = end + 1;
      }
      pending = pending.slice(start);
    }
  }
}

/**
 * Starts a server with `settings` before the enclosing `describe` block's tests and shuts it
 * down after them; call the returned function inside tests to get it.
 */
export function useServer(settings: Settings = {}): () => RunningServer {
  let server: RunningServer | undefined;
  before(async () => {
    server = await startTestServer(settings);
  });
  after(async () => {
    await server?.shutdown();
  });
  return () => {
    assert.ok(server, 'server not started');
    return server;
  };
}

function copy(text: string): string {
  return Buffer.from(text).toString();
}
