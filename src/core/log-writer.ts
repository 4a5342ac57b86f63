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
 * landed.
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

  async #appendRidingOut(input: EventInput, options: WriterAppendOptions): Promise<string> {
    const deadline = Date.now() + this.retryMs;
    let uncertain = false;
    for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
      try {
        const landed = uncertain ? await this.#landed() : undefined;
        if (landed !== undefined) return landed;
        uncertain = false;
        const appended = await this.log.append(this.topic, input, options);
        this.#lastSeq = parseId(appended.id)?.seq ?? this.#lastSeq + 1;
        return appended.id;
      } catch (error) {
        if (!(error instanceof BackendUnavailableError) || Date.now() + delay > deadline) {
          throw error;
        }
        uncertain ||= !error.unsent;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** The id of the uncertain append if it landed. */
  async #landed(): Promise<string | undefined> {
    const head = await this.log.head(this.topic);
    if (head.epoch === null || head.seq <= this.#lastSeq) return undefined;
    this.#lastSeq = head.seq;
    return formatId(head.epoch, head.seq);
  }
}

const idOf = (appended: AppendResult): string => appended.id;
