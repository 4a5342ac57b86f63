import type { BatchEncoder } from '../../core/batch.js';
import type { StoredEvent } from '../../core/types.js';

const LINE_BREAK = /\r\n|\r|\n/;

/**
 * One `data:` line per payload line. Splitting on every SSE line terminator is what keeps
 * a payload from injecting fields of its own; JSON payloads take the single-line fast path.
 */
export function dataField(payload: string): string {
  if (!LINE_BREAK.test(payload)) return `data: ${payload}\n`;
  let field = '';
  for (const line of payload.split(LINE_BREAK)) field += `data: ${line}\n`;
  return field;
}

export function eventFrame(event: StoredEvent): string {
  return `id: ${event.id}\nevent: ${event.event}\n${dataField(event.data)}\n`;
}

/** A per-connection frame: it carries no id, so it never moves the client's Last-Event-ID. */
export function controlFrame(event: string, data: string): string {
  return `event: ${event}\n${dataField(data)}\n`;
}

export const HEARTBEAT_FRAME = ': ping\n\n';

/** The whole batch as one buffer: encoded once, written to every subscriber as is. */
export const encodeSseBatch: BatchEncoder<Buffer> = (_topic, events) => {
  let text = '';
  for (const event of events) text += eventFrame(event);
  return Buffer.from(text);
};
