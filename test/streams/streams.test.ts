/**
 * Streams from any producer (docs/api.md §9) on one process: every endpoint and error, the three
 * body types, delivery while the body is still arriving, resuming with the `eventsource`
 * package, and every way a stream ends.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EventSource } from 'eventsource';
import { SignJWT } from 'jose';
import {
  assertApiError,
  getJson,
  metricsText,
  request,
  uniqueTopic,
  useServer,
} from '../helpers/http.js';
import { waitFor, withServer } from '../helpers/server.js';
import {
  closedAfterEach,
  type ProducerOutcome,
  StreamProducer,
  streamHolds,
} from '../helpers/stream-producer.js';

const SSE = 'text/event-stream';
const NDJSON = 'application/x-ndjson';
const JSON_HEADERS = { 'content-type': 'application/json' };

const { consumer, producer, track } = closedAfterEach();

interface StreamView {
  readonly id: string;
  readonly status: string;
  readonly events: number;
  readonly last_event_id: string | null;
  readonly created_at: string;
  readonly updated_at: string;
}

function view(baseUrl: string, id: string): Promise<StreamView> {
  return getJson(`${baseUrl}/v1/streams/${id}`);
}

function post(baseUrl: string, path: string, body?: unknown) {
  return request(`${baseUrl}/v1/streams/${path}`, {
    method: 'POST',
    headers: body === undefined ? {} : JSON_HEADERS,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

function assertResponse(outcome: ProducerOutcome, status: number, code?: string): unknown {
  assert.ok('status' in outcome, `the producer's request failed: ${JSON.stringify(outcome)}`);
  assert.equal(outcome.status, status, JSON.stringify(outcome.json));
  if (code !== undefined) {
    assert.equal((outcome.json as { error: { code: string } }).error.code, code);
  }
  return outcome.json;
}

const errorText = (data: string) => JSON.parse(data) as { type: string; errorText: string };

describe('streams on one process', () => {
  const server = useServer({ STREAM_MAX_EVENTS: '5', MAX_BODY_BYTES: '2048' });
  const base = () => server().url;

  test('an SSE body is delivered event by event while it arrives, byte for byte', async () => {
    const id = uniqueTopic('sse');
    const producing = producer(base(), id, SSE);
    await producing.write('event: part\ndata: {"n":1}\nid: 99\nretry: 10\n\n');
    await streamHolds(base(), id, 1);
    const reader = consumer(`${base()}/v1/streams/${id}`);
    await waitFor(() => reader.events.length === 1, 'the first event, before the second is sent');
    await producing.write(': a comment\ndata: line one\ndata:  line two \r\ndata:\n\n');
    await producing.write('data: no blank line at the end');
    const summary = assertResponse(await producing.end(), 200) as Record<string, unknown>;
    await reader.closed;
    assert.deepEqual(
      reader.events.map(({ event, data }) => ({ event, data })),
      [
        { event: 'part', data: '{"n":1}' },
        { event: 'message', data: 'line one\n line two \n' },
        { event: 'message', data: 'no blank line at the end' },
      ],
    );
    assert.match(reader.raw, /data: line one\ndata: {2}line two \ndata: \n\n/);
    assert.doesNotMatch(reader.raw, /id: 99\n|retry: 10\n|a comment/);
    const ids = reader.events.map((event) => event.id);
    assert.deepEqual(summary, { id, events: 3, last_event_id: ids[2] });
    assert.notEqual(ids[0], '99');
    const status = await view(base(), id);
    assert.equal(status.status, 'complete');
    assert.equal(status.events, 3);
    assert.equal(status.last_event_id, ids[2]);
    assert.ok(Date.parse(status.created_at) <= Date.parse(status.updated_at));
  });

  test('NDJSON: each non-empty line is one message event whose data is the line', async () => {
    const id = uniqueTopic('ndjson');
    const lines = producer(base(), id, NDJSON);
    await lines.write('{"a":1}\r\n\n{"b"');
    await lines.write(':2}\n[3]');
    assertResponse(await lines.end(), 200);
    const reader = consumer(`${base()}/v1/streams/${id}`);
    await reader.closed;
    assert.deepEqual(
      reader.events.map(({ event, data }) => [event, data]),
      [
        ['message', '{"a":1}'],
        ['message', '{"b":2}'],
        ['message', '[3]'],
      ],
    );
  });

  test('text: each chunk is one JSON string event, a character split across writes kept whole', async () => {
    const id = uniqueTopic('text');
    const text = producer(base(), id, 'text/plain; charset=utf-8');
    const euro = Buffer.from('€'); // three bytes, written across two chunks
    await text.write(Buffer.concat([Buffer.from('1 '), euro.subarray(0, 2)]));
    await streamHolds(base(), id, 1);
    const reader = consumer(`${base()}/v1/streams/${id}`);
    await waitFor(() => reader.events.length === 1, 'the text before the split character');
    await text.write(Buffer.concat([euro.subarray(2), Buffer.from(' 2')]));
    assertResponse(await text.end(), 200);
    await reader.closed;
    assert.deepEqual(
      reader.events.map((event) => JSON.parse(event.data)),
      ['1 ', '€ 2'],
    );
  });

  test('eventsource consumers resume mid-stream: the rest, exactly once', async () => {
    const id = uniqueTopic('resume');
    const producing = producer(base(), id, NDJSON);
    await producing.write('{"n":1}\n{"n":2}\n');
    await streamHolds(base(), id, 2);
    const first = new EventSource(`${base()}/v1/streams/${id}`);
    track(() => first.close());
    const seen: string[] = [];
    first.addEventListener('message', (event) => seen.push(event.lastEventId));
    await waitFor(() => seen.length === 2, 'the first two events');
    first.close();
    await producing.write('{"n":3}\n');
    const second = new EventSource(`${base()}/v1/streams/${id}?last_event_id=${seen[1]}`);
    track(() => second.close());
    const rest: number[] = [];
    second.addEventListener('message', (event) => rest.push(JSON.parse(event.data).n));
    await waitFor(() => rest.length === 1, 'the event sent meanwhile');
    await producing.write('{"n":4}\n');
    assertResponse(await producing.end(), 200);
    await waitFor(() => rest.length === 2, 'the live event');
    assert.deepEqual(rest, [3, 4]);
    const done = consumer(`${base()}/v1/streams/${id}`, { 'last-event-id': seen[1] as string });
    await done.closed;
    assert.deepEqual(
      done.events.map((event) => JSON.parse(event.data).n),
      [3, 4],
    );
    const atEnd = consumer(`${base()}/v1/streams/${id}`, {
      'last-event-id': (await view(base(), id)).last_event_id as string,
    });
    await atEnd.closed;
    assert.equal(atEnd.status, 200);
    assert.deepEqual(atEnd.messages, [], 'a consumer with the last event gets nothing more');
  });

  test('cancel ends the stream for consumers and the producer, whose response says cancelled', async () => {
    const id = uniqueTopic('cancel');
    const producing = producer(base(), id, NDJSON);
    await producing.write('"partial"\n');
    await streamHolds(base(), id, 1);
    const reader = consumer(`${base()}/v1/streams/${id}`);
    await waitFor(() => reader.events.length === 1, 'the first event');
    assert.equal((await post(base(), `${id}/cancel`)).status, 202);
    assertResponse(await producing.outcome, 409, 'cancelled');
    await reader.closed;
    const last = reader.events.at(-1);
    assert.equal(last?.event, 'cancelled');
    assert.deepEqual(errorText(last?.data ?? ''), {
      type: 'error',
      errorText: 'cancelled: the stream was cancelled',
    });
    const status = await view(base(), id);
    assert.equal(status.status, 'cancelled');
    assert.equal(status.events, 2);
    assertApiError(await post(base(), `${id}/cancel`), 409, 'not_open');
  });

  test('a producer whose connection breaks ends the stream as producer_lost', async () => {
    const id = uniqueTopic('broken');
    const producing = producer(base(), id, SSE);
    await producing.write('data: 1\n\n');
    await streamHolds(base(), id, 1);
    const reader = consumer(`${base()}/v1/streams/${id}`);
    await waitFor(() => reader.events.length === 1, 'the first event');
    producing.destroy();
    await reader.closed;
    assert.equal(reader.events.at(-1)?.event, 'producer_lost');
    assert.match(errorText(reader.events.at(-1)?.data ?? '').errorText, /^producer_lost: /);
    assert.equal((await view(base(), id)).status, 'producer_lost');
  });

  test('past STREAM_MAX_EVENTS the stream ends as too_long and the producer gets 413', async () => {
    const id = uniqueTopic('long');
    const producing = producer(base(), id, NDJSON);
    await producing.write('1\n2\n3\n4\n5\n6\n');
    assertResponse(await producing.outcome, 413, 'stream_too_long');
    const status = await view(base(), id);
    assert.deepEqual([status.status, status.events], ['too_long', 6]);
    const reader = consumer(`${base()}/v1/streams/${id}`);
    await reader.closed;
    assert.deepEqual(
      reader.events.map((event) => event.event),
      ['message', 'message', 'message', 'message', 'message', 'too_long'],
    );
  });

  test('an event larger than MAX_BODY_BYTES is refused with 413 and ends the stream', async () => {
    const id = uniqueTopic('large');
    const producing = producer(base(), id, NDJSON);
    await producing.write(`"${'x'.repeat(3000)}"\n`);
    assertResponse(await producing.outcome, 413, 'event_too_large');
    assert.equal((await view(base(), id)).status, 'producer_lost');
  });

  test('one producer at a time; an ended id is reused in a new epoch', async () => {
    const id = uniqueTopic('reuse');
    const first = producer(base(), id, NDJSON);
    await first.write('"old 1"\n');
    await streamHolds(base(), id, 1);
    const second = new StreamProducer(base(), id, NDJSON);
    assertResponse(await second.end('"refused"\n'), 409, 'stream_exists');
    assertResponse(await first.end('"old 2"\n'), 200);
    const oldId = (await view(base(), id)).last_event_id as string;
    const third = producer(base(), id, NDJSON);
    await third.write('"new 1"\n');
    await streamHolds(base(), id, 1);
    const reader = consumer(`${base()}/v1/streams/${id}`, { 'last-event-id': oldId });
    await waitFor(() => reader.events.length === 1, 'the new stream');
    assertResponse(await third.end(), 200);
    await reader.closed;
    assert.deepEqual(JSON.parse(reader.messages[0]?.data ?? ''), {
      reason: 'epoch_mismatch',
      oldest: reader.events[0]?.id,
    });
    assert.equal(reader.messages[0]?.event, 'reset');
    assert.deepEqual(
      reader.events.map((event) => JSON.parse(event.data)),
      ['new 1'],
    );
  });

  test('/events and /end build a stream without a streaming body', async () => {
    const id = uniqueTopic('events');
    const one = await post(base(), `${id}/events`, { data: { n: 1 } });
    assert.equal(one.status, 201);
    const reader = consumer(`${base()}/v1/streams/${id}`);
    await waitFor(() => reader.events.length === 1, 'the first event');
    const more = await post(base(), `${id}/events`, {
      events: [{ data: 2, event: 'step' }, { data: 'three' }],
    });
    assert.equal(more.status, 201);
    assert.equal((await post(base(), `${id}/end`)).status, 204);
    await reader.closed;
    assert.deepEqual(
      reader.events.map(({ id: eventId, event, data }) => [eventId, event, data]),
      [
        [(one.json as { last_event_id: string }).last_event_id, 'message', '{"n":1}'],
        [reader.events[1]?.id, 'step', '2'],
        [(more.json as { last_event_id: string }).last_event_id, 'message', '"three"'],
      ],
    );
    assertApiError(await post(base(), `${id}/events`, { data: 4 }), 409, 'stream_ended');
    assertApiError(await post(base(), `${id}/end`), 409, 'stream_ended');
    assertApiError(await post(base(), `${id}/events`, { events: [] }), 400);
    assertApiError(await post(base(), `${id}/events`, { data: 1, event: 'bad type' }), 400);
  });

  test('if_active, JSON status, DELETE and the errors of unknown or bad ids', async () => {
    const id = uniqueTopic('status');
    const url = `${base()}/v1/streams/${id}`;
    assert.equal((await request(`${url}?if_active=true`)).status, 204);
    assertApiError(await request(url), 404, 'stream_not_found');
    assertApiError(await request(url, { headers: { accept: SSE } }), 404, 'stream_not_found');
    assertApiError(await post(base(), `${id}/cancel`), 404, 'stream_not_found');
    const producing = producer(base(), id, NDJSON);
    await producing.write('1\n');
    await streamHolds(base(), id, 1);
    const active = consumer(`${url}?if_active=true`, { accept: '*/*' });
    await waitFor(() => active.events.length === 1, 'an active stream, as SSE whatever Accept');
    assert.match(String(active.headers['content-type']), /^text\/event-stream/);
    assert.equal((await view(base(), id)).status, 'open');
    assertResponse(await producing.end(), 200);
    await active.closed;
    assert.equal((await request(`${url}?if_active=true`)).status, 204);
    assert.equal((await request(url, { method: 'DELETE' })).status, 204);
    assertApiError(await request(url), 404, 'stream_not_found');
    assertApiError(await request(`${base()}/v1/streams/bad%20id`), 400, 'invalid_stream_id');
    const json = await request(url, { method: 'POST', headers: JSON_HEADERS, body: '{}' });
    assertApiError(json, 415, 'unsupported_media_type');
    const metrics = await metricsText(base());
    assert.match(metrics, /streamhub_streams_ended_total\{status="complete"\} [1-9]/);
    assert.match(metrics, /streamhub_stream_events_total [1-9]/);
  });
});

test('a producer silent for STREAM_PRODUCER_IDLE_MS is lost, and so is an idle /events stream', async () => {
  await withServer({ STREAM_PRODUCER_IDLE_MS: '300' }, async ({ url }) => {
    const id = uniqueTopic('idle');
    const producing = producer(url, id, NDJSON);
    await producing.write('1\n');
    assertResponse(await producing.outcome, 409, 'producer_lost');
    const reader = consumer(`${url}/v1/streams/${id}`);
    await reader.closed;
    assert.deepEqual(
      reader.events.map((event) => event.event),
      ['message', 'producer_lost'],
    );
    const quiet = uniqueTopic('quiet');
    assert.equal((await post(url, `${quiet}/events`, { data: 1 })).status, 201);
    const watcher = consumer(`${url}/v1/streams/${quiet}`);
    await watcher.closed;
    assert.equal(watcher.events.at(-1)?.event, 'producer_lost');
    assert.equal((await view(url, quiet)).status, 'producer_lost');
  });
});

test('rights on a stream id are those on a topic: publish to produce, subscribe to read', async () => {
  const secret = 'streamhub-streams-test-secret-0123456789';
  const token = (rights: Record<string, string[]>) =>
    new SignJWT({ streamhub: rights })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('app')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(secret));
  await withServer({ AUTH_JWT_SECRET: secret }, async ({ url }) => {
    const reader = { authorization: `Bearer ${await token({ subscribe: ['chat.*'] })}` };
    const writer = { authorization: `Bearer ${await token({ publish: ['chat.*'] })}` };
    const append = (headers: Record<string, string>) =>
      request(`${url}/v1/streams/chat.1/events`, {
        method: 'POST',
        headers: { ...headers, ...JSON_HEADERS },
        body: '{"data":1}',
      });
    assertApiError(await append(reader), 403, 'forbidden');
    assert.equal((await append(writer)).status, 201);
    assertApiError(await request(`${url}/v1/streams/chat.1`, { headers: writer }), 403);
    assert.equal((await request(`${url}/v1/streams/chat.1`, { headers: reader })).status, 200);
    assertApiError(await request(`${url}/v1/streams/chat.1`), 401, 'unauthorized');
  });
});

test('producers and consumers, if_active ones included, hold connection slots', async () => {
  await withServer({ MAX_CONNECTIONS_PER_CLIENT: '1' }, async ({ url }) => {
    const id = uniqueTopic('slots');
    const producing = producer(url, id, NDJSON);
    await producing.write('1\n');
    await streamHolds(url, id, 1);
    const refused = await request(`${url}/v1/streams/${id}?if_active=true`);
    assertApiError(refused, 429, 'too_many_connections');
    assertResponse(await producing.end(), 200);
    assert.equal((await request(`${url}/v1/streams/${id}?if_active=true`)).status, 204);
  });
});
