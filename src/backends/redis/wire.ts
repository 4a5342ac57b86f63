import { formatId } from '../../core/ids.js';
import type { StoredEvent } from '../../core/types.js';

/** A stream entry as XRANGE returns it: `[id, [field, value, ...]]`. */
export type StreamEntry = [string, string[]];

/** Fields are written in a fixed order by the append script: time, event, data. */
export function eventFromEntry(epoch: string, [id, fields]: StreamEntry): StoredEvent {
  const seq = Number.parseInt(id, 10);
  return {
    id: formatId(epoch, seq),
    seq,
    event: fields[3] ?? '',
    data: fields[5] ?? '',
    time: Number(fields[1]),
  };
}

export interface LiveMessage {
  readonly epoch: string;
  readonly event: StoredEvent;
}

/**
 * A live message is `epoch \n seq \n time \n type \n data`, as published by the append script.
 * Data comes last, so it is taken verbatim (it may hold newlines) and never re-escaped, which
 * JSON-in-JSON would need; epochs, numbers and event types never contain a newline.
 */
export function parseLiveMessage(message: string): LiveMessage | undefined {
  const ends: number[] = [];
  let at = -1;
  for (let field = 0; field < 4; field++) {
    at = message.indexOf('\n', at + 1);
    if (at < 0) return undefined;
    ends.push(at);
  }
  const [afterEpoch, afterSeq, afterTime, afterType] = ends as [number, number, number, number];
  const epoch = message.slice(0, afterEpoch);
  const seq = Number(message.slice(afterEpoch + 1, afterSeq));
  const time = Number(message.slice(afterSeq + 1, afterTime));
  if (!Number.isSafeInteger(seq) || !Number.isFinite(time)) return undefined;
  return {
    epoch,
    event: {
      id: formatId(epoch, seq),
      seq,
      event: message.slice(afterTime + 1, afterType),
      data: message.slice(afterType + 1),
      time,
    },
  };
}
