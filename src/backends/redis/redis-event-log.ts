import type { Redis } from 'ioredis';
import type {
  AppendOptions,
  AppendResult,
  EventLog,
  LiveListener,
  ReadFrom,
  ReadResult,
} from '../../core/event-log.js';
import { formatId, newEpoch, type Position } from '../../core/ids.js';
import { headOf, type LogBounds, planRead } from '../../core/resume.js';
import type { EventInput, TopicInfo } from '../../core/types.js';
import { type ConnectionOptions, closeClient, createClient, ReadyGate } from './connection.js';
import { topicKeys } from './keys.js';
import { LiveChannels } from './live-channels.js';
import { APPEND_SCRIPT, READ_SCRIPT } from './scripts.js';
import { eventFromEntry, type StreamEntry } from './wire.js';

export interface RedisEventLogOptions extends ConnectionOptions {
  /** Namespace of every key and channel (default `sh`), so several logs can share a Redis. */
  readonly keyPrefix?: string;
  readonly maxEvents: number;
  readonly ttlMs: number;
  readonly idempotencyTtlMs: number;
  /** How long a command waits for a (re)connecting Redis before failing (default 1 s). */
  readonly connectWaitMs?: number;
}

type AppendReply = [epoch: string, seq: number, event: string, duplicate: 0 | 1];
type ReadReply = [
  epoch: string | null,
  firstSeq: number,
  lastSeq: number,
  afterSeq: number,
  entries: StreamEntry[],
];

interface ScriptedRedis extends Redis {
  streamhubAppend(...args: (string | number)[]): Promise<AppendReply>;
  streamhubRead(...args: (string | number)[]): Promise<ReadReply>;
}

/** One consistent view of a topic, as the read script saw it. */
interface LogView {
  readonly bounds: LogBounds;
  readonly afterSeq: number;
  readonly entries: StreamEntry[];
}

/**
 * The shared backend: per topic a Redis Stream of retained events and a meta hash with the
 * epoch and last sequence number, changed only by Lua scripts, plus Pub/Sub for live events.
 * Every process sees the same ids, history and idempotency keys.
 *
 * Deviations from the design in docs/architecture.md: count trimming is exact (`MAXLEN`, not
 * `~`) so that `history_truncated` bounds are exact; age trimming happens inside the append
 * and read scripts (expired entries are a prefix of the stream), so no periodic job is needed;
 * and topic keys expire `ttlMs` after the last append, so an idle topic costs nothing and
 * comes back with a new epoch, as with the memory backend.
 */
export class RedisEventLog implements EventLog {
  readonly #client: ScriptedRedis;
  readonly #subscriber: Redis;
  readonly #clientGate: ReadyGate;
  readonly #subscriberGate: ReadyGate;
  readonly #live: LiveChannels;
  readonly #prefix: string;

  constructor(readonly options: RedisEventLogOptions) {
    this.#prefix = options.keyPrefix ?? 'sh';
    const client = createClient(options);
    client.defineCommand('streamhubAppend', { numberOfKeys: 3, lua: APPEND_SCRIPT });
    client.defineCommand('streamhubRead', { numberOfKeys: 2, lua: READ_SCRIPT });
    this.#client = client as ScriptedRedis;
    this.#subscriber = client.duplicate();
    const waitMs = options.connectWaitMs ?? 1_000;
    this.#clientGate = new ReadyGate(client, waitMs);
    this.#subscriberGate = new ReadyGate(this.#subscriber, waitMs);
    this.#live = new LiveChannels(this.#subscriber, this.#subscriberGate);
  }

  async append(topic: string, input: EventInput, options?: AppendOptions): Promise<AppendResult> {
    const keys = topicKeys(this.#prefix, topic);
    const idempotencyKey = options?.idempotencyKey;
    await this.#clientGate.wait();
    const [epoch, seq, event, duplicate] = await this.#client.streamhubAppend(
      keys.meta,
      keys.log,
      keys.idem + (idempotencyKey ?? ''),
      newEpoch(),
      input.event,
      input.data,
      this.options.maxEvents,
      Math.ceil(this.options.ttlMs),
      idempotencyKey === undefined ? '0' : '1',
      Math.ceil(this.options.idempotencyTtlMs),
      keys.channel,
    );
    // Like the memory backend, an append resolves after this process's watchers saw it.
    if (duplicate === 0) await this.#live.delivered(keys.channel, epoch, seq);
    return { id: formatId(epoch, seq), event, duplicate: duplicate === 1 };
  }

  async read(topic: string, from: ReadFrom, limit: number): Promise<ReadResult> {
    const keys = topicKeys(this.#prefix, topic);
    let start = typeof from === 'object' && from !== null ? from : undefined;
    // The script mirrors planRead's choice of start; if they ever disagree, read again from
    // exactly where planRead says, and accept the page only when both agree on one view.
    for (let attempt = 0; attempt < 3; attempt++) {
      const view = await this.#view(keys.meta, keys.log, start, limit);
      const plan = planRead(view.bounds, from);
      if (plan.afterSeq === view.afterSeq) {
        const epoch = view.bounds.epoch;
        const events = epoch === null ? [] : view.entries.map((e) => eventFromEntry(epoch, e));
        const head = headOf(view.bounds);
        return plan.reset === undefined ? { events, head } : { events, reset: plan.reset, head };
      }
      start = { epoch: view.bounds.epoch, seq: plan.afterSeq };
    }
    throw new Error(`read of ${topic} did not settle on a start position`);
  }

  async head(topic: string): Promise<Position> {
    const keys = topicKeys(this.#prefix, topic);
    await this.#clientGate.wait();
    const [epoch, seq] = await this.#client.hmget(keys.meta, 'epoch', 'seq');
    return epoch == null ? { epoch: null, seq: 0 } : { epoch, seq: Number(seq ?? 0) };
  }

  async info(topic: string): Promise<TopicInfo> {
    const keys = topicKeys(this.#prefix, topic);
    const { bounds } = await this.#view(keys.meta, keys.log, undefined, 0);
    if (bounds.epoch === null || bounds.lastSeq === 0) return { lastId: null, length: 0 };
    // Trimming only ever removes the oldest entries, so retained seqs are contiguous.
    const length = bounds.lastSeq - bounds.firstSeq + 1;
    return { lastId: formatId(bounds.epoch, bounds.lastSeq), length };
  }

  async delete(topic: string): Promise<void> {
    const keys = topicKeys(this.#prefix, topic);
    await this.#clientGate.wait();
    // Idempotency keys stay: they name their epoch, and a new epoch ignores them.
    await this.#client.del(keys.log, keys.meta);
  }

  async watch(topic: string, listener: LiveListener): Promise<() => void> {
    return this.#live.watch(topicKeys(this.#prefix, topic).channel, listener);
  }

  /** Both connections answer; a (re)connecting one gets the short connect wait first. */
  async isReady(): Promise<boolean> {
    try {
      await Promise.all([this.#clientGate.wait(), this.#subscriberGate.wait()]);
      await Promise.all([this.#client.ping(), this.#subscriber.ping()]);
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.#live.close();
    await Promise.all([closeClient(this.#client), closeClient(this.#subscriber)]);
  }

  async #view(
    meta: string,
    log: string,
    start: Position | undefined,
    limit: number,
  ): Promise<LogView> {
    await this.#clientGate.wait();
    const [epoch, firstSeq, lastSeq, afterSeq, entries] = await this.#client.streamhubRead(
      meta,
      log,
      start?.epoch ?? '',
      start?.seq ?? -1,
      limit,
      Math.ceil(this.options.ttlMs),
    );
    return { bounds: { epoch, firstSeq, lastSeq }, afterSeq, entries };
  }
}
