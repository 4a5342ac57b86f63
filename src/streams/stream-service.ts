import type { Readable } from 'node:stream';
import { isLogEnded, isLogRestarted, rethrowUnlessEnded } from '../core/event-log.js';
import { lastEvent } from '../core/finite-log.js';
import type { LiveLog, StartFrom, Subscriber, Subscription } from '../core/hub.js';
import { formatId, parseId } from '../core/ids.js';
import { FiniteLogWriter } from '../core/log-writer.js';
import type { StreamEnding, StreamState, StreamStatus, StreamStore } from '../core/stream-store.js';
import { inSpan } from '../core/tracing.js';
import type { EventInput } from '../core/types.js';
import { type BodyType, bodyEvents } from './body-events.js';
import { notOpen, StreamEndedError, streamEnded, streamExists, streamNotFound } from './errors.js';
import { BodyProducer, type ProducerContext } from './producer.js';
import { COMPLETE_MARKER, endingEvent, endsStream } from './stream-log.js';

export interface StreamServiceOptions {
  /** Events a stream may hold; past it the stream ends as `too_long`. */
  readonly maxEvents: number;
  /** The largest event a body may carry. */
  readonly maxEventBytes: number;
  /** A producer silent this long is lost; also the lease of a stream built with `/events`. */
  readonly producerIdleMs: number;
  /** The lease a streaming producer's process renews; lapsed, the process is gone. */
  readonly leaseMs: number;
  readonly onEnded?: (status: StreamEnding) => void;
  readonly onAppended?: () => void;
  readonly onInternalError?: (error: unknown) => void;
}

/** `GET /v1/streams/{id}` without an event stream (docs/api.md §9). */
export interface StreamView {
  readonly id: string;
  readonly status: StreamStatus;
  readonly events: number;
  readonly last_event_id: string | null;
  readonly created_at: string;
  readonly updated_at: string;
}

/** What a producer's request answers when its body ended the stream. */
export interface StreamSummary {
  readonly id: string;
  readonly events: number;
  readonly last_event_id: string | null;
}

/**
 * Streams from any producer: a stream is a log with one writer that ends, like a chat reply,
 * whose producer is an HTTP client. The store decides who produces and how a stream ends; the
 * log holds the events, ending with one that says how the stream ended, so that consumers on
 * every process learn it from the log alone.
 */
export class StreamService {
  readonly #context: ProducerContext;
  /** The producers streaming on this process, told at once when their stream ends here. */
  readonly #producers = new Map<string, BodyProducer>();

  constructor(
    readonly store: StreamStore,
    readonly streams: LiveLog,
    readonly options: StreamServiceOptions,
  ) {
    this.#context = {
      log: streams.log,
      maxEvents: options.maxEvents,
      idleMs: options.producerIdleMs,
      leaseMs: options.leaseMs,
      finish: (id, status, reason) => this.#finish(id, status, reason),
      renew: (id) => store.renew(id, options.leaseMs),
      endedElsewhere: (id) => this.#endedElsewhere(id),
      restarted: (id) => this.#restarted(id),
      onAppended: () => options.onAppended?.(),
    };
  }

  /** Produces stream `id` from a streamed body; resolves once the body ended it, complete. */
  produce(id: string, type: BodyType, body: Readable): Promise<StreamSummary> {
    return inSpan('produce', { 'streamhub.stream.id': id }, () => this.#produce(id, type, body));
  }

  async #produce(id: string, type: BodyType, body: Readable): Promise<StreamSummary> {
    await this.#endIfLost(id);
    await this.#open(id, this.options.leaseMs);
    const producer = new BodyProducer(this.#context, id);
    this.#producers.set(id, producer);
    try {
      await producer.run(body, bodyEvents(type, this.options.maxEventBytes));
    } catch (error) {
      await this.#dropOrphan(id, producer.epoch).catch(() => {});
      throw error;
    } finally {
      this.#producers.delete(id);
    }
    return { id, events: producer.appended, last_event_id: producer.lastId };
  }

  /** Appends events without a streaming body, opening the stream on first use; the last id. */
  append(id: string, events: readonly EventInput[]): Promise<string> {
    const attributes = { 'streamhub.stream.id': id, 'streamhub.stream.events': events.length };
    return inSpan('append', attributes, () => this.#append(id, events));
  }

  async #append(id: string, events: readonly EventInput[]): Promise<string> {
    const state = await this.#endIfLost(id);
    if (state !== undefined && state.status !== 'open') throw streamEnded(id);
    const idleMs = this.options.producerIdleMs;
    if (state === undefined) await this.#open(id, idleMs, true);
    else if (!(await this.store.renew(id, idleMs))) throw streamEnded(id);
    const { log } = this.streams;
    const head = await log.head(id);
    if (head.seq + events.length > this.options.maxEvents) {
      const reason = `more than STREAM_MAX_EVENTS (${this.options.maxEvents}) events`;
      await this.#finish(id, 'too_long', reason);
      throw new StreamEndedError('too_long', `the stream would have ${reason}; it ended`);
    }
    // Events go to the epoch seen, so that a DELETE meanwhile refuses them instead of their
    // starting an orphan log; a fresh stream's first call checks afterwards instead.
    const epoch = head.epoch ?? undefined;
    // In batches, one backend call each: the writer does not ride out outages here (a client
    // retries the request), so a failure answers at once.
    const writer = new FiniteLogWriter(log, id, 0, undefined, epoch);
    const lastId = await writer.appendAll(events).catch((error) => this.#refused(id, error));
    for (let i = 0; i < events.length; i++) this.options.onAppended?.();
    if (epoch === undefined && (await this.#dropOrphan(id, parseId(lastId)?.epoch ?? undefined))) {
      throw streamEnded(id);
    }
    return lastId;
  }

  /** Ends a stream built with `append` as complete. */
  async end(id: string): Promise<void> {
    await this.#ended(id, 'complete', 'complete', () => streamEnded(id));
  }

  /** Ends an open stream as cancelled, which stops its producer wherever it runs. */
  async cancel(id: string): Promise<void> {
    await this.#ended(id, 'cancelled', 'the stream was cancelled', () => notOpen(id));
  }

  async delete(id: string): Promise<void> {
    await this.#finish(id, 'cancelled', 'the stream was deleted');
    await this.store.delete(id);
    await this.streams.log.delete(id);
  }

  async view(id: string): Promise<StreamView> {
    const state = await this.#settle(id);
    if (state === undefined) throw streamNotFound(id);
    const last = await lastEvent(this.streams.log, id);
    const position = last === undefined ? undefined : parseId(last.id);
    // The complete marker ends the log but is no event of the stream.
    const events = (position?.seq ?? 0) - (last?.event === COMPLETE_MARKER ? 1 : 0);
    return {
      id,
      status: state.status,
      events,
      last_event_id:
        position?.epoch == null || events === 0 ? null : formatId(position.epoch, events),
      created_at: new Date(state.createdAt).toISOString(),
      updated_at: new Date(Math.max(state.updatedAt, last?.time ?? 0)).toISOString(),
    };
  }

  /** Whether a consumer would get anything live: the stream exists and is open. */
  async isActive(id: string): Promise<boolean> {
    return (await this.#endIfLost(id))?.status === 'open';
  }

  /**
   * Where a consumer holding `lastEventId` starts: after it (an id of another epoch, of an
   * earlier stream with this id, is answered with a reset and the whole stream), or `ended`
   * when it already has the stream's last event.
   */
  async resumePoint(id: string, lastEventId: string | undefined): Promise<StartFrom | 'ended'> {
    if ((await this.#settle(id)) === undefined) throw streamNotFound(id);
    if (lastEventId === undefined) return { kind: 'start' };
    const position = parseId(lastEventId);
    const head = await this.streams.log.head(id);
    if (position?.epoch === head.epoch && position.seq === head.seq) {
      const last = await lastEvent(this.streams.log, id, head);
      if (last !== undefined && endsStream(last)) return 'ended';
    }
    return { kind: 'after', id: lastEventId };
  }

  /**
   * Streams `id`'s log to a consumer, ending a stream whose producer is lost meanwhile, and
   * closing the consumer of a stream that is gone (deleted, or forgotten in a failover of its
   * Redis master before it ended): it would wait forever, and reconnecting tells it 404.
   */
  watch(id: string, from: StartFrom, subscriber: Subscriber): Subscription {
    const subscription = this.streams.hub.subscribe(id, from, subscriber);
    const check = async () => {
      if ((await this.#settle(id)) === undefined) subscriber.fail(streamNotFound(id));
    };
    const everyMs = Math.max(100, Math.min(this.options.leaseMs, this.options.producerIdleMs) / 2);
    const timer = setInterval(
      () => void check().catch((error) => this.options.onInternalError?.(error)),
      everyMs,
    ).unref();
    return {
      close() {
        clearInterval(timer);
        subscription.close();
      },
    };
  }

  /**
   * Opens a stream for a new producer, its log started afresh; 409 while one is open. A log left
   * by an earlier stream (replaced, or whose state expired first) is deleted; a fresh stream's
   * empty log is not, as a second `/events` call racing the first may have appended already.
   */
  async #open(id: string, leaseMs: number, joinOpen = false): Promise<void> {
    const opening = await this.store.open(id, leaseMs);
    if (opening === 'exists') {
      if (joinOpen) return;
      throw streamExists(id);
    }
    const leftover = await lastEvent(this.streams.log, id);
    if (opening === 'replaced' || (leftover !== undefined && endsStream(leftover))) {
      await this.streams.log.delete(id);
    }
  }

  async #ended(
    id: string,
    status: StreamEnding,
    reason: string,
    refusal: () => Error,
  ): Promise<void> {
    if ((await this.#endIfLost(id)) === undefined) throw streamNotFound(id);
    if (!(await this.#finish(id, status, reason))) throw refusal();
  }

  /** Ends an open stream once, then appends the event that says how (racing processes: once). */
  async #finish(
    id: string,
    status: StreamEnding,
    reason: string,
    onlyIfLost = false,
  ): Promise<boolean> {
    if (!(await this.store.end(id, { status, reason }, onlyIfLost))) return false;
    await this.streams.log
      .append(id, endingEvent(status, reason), { final: true })
      .catch(rethrowUnlessEnded);
    this.options.onEnded?.(status);
    this.#producers.get(id)?.streamEnded();
    return true;
  }

  /**
   * A producer whose lease lapsed (its process died, or it went silent) is ended as lost.
   * Resolves to the stream's state, after that.
   */
  async #endIfLost(id: string): Promise<StreamState | undefined> {
    const state = await this.store.get(id);
    if (!state?.producerLost) return state;
    await this.#finish(id, 'producer_lost', 'the producer went away before the stream ended', true);
    return this.store.get(id);
  }

  /**
   * `#endIfLost`, and an ended stream whose log lacks its ending event gets it: the process
   * that ended the stream died before appending it, and consumers would wait forever. The
   * event is the one that process would have appended (the store keeps the reason), so a
   * repair racing it, or another repair, leaves the log as if it had not died.
   */
  async #settle(id: string): Promise<StreamState | undefined> {
    const state = await this.#endIfLost(id);
    if (state === undefined || state.status === 'open') return state;
    const last = await lastEvent(this.streams.log, id);
    if (last === undefined || !endsStream(last)) {
      const ending = endingEvent(
        state.status,
        state.reason ?? `the stream ended as ${state.status}`,
      );
      await this.streams.log.append(id, ending, { final: true }).catch(rethrowUnlessEnded);
    }
    return state;
  }

  /**
   * Deletes the log a writer of stream `id` appended to in `epoch` when the stream no longer
   * exists: a DELETE came between its opening and its first append, which then started the
   * log again. True when it did. (A log of that epoch is nobody else's: a stream opened
   * meanwhile would have its state back.)
   */
  async #dropOrphan(id: string, epoch: string | undefined): Promise<boolean> {
    if (epoch === undefined || (await this.store.get(id)) !== undefined) return false;
    if ((await this.streams.log.head(id)).epoch !== epoch) return false;
    await this.streams.log.delete(id);
    return true;
  }

  /**
   * The stream's log was started again under its writer: deleted, or on a cluster a failover
   * lost some of its events. Its consumers are told to reset (the new epoch) and must then
   * learn how it ended: if it is still open, it ends now as `producer_lost`; if it ended, its
   * ending is repaired into the new epoch. A stream whose state is gone too (deleted, or lost
   * with its log) is ended for its consumers by `watch`.
   */
  async #restarted(id: string): Promise<StreamEndedError> {
    const reason = 'its log lost events while it was produced (a backend failover)';
    const lost = new StreamEndedError('producer_lost', `the stream ended: ${reason}`);
    if (await this.#finish(id, 'producer_lost', reason)) return lost;
    return (await this.#settle(id)) === undefined ? lost : this.#endedElsewhere(id);
  }

  /** What an `/events` call answers when an append is refused. */
  async #refused(id: string, error: unknown): Promise<never> {
    if (isLogRestarted(error)) throw await this.#restarted(id);
    throw isLogEnded(error) ? streamEnded(id) : error;
  }

  async #endedElsewhere(id: string): Promise<StreamEndedError> {
    const status = (await this.store.get(id))?.status;
    const ending = status === undefined || status === 'open' ? 'cancelled' : status;
    return new StreamEndedError(
      ending,
      `the stream ended as ${ending} while it was being produced`,
    );
  }
}
