import type { StoredEvent } from './types.js';

/** Turns a batch into a transport's wire bytes; called at most once per batch and encoder. */
export type BatchEncoder<T> = (topic: string, events: readonly StoredEvent[]) => T;

/**
 * Consecutive events of one topic and epoch, delivered together. Transports encode a batch
 * once and write the same bytes to every subscriber, so fan-out cost per subscriber is one
 * write per batch rather than one serialization per event.
 */
export class EventBatch {
  #encoded: Map<BatchEncoder<unknown>, unknown> | undefined;

  constructor(
    readonly topic: string,
    readonly epoch: string,
    /** Never empty; sequence numbers are consecutive. */
    readonly events: readonly StoredEvent[],
  ) {}

  get firstSeq(): number {
    return (this.events[0] as StoredEvent).seq;
  }

  get lastSeq(): number {
    return (this.events[this.events.length - 1] as StoredEvent).seq;
  }

  encode<T>(encoder: BatchEncoder<T>): T {
    this.#encoded ??= new Map();
    let value = this.#encoded.get(encoder) as T | undefined;
    if (value === undefined) {
      value = encoder(this.topic, this.events);
      this.#encoded.set(encoder, value);
    }
    return value;
  }

  /** The events after `seq`, for a subscriber that already has the first few. */
  after(seq: number): EventBatch {
    return new EventBatch(this.topic, this.epoch, this.events.slice(seq - this.firstSeq + 1));
  }
}
