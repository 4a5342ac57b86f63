/** One dispatched Server-Sent Events message. */
export interface SseMessage {
  /** The event type; `message` when the block named none. */
  readonly event: string;
  /** The `data:` lines of the block, joined with `\n`. */
  readonly data: string;
  /** The block's own `id:` field, if it had a valid one. The server sends ids only on stored
   *  events, so a block without one is a per-connection control frame (e.g. `reset`). */
  readonly id?: string;
  /** The stream's last event id after this block: ids carry over to later blocks (WHATWG). */
  readonly lastEventId: string;
}

export interface SseParserHandlers {
  onMessage(message: SseMessage): void;
  /** A valid `retry:` field: the server's suggested reconnection delay. */
  onRetry?(ms: number): void;
  /** A comment line (without the leading colon), e.g. a heartbeat. */
  onComment?(text: string): void;
}

const DIGITS = /^[0-9]+$/;
const BOM = '\uFEFF';

/**
 * An incremental parser for `text/event-stream`, as the WHATWG HTML standard
 * (§9.2.6 "Interpreting an event stream") defines it: any of CRLF, CR or LF ends a line, even
 * when a chunk boundary falls between the CR and the LF; `data:` lines are joined with `\n`;
 * `id` values containing NUL are ignored; `retry` must be ASCII digits; unknown fields are
 * ignored; a block that is not terminated by a blank line is never dispatched.
 *
 * ```ts
 * const parser = new SseParser({ onMessage: (m) => console.log(m.event, m.data) });
 * parser.write(bytes); // or parser.push(text)
 * ```
 */
export class SseParser {
  /** Per instance: a shared global regex would be clobbered if a handler fed another parser. */
  readonly #lineEnd = /[\r\n]/g;
  #line = '';
  #pendingLf = false;
  #started = false;
  #decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  #event = '';
  #data: string[] = [];
  #blockId: string | undefined;
  #lastEventId: string;

  constructor(
    private readonly handlers: SseParserHandlers,
    initialLastEventId = '',
  ) {
    this.#lastEventId = initialLastEventId;
  }

  get lastEventId(): string {
    return this.#lastEventId;
  }

  /** Feeds raw bytes; UTF-8 sequences split across chunks are decoded correctly. */
  write(bytes: Uint8Array): void {
    this.push(this.#decoder.decode(bytes, { stream: true }));
  }

  /** Feeds decoded text. */
  push(text: string): void {
    let chunk = text;
    if (!this.#started && chunk.length > 0) {
      this.#started = true;
      if (chunk.startsWith(BOM)) chunk = chunk.slice(1);
    }
    let start = 0;
    if (this.#pendingLf && chunk.length > 0) {
      // The previous chunk ended with CR: an LF right after it belongs to the same line end.
      this.#pendingLf = false;
      if (chunk.charCodeAt(0) === 0x0a) start = 1;
    }
    const lineEnd = this.#lineEnd;
    lineEnd.lastIndex = start;
    for (let match = lineEnd.exec(chunk); match !== null; match = lineEnd.exec(chunk)) {
      const end = match.index;
      this.#onLine(this.#line + chunk.slice(start, end));
      this.#line = '';
      start = end + 1;
      if (match[0] === '\r') {
        if (start === chunk.length) this.#pendingLf = true;
        else if (chunk.charCodeAt(start) === 0x0a) start++;
      }
      lineEnd.lastIndex = start;
    }
    this.#line += chunk.slice(start);
  }

  #onLine(line: string): void {
    if (line === '') {
      this.#dispatch();
      return;
    }
    const colon = line.indexOf(':');
    if (colon === 0) {
      this.handlers.onComment?.(line.slice(1));
      return;
    }
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    this.#onField(name, value);
  }

  #onField(name: string, value: string): void {
    switch (name) {
      case 'event':
        this.#event = value;
        return;
      case 'data':
        this.#data.push(value);
        return;
      case 'id':
        if (!value.includes('\0')) {
          this.#blockId = value;
          this.#lastEventId = value;
        }
        return;
      case 'retry':
        if (DIGITS.test(value)) this.handlers.onRetry?.(Number(value));
        return;
    }
  }

  #dispatch(): void {
    const { handlers } = this;
    const event = this.#event || 'message';
    const data = this.#data;
    const id = this.#blockId;
    this.#event = '';
    this.#data = [];
    this.#blockId = undefined;
    if (data.length === 0) return;
    const message: SseMessage = { event, data: data.join('\n'), lastEventId: this.#lastEventId };
    handlers.onMessage(id === undefined ? message : { ...message, id });
  }
}
