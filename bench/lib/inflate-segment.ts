import { constants, inflateRawSync } from 'node:zlib';

/**
 * Synchronous inflation of self-contained raw-deflate segments, shared by the load generator's
 * compressed clients (bench/lib/deflate-ws.ts, bench/lib/gzip-sse.ts).
 *
 * Why synchronous: Node's zlib streams inflate on the thread pool, a round trip per message;
 * 1,000 such clients in one process fall seconds behind the server, and their events count as
 * lost although the server sent them all. A browser inflates synchronously.
 *
 * Why cached: the server sends every subscriber of a batch the same compressed segment (that is
 * its design), so the 1,000 clients of this one process would inflate the same bytes 1,000
 * times, a cost no real client shares. It made the load generator (a fraction of a CPU on a
 * busy machine) read slower than with uncompressed bytes, and the server's cost per event then
 * differs by how far behind its readers are, not by compression. Inflating a self-contained
 * segment is a pure function of its bytes, so recent results are kept by their input; every
 * message still reaches its subscriber. A segment that refers to bytes before it is not
 * self-contained: zlib rejects it ("invalid distance too far back") rather than guess.
 */
const recentlyInflated = new Map<string, string>();
const RECENT_LIMIT = 1024;

/** The empty stored block a sync or full flush ends with. */
export const FLUSH_MARKER = Buffer.from([0x00, 0x00, 0xff, 0xff]);
/** A segment ends at a flush, not at a final block: Z_FINISH would call that truncated. */
const INFLATE = { finishFlush: constants.Z_SYNC_FLUSH };

/**
 * The text of a segment that ends with a flush. `markerRemoved`: the sender dropped the
 * flush's final four bytes (permessage-deflate, RFC 7692 §7.2.1) and they are put back.
 */
export function inflateSegment(segment: Buffer, markerRemoved = false): string {
  const key = segment.toString('latin1');
  let text = recentlyInflated.get(key);
  if (text === undefined) {
    const whole = markerRemoved ? Buffer.concat([segment, FLUSH_MARKER]) : segment;
    text = inflateRawSync(whole, INFLATE).toString('utf8');
    if (recentlyInflated.size >= RECENT_LIMIT) recentlyInflated.clear();
    recentlyInflated.set(key, text);
  }
  return text;
}
