import type { EventBatch } from '../../src/core/batch.js';
import type { Subscriber } from '../../src/core/hub.js';
import type { ResetInfo } from '../../src/core/types.js';

/** Records what the hub hands a transport; optionally pushes back like a full socket. */
export class RecordingSubscriber implements Subscriber {
  readonly ids: string[] = [];
  readonly resets: ResetInfo[] = [];
  failure: unknown;
  batches = 0;

  /** With `pushBackEvery` = n, every n-th batch reports a full buffer. */
  constructor(readonly pushBackEvery = 0) {}

  send(batch: EventBatch): boolean {
    this.batches++;
    for (const event of batch.events) this.ids.push(event.id);
    return this.pushBackEvery === 0 || this.batches % this.pushBackEvery !== 0;
  }

  reset(info: ResetInfo): void {
    this.resets.push(info);
  }

  drained(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  fail(error: unknown): void {
    this.failure = error;
  }
}
