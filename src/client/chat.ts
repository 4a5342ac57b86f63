import { Backoff } from './backoff.js';
import { type Endpoint, toEndpoint } from './endpoint.js';
import { protocolError, StreamhubClientError } from './errors.js';
import { FollowedStream } from './followed-stream.js';
import { type Frame, parseJson, toFrameError, toResetNotice } from './frames.js';
import { authHeaders, fetchOk, type TokenSource, worthRetrying } from './http.js';
import { reconnect } from './reconnect-loop.js';
import { readEventStream } from './sse-fetch.js';
import type { SseMessage } from './sse-parser.js';
import { apiUrl, checkBaseUrl, sessionUrl } from './urls.js';

export interface ChatClientOptions {
  /** The `fetch` to use; default: the global one. */
  readonly fetch?: typeof fetch;
  /** Sent with every request. */
  readonly headers?: Record<string, string>;
  /**
   * Access token (docs/api.md §7), sent as `Authorization: Bearer`. A function is called before
   * every request, so a reply the server ends with `token_expired` resumes with a fresh token,
   * where a fixed token makes the iteration throw that error.
   */
  readonly token?: TokenSource;
  /**
   * Reconnection delays: exponential with full jitter, from `initialMs` (default: the server's
   * `retry:` suggestion, else 1000 ms) up to `maxMs` (default 30 s).
   */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /**
   * A connection that receives nothing (not even a heartbeat) for this long is deemed dead and
   * replaced. Default 45 s, three of the server's default heartbeat intervals; 0 disables it.
   */
  readonly idleTimeoutMs?: number;
}

export interface SendOptions {
  /** The model to ask; default: the server's. */
  readonly model?: string;
  /** The session's system prompt (kept for later turns). */
  readonly system?: string;
  readonly temperature?: number;
  readonly maxTokens?: number;
  /** Aborting it is `close()`: iteration ends, the generation goes on. */
  readonly signal?: AbortSignal;
}

export interface ResumeOptions {
  /** The last event the caller has; the stream starts right after it. Default: the reply's start. */
  readonly lastEventId?: string;
  /** Aborting it is `close()`: iteration ends, the generation goes on. */
  readonly signal?: AbortSignal;
}

/** An event of a reply stream (docs/api.md §4), in the order the server stored it. */
export type ReplyEvent =
  | { readonly type: 'start'; readonly id: string; readonly turn: number; readonly model: string }
  | { readonly type: 'delta'; readonly id: string; readonly content: string }
  | {
      readonly type: 'done';
      readonly id: string;
      readonly finishReason: string | null;
      readonly usage: unknown;
    }
  | {
      readonly type: 'error';
      readonly id?: string;
      readonly code: string;
      readonly message: string;
    }
  | {
      readonly type: 'abort';
      readonly id?: string;
      /** `cancelled` (stored, with an id) or `superseded` (a newer stream took the session
       *  over; no id, and this stream does not reconnect). */
      readonly reason: 'superseded' | 'cancelled' | string;
    };

/**
 * One reply, as an async iterable of its events. It connects at once (a `send` does not wait for
 * the iteration to start) and buffers what arrives until it is read. Iteration ends after the
 * `done`, `error` or `abort` event, or at `close()`; it throws a StreamhubClientError when the
 * server refuses the request or the reply cannot be followed any further.
 */
export interface ReplyStream extends AsyncIterable<ReplyEvent> {
  /** Id of the last stored event received: persist it (e.g. localStorage) to resume after a
   *  page refresh. Before any, the `lastEventId` this stream was resumed from. */
  readonly lastEventId: string | undefined;
  /** Concatenated delta text received so far (by this stream: a resumed one starts empty). */
  readonly text: string;
  /** Stops reading (does not cancel the generation on the server); iteration ends. */
  close(): void;
}

export interface ChatClient {
  /**
   * `POST /v1/chat`: appends `content` to the session (created if unknown) and streams the reply,
   * resuming by itself after a dropped connection. An HTTP error before the stream opens
   * (`409 session_busy`, `400`, `404`, `503 overloaded`…) or a network failure before the server
   * answered makes the iteration throw a StreamhubClientError; after a network failure the
   * message may or may not have been taken, which `resume` tells.
   */
  send(sessionId: string, content: string, opts?: SendOptions): ReplyStream;
  /**
   * `POST /v1/chat/resume`: the session's latest reply after `lastEventId` (from its start when
   * absent), live until it ends. `404 session_not_found` makes the iteration throw.
   */
  resume(sessionId: string, opts?: ResumeOptions): ReplyStream;
  /**
   * `POST /v1/sessions/{id}/cancel`: resolves when the server accepted (202); the streams then
   * end with `abort` `cancelled`. Rejects with a StreamhubClientError, code `not_generating`
   * when no reply is running.
   */
  cancel(sessionId: string): Promise<void>;
}

/** What every request of one chat client shares. */
interface ChatConfig extends Endpoint {
  readonly backoff: ChatClientOptions['backoff'];
}

/**
 * A client for the chat sessions of a streamhub server (docs/api.md §4). Throws a TypeError at
 * once when `baseUrl` is not an http(s) URL.
 *
 * ```ts
 * const chat = createChat('http://127.0.0.1:8080');
 * const reply = chat.send('session-1', 'What is streamhub?');
 * for await (const event of reply) {
 *   if (event.type === 'delta') output.append(event.content);
 * }
 * ```
 */
export function createChat(baseUrl: string, options: ChatClientOptions = {}): ChatClient {
  checkBaseUrl(baseUrl);
  const config: ChatConfig = { ...toEndpoint(baseUrl, options), backoff: options.backoff };
  return {
    send(sessionId, content, opts = {}) {
      const message = {
        session_id: sessionId,
        content,
        model: opts.model,
        system: opts.system,
        temperature: opts.temperature,
        max_tokens: opts.maxTokens,
      };
      return new Reply(config, sessionId, message, undefined, opts.signal);
    },
    resume(sessionId, opts = {}) {
      return new Reply(config, sessionId, undefined, opts.lastEventId || undefined, opts.signal);
    },
    async cancel(sessionId) {
      const url = sessionUrl(baseUrl, sessionId, '/cancel');
      const response = await fetchOk(config.fetch, url, {
        method: 'POST',
        headers: await authHeaders(config),
      });
      await response.body?.cancel();
    },
  };
}

const TERMINAL: ReadonlySet<ReplyEvent['type']> = new Set(['done', 'error', 'abort']);

/**
 * A reply stream: the first connection sends the message (when there is one); every later one,
 * and every one of a `resume`, is `POST /v1/chat/resume` after the last event received.
 */
class Reply extends FollowedStream<ReplyEvent> implements ReplyStream {
  readonly #config: ChatConfig;
  readonly #sessionId: string;
  /** The message to send, until the server has taken it. */
  #message: object | undefined;
  #lastEventId: string | undefined;
  #text = '';
  #received = false;

  constructor(
    config: ChatConfig,
    sessionId: string,
    message: object | undefined,
    lastEventId: string | undefined,
    signal: AbortSignal | undefined,
  ) {
    super();
    this.#config = config;
    this.#sessionId = sessionId;
    this.#message = message;
    this.#lastEventId = lastEventId;
    this.start(() => this.#follow(), signal);
  }

  get lastEventId(): string | undefined {
    return this.#lastEventId;
  }

  get text(): string {
    return this.#text;
  }

  #follow(): Promise<void> {
    const { signal } = this.controller;
    const backoff = Backoff.fromOption(this.#config.backoff);
    return reconnect({
      signal,
      backoff,
      connect: async () => {
        await readEventStream(await this.#request(signal), {
          opened: () => {
            this.#message = undefined;
            backoff.reset();
          },
          message: (message) => this.#receive(message),
          retry: (ms) => backoff.suggest(ms),
        });
        // Ended before the reply did (e.g. a server shutting down): resume.
        return false;
      },
      // Sending again could post the message twice; resuming is always safe.
      retryable: (error) => this.#message === undefined && worthRetrying(error, this.#config.token),
    });
  }

  async #request(signal: AbortSignal) {
    const { baseUrl } = this.#config;
    const headers = await authHeaders(this.#config);
    const [path, body] =
      this.#message === undefined
        ? ['/v1/chat/resume', { session_id: this.#sessionId, last_event_id: this.#lastEventId }]
        : ['/v1/chat', this.#message];
    return {
      fetch: this.#config.fetch,
      url: apiUrl(baseUrl, path),
      init: {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      },
      signal,
      idleTimeoutMs: this.#config.idleTimeoutMs,
    };
  }

  #receive(message: SseMessage): void {
    // Further messages of the chunk that carried the final event, or of a closed stream.
    if (this.controller.signal.aborted) return;
    const event = toReplyEvent(message);
    if (event?.type === 'start' && this.#received) {
      // Only a different reply starts again after events of this one: the session moved on
      // while this stream was away, and this reply's log is gone.
      throw unresumable(
        'reply_expired',
        `session ${this.#sessionId} started another reply; this one can no longer be resumed`,
      );
    }
    if (message.id !== undefined) {
      this.#lastEventId = message.id;
      this.#received = true;
    }
    if (event === undefined) return;
    if (event.type === 'delta') this.#text += event.content;
    this.queue.push(event);
    if (TERMINAL.has(event.type)) {
      this.queue.end();
      this.controller.abort();
    }
  }
}

/**
 * The typed event of an SSE message; undefined for what a client ignores (heartbeats, event
 * types of later versions). A `reset` means the server cannot continue right after the last
 * event: text would be lost, so it is an error.
 */
function toReplyEvent(message: SseMessage): ReplyEvent | undefined {
  const { id, event } = message;
  if (id === undefined) {
    // Per-connection control frames.
    if (event === 'abort') return { type: 'abort', reason: text(payload(message), 'reason') };
    if (event === 'reset') throw resetError(toResetNotice(payload(message)).reason);
    // Why the server ends the stream, e.g. `token_expired`.
    if (event === 'error') throw toFrameError(payload(message) as Frame);
    return undefined;
  }
  switch (event) {
    case 'start': {
      const data = payload(message);
      if (typeof data.turn !== 'number') throw malformed(message);
      return { type: 'start', id, turn: data.turn, model: text(data, 'model') };
    }
    case 'delta':
      return { type: 'delta', id, content: text(payload(message), 'content') };
    case 'done': {
      const data = payload(message);
      const finishReason = data.finish_reason ?? null;
      if (!(typeof finishReason === 'string' || finishReason === null)) throw malformed(message);
      return { type: 'done', id, finishReason, usage: data.usage ?? null };
    }
    case 'error': {
      const data = payload(message);
      return { type: 'error', id, code: text(data, 'code'), message: text(data, 'message') };
    }
    case 'abort':
      return { type: 'abort', id, reason: text(payload(message), 'reason') };
    default:
      return undefined;
  }
}

type Payload = Record<string, unknown>;

function payload(message: SseMessage): Payload {
  const data = parseJson(message.data, `data of ${message.event} ${message.id ?? ''}`.trim());
  if (typeof data !== 'object' || data === null) throw malformed(message);
  return data as Payload;
}

function text(data: Payload, name: string): string {
  const value = data[name];
  if (typeof value !== 'string') {
    throw protocolError(`expected a string ${name} in ${JSON.stringify(data).slice(0, 100)}`);
  }
  return value;
}

function malformed(message: SseMessage): StreamhubClientError {
  return protocolError(`malformed ${message.event} event: ${message.data.slice(0, 100)}`);
}

function resetError(reason: string): StreamhubClientError {
  return unresumable(
    reason,
    `the reply cannot be resumed right after the last event received (${reason})`,
  );
}

/** The reply can no longer be followed: no HTTP status applies, and a retry would not help. */
function unresumable(code: string, message: string): StreamhubClientError {
  return new StreamhubClientError(0, code, message, { retryable: false });
}
