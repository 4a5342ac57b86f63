import { type OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { constants, type Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import type { BatchEncoder } from '../../core/batch.js';
import { type Connection, type ConnectionRegistry, TICKS_PER_HEARTBEAT } from '../connections.js';
import { BrotliBody } from './brotli-body.js';
import type { SseEncoding } from './compression.js';
import { controlFrame, HEARTBEAT_FRAME, type SseFrames } from './framing.js';
import { type GzipCoding, type GzipSharing, gzipCoding } from './gzip-coding.js';

export interface SseStreamOptions {
  readonly registry: ConnectionRegistry;
  /** A consumer this far behind is disconnected; it resumes from its last id. */
  readonly maxBufferedBytes: number;
  /** Reconnection delay suggested to EventSource clients. */
  readonly retryMs: number;
  readonly onSlowConsumer?: () => void;
  /** The content coding negotiated with the client; identity by default. */
  readonly encoding?: SseEncoding;
  /** Whose compression a gzip stream's batches get; per batch (shared) by default. */
  readonly gzipSharing?: GzipSharing;
}

export type CloseCause = 'client' | 'slow_consumer' | 'shutdown' | 'server';

/** Response headers by lower-case name, as Fastify's reply keeps them. */
export type ResponseHeaders = Record<string, number | string | string[] | undefined>;

/** An HTTP/1.1 response, or one stream of an HTTP/2 connection. */
export type SseResponse = ServerResponse | Http2ServerResponse;

const payloadOf = (last: SseFrames | string | undefined): Buffer | string | undefined =>
  typeof last === 'string' || last === undefined ? last : last.payload;

/** Where a stream's bytes go: the response itself, or a compressor in front of it. */
interface ResponseBody {
  write(data: Buffer | string): boolean;
  end(): unknown;
  end(data: Buffer | string): unknown;
}

/** Connection-specific headers are HTTP/1 only: HTTP/2 forbids them (RFC 9113 §8.2.2). */
const HTTP1_HEADERS = { connection: 'keep-alive' };

/**
 * One Server-Sent Events response: headers, framing of control events, heartbeats and
 * backpressure. It knows nothing of topics or sessions. Over HTTP/2 the backpressure is the
 * stream's flow control: what the client's window does not admit stays queued on the stream,
 * so a stream whose reader stalls is bounded like a stalled socket, and dropping it resets that
 * stream alone, not its connection's other streams.
 */
export class SseStream implements Connection {
  readonly transport = 'sse';
  #lastWriteTick = 0;
  #closed = false;
  #closeListeners: ((cause: CloseCause) => void)[] = [];
  #cause: CloseCause = 'client';
  /** Set when the response is gzip: how its bytes are deflated and summed up for the trailer. */
  readonly #gzip: GzipCoding | undefined;
  /** Set when the response is Brotli, compressed for this connection alone: then the body. */
  readonly #brotli: BrotliBody | undefined;
  /** The response when it is HTTP/1.1, whose batches may go straight to the socket. */
  readonly #http1: ServerResponse | undefined;
  /** What the stream writes to: the response (either kind), or its Brotli compressor. */
  readonly #body: ResponseBody;

  constructor(
    readonly res: SseResponse,
    readonly options: SseStreamOptions,
  ) {
    this.#http1 = res instanceof ServerResponse ? res : undefined;
    res.on('close', () => this.#onClose());
    this.#gzip =
      options.encoding === 'gzip' ? gzipCoding(options.gzipSharing ?? 'per-batch') : undefined;
    this.#brotli =
      options.encoding === 'br' ? new BrotliBody(res, () => this.destroy('server')) : undefined;
    this.#body = this.#brotli ?? res;
  }

  /** The encoder whose batches this stream writes: with shared gzip the gzip variant, which
   *  each batch caches, so all gzip subscribers share one compression. */
  wireEncoder(encoder: BatchEncoder<SseFrames>): BatchEncoder<SseFrames> {
    return this.#gzip === undefined ? encoder : this.#gzip.wireEncoder(encoder);
  }

  /**
   * What is written now joins the bytes already queued in one write: Node's HTTP layer corks
   * an HTTP/1.1 response's socket from a write (the headers, at first) until the next tick.
   */
  get corked(): boolean {
    return (this.#http1?.socket?.writableCorked ?? 0) > 0;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sends the headers and a `retry:` line at once, so the stream is visibly open. Header names
   * are lower case, as `headers`' must be, so that none is sent twice.
   */
  open(headers: ResponseHeaders = {}): void {
    this.res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
      ...(this.#http1 === undefined ? {} : HTTP1_HEADERS),
      ...(this.options.encoding === undefined || this.options.encoding === 'identity'
        ? {}
        : { 'content-encoding': this.options.encoding }),
    } as OutgoingHttpHeaders);
    this.res.socket?.setNoDelay(true);
    const retry = `retry: ${this.options.retryMs}\n\n`;
    if (this.#gzip === undefined) this.write(retry);
    else {
      this.#body.write(this.#gzip.header);
      this.writeFrames(this.#gzip.common(retry));
    }
    this.options.registry.add(this);
  }

  /**
   * Writes pre-framed bytes. Returns false when the client is not keeping up and the
   * producer should wait for `drained()`. A client that still has more than
   * `maxBufferedBytes` queued from earlier writes is lagging and is dropped, so what one
   * connection holds stays within that bound plus one write.
   */
  write(data: Buffer | string): boolean {
    if (this.#gzip !== undefined) return this.writeFrames(this.#gzip.own(data));
    if (!this.#writable()) return false;
    return this.#body.write(data);
  }

  /**
   * Writes a batch. Hand-written hot path: when the response is chunked and nothing of it is
   * still queued inside Node's HTTP layer, the batch's pre-framed HTTP chunk goes straight to
   * the socket — one shared buffer, no per-response cork/nextTick/writev. Measured at 20
   * events/s × 1,000 subscribers: server CPU per delivered event went from 1.10× to 1.02× a
   * raw `res.write` broadcaster's (docs/benchmarks.md). Otherwise Node frames the chunk, or
   * the HTTP/2 stream frames the payload.
   */
  writeFrames(frames: SseFrames): boolean {
    if (!this.#writable()) return false;
    const wire = this.#gzip === undefined ? frames : this.#gzip.segment(frames);
    const socket = this.#bareSocket();
    return socket === undefined ? this.#body.write(wire.payload) : socket.write(wire.chunk);
  }

  /**
   * Writes SSE text this stream alone sends (a completion's events, fed to its one viewer).
   * Without gzip the text goes to the socket as a string, framed as an HTTP chunk around it:
   * no buffer is allocated and filled for it first (see `writeFrames`). Measured at 500
   * concurrent completions: building frames for each chunk took 5.5 % of the gateway's CPU.
   */
  writeText(text: string): boolean {
    if (this.#gzip !== undefined) return this.writeFrames(this.#gzip.own(text));
    if (!this.#writable()) return false;
    const socket = this.#bareSocket();
    if (socket === undefined) return this.#body.write(text);
    return socket.write(`${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`);
  }

  /**
   * The socket of an HTTP/1.1 chunked response with nothing of it still queued inside Node's
   * HTTP layer, to which a framed chunk may go straight; otherwise undefined (always when a
   * compressor stands in front of the response).
   */
  #bareSocket(): Socket | undefined {
    const res = this.#http1;
    const socket = res?.socket;
    return res &&
      socket &&
      this.#body === res &&
      res.chunkedEncoding &&
      res.writableLength === socket.writableLength
      ? socket
      : undefined;
  }

  /** The last bytes of a gzip stream: `last`'s segment, then the member's trailer. */
  #gzipEnding(gzip: GzipCoding, last: SseFrames | string | undefined): Buffer {
    const frames = typeof last === 'string' ? gzip.own(last) : last;
    if (frames === undefined || frames.payload.length === 0) return gzip.trailer();
    return Buffer.concat([gzip.segment(frames).payload, gzip.trailer()]);
  }

  /** Counts the write for heartbeats; drops the client if it lags past the bound. */
  #writable(): boolean {
    if (this.#closed || this.res.writableEnded) return false;
    const queued = this.res.writableLength + (this.#brotli?.pendingBytes ?? 0);
    if (queued > this.options.maxBufferedBytes) {
      this.options.onSlowConsumer?.();
      this.destroy('slow_consumer');
      return false;
    }
    this.#lastWriteTick = this.options.registry.tick;
    return true;
  }

  control(event: string, data: unknown): void {
    this.write(controlFrame(event, JSON.stringify(data)));
  }

  /**
   * Waits on what the bytes queue on: the socket over HTTP/1.1, where batches may be written
   * to it directly, past the response; over HTTP/2 the stream, which waits for the client's
   * flow-control window while its connection's other streams go on.
   */
  drained(): Promise<void> {
    const { res } = this;
    const queue = res instanceof ServerResponse ? res.socket : res.stream;
    if (this.#closed || !queue?.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        queue.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      queue.on('drain', done);
      this.res.on('close', done);
    });
  }

  onClose(listener: (cause: CloseCause) => void): void {
    if (this.#closed) listener(this.#cause);
    else this.#closeListeners.push(listener);
  }

  /** Pings once the stream has been silent for a whole heartbeat interval. */
  heartbeat(tick: number): void {
    if (tick - this.#lastWriteTick < TICKS_PER_HEARTBEAT) return;
    if (this.#gzip === undefined) this.write(HEARTBEAT_FRAME);
    else this.writeFrames(this.#gzip.common(HEARTBEAT_FRAME));
    this.#lastWriteTick = tick;
  }

  /**
   * Ends the response cleanly; an EventSource reconnects after `retry`. `last`, the stream's
   * final bytes, goes out in the same write as the end of the body: one syscall less per
   * finite stream (a completion, a reply) than a write and then an end.
   */
  end(cause: CloseCause = 'server', last?: SseFrames | string): void {
    if (this.#closed) return;
    this.#cause = cause;
    const tail = this.#gzip === undefined ? payloadOf(last) : this.#gzipEnding(this.#gzip, last);
    if (tail !== undefined && tail.length > 0 && this.#writable()) this.#body.end(tail);
    else this.#body.end();
  }

  shutdown(): void {
    this.end('shutdown');
  }

  /**
   * Drops the connection without flushing what is queued (the client is not reading). Over
   * HTTP/2 only this stream is reset, with CANCEL: a reset without an error code could pass
   * for a response that was complete.
   */
  destroy(cause: CloseCause): void {
    if (this.#closed) return;
    this.#cause = cause;
    const { res } = this;
    if (res instanceof ServerResponse) res.destroy();
    else res.stream.close(constants.NGHTTP2_CANCEL);
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#brotli?.destroy();
    this.options.registry.delete(this);
    for (const listener of this.#closeListeners) listener(this.#cause);
    this.#closeListeners = [];
  }
}
