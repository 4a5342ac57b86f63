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

/** The events of one append, as its live message carries them. */
export interface LiveBatch {
  readonly epoch: string;
  /** Never empty; consecutive seqs. */
  readonly events: StoredEvent[];
}

const NEWLINE = 0x0a;

/**
 * A live message is `epoch \n seq \n time \n`, then per event `type \n length \n data`, as
 * published by the append script: `seq` is the first event's, `length` the data's in bytes.
 * Data is taken verbatim by its length (it may hold newlines) and never re-escaped, which
 * JSON-in-JSON would need; epochs, numbers and event types never contain a newline. Read from
 * the message's bytes, since the lengths count bytes.
 */
export function parseLiveMessage(message: Buffer): LiveBatch | undefined {
  const fields = { at: 0 };
  const epoch = nextField(message, fields);
  const firstSeq = Number(nextField(message, fields));
  const time = Number(nextField(message, fields));
  if (epoch === undefined || !Number.isSafeInteger(firstSeq) || !Number.isFinite(time)) {
    return undefined;
  }
  const events: StoredEvent[] = [];
  for (let seq = firstSeq; fields.at < message.length; seq++) {
    const event = nextField(message, fields);
    const length = Number(nextField(message, fields));
    const end = fields.at + length;
    if (event === undefined || !Number.isSafeInteger(length) || end > message.length) {
      return undefined;
    }
    const data = message.toString('utf8', fields.at, end);
    fields.at = end;
    events.push({ id: formatId(epoch, seq), seq, event, data, time });
  }
  return events.length === 0 ? undefined : { epoch, events };
}

/** The text up to the next newline from `cursor.at`, which moves past it. */
function nextField(message: Buffer, cursor: { at: number }): string | undefined {
  const end = message.indexOf(NEWLINE, cursor.at);
  if (end < 0) return undefined;
  const field = message.toString('latin1', cursor.at, end);
  cursor.at = end + 1;
  return field;
}
