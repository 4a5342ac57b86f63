import { Counter, type CounterConfiguration, type LabelValues } from 'prom-client';

interface Tally<T extends string> {
  readonly labels: LabelValues<T>;
  count: number;
}

/**
 * A Prometheus counter counted on the hot path in plain numbers, one per label set, which join
 * the counter whenever it is read (a scrape). prom-client's own `inc` hashes and checks the
 * labels on every call: per token, about 1 % of the gateway's CPU with 500 concurrent
 * completions; per request (HTTP status, generation outcome, usage), about 40 µs of a streamed
 * completion's 2.1 ms in a CPU profile of sequential requests.
 */
export class TallyCounter<T extends string> {
  readonly counter: Counter<T>;
  readonly #tallies = new Map<string, Tally<T>>();

  constructor(config: Omit<CounterConfiguration<T>, 'collect'>) {
    this.counter = new Counter({ ...config, collect: () => this.#flush() });
  }

  /** Adds `by` to the label set `labels`, whose `key` is any string that names it alone. */
  add(key: string, labels: LabelValues<T>, by = 1): void {
    this.#tally(key, labels).count += by;
  }

  /** Counts one each call into the label set `labels` (named `key`), without even a lookup. */
  counting(key: string, labels: LabelValues<T>): () => void {
    const tally = this.#tally(key, labels);
    return () => {
      tally.count++;
    };
  }

  #tally(key: string, labels: LabelValues<T>): Tally<T> {
    let tally = this.#tallies.get(key);
    if (tally === undefined) {
      tally = { labels, count: 0 };
      this.#tallies.set(key, tally);
    }
    return tally;
  }

  #flush(): void {
    for (const tally of this.#tallies.values()) {
      if (tally.count === 0) continue;
      this.counter.inc(tally.labels, tally.count);
      tally.count = 0;
    }
  }
}
