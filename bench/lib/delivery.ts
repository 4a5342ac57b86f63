import { nowMs } from './publisher.js';
import { LatencyHistogram } from './stats.js';

/**
 * What the publisher puts in `data`: publisher stream `p`, its sequence number `s` and the publish
 * time `t`. Each stream publishes strictly one request at a time, so the server's publication
 * order within a stream is known and subscribers can tell loss, duplication and reordering apart
 * even though several streams publish concurrently.
 */
export interface Payload {
  p: number;
  s: number;
  t: number;
}

export const PROBE = -1;

export class Subscriber {
  readonly max: Int32Array;
  /** Sequence numbers skipped over and not (yet) received, keyed `s * streams + p`. */
  readonly gaps = new Set<number>();
  duplicates = 0;
  reordered = 0;
  probed = false;
  closed = false;

  constructor(streams: number) {
    this.max = new Int32Array(streams).fill(-1);
  }
}

const RING = 1 << 16;

/** Per publisher stream: how many subscribers still miss each recent event (flow control). */
class Stream {
  next = 0;
  /** Lowest sequence number not yet delivered to every live subscriber. */
  low = 0;
  readonly pending = new Int32Array(RING);
  readonly publishedAt = new Float64Array(RING);
}

/**
 * Shared bookkeeping between the publishers and all subscribers of one scenario run: latency,
 * delivered counts, sequence checking, and a delivery window that keeps the publishers at most
 * `window` events ahead of the slowest subscriber, so "maximum rate" measures sustainable
 * throughput instead of how fast unbounded buffers grow.
 */
export class Delivery {
  readonly latency = new LatencyHistogram();
  readonly subscribers: Subscriber[] = [];
  private readonly streams: Stream[];
  measuring = false;
  deliveredInWindow = 0;
  deliveredTotal = 0;
  /** Events given up on by flow control because some subscriber never got them in time. */
  forcedAdvances = 0;
  private live = 0;
  private wake: (() => void) | undefined;

  constructor(
    readonly streamCount: number,
    private readonly window: number,
  ) {
    this.streams = Array.from({ length: streamCount }, () => new Stream());
  }

  addSubscriber(): Subscriber {
    const sub = new Subscriber(this.streamCount);
    this.subscribers.push(sub);
    this.live++;
    return sub;
  }

  /** Reserves the next sequence number of stream `p`; call right before publishing it. */
  nextSeq(p: number): number {
    const st = this.stream(p);
    const seq = st.next++;
    st.pending[seq % RING] = this.live;
    st.publishedAt[seq % RING] = nowMs();
    return seq;
  }

  receive(sub: Subscriber, data: Payload): void {
    const { p, s } = data;
    if (p === PROBE) {
      sub.probed = true;
      return;
    }
    const max = sub.max[p] ?? -1;
    if (s > max) {
      for (let g = max + 1; g < s; g++) sub.gaps.add(g * this.streamCount + p);
      sub.max[p] = s;
    } else if (sub.gaps.delete(s * this.streamCount + p)) {
      sub.reordered++;
    } else {
      sub.duplicates++;
      return;
    }
    this.deliveredTotal++;
    if (this.measuring) {
      this.deliveredInWindow++;
      this.latency.record(nowMs() - data.t);
    }
    this.ack(p, s);
  }

  /** A closed subscriber will get nothing more: stop waiting for it. */
  close(sub: Subscriber): void {
    if (sub.closed) return;
    sub.closed = true;
    this.live--;
    for (let p = 0; p < this.streamCount; p++) {
      const st = this.stream(p);
      for (let s = Math.max(st.low, (sub.max[p] ?? -1) + 1); s < st.next; s++) this.ack(p, s);
    }
    for (const key of sub.gaps)
      this.ack(key % this.streamCount, Math.floor(key / this.streamCount));
  }

  private stream(p: number): Stream {
    const st = this.streams[p];
    if (!st) throw new Error(`unknown publisher stream ${p}`);
    return st;
  }

  private ack(p: number, s: number): void {
    const st = this.stream(p);
    if (s < st.low || s >= st.next) return;
    const i = s % RING;
    st.pending[i] = (st.pending[i] ?? 0) - 1;
    if (s === st.low) this.advance(st);
  }

  private advance(st: Stream): void {
    while (st.low < st.next && (st.pending[st.low % RING] ?? 0) <= 0) st.low++;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Resolves when stream `p` may publish again; gives up on events undelivered after `staleMs`. */
  async waitForWindow(p: number, staleMs = 2000): Promise<void> {
    const st = this.stream(p);
    while (st.next - st.low >= this.window) {
      const age = nowMs() - (st.publishedAt[st.low % RING] ?? 0);
      if (age > staleMs) {
        this.forcedAdvances++;
        st.pending[st.low % RING] = 0;
        this.advance(st);
        continue;
      }
      await new Promise<void>((resolve) => {
        const prev = this.wake;
        const t = setTimeout(resolve, Math.max(1, staleMs - age));
        this.wake = () => {
          clearTimeout(t);
          prev?.();
          resolve();
        };
      });
    }
  }

  /** True once every live subscriber has every published event (or `timeoutMs` passed). */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.streams.every((st) => st.low >= st.next)) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  }

  published(): number {
    return this.streams.reduce((n, st) => n + st.next, 0);
  }

  /** Loss counts every published event a subscriber never received, including after a close. */
  totals(): { lost: number; duplicated: number; reordered: number; closed: number } {
    let lost = 0;
    let duplicated = 0;
    let reordered = 0;
    let closed = 0;
    for (const sub of this.subscribers) {
      lost += sub.gaps.size;
      for (let p = 0; p < this.streamCount; p++) {
        lost += this.stream(p).next - 1 - (sub.max[p] ?? -1);
      }
      duplicated += sub.duplicates;
      reordered += sub.reordered;
      if (sub.closed) closed++;
    }
    return { lost, duplicated, reordered, closed };
  }
}
