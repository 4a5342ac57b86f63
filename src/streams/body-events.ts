import { createParser, type EventSourceParser } from 'eventsource-parser';
import { StreamhubError } from '../core/errors.js';
import { checkEventType } from '../core/names.js';
import { DEFAULT_EVENT_TYPE, type EventInput } from '../core/types.js';

/** The request body types a producer may stream (docs/api.md §9). */
export type BodyType = 'sse' | 'ndjson' | 'text';

const BODY_TYPES: Readonly<Record<string, BodyType>> = {
  'text/event-stream': 'sse',
  'application/x-ndjson': 'ndjson',
  'text/plain': 'text',
};

export const STREAM_CONTENT_TYPES = Object.keys(BODY_TYPES);

/** The body type of a `Content-Type` header, parameters ignored. */
export function bodyTypeOf(contentType: string | undefined): BodyType | undefined {
  const essence = contentType?.split(';', 1)[0]?.trim().toLowerCase() ?? '';
  return BODY_TYPES[essence];
}

/**
 * Turns a streamed body into events, chunk by chunk, never holding more than one event's
 * worth of text: a partial event past `maxEventBytes` is refused rather than buffered.
 */
export interface BodyEvents {
  /** The events completed by this chunk. */
  push(chunk: Uint8Array): EventInput[];
  /** The events still pending when the body ends. */
  end(): EventInput[];
}

export function bodyEvents(type: BodyType, maxEventBytes: number): BodyEvents {
  switch (type) {
    case 'sse':
      return sseEvents(maxEventBytes);
    case 'ndjson':
      return ndjsonEvents(maxEventBytes);
    case 'text':
      return textEvents(maxEventBytes);
  }
}

export function eventTooLarge(maxEventBytes: number): StreamhubError {
  return new StreamhubError(
    'too_large',
    'event_too_large',
    `an event of the body is larger than MAX_BODY_BYTES (${maxEventBytes} bytes)`,
  );
}

function checkSize(text: string, maxEventBytes: number): string {
  if (text.length > maxEventBytes || Buffer.byteLength(text) > maxEventBytes) {
    throw eventTooLarge(maxEventBytes);
  }
  return text;
}

/**
 * Each SSE event becomes one event, its type and data as the producer sent them; its own
 * `id:` and `retry:` fields and comments are dropped. An event left unterminated by the end of
 * the body is kept: a producer that stops writing has said everything.
 */
function sseEvents(maxEventBytes: number): BodyEvents {
  const decoder = new TextDecoder();
  let completed: EventInput[] = [];
  // Field names and `data:` prefixes come on top of the event's data.
  const maxPendingChars = 2 * maxEventBytes + 1024;
  let pendingChars = 0;
  const parser: EventSourceParser = createParser({
    onEvent(event) {
      pendingChars = 0;
      const type = event.event === undefined ? DEFAULT_EVENT_TYPE : checkEventType(event.event);
      completed.push({ event: type, data: checkSize(event.data, maxEventBytes) });
    },
    onComment() {
      pendingChars = 0;
    },
  });
  const take = (text: string): EventInput[] => {
    pendingChars += text.length;
    parser.feed(text);
    if (pendingChars > maxPendingChars) throw eventTooLarge(maxEventBytes);
    const events = completed;
    completed = [];
    return events;
  };
  return {
    push: (chunk) => take(decoder.decode(chunk, { stream: true })),
    // Two line ends complete whatever line and event the body left open.
    end: () => take(`${decoder.decode()}\n\n`),
  };
}

/** Each non-empty line is one `message` event whose data is the line (CRLF or LF). */
function ndjsonEvents(maxEventBytes: number): BodyEvents {
  const decoder = new TextDecoder();
  let partial = '';
  const lines = (text: string, last: boolean): EventInput[] => {
    const parts = (partial + text).split('\n');
    partial = last ? '' : (parts.pop() as string);
    checkSize(partial, maxEventBytes);
    const events: EventInput[] = [];
    for (const part of parts) {
      const line = part.endsWith('\r') ? part.slice(0, -1) : part;
      if (line.trim() !== '') events.push(messageEvent(checkSize(line, maxEventBytes)));
    }
    return events;
  };
  return {
    push: (chunk) => lines(decoder.decode(chunk, { stream: true }), false),
    end: () => lines(decoder.decode(), true),
  };
}

/**
 * Each chunk read is one `message` event whose data is the chunk's text as a JSON string. The
 * decoder holds back a character split across chunks; a chunk too large for one event is cut
 * into several, between characters.
 */
function textEvents(maxEventBytes: number): BodyEvents {
  const decoder = new TextDecoder();
  // A character takes at most 6 bytes of JSON (`\uXXXX`), plus the quotes.
  const maxChars = Math.max(2, Math.floor((maxEventBytes - 2) / 6));
  const events = (text: string): EventInput[] => {
    const result: EventInput[] = [];
    for (let start = 0; start < text.length; ) {
      let end = Math.min(start + maxChars, text.length);
      if (end < text.length && isHighSurrogate(text.charCodeAt(end - 1))) end--;
      result.push(messageEvent(JSON.stringify(text.slice(start, end))));
      start = end;
    }
    return result;
  };
  return {
    push: (chunk) => events(decoder.decode(chunk, { stream: true })),
    end: () => events(decoder.decode()),
  };
}

function messageEvent(data: string): EventInput {
  return { event: DEFAULT_EVENT_TYPE, data };
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
