import type { EventLog, ReadFrom } from './event-log.js';
import type { StartFrom } from './hub.js';
import { formatId, type Position, parseId } from './ids.js';
import type { StoredEvent } from './types.js';

/**
 * Where a stream of a log that ends (a reply, a completion) resumes for a client holding
 * `lastEventId`: right after it when it belongs to this log, from the start when it does not
 * (an id of an earlier reply). A client that already has the final event gets that event
 * again, so its stream closes instead of waiting for events that will never come.
 * Resolves to `undefined` when there is no such log.
 */
export async function resumeFinite(
  log: EventLog,
  topic: string,
  lastEventId: string | undefined,
  isLast: (event: StoredEvent) => boolean,
): Promise<StartFrom | undefined> {
  const head = await log.head(topic);
  if (head.epoch === null) return undefined;
  const position = lastEventId === undefined ? undefined : parseId(lastEventId);
  if (lastEventId === undefined || position?.epoch !== head.epoch) return { kind: 'start' };
  if (position.seq === head.seq && head.seq > 1) {
    const final = await lastEvent(log, topic, head);
    if (final !== undefined && isLast(final)) {
      return { kind: 'after', id: formatId(head.epoch, head.seq - 1) };
    }
  }
  return { kind: 'after', id: lastEventId };
}

/**
 * The event at the log's head, or at `head` when the caller has just read it. `undefined` when
 * the log is empty, or was deleted and started again in between.
 */
export async function lastEvent(
  log: EventLog,
  topic: string,
  head?: Position,
): Promise<StoredEvent | undefined> {
  const { epoch, seq } = head ?? (await log.head(topic));
  if (epoch === null || seq === 0) return undefined;
  const page = await log.read(topic, { epoch, seq: seq - 1 }, 1);
  return page.reset === undefined ? page.events[0] : undefined;
}

/** Every event of the log, oldest first, read a page at a time. */
export async function readAll(log: EventLog, topic: string): Promise<StoredEvent[]> {
  const events: StoredEvent[] = [];
  for (let from: ReadFrom = null; ; ) {
    const page = await log.read(topic, from, READ_PAGE);
    events.push(...page.events);
    const last = page.events[page.events.length - 1];
    if (last === undefined || page.events.length < READ_PAGE) return events;
    from = { epoch: page.head.epoch, seq: last.seq };
  }
}

const READ_PAGE = 1000;
