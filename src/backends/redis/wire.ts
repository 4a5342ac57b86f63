import { formatId } from '../../core/ids.js';
import type { EventInput, StoredEvent } from '../../core/types.js';

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
 * The live message of events appended with consecutive seqs from `firstSeq` (format below), as
 * a writer's fast path publishes it; the whole append script builds the same in Lua.
 */
export function formatLiveMessage(
  epoch: string,
  firstSeq: number,
  time: string,
  inputs: readonly EventInput[],
): string {
  let message = `${epoch}\n${firstSeq}\n${time}\n`;
  for (const { event, data } of inputs) message += `${event}\n${Buffer.byteLength(data)}\n${data}`;
  return message;
}

/**
 * A live message is `epoch \n seq \n time \n`, then per event `type \n length \n data`, as
 * published by the append script: `seq` is the first event's, `length` the data's in bytes.
 * Data is taken verbatim by its length (it may hold newlines) and never re-escaped, which
 * JSON-in-JSON would need; epochs, numbers and event types never contain a newline.
 */
export function parseLiveMessage(message: Buffer): LiveBatch | undefined {
  const text = message.toString();
  // Lengths count bytes. Where each character is one byte (ASCII: the usual case) they index
  // the decoded text; otherwise the fields are decoded from the bytes one at a time.
  const fields = text.length === message.length ? textFields(text) : byteFields(message);
  const epoch = fields.line();
  const firstSeq = Number(fields.line());
  const time = Number(fields.line());
  if (epoch === undefined || !Number.isSafeInteger(firstSeq) || !Number.isFinite(time)) {
    return undefined;
  }
  const events: StoredEvent[] = [];
  for (let seq = firstSeq; !fields.done(); seq++) {
    const event = fields.line();
    const data = fields.take(Number(fields.line()));
    if (event === undefined || data === undefined) return undefined;
    events.push({ id: formatId(epoch, seq), seq, event, data, time });
  }
  return events.length === 0 ? undefined : { epoch, events };
}

/** Reads a message front to back; `undefined` when it ends too early. */
interface Fields {
  /** The text up to the next newline, which is skipped. */
  line(): string | undefined;
  /** The next `bytes` bytes, as text. */
  take(bytes: number): string | undefined;
  done(): boolean;
}

function textFields(text: string): Fields {
  let at = 0;
  return {
    line() {
      const end = text.indexOf('\n', at);
      if (end < 0) return undefined;
      const line = text.slice(at, end);
      at = end + 1;
      return line;
    },
    take(bytes) {
      if (!Number.isSafeInteger(bytes) || at + bytes > text.length) return undefined;
      at += bytes;
      return text.slice(at - bytes, at);
    },
    done: () => at >= text.length,
  };
}

function byteFields(message: Buffer): Fields {
  let at = 0;
  return {
    line() {
      const end = message.indexOf(NEWLINE, at);
      if (end < 0) return undefined;
      const line = message.toString('latin1', at, end);
      at = end + 1;
      return line;
    },
    take(bytes) {
      if (!Number.isSafeInteger(bytes) || at + bytes > message.length) return undefined;
      at += bytes;
      return message.toString('utf8', at - bytes, at);
    },
    done: () => at >= message.length,
  };
}
