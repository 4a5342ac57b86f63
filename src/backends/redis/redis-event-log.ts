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
import type { EventInput, TopicInfo } from '../../core/types.js';
import { type ConnectionOptions, RedisConnection } from './connection.js';
import { type TopicKeys, topicKeys } from './keys.js';
import {
  APPEND_FLAGS,
  type AppendReply,
  type AppendScripts,
  appendScripts,
  FENCE_SCRIPT,
  LAST_EVENT_SCRIPT,
  READ_SCRIPT,
  TOPIC_SCRIPTS,
  type WriterAppendScript,
  writerAppendScript,
} from './scripts.js';
import { eventFromEntry, formatLiveMessage, type LiveMessage, type StreamEntry } from './wire.js';

export interface RedisEventLogOptions extends ConnectionOptions {
  /** Shared with the process's other logs and stores; without it the log opens its own. */
  readonly connection?: RedisConnection;
  /** Namespace of every key and channel (default `sh`), so several logs can share a Redis. */
  readonly keyPrefix?: string;
  readonly maxEvents: number;
  readonly ttlMs: number;
  readonly idempotencyTtlMs: number;
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
 * and topic keys expire `ttlMs` (to `ttlMs` 17/16: refreshed once per sixteenth of it, not per
 * append) after the last append, so an idle topic costs nothing and
 * comes back with a new epoch, as with the memory backend.
 */
export class RedisEventLog implements EventLog {
  readonly #connection: RedisConnection;
  readonly #ownsConnection: boolean;
  readonly #prefix: string;
  readonly #appendScripts: AppendScripts;
  /** A writer's fast path (see #appendAsWriter). */
  readonly #writerAppend: WriterAppendScript;
  /**
   * Redis's clock minus this process's, as the last reply that carried it showed (on a cluster,
   * the clock of whichever master answered: masters agree as far as their hosts' clocks do).
   */
  #clockOffset = 0;
  /**
   * Per log appended by its writer: until when (this process's clock) the writer may take the
   * fast path, i.e. before the keys' TTL refresh is due, which the whole script does. Entries
   * past their time mean the same as none and are dropped (#noteFastUntil).
   */
  readonly #fastUntil = new Map<string, number>();
  #fastUntilSwept = 0;

  constructor(readonly options: RedisEventLogOptions) {
    this.#prefix = options.keyPrefix ?? 'sh';
    this.#ownsConnection = options.connection === undefined;
    this.#connection = options.connection ?? new RedisConnection(options);
    this.#appendScripts = appendScripts({
      maxEvents: options.maxEvents,
      ttlMs: options.ttlMs,
      idempotencyTtlMs: options.idempotencyTtlMs,
      publishCommand: this.#connection.pubSub.publishCommand,
      // Only a cluster fails over to replicas; one Redis restarted from its AOF must keep
      // its epochs (its replication id changes too).
      checkHistory: this.#connection.options.cluster === true,
    });
    this.#writerAppend = writerAppendScript({
      maxEvents: options.maxEvents,
      publishCommand: this.#connection.pubSub.publishCommand,
      checkHistory: this.#connection.options.cluster === true,
    });
    const scripts = [...TOPIC_SCRIPTS, this.#appendScripts.plain, this.#appendScripts.idempotent];
    for (const script of scripts) script.define(this.#connection.client);
    this.#writerAppend.define(this.#connection.client);
  }

  async append(topic: string, input: EventInput, options?: AppendOptions): Promise<AppendResult> {
    const [epoch, seq, event, outcome] = await this.#append(topic, [input], options);
    return { id: formatId(epoch, seq), event, duplicate: outcome === 1 };
  }

  async appendBatch(
    topic: string,
    inputs: readonly EventInput[],
    options?: BatchAppendOptions,
  ): Promise<string[]> {
    checkBatchSize(inputs);
    const [epoch, lastSeq] = await this.#append(topic, inputs, options);
    const firstSeq = lastSeq - inputs.length + 1;
    return inputs.map((_, i) => formatId(epoch, firstSeq + i));
  }

  /** One script call appends all of `inputs`; resolves once local watchers saw them. */
  async #append(
    topic: string,
    inputs: readonly EventInput[],
    options: AppendOptions | undefined,
  ): Promise<AppendReply> {
    const keys = topicKeys(this.#prefix, topic);
    const landed = await this.#appendAsWriter(topic, keys, inputs, options);
    if (landed !== undefined) return landed;
    const events: string[] = [];
    for (const input of inputs) events.push(input.event, input.data);
    const flags =
      (options?.final === true ? APPEND_FLAGS.final : 0) +
      (options?.epoch !== undefined ? APPEND_FLAGS.bound : 0);
    const common = {
      metaKey: keys.meta,
      logKey: keys.log,
      // Bound to an epoch, the append never starts one.
      epoch: options?.epoch ?? newEpoch(),
      flags,
      fence: options?.fence ?? -1,
      channel: keys.channel,
      events,
    };
    const idempotencyKey = options?.idempotencyKey;
    const reply = await this.#connection.command((client) =>
      idempotencyKey === undefined
        ? this.#appendScripts.plain.run(client, common)
        : this.#appendScripts.idempotent.run(client, {
            ...common,
            idemKey: keys.idem + idempotencyKey,
          }),
    );
    const result =
      typeof reply === 'string' ? this.#appended(topic, reply, inputs, options) : reply;
    const [epoch, seq, , outcome] = result;
    if (outcome !== 0) this.#fastUntil.delete(topic);
    if (outcome === 2) throw logEndedError(topic);
    // Like the memory backend, an append resolves after this process's watchers saw it.
    if (outcome === 0) await this.#connection.live.delivered(keys.channel, epoch, seq);
    return result;
  }

  /**
   * Appends `inputs` by the writer's fast path when it may take it (a plain append bound to its
   * epoch with the writer's last seq, and the keys' TTL refresh not yet due): resolves to its
   * reply, or to `undefined` when it may not, or when the writer no longer holds the log's
   * writer token, and the whole script must decide.
   */
  async #appendAsWriter(
    topic: string,
    keys: TopicKeys,
    inputs: readonly EventInput[],
    options: AppendOptions | undefined,
  ): Promise<AppendReply | undefined> {
    const { epoch, lastSeq, fence = 0 } = options ?? {};
    if (epoch === undefined || lastSeq === undefined || options?.final === true) return undefined;
    const now = Date.now();
    if (!(now < (this.#fastUntil.get(topic) ?? 0))) return undefined;
    const time = String(now + this.#clockOffset);
    const events: string[] = [];
    for (const [i, { event, data }] of inputs.entries())
      events.push(`${lastSeq + i + 1}-0`, event, data);
    const seq = lastSeq + inputs.length;
    const landed = await this.#connection.command((client) =>
      this.#writerAppend.run(client, {
        metaKey: keys.meta,
        logKey: keys.log,
        writer: `${epoch}:${lastSeq}:${fence}`,
        nextWriter: `${epoch}:${seq}:${fence}`,
        lastSeq: String(seq),
        time,
        channel: keys.channel,
        message: formatLiveMessage(epoch, lastSeq + 1, time, inputs),
        events,
      }),
    );
    if (landed === 0) return undefined;
    await this.#connection.live.delivered(keys.channel, epoch, seq);
    return [epoch, seq, lastEventType(inputs), 0];
  }

  /**
   * The whole script's `epoch \n seq` (and for an append bound to its epoch `\n time \n kept`)
   * for appended `inputs`, as the reply of their last event. Notes Redis's clock, and for a
   * writer's append until when its fast path may be taken: until the keys' TTL refresh is due.
   */
  #appended(
    topic: string,
    answer: string,
    inputs: readonly EventInput[],
    options: AppendOptions | undefined,
  ): AppendReply {
    const [epoch = '', seq, time, kept] = answer.split('\n');
    if (time !== undefined) {
      const now = Date.now();
      this.#clockOffset = Number(time) - now;
      const until = Number(kept) + this.options.ttlMs / 16 - this.#clockOffset;
      if (options?.final === true) this.#fastUntil.delete(topic);
      else this.#noteFastUntil(topic, until, now);
    }
    return [epoch, Number(seq), lastEventType(inputs), 0];
  }

  #noteFastUntil(topic: string, until: number, now: number): void {
    this.#fastUntil.set(topic, until);
    // Dropping entries whose time has passed keeps the map to the logs written lately.
    if (now - this.#fastUntilSwept < this.options.ttlMs / 16) return;
    this.#fastUntilSwept = now;
    for (const [name, time] of this.#fastUntil) if (time <= now) this.#fastUntil.delete(name);
  }

  async read(topic: string, from: ReadFrom, limit: number): Promise<ReadResult> {
    const keys = topicKeys(this.#prefix, topic);
    let start = typeof from === 'object' && from !== null ? from : undefined;
    // The script mirrors planRead's choice of start; if they ever disagree, read again from
    // exactly where planRead says, and accept the page only when both agree on one view.
    for (let attempt = 0; attempt < 3; attempt++) {
      const view = await this.#view(keys, start, limit);
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
    const [epoch, seq] = await this.#connection.command((client) =>
      client.hmget(keys.meta, 'epoch', 'seq'),
    );
    return epoch == null ? { epoch: null, seq: 0 } : { epoch, seq: Number(seq ?? 0) };
  }

  async info(topic: string): Promise<TopicInfo> {
    const keys = topicKeys(this.#prefix, topic);
    const { bounds } = await this.#view(keys, undefined, 0);
    if (bounds.epoch === null || bounds.lastSeq === 0) return { lastId: null, length: 0 };
    // Trimming only ever removes the oldest entries, so retained seqs are contiguous.
    const length = bounds.lastSeq - bounds.firstSeq + 1;
    return { lastId: formatId(bounds.epoch, bounds.lastSeq), length };
  }

  fence(topic: string, token: number): Promise<number> {
    const metaKey = topicKeys(this.#prefix, topic).meta;
    return this.#connection.command((client) => FENCE_SCRIPT.run(client, { metaKey, token }));
  }

  async delete(topic: string): Promise<void> {
    const keys = topicKeys(this.#prefix, topic);
    // Idempotency keys stay: they name their epoch, and a new epoch ignores them.
    await this.#connection.command((client) => client.del(keys.log, keys.meta));
  }

  async watch(topic: string, listener: LiveListener): Promise<() => void> {
    const channel = topicKeys(this.#prefix, topic).channel;
    return this.#connection.live.watch(channel, listener, (epoch, seq) =>
      this.#newestAfter(topic, epoch, seq),
    );
  }

  isReady(): Promise<boolean> {
    return this.#connection.isReady();
  }

  async close(): Promise<void> {
    if (this.#ownsConnection) await this.#connection.close();
  }

  /**
   * The topic's newest event, unless it is `(epoch, seq)` or older: for healing lost live
   * messages. The head alone answers the usual "nothing new", so a quiet topic costs one HMGET.
   */
  async #newestAfter(topic: string, epoch: string, seq: number): Promise<LiveMessage | undefined> {
    const head = await this.head(topic);
    if (head.epoch === null || head.seq === 0 || (head.epoch === epoch && head.seq <= seq)) {
      return undefined;
    }
    const keys = topicKeys(this.#prefix, topic);
    const [newestEpoch, newest] = await this.#connection.command((client) =>
      LAST_EVENT_SCRIPT.run(client, {
        metaKey: keys.meta,
        logKey: keys.log,
        ttlMs: Math.ceil(this.options.ttlMs),
      }),
    );
    if (newestEpoch === undefined || newest === undefined) return undefined;
    return { epoch: newestEpoch, event: eventFromEntry(newestEpoch, newest) };
  }

  async #view(keys: TopicKeys, start: Position | undefined, limit: number): Promise<LogView> {
    const [epoch, firstSeq, lastSeq, afterSeq, entries] = await this.#connection.command((client) =>
      READ_SCRIPT.run(client, {
        metaKey: keys.meta,
        logKey: keys.log,
        fromEpoch: start?.epoch ?? '',
        fromSeq: start?.seq ?? -1,
        limit,
        ttlMs: Math.ceil(this.options.ttlMs),
      }),
    );
    return { bounds: { epoch, firstSeq, lastSeq }, afterSeq, entries };
  }
}

function lastEventType(inputs: readonly EventInput[]): string {
  return inputs[inputs.length - 1]?.event ?? '';
}
