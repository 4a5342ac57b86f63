/** Nearest-rank percentile of an ascending array (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))] ?? Number.NaN;
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

// Log-spaced buckets (1 % wide) from 1 µs to ~100 s: hundreds of thousands of samples per second
// must cost one Math.log and an increment, not an array push and a sort.
const MIN_MS = 0.001;
const GROWTH = Math.log(1.01);
const BUCKETS = 1900;

export class LatencyHistogram {
  private readonly counts = new Uint32Array(BUCKETS);
  count = 0;

  record(ms: number): void {
    const i = ms <= MIN_MS ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log(ms / MIN_MS) / GROWTH));
    this.counts[i] = (this.counts[i] ?? 0) + 1;
    this.count++;
  }

  /** Adds another histogram's samples, to pool repeated rounds. */
  merge(other: LatencyHistogram): void {
    for (let i = 0; i < BUCKETS; i++)
      this.counts[i] = (this.counts[i] ?? 0) + (other.counts[i] ?? 0);
    this.count += other.count;
  }

  /** Upper edge of the bucket holding the p-th percentile sample, in ms. */
  percentile(p: number): number {
    if (this.count === 0) return Number.NaN;
    const target = Math.ceil((p / 100) * this.count);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i] ?? 0;
      if (seen >= target) return MIN_MS * Math.exp((i + 1) * GROWTH);
    }
    return Number.POSITIVE_INFINITY;
  }
}
