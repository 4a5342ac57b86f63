/** Per-client token buckets, in this process or shared by all of them. */
export interface RateBuckets {
  /** Takes a token for `key`: 0 when there was one, else the milliseconds until there is. */
  take(key: string): number | Promise<number>;
}

/**
 * One token bucket per client: at most `capacity` at once, refilled at `capacity` per
 * `windowMs`, so a client averages at most `capacity` per window, in bursts of at most that.
 *
 * Why not `@fastify/rate-limit`, which limits the other HTTP routes: a publish is either an
 * HTTP request or a WebSocket frame, and both must draw on one budget per client, or a client
 * would get twice the rate by using both. The plugin counts requests in its hooks; a frame is no
 * request, and its checker needs a live Fastify request, which a WebSocket does not keep (see
 * `releaseUpgrade`). With `BACKEND=redis` the buckets live in Redis (`RedisTokenBuckets`).
 *
 * Memory is bounded: the least recently used bucket goes when `maxClients` are tracked (a Map
 * iterates in insertion order, and every use re-inserts). Forgetting a client only refills it.
 */
export class TokenBuckets implements RateBuckets {
  readonly #buckets = new Map<string, { tokens: number; time: number }>();
  readonly #perMs: number;

  constructor(
    readonly capacity: number,
    readonly windowMs: number,
    readonly maxClients = 100_000,
  ) {
    this.#perMs = capacity / windowMs;
  }

  /** Takes a token for `key`: 0 when there was one, else the milliseconds until there is. */
  take(key: string, now = Date.now()): number {
    const buckets = this.#buckets;
    const bucket = buckets.get(key);
    let tokens = this.capacity;
    if (bucket !== undefined) {
      buckets.delete(key);
      tokens = Math.min(this.capacity, bucket.tokens + (now - bucket.time) * this.#perMs);
    } else if (buckets.size >= this.maxClients) {
      const oldest = buckets.keys().next().value;
      if (oldest !== undefined) buckets.delete(oldest);
    }
    const admitted = tokens >= 1;
    buckets.set(key, { tokens: admitted ? tokens - 1 : tokens, time: now });
    return admitted ? 0 : Math.ceil((1 - tokens) / this.#perMs);
  }

  get size(): number {
    return this.#buckets.size;
  }
}
