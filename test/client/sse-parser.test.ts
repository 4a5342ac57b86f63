import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type SseMessage, SseParser } from '../../src/client/sse-parser.js';

interface Parsed {
  readonly messages: SseMessage[];
  readonly retries: number[];
  readonly comments: string[];
}

/** Parses `chunks` in order through one parser; strings are pushed, byte arrays written. */
function parse(...chunks: (string | Uint8Array)[]): Parsed {
  const parsed: Parsed = { messages: [], retries: [], comments: [] };
  const parser = new SseParser({
    onMessage: (message) => parsed.messages.push(message),
    onRetry: (ms) => parsed.retries.push(ms),
    onComment: (text) => parsed.comments.push(text),
  });
  for (const chunk of chunks) {
    if (typeof chunk === 'string') parser.push(chunk);
    else parser.write(chunk);
  }
  return parsed;
}

const message = (fields: Partial<SseMessage> & { data: string }): SseMessage => ({
  event: 'message',
  lastEventId: fields.id ?? '',
  ...fields,
});

/** Exercises every rule at once: used for the chunk-boundary tests below. */
const TRICKY =
  '\uFEFFretry: 1500\r\n' +
  ': ping\r' +
  'id: 1\rdata: first\rdata\rdata:  two spaces\r\r' +
  'event: price.updated\ndata: {"eur":"1 €","emoji":"😀"}\n\n' +
  'id: bad\0id\ndata: ignored id\r\n\r\n' +
  'id\nevent\ndata:\n\n' +
  'unknown: field\nretry: 10x\ndata: tail\n\n' +
  'data: never terminated';

const TRICKY_EXPECTED: Parsed = {
  messages: [
    message({ id: '1', lastEventId: '1', data: 'first\n\n two spaces' }),
    message({ event: 'price.updated', lastEventId: '1', data: '{"eur":"1 €","emoji":"😀"}' }),
    message({ lastEventId: '1', data: 'ignored id' }),
    message({ id: '', lastEventId: '', data: '' }),
    message({ lastEventId: '', data: 'tail' }),
  ],
  retries: [1500],
  comments: [' ping'],
};

describe('SseParser', () => {
  test('parses fields, joins data lines and strips one leading space', () => {
    const parsed = parse('id: 7\nevent: order\ndata: {"a":1}\ndata:b\ndata:  c\n\n');
    assert.deepEqual(parsed.messages, [
      message({ id: '7', event: 'order', lastEventId: '7', data: '{"a":1}\nb\n c' }),
    ]);
  });

  test('CRLF, CR and LF line endings give the same messages', () => {
    const lf = 'id: 1\ndata: a\ndata: b\n\n: c\nevent: x\ndata: y\n\n';
    const expected = parse(lf);
    assert.equal(expected.messages.length, 2);
    assert.deepEqual(parse(lf.replaceAll('\n', '\r\n')), expected);
    assert.deepEqual(parse(lf.replaceAll('\n', '\r')), expected);
  });

  test('a CR at the end of a chunk and the LF starting the next are one line end', () => {
    assert.deepEqual(parse('data: a\r', '\n', 'data: b\r', '\n\r', '\n').messages, [
      message({ data: 'a\nb' }),
    ]);
    assert.deepEqual(parse('data: a\r', '\r').messages, [message({ data: 'a' })]);
  });

  test('comments and retry are reported; retry that is not all digits is ignored', () => {
    const parsed = parse(': heartbeat\n:\nretry: 3000\nretry: -1\nretry: 1e3\nretry\n\n');
    assert.deepEqual(parsed.comments, [' heartbeat', '']);
    assert.deepEqual(parsed.retries, [3000]);
    assert.deepEqual(parsed.messages, []);
  });

  test('an id carries over to later blocks, an id with NUL is ignored, an empty id clears', () => {
    const parsed = parse('id: a\ndata: 1\n\ndata: 2\n\nid: b\0\ndata: 3\n\nid\ndata: 4\n\n');
    assert.deepEqual(parsed.messages, [
      message({ id: 'a', lastEventId: 'a', data: '1' }),
      message({ lastEventId: 'a', data: '2' }),
      message({ lastEventId: 'a', data: '3' }),
      message({ id: '', lastEventId: '', data: '4' }),
    ]);
  });

  test('a block without data is not dispatched but its id still counts', () => {
    const parser = new SseParser({ onMessage: () => assert.fail('dispatched') });
    parser.push('id: 42\nevent: nothing\n\n');
    assert.equal(parser.lastEventId, '42');
  });

  test('an empty event type means message; unknown fields are ignored', () => {
    assert.deepEqual(parse('event:\nfoo: bar\ndata: x\n\n').messages, [message({ data: 'x' })]);
  });

  test('an unterminated block at the end of the stream is not dispatched', () => {
    assert.deepEqual(parse('data: a\n\ndata: b\n').messages, [message({ data: 'a' })]);
  });

  test('a leading BOM is skipped once, and only at the start of the stream', () => {
    assert.deepEqual(parse('\uFEFF', 'data: a\n\n').messages, [message({ data: 'a' })]);
    const bytes = new TextEncoder().encode('\uFEFFdata: a\n\n\uFEFFdata: b\n\n');
    // The second BOM starts a field named "\uFEFFdata", which is unknown.
    assert.deepEqual(parse(bytes).messages, [message({ data: 'a' })]);
  });

  test('the tricky stream parses as expected in one piece', () => {
    assert.deepEqual(parse(TRICKY), TRICKY_EXPECTED);
  });

  test('the tricky stream parses the same split into two byte chunks at every boundary', () => {
    const bytes = new TextEncoder().encode(TRICKY);
    for (let split = 0; split <= bytes.length; split++) {
      const parsed = parse(bytes.subarray(0, split), bytes.subarray(split));
      assert.deepEqual(parsed, TRICKY_EXPECTED, `split at byte ${split}`);
    }
  });

  test('the tricky stream parses the same fed one byte, or one character, at a time', () => {
    const bytes = new TextEncoder().encode(TRICKY);
    const byteChunks = Array.from(bytes, (_byte, index) => bytes.subarray(index, index + 1));
    assert.deepEqual(parse(...byteChunks), TRICKY_EXPECTED);
    assert.deepEqual(parse(...TRICKY.split('')), TRICKY_EXPECTED);
  });

  test('every three-way split of the text gives the same result', () => {
    const text = 'id: 1\r\ndata: a\r\r\ndata: b\r\n\r\n';
    const expected = parse(text);
    for (let first = 0; first <= text.length; first++) {
      for (let second = first; second <= text.length; second++) {
        const chunks = [text.slice(0, first), text.slice(first, second), text.slice(second)];
        assert.deepEqual(parse(...chunks), expected, `split at ${first} and ${second}`);
      }
    }
  });
});
