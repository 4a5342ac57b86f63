import { randomUUID } from 'node:crypto';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real OpenAI-compatible HTTP upstream on a free loopback port, for tests of the provider
 * layer over real sockets. Each chat completion request consumes the next queued behaviour
 * (or the default one); the server records every request and counts the ones the client
 * abandoned, so a test can prove that an abort really closed the upstream connection.
 */
export type UpstreamBehaviour =
  | {
      readonly kind: 'ok';
      /** Tokens as sent, one content chunk each. */
      readonly tokens: readonly string[];
      readonly tokenDelayMs: number;
      readonly usage: boolean;
    }
  | {
      readonly kind: 'status';
      readonly status: number;
      readonly headers: Readonly<Record<string, string>>;
      readonly body: unknown;
    }
  | { readonly kind: 'resetBeforeFirstToken' }
  | { readonly kind: 'resetAfterTokens'; readonly tokens: number }
  | { readonly kind: 'stallBeforeHeaders' }
  | { readonly kind: 'stallBeforeFirstToken' }
  | { readonly kind: 'stallAfterTokens'; readonly tokens: number }
  | { readonly kind: 'endAfterTokens'; readonly tokens: number }
  | { readonly kind: 'malformedChunk'; readonly afterTokens: number };

export const DEFAULT_REPLY = 'Hello from the mock upstream, streaming token by token.';

/** `'a b c'` → `['a', ' b', ' c']`: words with their leading space, as models stream them. */
export function tokenize(text: string): string[] {
  return text.split(/(?= )/);
}

function openAiError(message: string, type: string, code: string | null) {
  return { error: { message, type, param: null, code } };
}

/** Builders for the behaviours, named after what the test wants the upstream to do. */
export const upstream = {
  ok: (options: { reply?: string; tokenDelayMs?: number; usage?: boolean } = {}) =>
    ({
      kind: 'ok',
      tokens: tokenize(options.reply ?? DEFAULT_REPLY),
      tokenDelayMs: options.tokenDelayMs ?? 0,
      usage: options.usage ?? true,
    }) satisfies UpstreamBehaviour,
  slowDrip: (msPerToken: number, reply?: string) =>
    upstream.ok({ tokenDelayMs: msPerToken, ...(reply === undefined ? {} : { reply }) }),
  status: (status: number, headers: Record<string, string> = {}, body?: unknown) =>
    ({
      kind: 'status',
      status,
      headers,
      body: body ?? openAiError(`mock upstream answered ${status}`, 'server_error', null),
    }) satisfies UpstreamBehaviour,
  /** `retryAfter` is sent as is: seconds (`'1'`) or an HTTP date. */
  status429: (retryAfter?: string, extraHeaders: Record<string, string> = {}) =>
    upstream.status(
      429,
      { ...(retryAfter === undefined ? {} : { 'retry-after': retryAfter }), ...extraHeaders },
      openAiError('Rate limit reached for requests', 'requests', 'rate_limit_exceeded'),
    ),
  status500: () =>
    upstream.status(500, {}, openAiError('The server had an error', 'server_error', null)),
  resetBeforeFirstToken: () => ({ kind: 'resetBeforeFirstToken' }) satisfies UpstreamBehaviour,
  resetAfterTokens: (tokens: number) =>
    ({ kind: 'resetAfterTokens', tokens }) satisfies UpstreamBehaviour,
  /** Accepts the request and never answers, like an upstream too busy to start. */
  stallBeforeHeaders: () => ({ kind: 'stallBeforeHeaders' }) satisfies UpstreamBehaviour,
  /** Sends the stream's headers, then nothing. */
  stallBeforeFirstToken: () => ({ kind: 'stallBeforeFirstToken' }) satisfies UpstreamBehaviour,
  stallAfterTokens: (tokens: number) =>
    ({ kind: 'stallAfterTokens', tokens }) satisfies UpstreamBehaviour,
  /** Ends the response properly but early: no finish reason, no `[DONE]`. */
  endAfterTokens: (tokens: number) =>
    ({ kind: 'endAfterTokens', tokens }) satisfies UpstreamBehaviour,
  malformedChunk: (afterTokens = 0) =>
    ({ kind: 'malformedChunk', afterTokens }) satisfies UpstreamBehaviour,
};

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** The parsed JSON body, or `undefined` without one. */
  readonly body: unknown;
}

interface CompletionRequestBody {
  model?: string;
  stream?: boolean;
  max_tokens?: number;
  messages?: { content?: unknown }[];
}

export class MockUpstream {
  /** Used when the queue is empty. */
  defaultBehaviour: UpstreamBehaviour = upstream.ok();
  readonly models: string[] = ['gpt-4o-mini', 'mock-upstream-model'];
  readonly requests: RecordedRequest[] = [];
  /** Responses the client closed before they ended (the mock's own resets excluded). */
  abortedRequests = 0;
  readonly #queue: UpstreamBehaviour[] = [];
  readonly #server: Server;
  readonly #timers = new Set<NodeJS.Timeout>();

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(): Promise<MockUpstream> {
    const server = createServer();
    const mock = new MockUpstream(server);
    server.on('request', (req, res) => {
      mock.#handle(req, res).catch((error: unknown) => res.destroy(error as Error));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return mock;
  }

  /** The base URL an OpenAI client is given, `/v1` included. */
  get baseURL(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/v1`;
  }

  /** Chat completion requests received so far. */
  get completionRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.path === '/v1/chat/completions');
  }

  /** Behaviours for the next chat completion requests, one each, in order. */
  enqueue(...behaviours: UpstreamBehaviour[]): void {
    this.#queue.push(...behaviours);
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const text = await readBody(req);
    const body = text === '' ? undefined : (JSON.parse(text) as unknown);
    const path = new URL(req.url ?? '/', 'http://upstream').pathname;
    this.requests.push({ method: req.method ?? 'GET', path, headers: req.headers, body });

    if (req.method === 'GET' && path === '/v1/models') {
      sendJson(res, 200, {
        object: 'list',
        data: this.models.map((id) => ({ id, object: 'model', created: 0, owned_by: 'mock' })),
      });
    } else if (req.method === 'POST' && path === '/v1/chat/completions') {
      this.#complete(res, (body ?? {}) as CompletionRequestBody);
    } else {
      sendJson(
        res,
        404,
        openAiError(`no route ${req.method} ${path}`, 'invalid_request_error', null),
      );
    }
  }

  #complete(res: ServerResponse, request: CompletionRequestBody): void {
    const behaviour = this.#queue.shift() ?? this.defaultBehaviour;
    let resetByUs = false;
    res.on('close', () => {
      if (!res.writableFinished && !resetByUs) this.abortedRequests++;
    });
    // Ending the socket mid-response is how a crashed upstream or a dropped connection looks;
    // a FIN after what was written, not an RST, so tokens already sent still reach the client.
    const drop = () => {
      resetByUs = true;
      res.socket?.end();
    };
    const chunks = new ChunkWriter(res, request.model ?? 'gpt-4o-mini');
    const tokens = behaviour.kind === 'ok' ? behaviour.tokens : tokenize(DEFAULT_REPLY);
    switch (behaviour.kind) {
      case 'status':
        sendJson(res, behaviour.status, behaviour.body, behaviour.headers);
        return;
      case 'resetBeforeFirstToken':
        drop();
        return;
      case 'stallBeforeHeaders':
        return;
      case 'stallBeforeFirstToken':
        chunks.open(); // headers only, then silence until the client gives up
        return;
      case 'resetAfterTokens':
        chunks.begin(tokens.slice(0, behaviour.tokens));
        drop();
        return;
      case 'stallAfterTokens':
        chunks.begin(tokens.slice(0, behaviour.tokens));
        return;
      case 'endAfterTokens':
        chunks.begin(tokens.slice(0, behaviour.tokens));
        res.end();
        return;
      case 'malformedChunk':
        chunks.begin(tokens.slice(0, behaviour.afterTokens));
        res.write('data: {"id": "chatcmpl-broken", "choices": [{"delta": \n\n');
        res.end();
        return;
      case 'ok':
        if (request.stream === true) this.#stream(res, chunks, behaviour, request);
        else sendJson(res, 200, completion(request, behaviour.tokens));
    }
  }

  #stream(
    res: ServerResponse,
    chunks: ChunkWriter,
    behaviour: Extract<UpstreamBehaviour, { kind: 'ok' }>,
    request: CompletionRequestBody,
  ): void {
    const limit = Math.min(behaviour.tokens.length, request.max_tokens ?? Infinity);
    chunks.open();
    let sent = 0;
    const next = () => {
      if (res.destroyed) return;
      if (sent < limit) {
        chunks.delta(behaviour.tokens[sent++] as string);
        this.#later(next, behaviour.tokenDelayMs);
        return;
      }
      chunks.finish(limit < behaviour.tokens.length ? 'length' : 'stop');
      if (behaviour.usage) chunks.usage(usage(request, limit));
      res.end('data: [DONE]\n\n');
    };
    this.#later(next, behaviour.tokenDelayMs);
  }

  #later(callback: () => void, ms: number): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      callback();
    }, ms);
    this.#timers.add(timer);
  }
}

/** Writes `chat.completion.chunk` SSE events exactly as OpenAI lays them out. */
class ChunkWriter {
  readonly #id = `chatcmpl-${randomUUID()}`;
  readonly #created = Math.floor(Date.now() / 1000);
  #first = true;

  constructor(
    readonly res: ServerResponse,
    readonly model: string,
  ) {}

  open(): void {
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    this.res.flushHeaders();
  }

  /** The headers, then these tokens. */
  begin(tokens: readonly string[]): void {
    this.open();
    for (const token of tokens) this.delta(token);
  }

  delta(content: string): void {
    // OpenAI's first chunk carries the role (and empty content) before any text.
    if (this.#first) {
      this.#first = false;
      this.#write([choice({ role: 'assistant', content: '', refusal: null }, null)]);
    }
    this.#write([choice({ content }, null)]);
  }

  finish(reason: string): void {
    this.#write([choice({}, reason)]);
  }

  usage(value: ReturnType<typeof usage>): void {
    this.#write([], value);
  }

  #write(choices: unknown[], usageValue: unknown = null): void {
    const chunk = {
      id: this.#id,
      object: 'chat.completion.chunk',
      created: this.#created,
      model: this.model,
      service_tier: 'default',
      system_fingerprint: 'fp_mock',
      choices,
      usage: usageValue,
    };
    this.res.write(`data: ${JSON.stringify(chunk)}\n\n`);
  }
}

function choice(delta: object, finishReason: string | null) {
  return { index: 0, delta, logprobs: null, finish_reason: finishReason };
}

function usage(request: CompletionRequestBody, completionTokens: number) {
  const promptTokens = (request.messages ?? []).reduce(
    (sum, message) => sum + (String(message.content ?? '').match(/\S+/g)?.length ?? 0),
    0,
  );
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

function completion(request: CompletionRequestBody, tokens: readonly string[]) {
  const limit = Math.min(tokens.length, request.max_tokens ?? Infinity);
  return {
    id: `chatcmpl-${randomUUID()}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: request.model ?? 'gpt-4o-mini',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: tokens.slice(0, limit).join(''), refusal: null },
        logprobs: null,
        finish_reason: limit < tokens.length ? 'length' : 'stop',
      },
    ],
    usage: usage(request, limit),
    service_tier: 'default',
    system_fingerprint: 'fp_mock',
  };
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req.setEncoding('utf8')) text += chunk;
  return text;
}
