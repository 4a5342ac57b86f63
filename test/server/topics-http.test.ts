/**
 * Contract §0, §2 and §6 over real HTTP: publishing, validation and error shapes, idempotent
 * publish, history paging, topic info, deletion and retention, and the operations endpoints.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseId } from '../../src/core/ids.js';
import {
  allHistoryIds,
  assertApiError,
  eventually,
  type HttpResult,
  historyPage,
  metricsText,
  metricValue,
  postRaw,
  publishMany,
  request,
  uniqueTopic,
  useServer,
} from '../helpers/http.js';
import { publish, waitFor } from '../helpers/server.js';
import { RawSseClient } from '../helpers/sse-client.js';

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;

function publishJson(
  baseUrl: string,
  topic: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  return postRaw(baseUrl, topic, JSON.stringify(body), {
    'content-type': 'application/json',
    ...headers,
  });
}

function topicInfo(baseUrl: string, topic: string): Promise<HttpResult> {
  return request(`${baseUrl}/v1/topics/${topic}`);
}

async function historyLength(baseUrl: string, topic: string): Promise<number> {
  return (await allHistoryIds(baseUrl, topic)).length;
}

async function assertHealthy(baseUrl: string): Promise<void> {
  const health = await request(`${baseUrl}/healthz`);
  assert.equal(health.status, 200, 'the server still answers /healthz');
}

describe('publish', () => {
  const server = useServer();

  test('answers 201 with exactly {id, topic, event}, event defaulting to "message"', async () => {
    const topic = uniqueTopic('publish.default');
    const result = await publishJson(server().url, topic, { data: { hello: 'world' } });
    assert.equal(result.status, 201);
    assert.match(result.headers.get('content-type') ?? '', /^application\/json/);
    const body = result.json as { id: unknown };
    assert.deepEqual(Object.keys(body).sort(), ['event', 'id', 'topic']);
    assert.equal(typeof body.id, 'string');
    assert.ok((body.id as string).length > 0);
    assert.deepEqual(body, { id: body.id, topic, event: 'message' });
  });

  test('echoes an explicit event type, and accepts a charset in the content type', async () => {
    const topic = uniqueTopic('publish.typed');
    const result = await postRaw(
      server().url,
      topic,
      JSON.stringify({ data: 1, event: 'chat.message:v1-2_x' }),
      { 'content-type': 'application/json; charset=utf-8' },
    );
    assert.equal(result.status, 201, result.text);
    assert.equal((result.json as { event: string }).event, 'chat.message:v1-2_x');
  });

  test('accepts every kind of JSON value as data, including null, false, 0 and ""', async () => {
    const topic = uniqueTopic('publish.values');
    const values = [null, false, 0, '', [], {}, -1.5e300, 'plain'];
    for (const data of values) {
      const result = await publishJson(server().url, topic, { data });
      assert.equal(result.status, 201, `publishing ${JSON.stringify(data)}: ${result.text}`);
    }
    const page = await historyPage(server().url, topic);
    assert.deepEqual(
      page.events.map((event) => event.data),
      values,
    );
  });

  test('accepts topic names of 128 characters of the whole allowed alphabet', async () => {
    const topic = 'Az09._:@-'.repeat(15).slice(0, 128);
    const result = await publishJson(server().url, encodeURIComponent(topic), { data: 1 });
    assert.equal(result.status, 201, result.text);
    assert.equal((result.json as { topic: string }).topic, topic);
  });

  test('gives successive events distinct ids in publication order', async () => {
    const topic = uniqueTopic('publish.order');
    const ids = await publishMany(server().url, topic, 20);
    assert.equal(new Set(ids).size, 20);
    assert.deepEqual(await allHistoryIds(server().url, topic), ids);
  });
});

describe('publish validation', () => {
  const server = useServer();
  const topic = uniqueTopic('validation');
  const json = { 'content-type': 'application/json' };

  interface BadRequest {
    readonly name: string;
    readonly topic?: string;
    readonly body: string;
    readonly headers?: Record<string, string>;
    readonly status: number;
    readonly code?: string;
  }

  const badTopic = (name: string, encoded: string): BadRequest => ({
    name: `topic ${name}`,
    topic: encoded,
    body: '{"data":1}',
    status: 400,
    code: 'invalid_topic',
  });
  const badBody = (name: string, body: string, code?: string): BadRequest => ({
    name,
    body,
    status: 400,
    code,
  });
  const badEvent = (name: string, event: string): BadRequest =>
    badBody(`event type ${name}`, `{"data":1,"event":${event}}`, 'invalid_event_type');

  const cases: BadRequest[] = [
    badTopic('of 129 characters', 'a'.repeat(129)),
    badTopic('with a space', 'bad%20topic'),
    badTopic('with "!"', 'bad!topic'),
    badTopic('with non-ASCII', 'caf%C3%A9'),
    badTopic('with an encoded slash', 'a%2Fb'),
    badTopic('with an encoded newline', 'a%0Ab'),
    badEvent('with a space', '"has space"'),
    badEvent('with a newline', '"a\\nb"'),
    badEvent('of 65 characters', `"${'e'.repeat(65)}"`),
    badEvent('that is empty', '""'),
    badEvent('with "@" (allowed in topics only)', '"a@b"'),
    badEvent('that is a number', '42'),
    badEvent('that is null', 'null'),
    badBody('missing data', '{}'),
    badBody('missing data with an event type', '{"event":"x"}'),
    badBody('unknown body field', '{"data":1,"extra":true}'),
    badBody('body that is a JSON array', '[{"data":1}]'),
    badBody('body that is a JSON string', '"data"'),
    badBody('body that is a JSON number', '42'),
    badBody('body that is JSON null', 'null'),
    badBody('truncated JSON', '{"data":', 'invalid_json'),
    badBody('body that is not JSON at all', 'data=1', 'invalid_json'),
    badBody('empty JSON body', '', 'invalid_json'),
    {
      name: 'text/plain body',
      body: '{"data":1}',
      headers: { 'content-type': 'text/plain' },
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'form body',
      body: 'data=1',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'Idempotency-Key of 200 characters',
      body: '{"data":1}',
      headers: { ...json, 'idempotency-key': 'k'.repeat(200) },
      status: 400,
      code: 'invalid_idempotency_key',
    },
  ];

  let goodId = '';
  test('a good event is published first, to check that bad requests never lose it', async () => {
    goodId = (await publish(server().url, topic, { keep: true })).id;
  });

  for (const bad of cases) {
    test(`rejects ${bad.name} with ${bad.status}${bad.code ? ` ${bad.code}` : ''}`, async () => {
      const target = bad.topic ?? topic;
      const result = await postRaw(server().url, target, bad.body, bad.headers ?? json);
      assertApiError(result, bad.status, bad.code);
    });
  }

  test('after every bad request the topic holds exactly the good event and the server is up', async () => {
    assert.deepEqual(await allHistoryIds(server().url, topic), [goodId]);
    await assertHealthy(server().url);
  });
});

describe('body size limit (MAX_BODY_BYTES=2048)', () => {
  const server = useServer({ MAX_BODY_BYTES: '2048' });
  const bodyOf = (bytes: number) => {
    const envelope = '{"data":""}';
    return `{"data":"${'x'.repeat(bytes - envelope.length)}"}`;
  };

  test('accepts a body of exactly the limit', async () => {
    const result = await postRaw(server().url, uniqueTopic('limit.ok'), bodyOf(2048));
    assert.equal(result.status, 201, result.text);
  });

  test('rejects a body one byte over the limit with 413', async () => {
    const topic = uniqueTopic('limit.over');
    assertApiError(await postRaw(server().url, topic, bodyOf(2049)), 413, 'payload_too_large');
    assert.equal(await historyLength(server().url, topic), 0);
  });

  test('rejects a chunked body without Content-Length once it passes the limit', async () => {
    const topic = uniqueTopic('limit.chunked');
    const body = new TextEncoder().encode(bodyOf(100_000));
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < body.length; i += 1000) controller.enqueue(body.slice(i, i + 1000));
        controller.close();
      },
    });
    const result = await request(`${server().url}/v1/topics/${topic}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    assertApiError(result, 413, 'payload_too_large');
    await assertHealthy(server().url);
  });
});

describe('deeply nested JSON (MAX_BODY_BYTES=1 MiB)', () => {
  const server = useServer({ MAX_BODY_BYTES: String(1024 * 1024) });
  const depth = 50_000;

  for (const [kind, open, close] of [
    ['arrays', '[', ']'],
    ['objects', '{"a":', '}'],
  ] as const) {
    test(`rejects data of ${depth} nested ${kind} with 400, not 500, and keeps serving`, async () => {
      const topic = uniqueTopic(`deep.${kind}`);
      const body = `{"data":${open.repeat(depth)}1${close.repeat(depth)}}`;
      assert.ok(body.length < 1024 * 1024);
      assertApiError(await postRaw(server().url, topic, body), 400);
      assert.equal(await historyLength(server().url, topic), 0);
      await assertHealthy(server().url);
      assert.equal((await publishJson(server().url, topic, { data: [[1]] })).status, 201);
    });
  }
});

describe('idempotent publish', () => {
  const server = useServer();

  test('a repeated key answers 200 with the original {id, topic, event} and appends nothing', async () => {
    const topic = uniqueTopic('idem.repeat');
    const key = { 'idempotency-key': 'order-42 retry' };
    const first = await publishJson(server().url, topic, { data: 1, event: 'created' }, key);
    assert.equal(first.status, 201);
    const again = await publishJson(server().url, topic, { data: 2, event: 'other' }, key);
    assert.equal(again.status, 200);
    assert.deepEqual(again.json, first.json);
    assert.deepEqual(await allHistoryIds(server().url, topic), [(first.json as { id: string }).id]);
    const page = await historyPage(server().url, topic);
    assert.equal(page.events[0]?.data, 1, 'the original data is kept');
  });

  test('a different key appends a new event', async () => {
    const topic = uniqueTopic('idem.different');
    const first = await publishJson(server().url, topic, { data: 1 }, { 'idempotency-key': 'a' });
    const second = await publishJson(server().url, topic, { data: 1 }, { 'idempotency-key': 'b' });
    assert.equal(second.status, 201);
    assert.notEqual((second.json as { id: string }).id, (first.json as { id: string }).id);
    assert.equal(await historyLength(server().url, topic), 2);
  });

  test('keys are scoped to their topic', async () => {
    const key = { 'idempotency-key': 'shared-key' };
    const one = await publishJson(server().url, uniqueTopic('idem.scope'), { data: 1 }, key);
    const other = await publishJson(server().url, uniqueTopic('idem.scope'), { data: 1 }, key);
    assert.equal(one.status, 201);
    assert.equal(other.status, 201);
  });

  test('accepts a key of 128 printable characters and rejects 129 with 400', async () => {
    const topic = uniqueTopic('idem.length');
    const ok = await publishJson(
      server().url,
      topic,
      { data: 1 },
      { 'idempotency-key': '~'.repeat(128) },
    );
    assert.equal(ok.status, 201);
    const tooLong = await publishJson(
      server().url,
      topic,
      { data: 1 },
      { 'idempotency-key': 'k'.repeat(129) },
    );
    assertApiError(tooLong, 400, 'invalid_idempotency_key');
    assert.equal(await historyLength(server().url, topic), 1);
  });
});

describe('history paging', () => {
  const server = useServer({ HISTORY_MAX_EVENTS: '5000' });
  const topic = uniqueTopic('history');
  const total = 1005;
  let ids: string[] = [];

  test(`setup: ${total} events are published`, async () => {
    await publishMany(server().url, topic, total, { concurrency: 8 });
    ids = await allHistoryIds(server().url, topic);
    assert.equal(ids.length, total);
    assert.equal(new Set(ids).size, total);
  });

  test('a page has exactly {topic, events, next} and events exactly {id, event, data, time}', async () => {
    const page = await historyPage(server().url, topic, 'limit=1');
    assert.deepEqual(Object.keys(page).sort(), ['events', 'next', 'topic']);
    assert.equal(page.topic, topic);
    assert.deepEqual(Object.keys(page.events[0] ?? {}).sort(), ['data', 'event', 'id', 'time']);
  });

  test('the default page is the oldest 100 events, with next = its last id', async () => {
    const page = await historyPage(server().url, topic);
    assert.deepEqual(
      page.events.map((event) => event.id),
      ids.slice(0, 100),
    );
    assert.equal(page.next, ids[99]);
  });

  test('following next with the default limit walks every event once, ending with next = null', async () => {
    const walked: string[] = [];
    let query = '';
    let pages = 0;
    for (;;) {
      const page = await historyPage(server().url, topic, query);
      pages += 1;
      walked.push(...page.events.map((event) => event.id));
      if (page.next === null) break;
      assert.equal(page.events.length, 100);
      assert.equal(page.next, page.events[page.events.length - 1]?.id);
      query = `after=${encodeURIComponent(page.next)}`;
    }
    assert.equal(pages, 11);
    assert.deepEqual(walked, ids);
  });

  test('after and limit select the events right after the given id', async () => {
    const page = await historyPage(server().url, topic, `after=${ids[2]}&limit=7`);
    assert.deepEqual(
      page.events.map((event) => event.id),
      ids.slice(3, 10),
    );
    assert.equal(page.next, ids[9]);
  });

  test('a full last page still returns next; the page after it is empty with next = null', async () => {
    const full = await historyPage(server().url, topic, `after=${ids[total - 11]}&limit=10`);
    assert.deepEqual(
      full.events.map((event) => event.id),
      ids.slice(total - 10),
    );
    assert.equal(full.next, ids[total - 1]);
    const empty = await historyPage(server().url, topic, `after=${full.next}&limit=10`);
    assert.deepEqual(empty.events, []);
    assert.equal(empty.next, null);
  });

  test('a short page returns next = null', async () => {
    const page = await historyPage(server().url, topic, `after=${ids[total - 4]}&limit=10`);
    assert.equal(page.events.length, 3);
    assert.equal(page.next, null);
  });

  test('limit is capped at 1000', async () => {
    const max = await historyPage(server().url, topic, 'limit=1000');
    assert.equal(max.events.length, 1000);
    assert.equal(max.next, ids[999]);
    const over = await historyPage(server().url, topic, 'limit=5000');
    assert.equal(over.events.length, 1000);
    assert.equal(over.next, ids[999]);
  });

  for (const limit of ['0', '-1', 'abc', '1.5']) {
    test(`rejects limit=${limit} with 400`, async () => {
      assertApiError(
        await request(`${server().url}/v1/topics/${topic}/events?limit=${limit}`),
        400,
      );
    });
  }

  test('rejects an invalid topic name with 400', async () => {
    assertApiError(
      await request(`${server().url}/v1/topics/bad!topic/events`),
      400,
      'invalid_topic',
    );
  });

  test('an unknown topic has an empty history with next = null', async () => {
    const page = await historyPage(server().url, uniqueTopic('history.none'));
    assert.deepEqual(page.events, []);
    assert.equal(page.next, null);
  });

  test('event times are RFC 3339 timestamps of the publication', async () => {
    const topic2 = uniqueTopic('history.time');
    const before = Date.now();
    await publish(server().url, topic2, 1);
    const afterPublish = Date.now();
    const [event] = (await historyPage(server().url, topic2)).events;
    assert.ok(event);
    assert.match(event.time, RFC3339);
    const time = Date.parse(event.time);
    assert.ok(time >= before - 1000 && time <= afterPublish + 1000, `${event.time} is now`);
  });

  test('data and event types round-trip exactly', async () => {
    const topic2 = uniqueTopic('history.roundtrip');
    const payloads: unknown[] = [
      'line one\nline two\r\nline three\rend',
      'unicode: é ü 中文 🎉 \u2028\u2029 \u0000 \ud83d\ude00 tab\t"quotes" \\backslash',
      { nested: { deeper: [1, { a: [true, false, null] }], empty: {} }, list: [] },
      [1.5, -0, 1e21, 123456789012345, 'x'],
      '\n\nid: evil\nevent: x\ndata: y',
      '',
    ];
    for (const [i, data] of payloads.entries()) {
      await publish(server().url, topic2, data, { event: `type.${i}` });
    }
    const page = await historyPage(server().url, topic2);
    assert.deepEqual(
      page.events.map((event) => [event.event, event.data]),
      payloads.map((data, i) => [`type.${i}`, JSON.parse(JSON.stringify(data))]),
    );
  });
});

describe('topic info', () => {
  const server = useServer();

  test('an unknown topic has no last id, no events and no subscribers', async () => {
    const topic = uniqueTopic('info.none');
    const result = await topicInfo(server().url, topic);
    assert.equal(result.status, 200);
    assert.deepEqual(result.json, { topic, last_id: null, length: 0, subscribers: 0 });
  });

  test('reports the last id, the retained length and the open SSE subscriptions', async () => {
    const topic = uniqueTopic('info.live');
    const ids = await publishMany(server().url, topic, 3);
    const url = `${server().url}/v1/topics/${topic}/events`;
    const clients = [new RawSseClient(url), new RawSseClient(url)];
    try {
      await Promise.all(clients.map((client) => client.opened));
      await waitFor(() => server().hub.subscriberCount(topic) === 2, 'two subscriptions');
      const info = await topicInfo(server().url, topic);
      assert.deepEqual(info.json, { topic, last_id: ids[2], length: 3, subscribers: 2 });
      clients[0]?.close();
      await eventually(
        async () =>
          ((await topicInfo(server().url, topic)).json as { subscribers: number }).subscribers ===
          1,
        'subscribers to drop to 1',
      );
    } finally {
      for (const client of clients) client.close();
    }
  });

  test('rejects an invalid topic name with 400', async () => {
    assertApiError(await topicInfo(server().url, 'x'.repeat(129)), 400, 'invalid_topic');
  });
});

describe('delete', () => {
  const server = useServer();

  // An open subscription keeps the topic's log alive in memory, so delete must reset it in place.
  for (const watched of [false, true]) {
    test(`answers 204, empties the history, and the next event starts a new epoch${watched ? ' (topic watched)' : ''}`, async () => {
      const topic = uniqueTopic('delete');
      const old = await publishMany(server().url, topic, 3);
      const watcher = watched
        ? new RawSseClient(`${server().url}/v1/topics/${topic}/events`)
        : undefined;
      try {
        if (watcher) await waitFor(() => server().hub.subscriberCount(topic) === 1, 'the watcher');
        const deleted = await request(`${server().url}/v1/topics/${topic}`, { method: 'DELETE' });
        assert.equal(deleted.status, 204);
        assert.equal(deleted.text, '');
        assert.deepEqual((await historyPage(server().url, topic)).events, []);
        assert.deepEqual((await topicInfo(server().url, topic)).json, {
          topic,
          last_id: null,
          length: 0,
          subscribers: watched ? 1 : 0,
        });
        const fresh = await publish(server().url, topic, 'after');
        assert.ok(!old.includes(fresh.id), 'a new id is never an old one');
        assert.notEqual(parseId(fresh.id)?.epoch, parseId(old[0] as string)?.epoch);
        assert.deepEqual(await allHistoryIds(server().url, topic), [fresh.id]);
      } finally {
        watcher?.close();
      }
    });
  }

  test('deleting an unknown topic answers 204; an invalid name answers 400', async () => {
    const unknown = await request(`${server().url}/v1/topics/${uniqueTopic('delete.none')}`, {
      method: 'DELETE',
    });
    assert.equal(unknown.status, 204);
    assertApiError(
      await request(`${server().url}/v1/topics/bad!name`, { method: 'DELETE' }),
      400,
      'invalid_topic',
    );
  });
});

describe('retention by HISTORY_MAX_EVENTS=5', () => {
  const server = useServer({ HISTORY_MAX_EVENTS: '5' });

  test('keeps only the newest 5 events', async () => {
    const topic = uniqueTopic('retention.count');
    const ids = await publishMany(server().url, topic, 8);
    assert.deepEqual(await allHistoryIds(server().url, topic), ids.slice(3));
    assert.deepEqual((await topicInfo(server().url, topic)).json, {
      topic,
      last_id: ids[7],
      length: 5,
      subscribers: 0,
    });
  });
});

describe('retention by HISTORY_TTL_MS=1000', () => {
  const server = useServer({ HISTORY_TTL_MS: '1000' });

  test('drops events once they are older than the TTL', async () => {
    const topic = uniqueTopic('retention.ttl');
    const { id } = await publish(server().url, topic, 'short-lived');
    assert.deepEqual(await allHistoryIds(server().url, topic), [id], 'retained at first');
    await eventually(
      async () => (await historyLength(server().url, topic)) === 0,
      'the event to expire',
      6000,
      100,
    );
    assert.equal(((await topicInfo(server().url, topic)).json as { length: number }).length, 0);
  });
});

describe('operations', () => {
  const server = useServer();

  test('/healthz and /readyz answer 200', async () => {
    assert.equal((await request(`${server().url}/healthz`)).status, 200);
    assert.equal((await request(`${server().url}/readyz`)).status, 200);
  });

  test('an unknown route answers 404 in the error shape', async () => {
    assertApiError(await request(`${server().url}/nope`), 404, 'not_found');
    assertApiError(await request(`${server().url}/v1/topics/t/unknown`), 404, 'not_found');
    assertApiError(await request(`${server().url}/v1/topics/t`, { method: 'PUT' }), 404);
  });

  test('/metrics exposes the streamhub metrics in Prometheus text format', async () => {
    const topic = uniqueTopic('metrics');
    const url = `${server().url}/v1/topics/${topic}/events`;
    const [firstId] = await publishMany(server().url, topic, 2);
    const live = new RawSseClient(url);
    const recovered = new RawSseClient(url, { 'last-event-id': firstId as string });
    const reset = new RawSseClient(url, { 'last-event-id': 'garbage' });
    try {
      await waitFor(() => server().hub.subscriberCount(topic) === 3, 'three subscriptions');
      await publish(server().url, topic, 'live');
      await waitFor(() => live.events.length === 1, 'live delivery');
      await waitFor(() => recovered.events.length === 2 && reset.events.length === 3, 'replays');
      await request(`${server().url}/nope`);

      const metrics = await request(`${server().url}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
      const text = metrics.text;
      const atLeast = (name: string, labels: Record<string, string>, min: number) => {
        const value = metricValue(text, name, labels);
        assert.ok(
          value !== undefined && value >= min,
          `${name}${JSON.stringify(labels)} = ${value}`,
        );
      };
      atLeast('streamhub_connections', { transport: 'sse' }, 3);
      atLeast('streamhub_connections', { transport: 'ws' }, 0);
      atLeast('streamhub_events_published_total', {}, 3);
      atLeast('streamhub_events_delivered_total', {}, 3);
      atLeast('streamhub_events_replayed_total', {}, 3);
      atLeast('streamhub_resumes_total', { outcome: 'recovered' }, 1);
      atLeast('streamhub_resumes_total', { outcome: 'reset' }, 1);
      atLeast('streamhub_publish_to_deliver_seconds_count', {}, 1);
      atLeast('streamhub_publish_to_deliver_seconds_bucket', { le: '+Inf' }, 1);
      atLeast(
        'streamhub_http_requests_total',
        { method: 'POST', route: '/v1/topics/:topic/events', status: '201' },
        3,
      );
      atLeast(
        'streamhub_http_requests_total',
        { method: 'GET', route: '/v1/topics/:topic/events', status: '200' },
        3,
      );
      assert.match(text, /^streamhub_http_requests_total\{[^}]*status="404"[^}]*\} \d+/m);
      assert.match(text, /^# TYPE streamhub_slow_consumers_dropped_total counter$/m);
      assert.ok(!text.includes(`route="/v1/topics/${topic}`), 'routes are labelled by pattern');
    } finally {
      for (const client of [live, recovered, reset]) client.close();
    }
  });

  test('the published counter counts each stored event once, not idempotent repeats', async () => {
    const topic = uniqueTopic('metrics.published');
    const before = metricValue(await metricsText(server().url), 'streamhub_events_published_total');
    const key = { 'idempotency-key': 'once' };
    await publishJson(server().url, topic, { data: 1 }, key);
    await publishJson(server().url, topic, { data: 1 }, key);
    const after = metricValue(await metricsText(server().url), 'streamhub_events_published_total');
    assert.equal((after ?? 0) - (before ?? 0), 1);
  });
});
