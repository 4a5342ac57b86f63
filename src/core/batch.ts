import type { StoredEvent } from './types.js';

/** Turns a batch into a transport's wire bytes; called at most once per batch and encoder. */
export type BatchEncoder<T> = (topic: string, events: readonly StoredEvent[]) => T;

/**
 * Consecutive events of one topic and epoch, delivered together. Transports encode a batch
 * once and write the same bytes to every subscriber, so fan-out cost per subscriber is one
 * write per batch rather than one serialization per event.
 */
export class EventBatch {
  readonly firstSeq: number;
  readonly lastSeq: number;
  /** Encoder, encoding, encoder, encoding…: a batch meets one or two transports, so a short
   *  array scanned per subscriber is cheaper than a Map on this per-delivery path. */
  readonly #encoded: unknown[] = [];

  constructor(
    readonly topic: string,
    readonly epoch: string,
    /** Never empty; sequence numbers are consecutive. */
    readonly events: readonly StoredEvent[],
  ) {
    this.firstSeq = (events[0] as StoredEvent).seq;
    this.lastSeq = (events[events.length - 1] as StoredEvent).seq;
  }

  encode<T>(encoder: BatchEncoder<T>): T {
    const encoded = this.#encoded;
    for (let i = 0; i < encoded.length; i += 2) {
      if (encoded[i] === encoder) return encoded[i + 1] as T;
    }
    const value = encoder(this.topic, this.events);
    encoded.push(encoder, value);
    return value;
  }

  /** The events after `seq`, for a subscriber that already has the first few. */
  after(seq: number): EventBatch {
    return new EventBatch(this.topic, this.epoch, this.events.slice(seq - this.firstSeq + 1));
  }
}
