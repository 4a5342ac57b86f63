import type { ZlibOptions } from 'node:zlib';

/**
 * Options for a one-off compressor sized to its input: a window no larger than the input
 * loses nothing (no match can reach further back), and a batch of a few hundred bytes then
 * allocates KiBs instead of zlib's default ~260 KiB, which, freed at once after every batch,
 * left the heap fragmented.
 */
export function deflateOptionsFor(length: number, finishFlush: number): ZlibOptions {
  const windowBits = Math.min(15, Math.max(9, Math.ceil(Math.log2(length + 1))));
  return { finishFlush, windowBits, memLevel: Math.max(2, windowBits - 7) };
}
