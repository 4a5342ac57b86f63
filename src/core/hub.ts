import { EventBatch } from './batch.js';
import type { EventLog, ReadFrom, ReadResult } from './event-log.js';
import { parseId } from './ids.js';
import type { ResetInfo, StoredEvent } from './types.js';

/** Where a new subscription starts. */
export type StartFrom =
  | { readonly kind: 'live' }
  | { readonly kind: 'start' }
  | { readonly kind: 'after'; readonly id: string };

/** A transport's end of one subscription. */
export interface Subscriber {
  /** Writes a batch; returns false when the consumer is full and replay should pause. */
  send(batch: EventBatch): boolean;
  /** Called before replay when the start position could not be resumed from exactly. */
  reset(info: ResetInfo): void;
  /** Resolves once the consumer can take more, or has gone away. */
  drained(): Promise<void>;
  /** The subscription cannot continue (e.g. the backend failed); the transport should close. */
  fail(error: unknown): void;
}

/** A log together with its process-local fan-out. */
export interface LiveLog {
  readonly log: EventLog;
  readonly hub: TopicHub;
}

export interface Subscription {
  close(): void;
}

/** Hooks for metrics, so the core does not depend on a metrics library. */
export interface HubObserver {
  delivered(count: number): void;
  replayed(count: number): void;
  resumed(outcome: 'recovered' | 'reset'): void;
  /** Publish→deliver latency of one event, in seconds. */
  latency(seconds: number): void;
}

/** Replay writes about this much at a time before checking the subscriber's buffer. */
const REPLAY_CHUNK_BYTES = 64 * 1024;
/** A rough allowance for id, event type and framing around each payload. */
const EVENT_FRAMING_BYTES = 64;

const NO_OBSERVER: HubObserver = {
  delivered() {},
  replayed() {},
  resumed() {},
  latency() {},
};

export interface HubOptions {
  /** Events per history read while a subscriber catches up. */
  readonly pageSize?: number;
  readonly observer?: HubObserver;
}

/**
 * One subscription's state. A member is either catching up (reading the log page by page at
 * its own pace) or live (receiving the topic's shared batches). Live delivery checks every
 * batch against the member's position, so a batch that overlaps what was replayed is trimmed
 * and one that skips ahead sends the member back to the log: the handover from history to
 * live can neither duplicate nor lose an event, whatever the backend's timing.
 */
class Member implements Subscription {
  epoch: string | null = null;
  seq = 0;
  live = false;
  closed = false;

  constructor(
    readonly group: TopicGroup,
    readonly subscriber: Subscriber,
  ) {}

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.group.remove(this);
  }
}

/** The local subscribers of one topic, sharing one backend watch. */
class TopicGroup {
  readonly members = new Set<Member>();
  readonly watching: Promise<() => void>;
  pending: StoredEvent[] = [];
  pendingEpoch = '';
  /** Live batches delivered so far, and the position of the newest (see `Member` catch-up). */
  flushes = 0;
  flushedEpoch = '';
  flushedSeq = 0;

  constructor(
    readonly topic: string,
    readonly hub: TopicHub,
  ) {
    this.watching = hub.log.watch(topic, (epoch, event) => hub.enqueue(this, epoch, event));
    // A failed watch surfaces to each member through its catch-up; never as an unhandled rejection.
    this.watching.catch(() => {});
  }

  remove(member: Member): void {
    this.members.delete(member);
    if (this.members.size === 0) this.hub.dissolve(this);
  }
}

/**
 * Process-local fan-out of topics to subscribers, on top of any EventLog. Events arriving in
 * the same event-loop turn are delivered as one batch per topic.
 */
export class TopicHub {
  readonly #groups = new Map<string, TopicGroup>();
  readonly #dirty = new Set<TopicGroup>();
  readonly #pageSize: number;
  readonly #observer: HubObserver;
  #flushScheduled = false;

  constructor(
    readonly log: EventLog,
    options: HubOptions = {},
  ) {
    this.#pageSize = options.pageSize ?? 500;
    this.#observer = options.observer ?? NO_OBSERVER;
  }

  subscribe(topic: string, from: StartFrom, subscriber: Subscriber): Subscription {
    let group = this.#groups.get(topic);
    if (group === undefined) {
      group = new TopicGroup(topic, this);
      this.#groups.set(topic, group);
    }
    const member = new Member(group, subscriber);
    group.members.add(member);
    void this.#start(member, from);
    return member;
  }

  subscriberCount(topic: string): number {
    return this.#groups.get(topic)?.members.size ?? 0;
  }

  get totalSubscribers(): number {
    let total = 0;
    for (const group of this.#groups.values()) total += group.members.size;
    return total;
  }

  /** Called by a group's watch for each live event. */
  enqueue(group: TopicGroup, epoch: string, event: StoredEvent): void {
    if (group.pending.length > 0 && group.pendingEpoch !== epoch) this.#flushGroup(group);
    group.pending.push(event);
    group.pendingEpoch = epoch;
    this.#dirty.add(group);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flush);
    }
  }

  dissolve(group: TopicGroup): void {
    if (this.#groups.get(group.topic) === group) this.#groups.delete(group.topic);
    this.#dirty.delete(group);
    group.watching.then(
      (unwatch) => unwatch(),
      () => {},
    );
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    for (const group of this.#dirty) this.#flushGroup(group);
    this.#dirty.clear();
  };

  #flushGroup(group: TopicGroup): void {
    const events = group.pending;
    if (events.length === 0) return;
    group.pending = [];
    const batch = new EventBatch(group.topic, group.pendingEpoch, events);
    group.flushes++;
    group.flushedEpoch = batch.epoch;
    group.flushedSeq = batch.lastSeq;
    let delivered = 0;
    for (const member of group.members) {
      if (member.live) delivered += this.#deliverLive(member, batch);
    }
    this.#observer.delivered(delivered);
    const now = Date.now();
    for (const event of events) this.#observer.latency((now - event.time) / 1000);
  }

  /** Returns the number of events written to the member. */
  #deliverLive(member: Member, batch: EventBatch): number {
    const sameEpoch = member.epoch === null || member.epoch === batch.epoch;
    if (sameEpoch && batch.lastSeq <= member.seq) return 0;
    if (!sameEpoch || batch.firstSeq > member.seq + 1) {
      // The topic was reset, or live delivery skipped events: the log has the truth.
      void this.#catchUp(member, { epoch: member.epoch, seq: member.seq });
      return 0;
    }
    const fresh = batch.firstSeq === member.seq + 1 ? batch : batch.after(member.seq);
    member.epoch = batch.epoch;
    member.seq = batch.lastSeq;
    member.subscriber.send(fresh);
    return fresh.events.length;
  }

  async #start(member: Member, from: StartFrom): Promise<void> {
    try {
      await member.group.watching;
      if (member.closed) return;
      const readFrom = await this.#resolveStart(member.group.topic, from);
      const reset = await this.#catchUp(member, readFrom);
      if (from.kind === 'after') this.#observer.resumed(reset ? 'reset' : 'recovered');
    } catch (error) {
      this.#fail(member, error);
    }
  }

  async #resolveStart(topic: string, from: StartFrom): Promise<ReadFrom> {
    switch (from.kind) {
      case 'live':
        return this.log.head(topic);
      case 'start':
        return null;
      case 'after':
        return parseId(from.id) ?? 'unknown';
    }
  }

  /**
   * Replays the log after `from` page by page, pacing itself on the subscriber, and goes
   * live after the first short page. Returns whether a reset was sent.
   */
  async #catchUp(member: Member, from: ReadFrom): Promise<boolean> {
    member.live = false;
    let reset = false;
    try {
      for (let next = from; ; ) {
        const flushesBefore = member.group.flushes;
        const page = await this.log.read(member.group.topic, next, this.#pageSize);
        if (member.closed) return reset;
        if (page.reset !== undefined) {
          reset = true;
          member.subscriber.reset(page.reset);
        }
        if (!(await this.#replay(member, page))) return reset;
        if (page.events.length < this.#pageSize) {
          // A short page reached the head; later events arrive as live batches.
          member.epoch = page.head.epoch;
          member.seq = page.head.seq;
          if (!this.#passedBy(member, flushesBefore)) {
            member.live = true;
            return reset;
          }
        }
        next = { epoch: member.epoch, seq: member.seq };
      }
    } catch (error) {
      this.#fail(member, error);
      return reset;
    }
  }

  /**
   * Whether a live batch newer than the member's position went by while it was reading or
   * replaying. Without this check the last events before a quiet spell would be skipped
   * until the next one arrived: no later batch would show the member its gap.
   */
  #passedBy(member: Member, flushesBefore: number): boolean {
    const group = member.group;
    if (group.flushes === flushesBefore) return false;
    return group.flushedEpoch !== member.epoch || group.flushedSeq > member.seq;
  }

  /**
   * Writes a page in chunks of about REPLAY_CHUNK_BYTES and waits for the subscriber to drain
   * whenever it pushes back, so a replay never queues more than a chunk beyond the socket's
   * own buffer and never looks like a slow consumer. Returns false if the member went away.
   */
  async #replay(member: Member, page: ReadResult): Promise<boolean> {
    const { events } = page;
    const epoch = page.head.epoch;
    if (epoch === null || events.length === 0) return true;
    this.#observer.replayed(events.length);
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < events.length; i++) {
      const event = events[i] as StoredEvent;
      bytes += event.data.length + EVENT_FRAMING_BYTES;
      if (bytes < REPLAY_CHUNK_BYTES && i < events.length - 1) continue;
      const chunk = start === 0 && i === events.length - 1 ? events : events.slice(start, i + 1);
      member.epoch = epoch;
      member.seq = event.seq;
      if (!member.subscriber.send(new EventBatch(member.group.topic, epoch, chunk))) {
        await member.subscriber.drained();
        if (member.closed) return false;
      }
      start = i + 1;
      bytes = 0;
    }
    return true;
  }

  #fail(member: Member, error: unknown): void {
    if (member.closed) return;
    member.close();
    member.subscriber.fail(error);
  }
}
