import { StringDecoder } from 'node:string_decoder';
import type { Dispatcher } from 'undici';
import { connectionFailure, type HeaderLookup, statusFailure } from './openai-errors.js';

/** Enough of an error body to relay it or find its message; the rest is not kept. */
const MAX_ERROR_BODY_CHARS = 64 * 1024;

/** Where the body of a 2xx answer goes, as text, in order. */
export interface AnswerReader {
  text(chunk: string): void;
  end(): void;
  /** The connection failed after the answer began. */
  fail(error: unknown): void;
}

/** A request to the upstream: its path on the dispatcher's origin, headers and body. */
export interface UpstreamRequest {
  readonly path: string;
  readonly method: 'GET' | 'POST';
  readonly headers: Record<string, string>;
  readonly body?: string;
}

/**
 * One request to the upstream and its answer, on undici's dispatcher API: a handler of plain
 * callbacks, no stream objects. Measured against `node:http` with a keep-alive agent (3,000
 * sequential streamed requests in one process, server included): 87 against 132 µs of CPU per
 * request, and 4 against 23 µs to issue one (`http.request` alone took 78 µs per completion
 * on the gateway's path to the first token, its agent's bookkeeping a third of it).
 *
 * `answer` resolves once a 2xx answer begins, and its body then goes to the reader; any other
 * status rejects it with its LlmError (the body read first, for its message), a failed
 * connection with `upstream_unavailable`.
 */
export class UpstreamCall implements Dispatcher.DispatchHandlers {
  readonly answer: Promise<void>;
  #resolve!: () => void;
  #reject!: (error: unknown) => void;
  #begun = false;
  #complete = false;
  #paused = false;
  #abort: ((reason?: Error) => void) | undefined;
  #abortedWith: Error | undefined;
  #resume: (() => void) | undefined;
  readonly #decoder = new StringDecoder('utf8');
  /** A refused answer's status, headers and body so far. */
  #refusal: { status: number; headers: Buffer[]; text: string } | undefined;

  constructor(
    dispatcher: Dispatcher,
    request: UpstreamRequest,
    readonly reader: AnswerReader,
  ) {
    this.answer = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // Awaited once the caller is ready for it: a failure before then is not unhandled.
    this.answer.catch(() => {});
    dispatcher.dispatch(
      // Timeouts are the resilience layer's (see `withResilience`), per attempt and per chunk.
      { ...request, headersTimeout: 0, bodyTimeout: 0 },
      this,
    );
  }

  /** The answer's body was read to its end. */
  get complete(): boolean {
    return this.#complete;
  }

  /** Stops taking the body from the socket until `resume` (backpressure). */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#resume?.();
  }

  /** Abandons the request: its connection is closed, so the upstream sees the client leave. */
  abort(reason: Error): void {
    if (this.#complete || this.#abortedWith !== undefined) return;
    this.#abortedWith = reason;
    this.#abort?.(reason);
  }

  onConnect(abort: (reason?: Error) => void): void {
    this.#abort = abort;
    if (this.#abortedWith !== undefined) abort(this.#abortedWith);
  }

  onHeaders(status: number, headers: Buffer[], resume: () => void): boolean {
    this.#resume = resume;
    if (status >= 200 && status <= 299) {
      this.#begun = true;
      this.#resolve();
    } else {
      this.#refusal = { status, headers, text: '' };
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    const text = this.#decoder.write(chunk);
    const refusal = this.#refusal;
    if (refusal === undefined) {
      if (text.length > 0) this.reader.text(text);
      return !this.#paused;
    }
    if (refusal.text.length < MAX_ERROR_BODY_CHARS) refusal.text += text;
    return true;
  }

  onComplete(): void {
    this.#complete = true;
    const rest = this.#decoder.end();
    const refusal = this.#refusal;
    if (refusal !== undefined) {
      const text = refusal.text + rest;
      this.#reject(statusFailure(refusal.status, headerLookup(refusal.headers), text));
      return;
    }
    if (rest.length > 0) this.reader.text(rest);
    this.reader.end();
  }

  onError(error: Error): void {
    if (this.#begun && this.#refusal === undefined) this.reader.fail(error);
    else this.#reject(connectionFailure(error));
  }
}

/** The text of a 2xx answer's body, up to `limit` characters (the rest is read and dropped). */
export async function fetchText(
  dispatcher: Dispatcher,
  request: UpstreamRequest,
  limit: number,
  signal: AbortSignal,
): Promise<string> {
  signal.throwIfAborted();
  let text = '';
  let settle!: { resolve: () => void; reject: (error: unknown) => void };
  const read = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject };
  });
  const call = new UpstreamCall(dispatcher, request, {
    text: (chunk) => {
      if (text.length < limit) text += chunk;
    },
    end: () => settle.resolve(),
    fail: (error) => settle.reject(error),
  });
  const abort = () => call.abort(signal.reason);
  signal.addEventListener('abort', abort, { once: true });
  try {
    await call.answer;
    await read;
    return text;
  } finally {
    signal.removeEventListener('abort', abort);
  }
}

function headerLookup(raw: Buffer[]): HeaderLookup {
  return {
    get: (name) => {
      const wanted = name.toLowerCase();
      const values: string[] = [];
      for (let i = 0; i + 1 < raw.length; i += 2) {
        if (String(raw[i]).toLowerCase() === wanted) values.push(String(raw[i + 1]));
      }
      return values.length === 0 ? undefined : values.join(', ');
    },
  };
}
