import type { Writable } from 'node:stream';
import { type BrotliCompress, constants, createBrotliCompress } from 'node:zlib';

/**
 * Brotli parameters for a stream of small SSE batches: a 64 KiB window holds the boilerplate
 * a stream repeats (field names, a completion's chunk envelope), and quality 4 keeps a batch's
 * compression in the tens of microseconds.
 */
const BROTLI_PARAMS = {
  [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
  [constants.BROTLI_PARAM_QUALITY]: 4,
  [constants.BROTLI_PARAM_LGWIN]: 16,
};

/**
 * A response body compressed with Brotli for its own connection, for clients that accept `br`
 * but not gzip. Unlike gzip's segments (compression.ts), Brotli output cannot be shared between
 * connections: a metablock's literal contexts and distance cache carry over from the bytes
 * before it. Each write is flushed, so an event reaches the client as soon as it would
 * uncompressed. Node compresses on its thread pool: the compressed bytes reach the response a
 * moment later, in order.
 */
export class BrotliBody {
  readonly #compressor: BrotliCompress;

  constructor(
    readonly body: Writable,
    onError: (error: Error) => void,
  ) {
    this.#compressor = createBrotliCompress({ params: BROTLI_PARAMS });
    this.#compressor.on('data', (chunk: Buffer) => body.write(chunk));
    this.#compressor.on('error', onError);
  }

  /** Bytes written but not yet compressed: they count against the slow-consumer bound. */
  get pendingBytes(): number {
    return this.#compressor.writableLength;
  }

  /** False while the response has a backlog to drain, as a response's own `write`. */
  write(data: Buffer | string): boolean {
    this.#compressor.write(data);
    this.#compressor.flush(constants.BROTLI_OPERATION_FLUSH);
    return !this.body.writableNeedDrain;
  }

  /** Ends the Brotli stream after `last`, then the response. */
  end(last?: Buffer | string): void {
    this.#compressor.once('end', () => this.body.end());
    if (last === undefined || last.length === 0) this.#compressor.end();
    else this.#compressor.end(last);
  }

  destroy(): void {
    this.#compressor.destroy();
  }
}
