import { BackendUnavailableError } from '../core/errors.js';
import type { EventLog } from '../core/event-log.js';
import { parseId } from '../core/ids.js';
import { isFinalReplyEvent, type ReplyEventType } from './reply-stream.js';

/**
 * The one writer of a reply log while its turn is generated. It rides out a short backend
 * outage: an append is tried again for up to `retryMs`. Only this writer appends until the
 * reply ends, so an append whose fate is unknown (the connection broke after sending it) is
 * settled by the log's head: if the head moved past the last known event, it landed.
 */
export class ReplyWriter {
  #lastSeq = 0;

  constructor(
    readonly log: EventLog,
    readonly topic: string,
    readonly retryMs: number,
  ) {}

  async append(type: ReplyEventType, data: unknown): Promise<void> {
    const event = { event: type, data: JSON.stringify(data) };
    const deadline = Date.now() + this.retryMs;
    let uncertain = false;
    for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
      try {
        if (uncertain && (await this.#landed())) return;
        uncertain = false;
        const appended = await this.log.append(this.topic, event, {
          final: isFinalReplyEvent(type),
        });
        this.#lastSeq = parseId(appended.id)?.seq ?? this.#lastSeq + 1;
        return;
      } catch (error) {
        if (!(error instanceof BackendUnavailableError) || Date.now() + delay > deadline) {
          throw error;
        }
        uncertain ||= !error.unsent;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  async #landed(): Promise<boolean> {
    const head = await this.log.head(this.topic);
    if (head.seq <= this.#lastSeq) return false;
    this.#lastSeq = head.seq;
    return true;
  }
}
