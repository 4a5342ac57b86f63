import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2, {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
} from 'node:http2';
import { createParser, type EventSourceMessage } from 'eventsource-parser';

export interface H2Response {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

/** One HTTP/2 connection (`node:http2`) to a server whose certificate is `ca`: every request
 *  is a stream of it. */
export class H2Client {
  readonly session: ClientHttp2Session;
  readonly #settingsArrived: Promise<unknown>;

  constructor(url: string, ca: Buffer) {
    this.session = http2.connect(url, { ca });
    this.#settingsArrived = once(this.session, 'remoteSettings');
  }

  /** Resolves once the TLS handshake chose HTTP/2 and the server's settings arrived. */
  async connected(): Promise<void> {
    await this.#settingsArrived;
  }

  /** A request with a JSON body, or a string body of the type its headers give. */
  async request(
    method: string,
    path: string,
    body?: unknown,
    extraHeaders: http2.OutgoingHttpHeaders = {},
  ): Promise<H2Response> {
    const headers: http2.OutgoingHttpHeaders = { ':method': method, ':path': path };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const stream = this.session.request({ ...headers, ...extraHeaders });
    stream.end(typeof body === 'string' || body === undefined ? body : JSON.stringify(body));
    const [response] = (await once(stream, 'response')) as [IncomingHttpHeaders];
    stream.setEncoding('utf8');
    let text = '';
    for await (const chunk of stream) text += chunk;
    return { status: Number(response[':status']), headers: response, text };
  }

  /** Publishes `data` to `topic` and returns the stored event's id. */
  async publish(topic: string, data: unknown): Promise<string> {
    const response = await this.request('POST', `/v1/topics/${topic}/events`, { data });
    assert.equal(response.status, 201, response.text);
    return (JSON.parse(response.text) as { id: string }).id;
  }

  sse(path: string, headers: Record<string, string> = {}): H2SseReader {
    return new H2SseReader(
      this.session.request({ ':path': path, accept: 'text/event-stream', ...headers }),
    );
  }

  /** Closes the connection, cutting whatever streams are still open. */
  close(): void {
    this.session.destroy();
  }
}

/** Reads one SSE response that is a stream of an HTTP/2 connection. */
export class H2SseReader {
  readonly events: EventSourceMessage[] = [];
  readonly comments: string[] = [];
  /** The response's headers, once they arrived. */
  readonly opened: Promise<IncomingHttpHeaders>;
  closed = false;

  constructor(readonly stream: ClientHttp2Stream) {
    const parser = createParser({
      onEvent: (event) => this.events.push(event),
      onComment: (comment) => this.comments.push(comment),
    });
    this.opened = once(stream, 'response').then(([headers]) => headers as IncomingHttpHeaders);
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => parser.feed(chunk));
    // A stream the server resets is an error on this side: its close is what tests look at.
    stream.on('error', () => {});
    stream.on('close', () => {
      this.closed = true;
    });
  }

  get ids(): string[] {
    return this.events.map((event) => event.id ?? '');
  }
}
