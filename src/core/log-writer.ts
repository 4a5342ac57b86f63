import { BackendUnavailableError } from './errors.js';
import {
  type AppendOptions,
  type AppendResult,
  type EventLog,
  isLogEnded,
  logRestartedError,
} from './event-log.js';
import { formatId, parseId } from './ids.js';
import type { EventInput } from './types.js';

type WriterAppendOptions = Pick<AppendOptions, 'final'>;

/**
 * The one writer of a log that ends (a reply, a completion) while it is generated. It rides
 * out a short backend outage: an append is tried again for up to `retryMs`. Only this writer
 * appends until the log ends, so an append whose fate is unknown (the connection broke after
 * sending it) is settled by the log's head: if the head moved past the last known event, it
 * landed. A backlog of events is sent at once (`appendAll`).
 *
 * Every append after the first is bound to the first one's epoch: a log started again under
 * the writer (deleted, or on a cluster a failover that lost some of its events) refuses the
 * rest instead of taking them as the beginning of a new epoch, which would hand readers a
 * reply without its start. Such a refusal rejects with `log_restarted` (`restarted` is then
 * set): the writer's owner ends the log in its new epoch, whose readers are told to reset.
 */
export class FiniteLogWriter {
  #lastSeq = 0;
  /** Set once an append was refused because the log was started again under this writer. */
  restarted = false;
  /** The epoch every append is bound to, once known. */
  #epoch: string | undefined;

  constructor(
    readonly log: EventLog,
    readonly topic: string,
    readonly retryMs: number,
    /**
     * This writer's fencing token, when writers may take the log over from each other (a reply
     * continued on another process): see `AppendOptions.fence`.
     */
    readonly fence?: number,
    /** The epoch the log has when this writer takes it over part-written (a continuation). */
    epoch?: string,
  ) {
    this.#epoch = epoch;
  }

  /** Appends `input` and resolves to its id; a `final` one ends the log. */
  append(input: EventInput, given: WriterAppendOptions = {}): Promise<string> {
    const options = this.#bound(given);
    // Nothing to ride out and so nothing to settle: one append per model chunk, with no
    // async layer of its own around the log's.
    if (this.retryMs === 0) {
      return this.log.append(this.topic, input, options).then(
        (appended) => this.#landedAt(appended.id),
        (error: unknown) => this.#refused(error),
      );
    }
    return this.#appendRidingOut(input, options);
  }

  /**
   * Appends `inputs` in order and resolves to the last one's id. They are sent at once, so a
   * backlog costs one round trip rather than one per event: the log applies one connection's
   * appends in order, so those that landed are always a prefix. If any fails, the rest go one
   * at a time, riding out the outage, each settled by the head first.
   */
  async appendAll(inputs: readonly EventInput[], given: WriterAppendOptions = {}): Promise<string> {
    const options = this.#bound(given);
    const settled = await Promise.allSettled(
      inputs.map((input) => this.log.append(this.topic, input, options)),
    );
    const failed = settled.findIndex((result) => result.status === 'rejected');
    let lastId = '';
    for (const result of failed < 0 ? settled : settled.slice(0, failed)) {
      lastId = this.#landedAt((result as PromiseFulfilledResult<AppendResult>).value.id);
    }
    if (failed < 0) return lastId;
    const { reason } = settled[failed] as PromiseRejectedResult;
    if (this.retryMs === 0 || !(reason instanceof BackendUnavailableError)) {
      return this.#refused(reason);
    }
    for (const input of inputs.slice(failed)) {
      lastId = await this.#appendRidingOut(input, options, true);
    }
    return lastId;
  }

  async #appendRidingOut(
    input: EventInput,
    options: AppendOptions,
    uncertain = false,
  ): Promise<string> {
    const deadline = Date.now() + this.retryMs;
    for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
      try {
        const landed = uncertain ? await this.#landed() : undefined;
        if (landed !== undefined) return landed;
        uncertain = false;
        return this.#landedAt((await this.log.append(this.topic, input, options)).id);
      } catch (error) {
        if (!(error instanceof BackendUnavailableError) || Date.now() + delay > deadline) {
          return this.#refused(error);
        }
        uncertain ||= !error.unsent;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /**
   * Ends the log with `ending` once it was started again under this writer (see `restarted`):
   * in its new epoch, whose readers are told to reset, so that none of them waits forever for
   * the rest. Resolves to the ending's id, or undefined when the new epoch has ended already.
   */
  async endRestarted(ending: EventInput): Promise<string | undefined> {
    try {
      return (await this.log.append(this.topic, ending, { final: true })).id;
    } catch (error) {
      if (isLogEnded(error)) return undefined;
      throw error;
    }
  }

  /** Bound to the log's epoch once it is known, and fenced with this writer's token. */
  #bound(given: WriterAppendOptions): AppendOptions {
    const epoch = this.#epoch === undefined ? {} : { epoch: this.#epoch };
    const fence = this.fence === undefined ? {} : { fence: this.fence };
    return { ...given, ...epoch, ...fence };
  }

  #landedAt(id: string): string {
    const position = parseId(id);
    this.#lastSeq = position?.seq ?? this.#lastSeq + 1;
    this.#epoch ??= position?.epoch ?? undefined;
    return id;
  }

  /**
   * Rethrows why an append failed; a refusal of a log that is no longer in this writer's
   * epoch (rather than ended or fenced in it) as `log_restarted`.
   */
  async #refused(error: unknown): Promise<never> {
    if (!isLogEnded(error) || this.#epoch === undefined) throw error;
    if ((await this.log.head(this.topic)).epoch === this.#epoch) throw error;
    this.restarted = true;
    throw logRestartedError(this.topic);
  }

  /**
   * The id of the uncertain append if it landed. Appends land in order, so it is the one after
   * the last known event (several uncertain ones may have landed since); before any is known,
   * the head.
   */
  async #landed(): Promise<string | undefined> {
    const head = await this.log.head(this.topic);
    if (head.epoch === null || head.seq <= this.#lastSeq) return undefined;
    // Another epoch: the log was started again meanwhile, and the append did not land in it.
    if (this.#epoch !== undefined && head.epoch !== this.#epoch) return undefined;
    this.#lastSeq = this.#lastSeq === 0 ? head.seq : this.#lastSeq + 1;
    return formatId(head.epoch, this.#lastSeq);
  }
}
