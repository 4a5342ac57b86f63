export interface RememberedAppend {
  readonly epoch: string;
  readonly id: string;
  readonly event: string;
  readonly expiresAt: number;
}

/**
 * Idempotency keys of recent appends, bounded in both time and count. Entries go in in
 * time order with one TTL, so the oldest is always first and expiry is a walk from the front.
 */
export class IdempotencyCache {
  readonly #entries = new Map<string, RememberedAppend>();

  constructor(
    readonly ttlMs: number,
    readonly maxEntries: number,
  ) {}

  get(topic: string, key: string, now: number): RememberedAppend | undefined {
    this.#expire(now);
    return this.#entries.get(cacheKey(topic, key));
  }

  remember(
    topic: string,
    key: string,
    value: Omit<RememberedAppend, 'expiresAt'>,
    now: number,
  ): void {
    this.#expire(now);
    while (this.#entries.size >= this.maxEntries) this.#dropOldest();
    const k = cacheKey(topic, key);
    this.#entries.delete(k); // re-inserting keeps the map in expiry order
    this.#entries.set(k, { ...value, expiresAt: now + this.ttlMs });
  }

  #expire(now: number): void {
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt > now) return;
      this.#entries.delete(key);
    }
  }

  #dropOldest(): void {
    const oldest = this.#entries.keys().next();
    if (!oldest.done) this.#entries.delete(oldest.value);
  }
}

function cacheKey(topic: string, key: string): string {
  // Topic names cannot contain a newline, so the pair cannot be confused with another.
  return `${topic}\n${key}`;
}
