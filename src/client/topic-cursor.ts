import { invoke } from './callbacks.js';
import type { Endpoint } from './endpoint.js';
import type { StreamhubClientError } from './errors.js';
import { fetchLastId } from './http.js';
import { withIdleTimeout } from './idle.js';
import { StateReport } from './state-report.js';
import type { ResetNotice, Subscription, TopicEvent, TopicSubscriptionOptions } from './types.js';

/**
 * What one subscription is over any transport: its position in the topic, its state, its
 * callbacks and its end. `close()`, or an abort of the owner's signal, aborts `signal`.
 */
export class TopicCursor {
  readonly report: StateReport;
  readonly #controller = new AbortController();
  readonly #options: TopicSubscriptionOptions;
  #lastEventId: string | undefined;
  #fromStart: boolean;

  constructor(
    readonly topic: string,
    options: TopicSubscriptionOptions,
  ) {
    this.#options = options;
    this.report = new StateReport(options.onStateChange);
    this.#lastEventId = options.lastEventId || undefined;
    this.#fromStart = options.fromStart ?? false;
    if (options.signal?.aborted) this.close();
    options.signal?.addEventListener('abort', this.close, { once: true });
  }

  readonly close = (): void => this.#controller.abort();

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get lastEventId(): string | undefined {
    return this.#lastEventId;
  }

  get fromStart(): boolean {
    return this.#fromStart;
  }

  event(event: TopicEvent): void {
    // Advanced before the callback runs, so an event is never delivered twice, even if it throws.
    this.#lastEventId = event.id;
    invoke(this.#options.onEvent, event);
  }

  reset(notice: ResetNotice): void {
    if (this.#options.onReset) invoke(this.#options.onReset, notice);
  }

  /**
   * A live-only subscription pins its start to the topic's current last id before connecting,
   * so a reconnect before its first event resumes from there instead of going live again and
   * silently skipping what was published while it was disconnected.
   */
  async pinLiveStart(endpoint: Endpoint): Promise<void> {
    if (this.#lastEventId !== undefined || this.#fromStart) return;
    const lastId = await withIdleTimeout(this.signal, endpoint.idleTimeoutMs, (idle) =>
      fetchLastId({ ...endpoint, topic: this.topic, signal: idle.signal }),
    );
    if (lastId === null) this.#fromStart = true;
    else this.#lastEventId = lastId;
  }

  /**
   * The subscription whose life is `run`: it resolves when the subscription was closed, rejects
   * with the non-retryable error that stopped it.
   */
  follow(run: Promise<void>): Subscription {
    const { report } = this;
    const closed = run.then(
      () => report.set('closed'),
      (error: StreamhubClientError) => {
        report.set('closed', { error });
        if (this.#options.onError) invoke(this.#options.onError, error);
        throw error;
      },
    );
    closed
      .catch(() => {})
      .finally(() => this.#options.signal?.removeEventListener('abort', this.close));
    const cursor = this;
    return {
      get lastEventId() {
        return cursor.lastEventId;
      },
      get state() {
        return report.state;
      },
      closed,
      close: this.close,
    };
  }
}

/** Where a connection starts (query parameters or frame fields, docs/api.md §2 and §3). */
export function startFields(cursor: {
  readonly lastEventId: string | undefined;
  readonly fromStart: boolean;
}): { last_event_id?: string; from?: 'start' } {
  if (cursor.lastEventId !== undefined) return { last_event_id: cursor.lastEventId };
  return cursor.fromStart ? { from: 'start' } : {};
}
