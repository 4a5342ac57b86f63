import type { Readable } from 'node:stream';
import { StreamhubError } from '../core/errors.js';
import { type EventLog, isLogEnded, isLogRestarted } from '../core/event-log.js';
import { parseId } from '../core/ids.js';
import { FiniteLogWriter } from '../core/log-writer.js';
import type { StreamEnding } from '../core/stream-store.js';
import type { EventInput } from '../core/types.js';
import type { BodyEvents } from './body-events.js';
import { BodyReader } from './body-reader.js';
import { StreamEndedError } from './errors.js';

/** What a producer needs of the service that started it. */
export interface ProducerContext {
  readonly log: EventLog;
  readonly maxEvents: number;
  readonly idleMs: number;
  readonly leaseMs: number;
  /** Ends the stream unless it has ended already; true when this call ended it. */
  finish(id: string, status: StreamEnding, reason: string): Promise<boolean>;
  /** Keeps the producer's lease; false once the stream is no longer open. */
  renew(id: string): Promise<boolean>;
  /** How the stream ended, once it did without this producer. */
  endedElsewhere(id: string): Promise<StreamEndedError>;
  /** Ends the stream whose log was started again under its producer; resolves to how it ended. */
  restarted(id: string): Promise<StreamEndedError>;
  onAppended(): void;
}

type Stop = { readonly stop: StreamEndedError };

/**
 * One streaming `POST /v1/streams/{id}`: reads the body a chunk at a time and appends its events
 * before reading more, so a producer faster than the backend is slowed by TCP rather than
 * buffered. It stops when the stream ends without it (cancel, lost lease), when the producer
 * goes silent, or when the body breaks, and the stream then ends as that says. It does not
 * watch its own log: hearing every event it wrote again would cost as much as writing it.
 */
export class BodyProducer {
  appended = 0;
  lastId: string | null = null;
  /** The epoch of the log's first event: later events go to it or nowhere (docs: DELETE). */
  epoch: string | undefined;
  readonly #writer: FiniteLogWriter;
  /** Set once the producer is stopped; the reader then answers every read with it. */
  #stopped: Stop | undefined;
  #reader: BodyReader<Stop> | undefined;
  #ending: StreamEndedError | undefined;
  /** Set once this producer ends the stream itself: the ending it then sees is its own. */
  #finishing = false;

  constructor(
    readonly context: ProducerContext,
    readonly id: string,
  ) {
    this.#writer = new FiniteLogWriter(context.log, id, context.leaseMs / 2);
  }

  /** Resolves when the body ended and the stream is complete; rejects with why it is not. */
  async run(body: Readable, events: BodyEvents): Promise<void> {
    const { context } = this;
    const idle = setTimeout(() => void this.#idle(), context.idleMs);
    const renewal = setInterval(() => void this.#renew(), context.leaseMs / 3);
    this.#reader = new BodyReader(body);
    if (this.#stopped !== undefined) this.#reader.stop(this.#stopped);
    try {
      for (;;) {
        const read = await this.#reader.read();
        if (read !== null && 'stop' in read) throw read.stop;
        idle.refresh();
        if (read === null) break;
        await this.#appendAll(events.push(read));
      }
      await this.#appendAll(events.end());
      if (!(await this.#finish('complete', 'complete'))) throw await this.#endedElsewhere();
    } catch (error) {
      throw await this.#failed(error);
    } finally {
      clearTimeout(idle);
      clearInterval(renewal);
    }
  }

  #stop(error: StreamEndedError): void {
    this.#ending ??= error;
    this.#stopped ??= { stop: this.#ending };
    this.#reader?.stop(this.#stopped);
  }

  /**
   * The stream ended on this process without this producer (a cancel): stop at once. On other
   * processes, the next append (refused: the log has ended) or lease renewal finds out.
   */
  streamEnded(): void {
    if (!this.#finishing) void this.#stopWithEnding();
  }

  /**
   * Appends the events one read of the body brought. The first event of the stream starts its
   * log's epoch alone; later ones, bound to it, go to the backend together: a producer that got
   * ahead (a busy server reads several of its writes at once) costs one round trip, not one
   * per event.
   */
  async #appendAll(events: readonly EventInput[]): Promise<void> {
    if (this.epoch === undefined && events.length > 1) {
      await this.#appendBatch(events.slice(0, 1));
      await this.#appendBatch(events.slice(1));
    } else {
      await this.#appendBatch(events);
    }
  }

  async #appendBatch(events: readonly EventInput[]): Promise<void> {
    const room = this.context.maxEvents - this.appended;
    const fitting = events.length > room ? events.slice(0, room) : events;
    if (fitting.length > 0) {
      this.lastId = await this.#writer.appendAll(fitting);
      this.epoch ??= parseId(this.lastId)?.epoch ?? undefined;
      this.appended += fitting.length;
      for (let i = 0; i < fitting.length; i++) this.context.onAppended();
    }
    if (fitting.length < events.length) {
      const reason = `more than STREAM_MAX_EVENTS (${this.context.maxEvents}) events`;
      await this.#finish('too_long', reason);
      throw new StreamEndedError('too_long', `the stream has ${reason}; it ended`);
    }
  }

  /** The error the producer's request answers with; the stream is ended as it implies. */
  async #failed(error: unknown): Promise<unknown> {
    if (isLogEnded(error)) return this.#endedElsewhere();
    if (isLogRestarted(error)) return this.context.restarted(this.id);
    if (error instanceof StreamEndedError) return error;
    // Refused input says why; anything else is the request itself breaking off.
    const reason =
      error instanceof StreamhubError
        ? error.message
        : "the producer's connection closed before its body ended";
    await this.#finish('producer_lost', reason).catch(() => false);
    return error;
  }

  #finish(status: StreamEnding, reason: string): Promise<boolean> {
    this.#finishing = true;
    return this.context.finish(this.id, status, reason);
  }

  async #endedElsewhere(): Promise<StreamEndedError> {
    return this.#ending ?? this.context.endedElsewhere(this.id);
  }

  /** Stops reading: the stream ended without this producer (a cancel, a lapsed lease). */
  async #stopWithEnding(): Promise<void> {
    const ending = await this.context
      .endedElsewhere(this.id)
      .catch(() => new StreamEndedError('cancelled', 'the stream ended while it was produced'));
    this.#stop(ending);
  }

  async #idle(): Promise<void> {
    const reason = `the producer sent nothing for STREAM_PRODUCER_IDLE_MS (${this.context.idleMs} ms)`;
    const error = new StreamEndedError('producer_lost', `${reason}; the stream ended`);
    this.#ending ??= error;
    await this.#finish('producer_lost', reason).catch(() => false);
    this.#stop(error);
  }

  async #renew(): Promise<void> {
    const open = await this.context.renew(this.id).catch(() => true);
    if (!open) await this.#stopWithEnding();
  }
}
