/**
 * HTTPS with HTTP/2 and HTTP/1.1 on one port (TLS_CERT_FILE, TLS_KEY_FILE): many SSE streams
 * on one connection, resume and heartbeats over HTTP/2, flow control as backpressure, HTTP/1.1
 * and WebSockets on the same port, shutdown with GOAWAY, and a browser past the limit of six
 * connections per origin.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { type ClientHttp2Stream, constants } from 'node:http2';
import https from 'node:https';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import WebSocket from 'ws';
import { launchChromium } from '../helpers/chromium.js';
import { H2Client, type H2Response } from '../helpers/h2-client.js';
import { eventually, metricValue, uniqueTopic, useServer } from '../helpers/http.js';
import { PATIENCE_MS } from '../helpers/patience.js';
import { startTestServer, waitFor } from '../helpers/server.js';
import { selfSignedCertificate } from '../helpers/tls.js';

const certificate = selfSignedCertificate();
after(() => certificate.remove());

/** Node warns (once) when an HTTP/1-only header is set on an HTTP/2 response, and drops it. */
const warnings: string[] = [];
process.on('warning', (warning) => warnings.push(warning.message));

function eventsPath(topic: string): string {
  return `/v1/topics/${topic}/events`;
}

describe('HTTPS: HTTP/2 and HTTP/1.1 on one port', () => {
  const server = useServer({ ...certificate.settings, HEARTBEAT_MS: '100' });
  let client: H2Client;
  before(async () => {
    client = new H2Client(server().url, certificate.ca);
    await client.connected();
  });
  after(() => client?.close());

  test('the server listens on an https URL', () => {
    assert.match(server().url, /^https:\/\/127\.0\.0\.1:\d+$/);
  });

  test('20 SSE streams on one HTTP/2 connection all receive every event, in order', async () => {
    const topic = uniqueTopic('h2.many');
    const readers = Array.from({ length: 20 }, () => client.sse(eventsPath(topic)));
    try {
      for (const headers of await Promise.all(readers.map((reader) => reader.opened))) {
        assert.equal(headers[':status'], 200);
        assert.equal(headers['content-type'], 'text/event-stream; charset=utf-8');
        assert.equal(headers['cache-control'], 'no-cache');
        assert.equal(headers.connection, undefined, 'HTTP/2 has no Connection header');
      }
      await waitFor(() => server().hub.subscriberCount(topic) === 20, 'the 20 subscriptions');
      const published: string[] = [];
      for (let n = 0; n < 5; n++) published.push(await client.publish(topic, { n }));
      await waitFor(
        () => readers.every((reader) => reader.events.length >= published.length),
        'every stream to receive the events',
      );
      for (const reader of readers) assert.deepEqual(reader.ids, published);
      assert.deepEqual(warnings, []);
    } finally {
      for (const reader of readers) reader.stream.close();
    }
  });

  test('a second producer of an open stream is refused over HTTP/2 without HTTP/1-only headers', async () => {
    const path = `/v1/streams/${uniqueTopic('h2-producer')}`;
    const plain = { 'content-type': 'text/plain' };
    const producer = client.session.request({ ':method': 'POST', ':path': path, ...plain });
    const producerClosed = closeOf(producer);
    producer.write('the first chunk');
    try {
      await eventually(
        async () => (await client.request('GET', path)).text.includes('"status":"open"'),
        'the stream to open',
      );
      const refused = await client.request('POST', path, 'a rival chunk', plain);
      assert.equal(refused.status, 409, refused.text);
      assert.equal(refused.headers.connection, undefined);
      assert.deepEqual(warnings, []);
    } finally {
      producer.end();
      producer.resume();
      await producerClosed;
    }
  });

  test('over HTTP/2 a stream resumes after Last-Event-ID, goes live, and gets heartbeats', async () => {
    const topic = uniqueTopic('h2.resume');
    const earlier: string[] = [];
    for (let n = 0; n < 4; n++) earlier.push(await client.publish(topic, { n }));
    const reader = client.sse(eventsPath(topic), { 'last-event-id': earlier[1] as string });
    try {
      await waitFor(() => reader.events.length === 2, 'the replay');
      await waitFor(() => server().hub.subscriberCount(topic) === 1, 'the subscription');
      const live = await client.publish(topic, { n: 4 });
      await waitFor(() => reader.events.length === 3, 'the live event');
      assert.deepEqual(reader.ids, [...earlier.slice(2), live]);
      await waitFor(() => reader.comments.includes('ping'), 'a heartbeat');
    } finally {
      reader.stream.close();
    }
  });

  test('a request head over MAX_HEADER_BYTES has its stream reset; the connection goes on', async () => {
    assert.equal(client.session.remoteSettings.maxHeaderListSize, 16_384);
    const oversized = client.session.request({ ':path': '/healthz', 'x-pad': 'a'.repeat(20_000) });
    const oversizedClosed = closeOf(oversized);
    oversized.resume();
    await oversizedClosed;
    assert.equal(oversized.rstCode, constants.NGHTTP2_ENHANCE_YOUR_CALM);
    assert.equal((await client.request('GET', '/healthz')).status, 200);
  });

  test('HTTP/1.1 over TLS (no ALPN) gets the same SSE stream on the same port', async () => {
    const topic = uniqueTopic('h2.http1');
    const response = await httpsGet(`${server().url}${eventsPath(topic)}`, {
      accept: 'text/event-stream',
    });
    try {
      assert.equal(response.httpVersion, '1.1');
      assert.equal(response.statusCode, 200);
      assert.equal(response.headers.connection, 'keep-alive');
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
      });
      await waitFor(() => server().hub.subscriberCount(topic) === 1, 'the subscription');
      const id = await client.publish(topic, 'over http/1.1');
      await waitFor(() => text.includes(`id: ${id}\n`), 'the event over HTTP/1.1');
    } finally {
      response.destroy();
    }
  });

  test('a WebSocket over wss:// subscribes, publishes and receives on the same port', async () => {
    const topic = uniqueTopic('h2.wss');
    const socket = new WebSocket(`${server().url.replace('https:', 'wss:')}/v1/ws`, {
      ca: certificate.ca,
    });
    const frames: { type: string; id?: string }[] = [];
    socket.on('message', (data) => frames.push(JSON.parse(String(data))));
    try {
      await once(socket, 'open');
      socket.send(JSON.stringify({ type: 'subscribe', topic }));
      await waitFor(() => frames.some((frame) => frame.type === 'subscribed'), 'subscribed');
      socket.send(JSON.stringify({ type: 'publish', topic, data: { over: 'wss' } }));
      await waitFor(() => frames.some((frame) => frame.type === 'event'), 'the event');
      const published = frames.find((frame) => frame.type === 'published');
      const event = frames.find((frame) => frame.type === 'event');
      assert.equal(event?.id, published?.id);
    } finally {
      socket.terminate();
    }
  });

  describe('in headless Chromium', () => {
    let browser: Browser;
    before(async () => {
      browser = await launchChromium();
    });
    after(() => browser?.close());

    test('a page opens 12 EventSources to one origin and every one receives events', async () => {
      const topic = uniqueTopic('h2.browser');
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      try {
        const page = await context.newPage();
        await page.goto(`${server().url}/healthz`);
        const protocol = await page.evaluate(
          () =>
            (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming)
              .nextHopProtocol,
        );
        assert.equal(protocol, 'h2');
        // Over HTTP/1.1 a browser holds at most six connections per origin: the seventh
        // EventSource would never connect.
        await page.evaluate(
          ({ path, count }) => {
            const received: string[][] = [];
            Object.assign(window, { received });
            for (let i = 0; i < count; i++) {
              const ids: string[] = [];
              received.push(ids);
              new EventSource(path).onmessage = (event) => ids.push(event.lastEventId);
            }
          },
          { path: eventsPath(topic), count: 12 },
        );
        await waitFor(() => server().hub.subscriberCount(topic) === 12, 'all 12 to connect');
        const id = await client.publish(topic, { to: 'every tab' });
        await page.waitForFunction(
          (expected) =>
            (window as unknown as { received: string[][] }).received.every((ids) =>
              ids.includes(expected),
            ),
          id,
          { timeout: PATIENCE_MS },
        );
      } finally {
        await context.close();
      }
    });
  });
});

describe('HTTP/2 flow control as backpressure (SLOW_CONSUMER_MAX_BYTES=262144)', () => {
  const server = useServer({
    ...certificate.settings,
    SLOW_CONSUMER_MAX_BYTES: '262144',
    MAX_BODY_BYTES: '131072',
  });

  test('a stream whose reader stalls is reset; its sibling streams on the connection get everything', async () => {
    const topic = uniqueTopic('h2.stalled');
    const client = new H2Client(server().url, certificate.ca);
    try {
      // Never read: the client's window for this stream fills and the server's queue grows.
      const stalled = client.session.request({
        ':path': eventsPath(topic),
        accept: 'text/event-stream',
      });
      stalled.pause();
      const stalledClosed = closeOf(stalled);
      const siblings = [client.sse(eventsPath(topic)), client.sse(eventsPath(topic))];
      await waitFor(() => server().hub.subscriberCount(topic) === 3, 'the three subscriptions');
      const droppedBefore = slowConsumersDropped(await client.request('GET', '/metrics'));

      const payload = 'x'.repeat(50_000);
      const published: string[] = [];
      for (let n = 0; n < 40; n++) published.push(await client.publish(topic, payload));
      await waitFor(() => server().hub.subscriberCount(topic) === 2, 'the stalled stream to go');
      // Once it reads again, the stalled client finds its stream reset by the server.
      stalled.resume();
      await stalledClosed;
      assert.equal(stalled.rstCode, constants.NGHTTP2_CANCEL);

      // The connection lives on: the siblings got every event, and get more.
      published.push(await client.publish(topic, 'after the drop'));
      await waitFor(
        () => siblings.every((sibling) => sibling.events.length === published.length),
        'the siblings to receive everything',
      );
      for (const sibling of siblings) assert.deepEqual(sibling.ids, published);
      assert.equal(client.session.destroyed, false);
      const dropped = slowConsumersDropped(await client.request('GET', '/metrics'));
      assert.equal(dropped - droppedBefore, 1);
    } finally {
      client.close();
    }
  });

  test('a replay paces itself on the stream window: a reader that keeps up is never dropped', async () => {
    const topic = uniqueTopic('h2.replay');
    const client = new H2Client(server().url, certificate.ca);
    try {
      // Four times the bound of history, replayed at once to a reader that reads.
      const payload = 'x'.repeat(50_000);
      const published: string[] = [];
      for (let n = 0; n < 20; n++) published.push(await client.publish(topic, payload));
      const reader = client.sse(`${eventsPath(topic)}?from=start`);
      await waitFor(
        () => reader.events.length === published.length || reader.closed,
        'the replay to finish',
      );
      assert.deepEqual(reader.ids, published);
      assert.equal(reader.closed, false, 'the replaying stream was not dropped');
    } finally {
      client.close();
    }
  });
});

describe('a request body must arrive within REQUEST_TIMEOUT_MS, over HTTP/2 as over HTTP/1.1', () => {
  const server = useServer({ ...certificate.settings, REQUEST_TIMEOUT_MS: '1000' });

  test('an HTTP/2 stream whose body stalls or trickles is answered 408 and reset; the rest go on', async () => {
    const topic = uniqueTopic('h2.slow-body');
    const client = new H2Client(server().url, certificate.ca);
    let trickle: NodeJS.Timeout | undefined;
    try {
      const reader = client.sse(eventsPath(topic));
      await reader.opened;
      // A stream producer's body may take as long as its stream lasts (§9), over HTTP/2 too.
      const producerPath = `/v1/streams/${uniqueTopic('h2-slow-producer')}`;
      const producer = client.session.request({
        ':method': 'POST',
        ':path': producerPath,
        'content-type': 'text/plain',
      });
      const producerClosed = closeOf(producer);
      producer.write('the first chunk');
      const publishing = () =>
        client.session.request({
          ':method': 'POST',
          ':path': eventsPath(topic),
          'content-type': 'application/json',
          'content-length': '10000',
        });
      const stalled = publishing();
      stalled.write('{"data":');
      const trickling = publishing();
      trickle = setInterval(() => trickling.write(' '), 20);
      trickling.once('close', () => clearInterval(trickle));
      // The same limit over HTTP/1.1 on the same port.
      const http1 = https.request(`${server().url}${eventsPath(topic)}`, {
        method: 'POST',
        ca: certificate.ca,
        headers: { 'content-type': 'application/json', 'content-length': '10000' },
      });
      let http1Status: number | undefined;
      http1.on('response', (response) => {
        http1Status = response.statusCode;
        response.resume();
      });
      http1.on('error', () => {}); // the server closes the connection after its answer
      http1.write('{"data":');
      const answers = [answerOf(stalled), answerOf(trickling)];
      await waitFor(
        () => stalled.closed && trickling.closed && http1Status !== undefined,
        'the slow requests to be answered',
      );
      for (const answer of answers) {
        assert.equal(answer.status, 408);
        assert.equal(JSON.parse(answer.text).error.code, 'request_timeout');
      }
      assert.equal(http1Status, 408);

      // The producer, older than both, is still streaming; the connection and the reader too.
      producer.write('the second chunk');
      await eventually(
        async () => (await client.request('GET', producerPath)).text.includes('"status":"open"'),
        'the producer to be open still',
      );
      assert.equal(producer.closed, false);
      const id = await client.publish(topic, 'after the timeouts');
      await waitFor(() => reader.ids.includes(id), 'the reader to receive the next event');
      assert.equal(client.session.destroyed, false);
      producer.end();
      producer.resume();
      await producerClosed;
    } finally {
      clearInterval(trickle);
      client.close();
    }
  });
});

test('shutdown sends GOAWAY: HTTP/2 streams end and the connection closes within the grace period', async () => {
  const server = await startTestServer(certificate.settings);
  const client = new H2Client(server.url, certificate.ca);
  try {
    const readers = [client.sse(eventsPath('h2.shutdown')), client.sse(eventsPath('h2.shutdown'))];
    await Promise.all(readers.map((reader) => reader.opened));
    const goaway = once(client.session, 'goaway');
    const sessionClosed = once(client.session, 'close');
    assert.equal(await server.shutdown(), true, 'shutdown finished within its grace period');
    await goaway;
    await sessionClosed;
    assert.ok(readers.every((reader) => reader.closed));
  } finally {
    client.close();
    await server.shutdown();
  }
});

/** What the server answers on a request stream, filled in as it arrives. */
function answerOf(stream: ClientHttp2Stream): { status?: number; text: string } {
  const answer: { status?: number; text: string } = { text: '' };
  stream.on('error', () => {}); // the server's reset after its answer
  stream.once('response', (headers) => {
    answer.status = Number(headers[':status']);
  });
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    answer.text += chunk;
  });
  return answer;
}

/** Resolves when a stream closes, reset or not (`once` would reject on the reset's error). */
function closeOf(stream: ClientHttp2Stream): Promise<void> {
  stream.on('error', () => {});
  return new Promise((resolve) => stream.once('close', resolve));
}

function slowConsumersDropped(metrics: H2Response): number {
  const labels = { transport: 'sse' };
  return metricValue(metrics.text, 'streamhub_slow_consumers_dropped_total', labels) ?? 0;
}

function httpsGet(url: string, headers: Record<string, string>): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    https.get(url, { ca: certificate.ca, headers }, resolve).on('error', reject);
  });
}
