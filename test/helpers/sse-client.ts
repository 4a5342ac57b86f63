import http from 'node:http';
import { finished } from 'node:stream';
import { createBrotliDecompress, createGunzip } from 'node:zlib';

export interface SseMessage {
  readonly id?: string;
  readonly event: string;
  readonly data: string;
}

/**
 * A raw SSE reader over node:http, for tests that inspect the wire: headers, comments, and
 * frames exactly as sent. Third-party client behaviour is tested with the `eventsource` package.
 */
export class RawSseClient {
  readonly messages: SseMessage[] = [];
  readonly comments: string[] = [];
  raw = '';
  /** The body's bytes as they came off the socket (compressed, when the response is). */
  readonly wire: Buffer[] = [];
  /** Set when a compressed body does not decode, or ends without its gzip trailer. */
  decodeError: Error | undefined;
  status = 0;
  headers: http.IncomingHttpHeaders = {};
  ended = false;
  readonly #request: http.ClientRequest;
  #buffer = '';
  #fields: { id?: string; event?: string; data: string[] } = { data: [] };
  readonly opened: Promise<void>;
  readonly closed: Promise<void>;

  constructor(url: string, headers: Record<string, string> = {}, body?: unknown) {
    let onOpen!: () => void;
    let onClose!: () => void;
    this.opened = new Promise((resolve) => {
      onOpen = resolve;
    });
    this.closed = new Promise((resolve) => {
      onClose = resolve;
    });
    const method = body === undefined ? 'GET' : 'POST';
    const allHeaders: Record<string, string> = { accept: 'text/event-stream', ...headers };
    if (body !== undefined) allHeaders['content-type'] = 'application/json';
    this.#request = http.request(url, { method, headers: allHeaders }, (res) => {
      this.status = res.statusCode ?? 0;
      this.headers = res.headers;
      res.on('data', (chunk: Buffer) => this.wire.push(chunk));
      // Like `curl --compressed`: a gzip or Brotli body is decoded as it streams in, and must
      // end whole (the decoders' default finish flush rejects a truncated stream).
      const decoders = { gzip: createGunzip, br: createBrotliDecompress };
      const coding = res.headers['content-encoding'];
      const decoder = coding === 'gzip' || coding === 'br' ? decoders[coding]() : undefined;
      const body = decoder === undefined ? res : res.pipe(decoder);
      body.on('error', (error) => {
        this.decodeError = error;
      });
      // Decoded apart from the wire bytes, which stay Buffers for the listener above.
      const text = new TextDecoder();
      body.on('data', (chunk: Buffer) => this.#onData(text.decode(chunk, { stream: true })));
      body.on('end', () => {
        this.ended = true;
      });
      // A decoded body ends after the response closes: `closed` waits for the decoder too.
      res.on('close', () => {
        if (body === res || !res.complete) onClose();
        else finished(body, () => onClose());
      });
      onOpen();
    });
    this.#request.on('error', () => onClose());
    this.#request.end(body === undefined ? undefined : JSON.stringify(body));
  }

  /** Events that carry an id (stored events), in arrival order. */
  get events(): SseMessage[] {
    return this.messages.filter((message) => message.id !== undefined);
  }

  close(): void {
    this.#request.destroy();
  }

  #onData(chunk: string): void {
    this.raw += chunk;
    this.#buffer += chunk;
    let newline = this.#buffer.indexOf('\n');
    while (newline >= 0) {
      this.#onLine(this.#buffer.slice(0, newline).replace(/\r$/, ''));
      this.#buffer = this.#buffer.slice(newline + 1);
      newline = this.#buffer.indexOf('\n');
    }
  }

  #onLine(line: string): void {
    if (line === '') {
      const { id, event, data } = this.#fields;
      if (data.length > 0)
        this.messages.push({ id, event: event ?? 'message', data: data.join('\n') });
      this.#fields = { data: [] };
      return;
    }
    if (line.startsWith(':')) {
      this.comments.push(line);
      return;
    }
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (name === 'data') this.#fields.data.push(value);
    else if (name === 'id') this.#fields.id = value;
    else if (name === 'event') this.#fields.event = value;
  }
}
