/**
 * SSE framing (docs/api.md §1): payload lines become separate `data:` lines on every SSE line
 * terminator, so no payload can inject a field; checked on the bytes and with a real client.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { EventSource } from 'eventsource';
import type { StoredEvent } from '../../../src/core/types.js';
import {
  controlFrame,
  dataField,
  encodeSseBatch,
  eventFrame,
} from '../../../src/transports/sse/framing.js';
import { waitFor } from '../../helpers/server.js';

const HOSTILE_PAYLOADS = [
  'plain',
  '',
  'a\nb',
  'a\rb',
  'a\r\nb',
  'a\n\rb',
  'trailing\n',
  '\r\n\r\n',
  '\n\nid: evil\nevent: x\ndata: y\n\n',
  '\r\rid: evil\r\revent: x\rretry: 1\r\r',
  'x\r\n\r\nid: evil\r\n\r\n: comment',
];

function storedEvent(seq: number, data: string, event = 'message'): StoredEvent {
  return { id: `e0-${seq}`, seq, event, data, time: 0 };
}

/** What an SSE client reconstructs from the data lines: lines joined with LF. */
function normalized(payload: string): string {
  return payload.replace(/\r\n|\r/g, '\n');
}

describe('dataField', () => {
  test('keeps a single-line payload on one data line', () => {
    assert.equal(dataField('{"a":1}'), 'data: {"a":1}\n');
    assert.equal(dataField(''), 'data: \n');
  });

  for (const [name, payload] of [
    ['LF', 'a\nb'],
    ['CR', 'a\rb'],
    ['CRLF', 'a\r\nb'],
  ] as const) {
    test(`splits on ${name} into separate data lines`, () => {
      assert.equal(dataField(payload), 'data: a\ndata: b\n');
    });
  }

  test('treats CRLF as one line break and LF CR as two', () => {
    assert.equal(dataField('a\r\n\r\nb'), 'data: a\ndata: \ndata: b\n');
    assert.equal(dataField('a\n\rb'), 'data: a\ndata: \ndata: b\n');
  });

  test('keeps a trailing line break as an empty data line', () => {
    assert.equal(dataField('a\n'), 'data: a\ndata: \n');
  });

  for (const payload of HOSTILE_PAYLOADS) {
    test(`${JSON.stringify(payload)} yields only data lines that rebuild the payload`, () => {
      const field = dataField(payload);
      assert.ok(!field.includes('\r'), 'no carriage return survives');
      assert.ok(field.endsWith('\n'));
      const lines = field.slice(0, -1).split('\n');
      for (const line of lines)
        assert.ok(line.startsWith('data: '), `line ${JSON.stringify(line)}`);
      assert.equal(
        lines.map((line) => line.slice('data: '.length)).join('\n'),
        normalized(payload),
      );
    });
  }
});

describe('frames', () => {
  test('an event frame is id, event, data lines and a blank line', () => {
    assert.equal(
      eventFrame(storedEvent(7, '{"n":7}', 'chat.delta')),
      'id: e0-7\nevent: chat.delta\ndata: {"n":7}\n\n',
    );
  });

  test('a control frame carries no id', () => {
    assert.equal(
      controlFrame('reset', '{"reason":"unknown_id","oldest":null}'),
      'event: reset\ndata: {"reason":"unknown_id","oldest":null}\n\n',
    );
  });

  test('a batch encodes to the concatenated frames of its events, in order', () => {
    const events = [storedEvent(1, '1'), storedEvent(2, 'a\nb'), storedEvent(3, '"é"')];
    const encoded = encodeSseBatch('t', events);
    const text = events.map(eventFrame).join('');
    assert.equal(encoded.payload.toString('utf8'), text);
    // The same bytes as one HTTP/1.1 chunk: size in hex (bytes, not characters), CRLF, CRLF.
    const size = Buffer.byteLength(text).toString(16);
    assert.equal(encoded.chunk.toString('utf8'), `${size}\r\n${text}\r\n`);
  });
});

describe('a real EventSource reading hostile frames', () => {
  test('sees exactly one event per frame, with its id and the payload lines joined by LF', async () => {
    const events = HOSTILE_PAYLOADS.map((payload, i) => storedEvent(i + 1, payload));
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(controlFrame('reset', '{"reason":"unknown_id","oldest":null}'));
      res.end(encodeSseBatch('t', events).payload);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const source = new EventSource(`http://127.0.0.1:${port}/`);
    const received: { type: string; id: string; data: string }[] = [];
    const record = (event: MessageEvent) =>
      received.push({ type: event.type, id: event.lastEventId, data: event.data });
    source.addEventListener('message', record);
    source.addEventListener('reset', record);
    source.addEventListener('x', record);
    try {
      await waitFor(() => received.length >= events.length + 1, 'every event');
      assert.deepEqual(received, [
        { type: 'reset', id: '', data: '{"reason":"unknown_id","oldest":null}' },
        ...events.map((event) => ({ type: 'message', id: event.id, data: normalized(event.data) })),
      ]);
    } finally {
      source.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
