import type { LiveListener } from '../../core/event-log.js';
import type { StoredEvent } from '../../core/types.js';
import type { ReadyGate, RedisClient } from './connection.js';
import type { PubSubMode } from './pubsub.js';
import { type LiveMessage, parseLiveMessage } from './wire.js';

/** An append of this process waiting until its own event has reached local watchers. */
interface DeliveryWaiter {
  readonly epoch: string;
  readonly seq: number;
  /** When it stops waiting (Date.now()), its event lost by Pub/Sub. */
  readonly deadline: number;
  readonly done: () => void;
}

/**
 * Fetches the newest event of a channel's topic when it is not the last one dispatched
 * (`lastEpoch`, `lastSeq`), so that a message Pub/Sub dropped is noticed.
 */
export type Healer = (lastEpoch: string, lastSeq: number) => Promise<LiveMessage | undefined>;

/** The local watchers of one channel. */
class Channel {
  readonly listeners = new Set<LiveListener>();
  /** Settles when Redis has confirmed the SUBSCRIBE. */
  subscribed: Promise<unknown> = Promise.resolve();
  waiters: DeliveryWaiter[] = [];
  /** The last event dispatched: its message may arrive before the append's own reply. */
  lastEpoch = '';
  lastSeq = 0;
  lastDispatchAt = 0;
  healing = false;

  constructor(readonly heal: Healer) {}

  hasDispatched(epoch: string, seq: number): boolean {
    return this.lastEpoch === epoch && this.lastSeq >= seq;
  }

  /**
   * The events of one append (consecutive seqs), in order and once: a healed event may race
   * with its own late live message.
   */
  dispatch(epoch: string, events: readonly StoredEvent[]): void {
    let dispatched = false;
    for (const event of events) {
      if (this.hasDispatched(epoch, event.seq)) continue;
      dispatched = true;
      this.lastEpoch = epoch;
      this.lastSeq = event.seq;
      for (const listener of this.listeners) listener(epoch, event);
    }
    if (!dispatched) return;
    this.lastDispatchAt = Date.now();
    if (this.waiters.length === 0) return;
    const still: DeliveryWaiter[] = [];
    for (const waiter of this.waiters) {
      if (waiter.epoch === epoch && waiter.seq <= this.lastSeq) waiter.done();
      else still.push(waiter);
    }
    this.waiters = still;
  }

  releaseWaiters(): void {
    for (const waiter of this.waiters) waiter.done();
    this.waiters = [];
  }

  /** Stops the waits past their deadline; true when none is left. */
  releaseLate(now: number): boolean {
    // Waiters are added in time order, so the late ones are a prefix.
    const onTime = this.waiters.findIndex((waiter) => waiter.deadline > now);
    const late = onTime < 0 ? this.waiters.length : onTime;
    for (const waiter of this.waiters.slice(0, late)) waiter.done();
    if (late > 0) this.waiters = this.waiters.slice(late);
    return this.waiters.length === 0;
  }
}

export interface LiveChannelsOptions {
  /** Quiet channels are checked for a missed last message this often. */
  readonly healIntervalMs: number;
  /** An append waits at most this long for its own event to come back (Pub/Sub may drop it). */
  readonly deliveryWaitMs?: number;
}

/**
 * Live notification over ONE subscriber connection for all topics of a process: the first
 * watcher of a channel subscribes, the last one unsubscribes, and each message is parsed once
 * and handed to every local listener of its channel, in order.
 *
 * Pub/Sub is at-most-once (a reconnect loses what was published meanwhile). A lost message
 * followed by another shows as a jump in sequence numbers, which the hub fills from the log;
 * a lost *last* message is found by healing: after a reconnect and periodically for quiet
 * channels, the topic's newest event is fetched and dispatched if it was not yet.
 */
export class LiveChannels {
  readonly #channels = new Map<string, Channel>();
  readonly #healTimer: NodeJS.Timeout;
  /** Channels with appends waiting for their own event, checked by one timer for them all. */
  readonly #waiting = new Set<Channel>();
  readonly #waitMs: number;
  readonly #waitTimer: NodeJS.Timeout;

  constructor(
    readonly subscriber: RedisClient,
    readonly gate: ReadyGate,
    readonly pubSub: PubSubMode,
    readonly options: LiveChannelsOptions,
  ) {
    subscriber.on(pubSub.messageEvent, (channelName: Buffer, message: Buffer) => {
      const channel = this.#channels.get(channelName.toString());
      const live = channel === undefined ? undefined : parseLiveMessage(message);
      if (live !== undefined) channel?.dispatch(live.epoch, live.events);
    });
    subscriber.on('ready', () => this.#healAll(0));
    // A cluster's subscriber connections come and go per master (a failover, moved slots)
    // without the client as a whole reconnecting: ioredis re-subscribes, then says so here.
    subscriber.on('subscribersReady', () => this.#healAll(0));
    this.#healTimer = setInterval(
      () => this.#healAll(options.healIntervalMs),
      options.healIntervalMs,
    ).unref();
    this.#waitMs = options.deliveryWaitMs ?? 1_000;
    // A timer per append would cost more than the append's own bookkeeping: waits end at most
    // a quarter of the wait late instead.
    this.#waitTimer = setInterval(() => this.#releaseLate(), this.#waitMs / 4).unref();
  }

  /** Resolves once Redis confirmed the subscription, so no later publish can be missed. */
  async watch(channelName: string, listener: LiveListener, heal: Healer): Promise<() => void> {
    // Wrapped so that the same function can watch twice and be stopped once per watch.
    const own: LiveListener = (epoch, event) => listener(epoch, event);
    let channel = this.#channels.get(channelName);
    if (channel === undefined) {
      const created = new Channel(heal);
      channel = created;
      this.#channels.set(channelName, created);
      created.subscribed = this.gate
        .wait()
        .then(() => this.pubSub.subscribe(this.subscriber, channelName));
      // A failed subscription is forgotten, so that the next watch tries again.
      created.subscribed.catch(() => {
        if (this.#channels.get(channelName) === created) this.#channels.delete(channelName);
        created.releaseWaiters();
      });
    }
    channel.listeners.add(own);
    try {
      await channel.subscribed;
    } catch (error) {
      channel.listeners.delete(own);
      throw error;
    }
    let stopped = false;
    const joined = channel;
    return () => {
      if (stopped) return;
      stopped = true;
      this.#unwatch(channelName, joined, own);
    };
  }

  /**
   * Resolves once the event `(epoch, seq)` has been dispatched to this process's watchers of
   * the channel (at once if there are none), so that, as with the memory backend, an append
   * that resolved has already been seen by local watchers.
   */
  delivered(channelName: string, epoch: string, seq: number): Promise<void> {
    const channel = this.#channels.get(channelName);
    if (channel === undefined || channel.listeners.size === 0) return Promise.resolve();
    if (channel.hasDispatched(epoch, seq)) return Promise.resolve();
    this.#waiting.add(channel);
    return new Promise((done) => {
      channel.waiters.push({ epoch, seq, deadline: Date.now() + this.#waitMs, done });
    });
  }

  get channelCount(): number {
    return this.#channels.size;
  }

  close(): void {
    clearInterval(this.#healTimer);
    clearInterval(this.#waitTimer);
    this.#waiting.clear();
    for (const channel of this.#channels.values()) channel.releaseWaiters();
    this.#channels.clear();
  }

  #releaseLate(): void {
    const now = Date.now();
    for (const channel of this.#waiting) {
      if (channel.releaseLate(now)) this.#waiting.delete(channel);
    }
  }

  /** Heals every channel quiet for at least `quietMs`; a failed check waits for the next. */
  #healAll(quietMs: number): void {
    const now = Date.now();
    for (const channel of this.#channels.values()) {
      if (channel.healing || now - channel.lastDispatchAt < quietMs) continue;
      channel.healing = true;
      const since = channel.lastDispatchAt;
      channel
        .heal(channel.lastEpoch, channel.lastSeq)
        .then((live) => {
          // A message that came meanwhile is newer than what the check saw.
          if (live !== undefined && channel.lastDispatchAt === since) {
            channel.dispatch(live.epoch, [live.event]);
          }
        })
        .catch(() => {})
        .finally(() => {
          channel.healing = false;
        });
    }
  }

  #unwatch(channelName: string, channel: Channel, listener: LiveListener): void {
    channel.listeners.delete(listener);
    if (channel.listeners.size > 0 || this.#channels.get(channelName) !== channel) return;
    this.#channels.delete(channelName);
    channel.releaseWaiters();
    // Commands on one connection run in order, so a later re-SUBSCRIBE of the same channel
    // still wins. If the connection is down this fails; ioredis may then re-subscribe the
    // channel on reconnect, and its messages are dropped here as no local channel matches.
    this.pubSub.unsubscribe(this.subscriber, channelName).catch(() => {});
  }
}
