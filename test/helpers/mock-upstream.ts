import { randomUUID } from 'node:crypto';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  choicesReply,
  logprobsReply,
  pythonJson,
  type ReplyScript,
  refusalReply,
  type ScriptChunk,
  type ToolCall,
  textReply,
  tokenize,
  toolCallReply,
  vendorReply,
} from './upstream-replies.js';

export { tokenize } from './upstream-replies.js';

/** How the upstream writes its JSON: compactly like OpenAI, or like Python's `json.dumps`. */
export type JsonFormat = 'compact' | 'python';

/**
 * A real OpenAI-compatible HTTP upstream on a free loopback port, for tests of the provider
 * layer and the front door over real sockets. Each chat completion request consumes the next
 * queued behaviour (or the default one); the server records every request (headers, body as
 * parsed and as sent) and every chunk it streams, and counts the responses the client
 * abandoned, so a test can prove that an abort really closed the upstream connection.
 */
export type UpstreamBehaviour =
  | {
      readonly kind: 'ok';
      /** Tokens as sent, one content chunk each; `max_tokens` cuts them. */
      readonly tokens: readonly string[];
      readonly tokenDelayMs: number;
      readonly usage: boolean;
    }
  | {
      readonly kind: 'script';
      readonly script: ReplyScript;
      readonly tokenDelayMs: number;
      readonly usage: boolean;
      readonly format: JsonFormat;
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

export function openAiError(
  message: string,
  type: string,
  code: string | null,
  param: string | null = null,
) {
  return { error: { message, type, param, code } };
}

interface ScriptOptions {
  readonly tokenDelayMs?: number;
  readonly usage?: boolean;
  readonly format?: JsonFormat;
}

function scripted(script: ReplyScript, options: ScriptOptions = {}) {
  return {
    kind: 'script',
    script,
    tokenDelayMs: options.tokenDelayMs ?? 0,
    usage: options.usage ?? true,
    format: options.format ?? 'compact',
  } satisfies UpstreamBehaviour;
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
  /** Any reply of `upstream-replies.ts`, streamed or answered whole. */
  script: scripted,
  /** Calls of these tools, one after the other, arguments split across chunks. */
  toolCalls: (calls: readonly ToolCall[], options: ScriptOptions & { pieceChars?: number } = {}) =>
    scripted(toolCallReply(calls, options.pieceChars), options),
  refusal: (text: string, options?: ScriptOptions) => scripted(refusalReply(text), options),
  logprobs: (reply: string, options?: ScriptOptions) =>
    scripted(logprobsReply(tokenize(reply)), options),
  /** `reasoning_content` deltas and top-level fields of a vendor's own. */
  vendorFields: (reasoning: string, reply: string, options?: ScriptOptions) =>
    scripted(vendorReply(tokenize(reasoning), tokenize(reply)), options),
  /** One reply per choice, as `n` asks for. */
  choices: (replies: readonly string[], options?: ScriptOptions) =>
    scripted(choicesReply(replies), options),
  status: (status: number, headers: Record<string, string> = {}, body?: unknown) =>
    ({
      kind: 'status',
      status,
      headers,
      body: body ?? openAiError(`mock upstream answered ${status}`, 'server_error', null),
    }) satisfies UpstreamBehaviour,
  /** OpenAI's 400, naming the offending parameter. */
  badRequest: (message: string, param: string | null = null, code: string | null = null) =>
    upstream.status(400, {}, openAiError(message, 'invalid_request_error', code, param)),
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
  /** The body's text exactly as received. */
  readonly rawBody: string;
}

/** What the upstream answered one chat completion request with. */
export interface RecordedAnswer {
  readonly request: RecordedRequest;
  /** The `data:` payload of every SSE event streamed, `[DONE]` included. */
  readonly events: string[];
  /** The whole body of an answer that was not a stream. */
  body?: string;
}

interface CompletionRequestBody {
  model?: string;
  stream?: boolean;
  stream_options?: { include_usage?: boolean } | null;
  max_tokens?: number;
  messages?: { content?: unknown }[];
}

export class MockUpstream {
  /** Used when the queue is empty. */
  defaultBehaviour: UpstreamBehaviour = upstream.ok();
  readonly models: string[] = ['gpt-4o-mini', 'mock-upstream-model'];
  /** `GET /models` answers this status (with an OpenAI error body unless 200). */
  modelsStatus = 200;
  readonly requests: RecordedRequest[] = [];
  readonly answers: RecordedAnswer[] = [];
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

  /** Forgets what was received and answered, and any behaviour still queued. */
  reset(): void {
    this.requests.length = 0;
    this.answers.length = 0;
    this.#queue.length = 0;
    this.abortedRequests = 0;
    this.modelsStatus = 200;
    this.defaultBehaviour = upstream.ok();
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawBody = await readBody(req);
    const body = rawBody === '' ? undefined : (JSON.parse(rawBody) as unknown);
    const path = new URL(req.url ?? '/', 'http://upstream').pathname;
    const recorded = { method: req.method ?? 'GET', path, headers: req.headers, body, rawBody };
    this.requests.push(recorded);

    if (req.method === 'GET' && path === '/v1/models') {
      this.#listModels(res);
    } else if (req.method === 'POST' && path === '/v1/chat/completions') {
      const answer: RecordedAnswer = { request: recorded, events: [] };
      this.answers.push(answer);
      this.#complete(res, (body ?? {}) as CompletionRequestBody, answer);
    } else {
      sendJson(
        res,
        404,
        openAiError(`no route ${req.method} ${path}`, 'invalid_request_error', null),
      );
    }
  }

  #listModels(res: ServerResponse): void {
    if (this.modelsStatus !== 200) {
      sendJson(res, this.modelsStatus, openAiError('no models here', 'server_error', null));
      return;
    }
    sendJson(res, 200, {
      object: 'list',
      data: this.models.map((id) => ({ id, object: 'model', created: 0, owned_by: 'mock' })),
    });
  }

  #complete(res: ServerResponse, request: CompletionRequestBody, answer: RecordedAnswer): void {
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
    const format = behaviour.kind === 'script' ? behaviour.format : 'compact';
    const chunks = new ChunkWriter(res, request, format, answer);
    const tokens = behaviour.kind === 'ok' ? behaviour.tokens : tokenize(DEFAULT_REPLY);
    switch (behaviour.kind) {
      case 'status':
        answer.body = JSON.stringify(behaviour.body);
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
      case 'malformedChunk': {
        chunks.begin(tokens.slice(0, behaviour.afterTokens));
        const broken = '{"id": "chatcmpl-broken", "choices": [{"delta": ';
        answer.events.push(broken);
        res.write(`data: ${broken}\n\n`);
        res.end();
        return;
      }
      case 'ok': {
        const limit = Math.min(tokens.length, request.max_tokens ?? Infinity);
        const reply = textReply(tokens.slice(0, limit), limit < tokens.length ? 'length' : 'stop');
        this.#answer(res, chunks, scripted(reply, behaviour), request);
        return;
      }
      case 'script':
        this.#answer(res, chunks, behaviour, request);
    }
  }

  #answer(
    res: ServerResponse,
    chunks: ChunkWriter,
    behaviour: Extract<UpstreamBehaviour, { kind: 'script' }>,
    request: CompletionRequestBody,
  ): void {
    const { script } = behaviour;
    const usageValue = usage(request, script.completionTokens);
    if (request.stream !== true) {
      const text = serialize(completion(request, script, usageValue), behaviour.format);
      chunks.answer.body = text;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(text);
      return;
    }
    chunks.open();
    let sent = 0;
    const next = () => {
      if (res.destroyed) return;
      const chunk = script.chunks[sent++];
      if (chunk !== undefined) {
        chunks.write(chunk);
        this.#later(next, behaviour.tokenDelayMs);
        return;
      }
      if (behaviour.usage && request.stream_options?.include_usage === true) {
        chunks.usage(usageValue);
      }
      chunks.done();
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

function serialize(value: unknown, format: JsonFormat): string {
  return format === 'python' ? pythonJson(value) : JSON.stringify(value);
}

/**
 * Writes `chat.completion.chunk` SSE events exactly as OpenAI lays them out: with
 * `stream_options.include_usage`, `"usage": null` on every chunk but the usage chunk.
 */
class ChunkWriter {
  readonly #id = `chatcmpl-${randomUUID()}`;
  readonly #created = Math.floor(Date.now() / 1000);
  readonly #includeUsage: boolean;
  #first = true;

  constructor(
    readonly res: ServerResponse,
    readonly request: CompletionRequestBody,
    readonly format: JsonFormat,
    readonly answer: RecordedAnswer,
  ) {
    this.#includeUsage = request.stream_options?.include_usage === true;
  }

  open(): void {
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    this.res.flushHeaders();
  }

  /** The headers, then these tokens as text deltas. */
  begin(tokens: readonly string[]): void {
    this.open();
    for (const token of tokens) {
      // OpenAI's first chunk carries the role (and empty content) before any text.
      if (this.#first) {
        this.#first = false;
        this.write({ choices: [textDelta({ role: 'assistant', content: '', refusal: null })] });
      }
      this.write({ choices: [textDelta({ content: token })] });
    }
  }

  write(chunk: ScriptChunk): void {
    this.#event({
      ...this.#header(),
      choices: chunk.choices,
      ...(this.#includeUsage ? { usage: null } : {}),
      ...chunk.extra,
    });
  }

  usage(value: ReturnType<typeof usage>): void {
    this.#event({ ...this.#header(), choices: [], usage: value });
  }

  done(): void {
    this.answer.events.push('[DONE]');
    this.res.end('data: [DONE]\n\n');
  }

  #header() {
    return {
      id: this.#id,
      object: 'chat.completion.chunk',
      created: this.#created,
      model: this.request.model ?? 'gpt-4o-mini',
      service_tier: 'default',
      system_fingerprint: 'fp_mock',
    };
  }

  #event(chunk: object): void {
    const data = serialize(chunk, this.format);
    this.answer.events.push(data);
    this.res.write(`data: ${data}\n\n`);
  }
}

function textDelta(delta: Record<string, unknown>) {
  return { index: 0, delta, logprobs: null, finish_reason: null };
}

function usage(request: CompletionRequestBody, completionTokens: number) {
  const promptTokens = (request.messages ?? []).reduce(
    (sum, message) =>
      sum +
      (typeof message.content === 'string' ? (message.content.match(/\S+/g)?.length ?? 0) : 0),
    0,
  );
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

function completion(
  request: CompletionRequestBody,
  script: ReplyScript,
  usageValue: ReturnType<typeof usage>,
) {
  return {
    id: `chatcmpl-${randomUUID()}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: request.model ?? 'gpt-4o-mini',
    choices: script.choices,
    usage: usageValue,
    service_tier: 'default',
    system_fingerprint: 'fp_mock',
    ...script.extra,
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
