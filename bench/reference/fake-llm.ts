import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listen } from './common.js';

/**
 * A lean OpenAI-compatible streaming upstream for the gateway benchmark, run as its own
 * process so its CPU is not counted as streamhub's. Only what a streaming chat completion
 * needs: `POST /v1/chat/completions` with `stream: true`. The model name sets the pace:
 * `bench-20tps` streams 20 tokens/s (one every 50 ms), `bench-max` as fast as the socket takes
 * them. `max_tokens` (default 16) sets the reply length. The first token goes out with the
 * headers, so time to first token is the path's own latency, not a simulated model's.
 */

interface CompletionBody {
  model?: unknown;
  stream?: unknown;
  max_tokens?: unknown;
  stream_options?: { include_usage?: unknown } | null;
}

/** Token text as models stream it: a word with its leading space. */
const TOKEN = JSON.stringify({ content: ' tok' });
const ROLE = JSON.stringify({ role: 'assistant', content: '', refusal: null });
const MODEL_RE = /^bench-(?:(\d+(?:\.\d+)?)tps|max)$/;

let completions = 0;

function fail(res: ServerResponse, status: number, message: string): void {
  const body = JSON.stringify({
    error: { message, type: 'invalid_request_error', param: null, code: null },
  });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

function stream(res: ServerResponse, body: CompletionBody): void {
  const model = typeof body.model === 'string' ? body.model : '';
  const pace = MODEL_RE.exec(model);
  if (!pace || body.stream !== true) {
    fail(res, 400, 'this upstream streams only, models bench-<n>tps or bench-max');
    return;
  }
  const intervalMs = pace[1] === undefined ? 0 : 1000 / Number(pace[1]);
  const tokens = typeof body.max_tokens === 'number' ? body.max_tokens : 16;
  const usage = body.stream_options?.include_usage === true;
  // Every chunk of one completion shares everything but its delta, so the JSON is assembled
  // from pre-serialized parts instead of a JSON.stringify per token.
  const id = `chatcmpl-bench${++completions}`;
  const head = `data: {"id":"${id}","object":"chat.completion.chunk","created":${Math.floor(
    Date.now() / 1000,
  )},"model":${JSON.stringify(model)},"system_fingerprint":"fp_bench","choices":[{"index":0,"delta":`;
  const tail = `${usage ? ',"usage":null' : ''}}\n\n`;
  const chunk = (delta: string, finish: string | null) =>
    `${head}${delta},"logprobs":null,"finish_reason":${finish === null ? 'null' : `"${finish}"`}}]${tail}`;
  const tokenChunk = chunk(TOKEN, null);

  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
  });
  let sent = 0;
  // A client that leaves is noticed at the next token: at most one interval of wasted timer.
  const next = (): void => {
    if (res.destroyed) return;
    if (sent >= tokens) {
      const usageChunk = usage
        ? `data: {"id":"${id}","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":${tokens},"total_tokens":${tokens + 1}}}\n\n`
        : '';
      res.end(`${chunk('{}', 'stop')}${usageChunk}data: [DONE]\n\n`);
      return;
    }
    // OpenAI's first chunk carries the role; it travels in the same write as the first token.
    const ok = res.write(sent++ === 0 ? chunk(ROLE, null) + tokenChunk : tokenChunk);
    if (intervalMs > 0) setTimeout(next, intervalMs);
    else if (ok) setImmediate(next);
    else res.once('drain', next); // as fast as the reader takes them, never into a buffer
  };
  next();
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
    req.resume();
    fail(res, 404, `no route ${req.method} ${req.url}`);
    return;
  }
  let text = '';
  req.setEncoding('utf8');
  req.on('data', (c: string) => {
    text += c;
  });
  req.on('end', () => {
    let body: CompletionBody;
    try {
      body = JSON.parse(text) as CompletionBody;
    } catch {
      fail(res, 400, 'bad JSON');
      return;
    }
    stream(res, body);
  });
}

const server = createServer(handle);
// Idle keep-alive connections of the gateway's pool must outlive the pauses between phases.
server.keepAliveTimeout = 60_000;
listen(server, 8081);
