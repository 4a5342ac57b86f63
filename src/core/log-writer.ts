import { BackendUnavailableError } from './errors.js';
import type { AppendOptions, AppendResult, EventLog } from './event-log.js';
import { formatId, parseId } from './ids.js';
import type { EventInput } from './types.js';

type WriterAppendOptions = Pick<AppendOptions, 'final' | 'epoch'>;

/**
 * The one writer of a log that ends (a reply, a completion) while it is generated. It rides
 * out a short backend outage: an append is tried again for up to `retryMs`. Only this writer
 * appends until the log ends, so an append whose fate is unknown (the connection broke after
 * sending it) is settled by the log's head: if the head moved past the last known event, it
 * landed. A backlog of events is sent at once (`appendAll`).
 */
export class FiniteLogWriter {
  #lastSeq = 0;

  constructor(
    readonly log: EventLog,
    readonly topic: string,
    readonly retryMs: number,
    /**
     * This writer's fencing token, when writers may take the log over from each other (a reply
     * continued on another process): see `AppendOptions.fence`.
     */
    readonly fence?: number,
  ) {}

  /** Appends `input` and resolves to its id; a `final` one ends the log. */
  append(input: EventInput, given: WriterAppendOptions = {}): Promise<string> {
    const options = this.fence === undefined ? given : { ...given, fence: this.fence };
    // Nothing to ride out and so nothing to settle: one append per model chunk, with no
    // async layer of its own around the log's.
    if (this.retryMs === 0) return this.log.append(this.topic, input, options).then(idOf);
    return this.#appendRidingOut(input, options);
  }

  /**
   * Appends `inputs` in order and resolves to the last one's id. They are sent at once, so a
   * backlog costs one round trip rather than one per event: the log applies one connection's
   * appends in order, so those that landed are always a prefix. If any fails, the rest go one
   * at a time, riding out the outage, each settled by the head first.
   */
  async appendAll(
    inputs: readonly EventInput[],
    options: WriterAppendOptions = {},
  ): Promise<string> {
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
    if (this.retryMs === 0 || !(reason instanceof BackendUnavailableError)) throw reason;
    for (const input of inputs.slice(failed)) {
      lastId = await this.#appendRidingOut(input, options, true);
    }
    return lastId;
  }

  async #appendRidingOut(
    input: EventInput,
    options: WriterAppendOptions,
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
          throw error;
        }
        uncertain ||= !error.unsent;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  #landedAt(id: string): string {
    this.#lastSeq = parseId(id)?.seq ?? this.#lastSeq + 1;
    return id;
  }

  /**
   * The id of the uncertain append if it landed. Appends land in order, so it is the one after
   * the last known event (several uncertain ones may have landed since); before any is known,
   * the head.
   */
  async #landed(): Promise<string | undefined> {
    const head = await this.log.head(this.topic);
    if (head.epoch === null || head.seq <= this.#lastSeq) return undefined;
    this.#lastSeq = this.#lastSeq === 0 ? head.seq : this.#lastSeq + 1;
    return formatId(head.epoch, this.#lastSeq);
  }
}

const idOf = (appended: AppendResult): string => appended.id;
