export interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
}

/**
 * Minimal incremental text/event-stream parser (WHATWG rules for id/event/data/comments).
 * Chunks may split lines anywhere; the load generator feeds it every received chunk.
 */
export class SseParser {
  private rest = '';
  private data: string | undefined;
  private event = 'message';
  private id: string | undefined;
  /** Last `id:` seen, as an EventSource would send back in Last-Event-ID. */
  lastEventId: string | undefined;

  constructor(private readonly onEvent: (e: SseEvent) => void) {}

  push(chunk: string): void {
    let buf = this.rest + chunk;
    if (buf.includes('\r')) {
      // A trailing CR may be half of a CRLF split across chunks: keep it for the next push.
      const cut = buf.endsWith('\r') ? buf.length - 1 : buf.length;
      this.rest = buf.slice(cut);
      buf = buf.slice(0, cut).replace(/\r\n?/g, '\n');
    } else {
      this.rest = '';
    }
    let start = 0;
    for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n', start)) {
      this.line(buf.slice(start, nl));
      start = nl + 1;
    }
    this.rest = buf.slice(start) + this.rest;
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data !== undefined) {
        this.onEvent({ id: this.id, event: this.event, data: this.data });
      }
      this.data = undefined;
      this.event = 'message';
      this.id = undefined;
      return;
    }
    if (line.charCodeAt(0) === 58 /* ':' comment, e.g. heartbeat */) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') this.data = this.data === undefined ? value : `${this.data}\n${value}`;
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) {
      this.id = value;
      this.lastEventId = value;
    }
  }
}
