import type { Redis } from 'ioredis';
import type { LiveListener } from '../../core/event-log.js';
import type { ReadyGate } from './connection.js';
import { parseLiveMessage } from './wire.js';

/** An append of this process waiting until its own event has reached local watchers. */
interface DeliveryWaiter {
  readonly epoch: string;
  readonly seq: number;
  readonly done: () => void;
}

/** The local watchers of one channel. */
class Channel {
  readonly listeners = new Set<LiveListener>();
  /** Settles when Redis has confirmed the SUBSCRIBE. */
  subscribed: Promise<unknown> = Promise.resolve();
  waiters: DeliveryWaiter[] = [];
  /** The last event dispatched: its message may arrive before the append's own reply. */
  lastEpoch = '';
  lastSeq = 0;

  hasDispatched(epoch: string, seq: number): boolean {
    return this.lastEpoch === epoch && this.lastSeq >= seq;
  }

  dispatch(epoch: string, event: Parameters<LiveListener>[1]): void {
    this.lastEpoch = epoch;
    this.lastSeq = event.seq;
    for (const listener of this.listeners) listener(epoch, event);
    if (this.waiters.length === 0) return;
    const still: DeliveryWaiter[] = [];
    for (const waiter of this.waiters) {
      if (waiter.epoch === epoch && waiter.seq <= event.seq) waiter.done();
      else still.push(waiter);
    }
    this.waiters = still;
  }

  releaseWaiters(): void {
    for (const waiter of this.waiters) waiter.done();
    this.waiters = [];
  }
}

/**
 * Live notification over ONE subscriber connection for all topics of a process: the first
 * watcher of a channel subscribes, the last one unsubscribes, and each message is parsed once
 * and handed to every local listener of its channel, in order.
 */
export class LiveChannels {
  readonly #channels = new Map<string, Channel>();

  constructor(
    readonly subscriber: Redis,
    readonly gate: ReadyGate,
    /** An append waits at most this long for its own event to come back (Pub/Sub may drop it). */
    readonly deliveryWaitMs = 1_000,
  ) {
    subscriber.on('message', (channelName: string, message: string) => {
      const channel = this.#channels.get(channelName);
      const live = channel === undefined ? undefined : parseLiveMessage(message);
      if (live !== undefined) channel?.dispatch(live.epoch, live.event);
    });
  }

  /** Resolves once Redis confirmed the subscription, so no later publish can be missed. */
  async watch(channelName: string, listener: LiveListener): Promise<() => void> {
    // Wrapped so that the same function can watch twice and be stopped once per watch.
    const own: LiveListener = (epoch, event) => listener(epoch, event);
    let channel = this.#channels.get(channelName);
    if (channel === undefined) {
      const created = new Channel();
      channel = created;
      this.#channels.set(channelName, created);
      created.subscribed = this.gate.wait().then(() => this.subscriber.subscribe(channelName));
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
    return new Promise((resolve) => {
      const timer = setTimeout(done, this.deliveryWaitMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      channel.waiters.push({ epoch, seq, done });
    });
  }

  get channelCount(): number {
    return this.#channels.size;
  }

  close(): void {
    for (const channel of this.#channels.values()) channel.releaseWaiters();
    this.#channels.clear();
  }

  #unwatch(channelName: string, channel: Channel, listener: LiveListener): void {
    channel.listeners.delete(listener);
    if (channel.listeners.size > 0 || this.#channels.get(channelName) !== channel) return;
    this.#channels.delete(channelName);
    channel.releaseWaiters();
    // Commands on one connection run in order, so a later re-SUBSCRIBE of the same channel
    // still wins. If the connection is down this fails; ioredis may then re-subscribe the
    // channel on reconnect, and its messages are dropped here as no local channel matches.
    this.subscriber.unsubscribe(channelName).catch(() => {});
  }
}
