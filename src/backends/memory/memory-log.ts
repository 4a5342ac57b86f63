import {
  type AppendOptions,
  type AppendResult,
  type BatchAppendOptions,
  checkBatchSize,
  type EventLog,
  type LiveListener,
  logEndedError,
  type ReadFrom,
  type ReadResult,
} from '../../core/event-log.js';
import { formatId, newEpoch, type Position } from '../../core/ids.js';
import { headOf, type LogBounds, planRead } from '../../core/resume.js';
import type { EventInput, StoredEvent, TopicInfo } from '../../core/types.js';
import { IdempotencyCache } from './idempotency-cache.js';
import { RingBuffer } from './ring-buffer.js';

export interface MemoryLogOptions {
  readonly maxEvents: number;
  readonly ttlMs: number;
  readonly idempotencyTtlMs: number;
  /** Idempotency keys remembered at most, over all topics. */
  readonly maxIdempotencyKeys?: number;
  /** How often expired history is dropped and idle topics are freed; derived from ttlMs. */
  readonly sweepIntervalMs?: number;
  readonly now?: () => number;
}

class TopicLog {
  epoch: string | null = null;
  lastSeq = 0;
  ended = false;
  /** The highest fencing token the log was fenced with (see `EventLog.fence`). */
  fence = 0;
  readonly events = new RingBuffer<StoredEvent>();
  readonly listeners = new Set<LiveListener>();

  get bounds(): LogBounds {
    return {
      epoch: this.epoch,
      firstSeq: this.lastSeq - this.events.size + 1,
      lastSeq: this.lastSeq,
    };
  }

  /** Idle topics cost nothing: they are freed and recreated on demand. */
  get idle(): boolean {
    return this.events.size === 0 && this.listeners.size === 0;
  }
}

const EMPTY_HEAD: Position = { epoch: null, seq: 0 };

/**
 * The embedded backend: each topic is a ring buffer of its retained events. Everything is
 * synchronous underneath, so live listeners see an append before `append` resolves.
 */
export class MemoryEventLog implements EventLog {
  readonly #topics = new Map<string, TopicLog>();
  readonly #idempotency: IdempotencyCache;
  readonly #sweeper: NodeJS.Timeout;
  readonly #now: () => number;

  constructor(readonly options: MemoryLogOptions) {
    this.#now = options.now ?? Date.now;
    this.#idempotency = new IdempotencyCache(
      options.idempotencyTtlMs,
      options.maxIdempotencyKeys ?? 100_000,
    );
    const interval = options.sweepIntervalMs ?? clamp(options.ttlMs / 4, 1_000, 30_000);
    this.#sweeper = setInterval(() => this.sweep(), interval).unref();
  }

  async append(topic: string, input: EventInput, options?: AppendOptions): Promise<AppendResult> {
    return this.#append(topic, input, options);
  }

  appendNow(topic: string, input: EventInput, options?: AppendOptions): AppendResult {
    return this.#append(topic, input, options);
  }

  #append(topic: string, input: EventInput, options: AppendOptions | undefined): AppendResult {
    const now = this.#now();
    const key = options?.idempotencyKey;
    const log = this.#topic(topic);
    if (key !== undefined && log.epoch !== null) {
      const seen = this.#idempotency.get(topic, key, now);
      if (seen !== undefined && seen.epoch === log.epoch) {
        return { id: seen.id, event: seen.event, duplicate: true };
      }
    }
    this.#checkOpen(topic, log, options);
    const stored = this.#store(log, input, now);
    log.ended = options?.final === true;
    if (key !== undefined) {
      const epoch = log.epoch as string;
      this.#idempotency.remember(topic, key, { epoch, id: stored.id, event: stored.event }, now);
    }
    return { id: stored.id, event: stored.event, duplicate: false };
  }

  async appendBatch(
    topic: string,
    inputs: readonly EventInput[],
    options?: BatchAppendOptions,
  ): Promise<string[]> {
    const now = this.#now();
    checkBatchSize(inputs);
    const log = this.#topic(topic);
    this.#checkOpen(topic, log, options);
    const ids = inputs.map((input) => this.#store(log, input, now).id);
    log.ended = options?.final === true;
    return ids;
  }

  async read(topic: string, from: ReadFrom, limit: number): Promise<ReadResult> {
    const log = this.#existing(topic);
    if (log === undefined) {
      const plan = planRead({ epoch: null, firstSeq: 1, lastSeq: 0 }, from);
      return { events: [], reset: plan.reset, head: EMPTY_HEAD };
    }
    const bounds = log.bounds;
    const plan = planRead(bounds, from);
    const events = log.events.slice(plan.afterSeq - bounds.firstSeq + 1, limit);
    return { events, reset: plan.reset, head: headOf(bounds) };
  }

  async head(topic: string): Promise<Position> {
    const log = this.#existing(topic);
    return log === undefined ? EMPTY_HEAD : headOf(log.bounds);
  }

  async info(topic: string): Promise<TopicInfo> {
    const log = this.#existing(topic);
    if (log?.epoch == null || log.lastSeq === 0) return { lastId: null, length: 0 };
    return { lastId: formatId(log.epoch, log.lastSeq), length: log.events.size };
  }

  async fence(topic: string, token: number): Promise<number> {
    const log = this.#existing(topic);
    if (log?.epoch == null) return token;
    log.fence = log.fence >= token ? log.fence + 1 : token;
    return log.fence;
  }

  async delete(topic: string): Promise<void> {
    const log = this.#topics.get(topic);
    if (log === undefined) return;
    log.epoch = null;
    log.lastSeq = 0;
    log.ended = false;
    log.fence = 0;
    log.events.clear();
    if (log.idle) this.#topics.delete(topic);
  }

  async watch(topic: string, listener: LiveListener): Promise<() => void> {
    // Wrapped so that the same function can watch twice and be stopped once per watch.
    const own: LiveListener = (epoch, event) => listener(epoch, event);
    const log = this.#topic(topic);
    log.listeners.add(own);
    return () => {
      log.listeners.delete(own);
      if (log.idle && this.#topics.get(topic) === log) this.#topics.delete(topic);
    };
  }

  async isReady(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
  }

  /** Drops expired events everywhere and frees idle topics. */
  sweep(): void {
    const now = this.#now();
    for (const [name, log] of this.#topics) {
      this.#expire(log, now);
      if (log.idle) this.#topics.delete(name);
    }
  }

  get topicCount(): number {
    return this.#topics.size;
  }

  #store(log: TopicLog, input: EventInput, now: number): StoredEvent {
    log.epoch ??= newEpoch();
    const seq = ++log.lastSeq;
    const stored: StoredEvent = {
      id: formatId(log.epoch, seq),
      seq,
      event: input.event,
      data: input.data,
      time: now,
    };
    log.events.push(stored);
    if (log.events.size > this.options.maxEvents) log.events.shift();
    this.#expire(log, now);
    for (const listener of log.listeners) listener(log.epoch, stored);
    return stored;
  }

  /** The refusals of an append, for an ended log or one the writer no longer owns. */
  #checkOpen(topic: string, log: TopicLog, options: BatchAppendOptions | undefined): void {
    if (
      log.ended ||
      (options?.epoch !== undefined && options.epoch !== log.epoch) ||
      (options?.fence ?? log.fence) < log.fence
    ) {
      throw logEndedError(topic);
    }
  }

  #topic(topic: string): TopicLog {
    let log = this.#topics.get(topic);
    if (log === undefined) {
      log = new TopicLog();
      this.#topics.set(topic, log);
    }
    return log;
  }

  #existing(topic: string): TopicLog | undefined {
    const log = this.#topics.get(topic);
    if (log !== undefined) this.#expire(log, this.#now());
    return log;
  }

  #expire(log: TopicLog, now: number): void {
    const cutoff = now - this.options.ttlMs;
    while ((log.events.at(0)?.time ?? cutoff) < cutoff) log.events.shift();
  }
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
