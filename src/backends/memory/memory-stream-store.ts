import type {
  StreamEnd,
  StreamOpening,
  StreamState,
  StreamStatus,
  StreamStore,
} from '../../core/stream-store.js';

export interface MemoryStreamStoreOptions {
  /** Ended streams are forgotten after this long. */
  readonly ttlMs: number;
  readonly now?: () => number;
}

interface Entry {
  status: StreamStatus;
  readonly createdAt: number;
  updatedAt: number;
  leaseUntil: number;
  reason?: string;
}

/** Streams of one process in a Map; ended ones swept after the TTL. */
export class MemoryStreamStore implements StreamStore {
  readonly #streams = new Map<string, Entry>();
  readonly #sweeper: NodeJS.Timeout;
  readonly #now: () => number;

  constructor(readonly options: MemoryStreamStoreOptions) {
    this.#now = options.now ?? Date.now;
    const interval = Math.min(60_000, Math.max(1000, options.ttlMs / 4));
    this.#sweeper = setInterval(() => this.sweep(), interval).unref();
  }

  async get(id: string): Promise<StreamState | undefined> {
    const entry = this.#live(id);
    if (entry === undefined) return undefined;
    const { status, createdAt, updatedAt, reason } = entry;
    return { status, createdAt, updatedAt, reason, producerLost: this.#lost(entry) };
  }

  async open(id: string, leaseMs: number): Promise<StreamOpening> {
    const existing = this.#live(id);
    if (existing?.status === 'open') return 'exists';
    const now = this.#now();
    this.#streams.set(id, {
      status: 'open',
      createdAt: now,
      updatedAt: now,
      leaseUntil: now + leaseMs,
    });
    return existing === undefined ? 'opened' : 'replaced';
  }

  async renew(id: string, leaseMs: number): Promise<boolean> {
    const entry = this.#live(id);
    if (entry?.status !== 'open') return false;
    entry.leaseUntil = this.#now() + leaseMs;
    return true;
  }

  async end(id: string, { status, reason }: StreamEnd, onlyIfLost = false): Promise<boolean> {
    const entry = this.#live(id);
    if (entry?.status !== 'open' || (onlyIfLost && !this.#lost(entry))) return false;
    entry.status = status;
    entry.reason = reason;
    entry.updatedAt = this.#now();
    return true;
  }

  async delete(id: string): Promise<void> {
    this.#streams.delete(id);
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
  }

  /** Forgets expired streams (see `#expired`), as Redis expires their keys. */
  sweep(): void {
    for (const [id, entry] of this.#streams) {
      if (this.#expired(entry)) this.#streams.delete(id);
    }
  }

  #live(id: string): Entry | undefined {
    const entry = this.#streams.get(id);
    if (entry === undefined || !this.#expired(entry)) return entry;
    this.#streams.delete(id);
    return undefined;
  }

  /** Ended longer than the TTL ago, or abandoned: open, its lease lapsed that long ago. */
  #expired(entry: Entry): boolean {
    const since = entry.status === 'open' ? entry.leaseUntil : entry.updatedAt;
    return this.#now() - since > this.options.ttlMs;
  }

  #lost(entry: Entry): boolean {
    return entry.status === 'open' && entry.leaseUntil < this.#now();
  }
}
