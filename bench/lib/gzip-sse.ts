import { FLUSH_MARKER, inflateSegment } from './inflate-segment.js';

/** What streamhub's gzip SSE header is: no name, comment, extra field or header CRC. */
const GZIP_HEADER_LENGTH = 10;
const GZIP_MAGIC = [0x1f, 0x8b, 8, 0];

/**
 * The load generator's synchronous reader of a gzip SSE body, for compressed benchmarks only
 * (see bench/lib/inflate-segment.ts for why not `zlib.createGunzip()` per connection).
 *
 * It relies on how streamhub compresses a topic's stream: a gzip header, then each batch as
 * raw-deflate blocks ended with a full flush and no reference to earlier batches. So the body
 * is read up to a flush marker and inflated as one self-contained segment; a segment that did
 * refer back would fail to inflate, and the connection with it. The member's trailer (the CRC
 * and length) is skipped, not checked: test/server/compression.test.ts reads whole streams through
 * a real gunzip, which does.
 */
export class SegmentGunzip {
  #header = Buffer.alloc(0);
  #pending: Buffer[] = [];

  /** The text that the bytes so far complete; throws on a stream it cannot read. */
  push(chunk: Buffer): string {
    let body = chunk;
    if (this.#header.length < GZIP_HEADER_LENGTH) {
      const missing = GZIP_HEADER_LENGTH - this.#header.length;
      this.#header = Buffer.concat([this.#header, chunk.subarray(0, missing)]);
      body = chunk.subarray(missing);
      if (this.#header.length === GZIP_HEADER_LENGTH) checkHeader(this.#header);
    }
    if (body.length === 0) return '';
    this.#pending.push(body);
    const bytes = this.#pending.length === 1 ? body : Buffer.concat(this.#pending);
    const end = segmentEnd(bytes);
    this.#pending = end === undefined ? [bytes] : [];
    return end === undefined ? '' : inflateSegment(bytes.subarray(0, end));
  }
}

/** The end of the member: a final empty block (03 00), the CRC-32 and the length. */
const ENDING_LENGTH = 10;

/** Where the flushed segments in `bytes` end, if they do at its end (or just before the
 *  member's ending, which the server writes with the last segment). */
function segmentEnd(bytes: Buffer): number | undefined {
  if (bytes.subarray(-FLUSH_MARKER.length).equals(FLUSH_MARKER)) return bytes.length;
  const end = bytes.length - ENDING_LENGTH;
  const ending = end >= FLUSH_MARKER.length && bytes[end] === 0x03 && bytes[end + 1] === 0x00;
  if (ending && bytes.subarray(end - FLUSH_MARKER.length, end).equals(FLUSH_MARKER)) return end;
  return undefined;
}

function checkHeader(header: Buffer): void {
  if (GZIP_MAGIC.some((byte, i) => header[i] !== byte)) {
    throw new Error('not a gzip member without optional fields');
  }
}
