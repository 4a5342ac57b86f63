/** How a stream stands: open while its producer writes, then how it ended. */
export type StreamStatus = 'open' | 'complete' | 'cancelled' | 'producer_lost' | 'too_long';
export type StreamEnding = Exclude<StreamStatus, 'open'>;

export interface StreamState {
  readonly status: StreamStatus;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Open, but its producer's lease lapsed: it will never end by itself. */
  readonly producerLost: boolean;
  /** Why an ended stream ended, as recorded by `end`. */
  readonly reason?: string;
}

/** How a stream ended, and why (the reason its ending event gives). */
export interface StreamEnd {
  readonly status: StreamEnding;
  readonly reason: string;
}

/** What opening a stream id did. */
export type StreamOpening = 'opened' | 'replaced' | 'exists';

/**
 * The state of streams from any producer (docs/api.md §9), beside their logs. The store decides
 * every transition, atomically, so that one stream has one producer and ends exactly once,
 * whichever processes race: the memory store (one process) and the Redis store are
 * interchangeable. An open stream's producer holds a lease that it renews; a lapsed lease means
 * the producer is gone.
 */
export interface StreamStore {
  get(id: string): Promise<StreamState | undefined>;
  /**
   * Opens a stream with its producer's lease, unless one is open with that id (`exists`);
   * an ended one is replaced. The caller starts its log afresh.
   */
  open(id: string, leaseMs: number): Promise<StreamOpening>;
  /** Extends the lease of an open stream; false when it is not open (any more). */
  renew(id: string, leaseMs: number): Promise<boolean>;
  /**
   * Ends an open stream, recording why; true for exactly one caller. `onlyIfLost` ends it only
   * once its producer's lease has lapsed. Ended streams are forgotten after the store's TTL.
   */
  end(id: string, ending: StreamEnd, onlyIfLost?: boolean): Promise<boolean>;
  delete(id: string): Promise<void>;
  close(): Promise<void>;
}
