import { constants, crc32, deflateRawSync, type ZlibOptions } from 'node:zlib';
import { negotiate } from '@fastify/accept-negotiator';
import type { BatchEncoder } from '../../core/batch.js';
import { deflateOptionsFor } from '../deflate-options.js';
import { byteFrames, type SseFrames } from './framing.js';

/**
 * Compressed SSE whose cost does not grow with the number of subscribers.
 *
 * A batch is deflated once, on its own (a fresh compressor: no reference to earlier
 * batches), and ended with a full flush, which leaves the output byte-aligned. Such
 * segments can follow one another in any order inside one deflate stream, so every gzip
 * subscriber of a topic gets the very same bytes; what is per connection is the 10-byte gzip
 * header, and the trailer's CRC-32 and length, kept up to date by combining each segment's
 * CRC (computed once) into the connection's running one.
 *
 * Brotli cannot be shared this way: a Brotli metablock's literal contexts and distance cache
 * carry over from the bytes before it, so a batch compressed alone decodes wrongly after
 * another. A client that accepts gzip therefore gets gzip, even when it prefers `br`; one that
 * accepts `br` and not gzip gets Brotli compressed for its connection alone (brotli-body.ts).
 */
export type SseEncoding = 'gzip' | 'br' | 'identity';

/** The coding a stream uses, from the request's `Accept-Encoding`. */
export function sseEncodingFor(acceptEncoding: string | undefined): SseEncoding {
  if (acceptEncoding === undefined || acceptEncoding === '') return 'identity';
  if (negotiate(acceptEncoding, ['gzip']) === 'gzip') return 'gzip';
  return negotiate(acceptEncoding, ['br']) === 'br' ? 'br' : 'identity';
}

/** A deflate segment ready for the wire, and what a gzip trailer needs of its input. */
export interface DeflatedFrames extends SseFrames {
  /** CRC-32 of the uncompressed bytes. */
  readonly crc: number;
  readonly inflatedLength: number;
  /** x^(8·inflatedLength) mod the CRC polynomial: carries a running CRC past these bytes. */
  readonly crcShift: number;
}

const CRC_ONE = 0x80000000;
const NOTHING: DeflatedFrames = {
  ...byteFrames(Buffer.alloc(0)),
  crc: 0,
  inflatedLength: 0,
  crcShift: CRC_ONE,
};

/**
 * Deflates bytes into a segment that ends byte-aligned; by default self-contained (a fresh
 * compressor, a full flush). Nothing stays nothing (an empty HTTP chunk would end the response).
 */
export function deflateFrames(input: string | Buffer, options?: ZlibOptions): DeflatedFrames {
  const bytes = typeof input === 'string' ? Buffer.from(input) : input;
  if (bytes.length === 0) return NOTHING;
  const deflateOptions = options ?? deflateOptionsFor(bytes.length, constants.Z_FULL_FLUSH);
  return {
    ...byteFrames(deflateRawSync(bytes, deflateOptions)),
    crc: crc32(bytes),
    inflatedLength: bytes.length,
    crcShift: crcShiftFor(bytes.length),
  };
}

const sharedSegments = new Map<string, DeflatedFrames>();

/** A text every connection sends alike (the `retry` line, the heartbeat), deflated once: a
 *  compressor per stream opened would cost time and leave the heap fragmented. */
export function sharedDeflateFrames(text: string): DeflatedFrames {
  let frames = sharedSegments.get(text);
  if (frames === undefined) {
    frames = deflateFrames(text);
    sharedSegments.set(text, frames);
  }
  return frames;
}

let batchesDeflated = 0;

/** Batches compressed since the process started: one per batch and encoding, whatever the
 *  number of subscribers. */
export function deflatedBatchCount(): number {
  return batchesDeflated;
}

const gzipEncoders = new WeakMap<BatchEncoder<SseFrames>, BatchEncoder<DeflatedFrames>>();

/**
 * The gzip variant of a batch encoder. It is the same function for the same encoder, so the
 * batch's cache compresses it once for all of its gzip subscribers.
 */
export function gzipBatchEncoder(encoder: BatchEncoder<SseFrames>): BatchEncoder<DeflatedFrames> {
  let gzipEncoder = gzipEncoders.get(encoder);
  if (gzipEncoder === undefined) {
    gzipEncoder = (topic, events) => {
      batchesDeflated++;
      return deflateFrames(encoder(topic, events).payload);
    };
    gzipEncoders.set(encoder, gzipEncoder);
  }
  return gzipEncoder;
}

export function isDeflated(frames: SseFrames): frames is DeflatedFrames {
  return 'crcShift' in frames;
}

/** ID1 ID2, deflate, no flags, no mtime, no extra flags, OS unknown (RFC 1952). */
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
/** A final, empty fixed-Huffman block: ends the deflate stream the segments left open. */
const FINAL_BLOCK = [0x03, 0x00];

/** One connection's gzip member: the segments it was sent, summed up for the trailer. */
export class GzipMember {
  readonly header = GZIP_HEADER;
  #crc = 0;
  #length = 0;

  add(frames: DeflatedFrames): void {
    this.#crc = (multiplyModP(frames.crcShift, this.#crc) ^ frames.crc) >>> 0;
    this.#length = (this.#length + frames.inflatedLength) % 2 ** 32;
  }

  /** The end of the deflate stream and the gzip trailer: CRC-32 and length mod 2^32. */
  trailer(): Buffer {
    const trailer = Buffer.alloc(FINAL_BLOCK.length + 8);
    trailer.set(FINAL_BLOCK);
    trailer.writeUInt32LE(this.#crc, FINAL_BLOCK.length);
    trailer.writeUInt32LE(this.#length, FINAL_BLOCK.length + 4);
    return trailer;
  }
}

/*
 * CRC-32 combination, after zlib's crc32_combine_gen/crc32_combine_op: CRC(A‖B) is
 * CRC(A)·x^(8·|B|) mod P, plus CRC(B). The shift depends only on |B|, so it is computed once
 * per batch and each connection pays one 32-step multiplication.
 */
const REFLECTED_POLY = 0xedb88320;

function multiplyModP(a: number, b: number): number {
  if (a === 0) return 0;
  let product = 0;
  let remaining = b;
  for (let mask = CRC_ONE; ; mask >>>= 1) {
    if ((a & mask) !== 0) {
      product ^= remaining;
      if ((a & (mask - 1)) === 0) return product >>> 0;
    }
    remaining = remaining & 1 ? (remaining >>> 1) ^ REFLECTED_POLY : remaining >>> 1;
  }
}

/** x^(2^k) mod P for k = 0..31; squaring gives each from the one before. */
const X_TO_2_TO_THE: number[] = [];
for (let power = CRC_ONE >>> 1, k = 0; k < 32; k++) {
  X_TO_2_TO_THE.push(power);
  power = multiplyModP(power, power);
}

/** x^(8·length) mod P. */
function crcShiftFor(length: number): number {
  let shift = CRC_ONE;
  let k = 3;
  for (let n = length; n > 0; n = Math.floor(n / 2), k++) {
    if (n % 2 === 1) shift = multiplyModP(X_TO_2_TO_THE[k % 32] as number, shift);
  }
  return shift;
}
