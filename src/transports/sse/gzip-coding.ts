import { constants } from 'node:zlib';
import type { BatchEncoder } from '../../core/batch.js';
import {
  deflateFrames,
  GzipMember,
  gzipBatchEncoder,
  isDeflated,
  sharedDeflateFrames,
} from './compression.js';
import { byteFrames, type SseFrames, sseFrames } from './framing.js';

/**
 * Whose compression a gzip SSE stream's batches get (docs/architecture.md, Compression):
 * - `per-batch`: each batch is deflated once, on its own, and the same bytes go to every
 *   subscriber: a topic's fan-out, whose cost must not grow with its subscribers;
 * - `per-connection`: each batch is deflated for this connection against the bytes it sent
 *   just before, as a compressor kept per connection would: a reply's one or two viewers,
 *   whose small chunks (a token each) shrink several-fold more when the boilerplate they repeat
 *   is a back-reference.
 */
export type GzipSharing = 'per-batch' | 'per-connection';

/** What an SSE stream asks of its gzip coding, whichever the sharing. */
export interface GzipCoding {
  readonly header: Buffer;
  /** The encoder of the batches this stream is handed. */
  wireEncoder(encoder: BatchEncoder<SseFrames>): BatchEncoder<SseFrames>;
  /** A text this connection alone sends (a control frame), as a stream is handed it. */
  own(text: string | Buffer): SseFrames;
  /** A text every connection sends alike (the `retry` line, the heartbeat). */
  common(text: string): SseFrames;
  /** The segment to write for frames the stream was handed; call it only if it is written. */
  segment(frames: SseFrames): SseFrames;
  /** The end of the deflate stream and the gzip trailer. */
  trailer(): Buffer;
}

export function gzipCoding(sharing: GzipSharing): GzipCoding {
  return sharing === 'per-batch' ? new SharedSegments() : new ConnectionContext();
}

/** Frames come deflated (by the batch, once for all); the connection only sums them up. */
class SharedSegments implements GzipCoding {
  readonly #member = new GzipMember();
  readonly header = this.#member.header;

  wireEncoder(encoder: BatchEncoder<SseFrames>): BatchEncoder<SseFrames> {
    return gzipBatchEncoder(encoder);
  }

  own(text: string | Buffer): SseFrames {
    return deflateFrames(text);
  }

  common(text: string): SseFrames {
    return sharedDeflateFrames(text);
  }

  segment(frames: SseFrames): SseFrames {
    if (!isDeflated(frames)) throw new TypeError('a gzip SSE stream was handed plain frames');
    this.#member.add(frames);
    return frames;
  }

  trailer(): Buffer {
    return this.#member.trailer();
  }
}

/**
 * A window of 4 KiB and a small hash table: a completion chunk's boilerplate is found in the
 * chunk before it, so a larger window hardly shrinks it more (measured: 16 B a chunk with
 * 4 KiB, 19 with 1 KiB) and only makes each batch's compressor cost more.
 */
const WINDOW_BITS = 12;
const MEM_LEVEL = 5;
/** How far back zlib refers with that window (its MAX_DIST: the window less the lookahead). */
const HISTORY_BYTES = (1 << WINDOW_BITS) - 262;

/**
 * Context takeover without a context held open: each batch gets a fresh compressor primed
 * with the last bytes this connection sent as its dictionary (pigz's way of compressing
 * blocks apart), and a sync flush. The client's inflater holds those bytes in its window, so
 * the back-references resolve. A connection keeps those few KiB of text between batches, not a
 * zlib context (tens of KiB), and Node's zlib streams, which would flush on the thread pool,
 * are not needed.
 */
class ConnectionContext implements GzipCoding {
  readonly #member = new GzipMember();
  readonly header = this.#member.header;
  #history: Buffer = Buffer.alloc(0);

  wireEncoder(encoder: BatchEncoder<SseFrames>): BatchEncoder<SseFrames> {
    return encoder;
  }

  own(text: string | Buffer): SseFrames {
    return typeof text === 'string' ? sseFrames(text) : byteFrames(text);
  }

  common(text: string): SseFrames {
    return sseFrames(text);
  }

  segment(frames: SseFrames): SseFrames {
    const bytes = frames.payload;
    const segment = deflateFrames(bytes, {
      windowBits: WINDOW_BITS,
      memLevel: MEM_LEVEL,
      finishFlush: constants.Z_SYNC_FLUSH,
      ...(this.#history.length > 0 ? { dictionary: this.#history } : {}),
    });
    this.#history = lastBytes(this.#history, bytes);
    this.#member.add(segment);
    return segment;
  }

  trailer(): Buffer {
    return this.#member.trailer();
  }
}

/** The last HISTORY_BYTES of `before` then `after`, copied: a batch's buffer is not pinned. */
function lastBytes(before: Buffer, after: Buffer): Buffer {
  if (after.length >= HISTORY_BYTES) return Buffer.from(after.subarray(-HISTORY_BYTES));
  const kept = before.subarray(Math.max(0, before.length + after.length - HISTORY_BYTES));
  return Buffer.concat([kept, after]);
}
