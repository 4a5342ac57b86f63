import { StreamhubError } from '../core/errors.js';
import type { AppendResult, EventLog } from '../core/event-log.js';
import type { StartFrom, Subscriber, Subscription, TopicHub } from '../core/hub.js';
import { parseId } from '../core/ids.js';
import { checkEventType, checkTopic } from '../core/names.js';
import { toJsonText } from '../core/payload.js';
import { inSpan, SpanKind } from '../core/tracing.js';
import { DEFAULT_EVENT_TYPE, type ResetInfo, type StoredEvent } from '../core/types.js';

export interface PublishRequest {
  readonly data: unknown;
  readonly event?: unknown;
  readonly idempotencyKey?: string;
}

export interface HistoryPage {
  readonly events: readonly StoredEvent[];
  /** The page's last id when the page is full (more may follow), else null. */
  readonly next: string | null;
  readonly reset?: ResetInfo;
}

export interface TopicStatus {
  readonly topic: string;
  readonly last_id: string | null;
  readonly length: number;
  readonly subscribers: number;
}

export const HISTORY_PAGE_DEFAULT = 100;
export const HISTORY_PAGE_MAX = 1000;

const IDEMPOTENCY_KEY = /^[\x20-\x7e]{1,128}$/;

/** The pub/sub broker's operations, shared by the HTTP and WebSocket front ends. */
export class TopicService {
  constructor(
    readonly log: EventLog,
    readonly hub: TopicHub,
    readonly onPublished: () => void = () => {},
  ) {}

  async publish(topic: string, request: PublishRequest): Promise<AppendResult> {
    checkTopic(topic);
    const event = request.event === undefined ? DEFAULT_EVENT_TYPE : checkEventType(request.event);
    const data = toJsonText(request.data);
    const key = request.idempotencyKey;
    if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) {
      throw new StreamhubError(
        'invalid',
        'invalid_idempotency_key',
        'Idempotency-Key must be 1-128 printable ASCII characters',
      );
    }
    const result = await inSpan(
      'publish',
      { 'messaging.destination.name': topic, 'messaging.operation.type': 'send' },
      () => this.log.append(topic, { event, data }, { idempotencyKey: key }),
      SpanKind.PRODUCER,
    );
    if (!result.duplicate) this.onPublished();
    return result;
  }

  async history(topic: string, after: string | undefined, limit: number): Promise<HistoryPage> {
    checkTopic(topic);
    const from = after === undefined ? null : (parseId(after) ?? 'unknown');
    const page = await this.log.read(topic, from, limit);
    const last = page.events[page.events.length - 1];
    const next = page.events.length === limit && last !== undefined ? last.id : null;
    return { events: page.events, next, reset: page.reset };
  }

  async status(topic: string): Promise<TopicStatus> {
    checkTopic(topic);
    const info = await this.log.info(topic);
    return {
      topic,
      last_id: info.lastId,
      length: info.length,
      subscribers: this.hub.subscriberCount(topic),
    };
  }

  async delete(topic: string): Promise<void> {
    checkTopic(topic);
    await this.log.delete(topic);
  }

  subscribe(topic: string, from: StartFrom, subscriber: Subscriber): Subscription {
    checkTopic(topic);
    return this.hub.subscribe(topic, from, subscriber);
  }
}

/**
 * A subscription's start from the client's cursor: after its last event id when it has one
 * (an empty id counts as none), else all retained history for `from=start`, else live.
 */
export function parseStartFrom(lastEventId: unknown, from: unknown): StartFrom {
  if (lastEventId !== undefined && lastEventId !== null && lastEventId !== '') {
    if (typeof lastEventId !== 'string') {
      throw new StreamhubError(
        'invalid',
        'invalid_last_event_id',
        'last event id must be a string',
      );
    }
    return { kind: 'after', id: lastEventId };
  }
  if (from === undefined || from === null || from === '') return { kind: 'live' };
  if (from === 'start') return { kind: 'start' };
  throw new StreamhubError('invalid', 'invalid_from', '"from" must be "start" when given');
}
