/**
 * Scale-out (issue 4): three streamhub processes on one Redis (or a Redis Cluster, issue 14),
 * with real clients. Topics
 * published on one process reach subscribers on the others; resume ids, history, topic info,
 * idempotency keys and deletion mean the same on every process; a chat reply generated on one
 * process is resumed, taken over and cancelled through the others; a generator that dies is
 * reported, not waited for; readiness follows Redis.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { EventSource } from 'eventsource';
import { parseId } from '../../src/core/ids.js';
import {
  closedWithin,
  deltaCount,
  deltaText,
  lastMessage,
  promptFor,
  sessionView,
} from '../helpers/chat-sessions.js';
import type { RedisCluster, RedisServers } from '../helpers/cluster.js';
import {
  allHistoryIds,
  assertApiError,
  eventually,
  getJson,
  type HttpResult,
  historyPage,
  postRaw,
  request,
  uniqueTopic,
} from '../helpers/http.js';
import { PATIENCE_MS } from '../helpers/patience.js';
import { publish, waitFor } from '../helpers/server.js';
import { RawSseClient } from '../helpers/sse-client.js';
import { WsClientPool, wsUrl } from '../helpers/ws-client.js';

/**
 * Renewed every third of it: a generating process would have to stall for two seconds to be
 * taken for lost, more than a loaded machine makes it wait.
 */
const LEASE_MS = 3000;

/** The settings of the three processes, beside the backend's. */
export const SCALE_OUT_SETTINGS: Readonly<Record<string, string>> = {
  HEARTBEAT_MS: '1000',
  MOCK_TOKENS_PER_SEC: '20',
  SESSION_LEASE_MS: String(LEASE_MS),
  // Today's behaviour, `generator_lost`; continuing the reply is test/sessions/failover.test.ts's.
  SESSION_FAILOVER: 'end',
  SHUTDOWN_GRACE_MS: '1000',
};

/** The processes and their Redis, set by `scaleOutTests` before any test runs. */
let setup: () => RedisCluster<RedisServers> = () => {
  throw new Error('scaleOutTests was not called');
};
/** The three processes' base URLs: A, B, C. */
const urls = () => setup().cluster.urls as [string, string, string];

const pool = new WsClientPool();
const closers: (() => void)[] = [];

/** Every open client is closed after each test, whatever happened. */
function closing<T extends { close(): void }>(client: T): T {
  closers.push(() => client.close());
  return client;
}

/** An `eventsource` (the package browsers' polyfills build on) recording what it receives. */
function browser(url: string) {
  const source = closing(new EventSource(url));
  const received: { id: string; n: unknown }[] = [];
  const resets: unknown[] = [];
  source.addEventListener('message', (event) =>
    received.push({ id: event.lastEventId, n: (JSON.parse(event.data) as { n?: unknown }).n }),
  );
  source.addEventListener('reset', (event) => resets.push(JSON.parse(event.data)));
  return { received, resets, ids: () => received.map((event) => event.id) };
}

function sse(url: string, headers: Record<string, string> = {}, body?: unknown): RawSseClient {
  return closing(new RawSseClient(url, headers, body));
}

interface TopicInfo {
  readonly topic: string;
  readonly last_id: string | null;
  readonly length: number;
  readonly subscribers: number;
}

function topicInfo(url: string, topic: string): Promise<TopicInfo> {
  return getJson(`${url}/v1/topics/${topic}`);
}

/** Waits until process `url` counts `count` subscriptions of `topic`. */
function untilSubscribers(url: string, topic: string, count: number): Promise<void> {
  return eventually(
    async () => (await topicInfo(url, topic)).subscribers === count,
    `${count} subscribers of ${topic} at ${url}`,
    PATIENCE_MS,
  );
}

/** Publishes `{n}` for each n of `ns`, one after the other, the i-th on `on(i)`. */
async function publishEach(
  ns: readonly number[],
  topic: string,
  on: (i: number) => string,
): Promise<string[]> {
  const ids: string[] = [];
  for (const [i, n] of ns.entries()) ids.push((await publish(on(i), topic, { n })).id);
  return ids;
}

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);

/**
 * The scale-out tests on three processes that `use` started (with `SCALE_OUT_SETTINGS`) on one
 * Redis or on a Redis Cluster: every guarantee must hold on both.
 */
export function scaleOutTests(use: () => RedisCluster<RedisServers>): void {
  setup = use;
  afterEach(() => {
    pool.closeAll();
    for (const close of closers.splice(0)) close();
  });

  describe('topics across processes', () => {
    test('events published on A reach SSE and WebSocket subscribers on B and C once, in order, with the same ids', {
      timeout: 60_000,
    }, async () => {
      const [a, b, c] = urls();
      const topic = uniqueTopic('scale.fanout');
      const total = 300;
      // Subscribers resume after a marker: whether their subscription is live yet or not when
      // publishing starts, they must get exactly what follows it.
      const marker = await publish(a, topic, 'marker');
      const after = `last_event_id=${encodeURIComponent(marker.id)}`;
      const onB = browser(`${b}/v1/topics/${topic}/events?${after}`);
      const onC = browser(`${c}/v1/topics/${topic}/events?${after}`);
      const wsOnC = await pool.connect(wsUrl(c, `/v1/topics/${topic}/ws?${after}`));
      const muxOnB = await pool.connect(wsUrl(b, '/v1/ws'));
      await muxOnB.subscribe(topic, { last_event_id: marker.id });
      await untilSubscribers(b, topic, 2);
      await untilSubscribers(c, topic, 2);

      const published = await publishEach(range(0, total), topic, () => a);
      // A last event after all others have arrived: anything delivered twice, late, shows up
      // before it.
      const counts = () => [onB.received.length, onC.received.length];
      const wsCounts = () => [wsOnC.eventCount(topic), muxOnB.eventCount(topic)];
      await waitFor(
        () => [...counts(), ...wsCounts()].every((count) => count >= total),
        `${total} events everywhere`,
        PATIENCE_MS,
      ).catch((error: Error) => assert.fail(`${error.message}: ${[...counts(), ...wsCounts()]}`));
      const sentinel = await publish(c, topic, { n: total });
      const expected = [...published, sentinel.id];
      await waitFor(
        () => [...counts(), ...wsCounts()].every((count) => count >= total + 1),
        'the sentinel everywhere',
        PATIENCE_MS,
      );

      assert.deepEqual(await allHistoryIds(b, topic), [marker.id, ...expected]);
      assert.deepEqual(onB.ids(), expected, 'EventSource on B');
      assert.deepEqual(onC.ids(), expected, 'EventSource on C');
      assert.deepEqual(wsOnC.ids(topic), expected, 'per-topic WebSocket on C');
      assert.deepEqual(muxOnB.ids(topic), expected, 'multiplexed WebSocket on B');
      const ns = range(0, total + 1);
      assert.deepEqual(
        onC.received.map((event) => event.n),
        ns,
      );
      assert.deepEqual(
        wsOnC.events(topic).map((event) => (event.data as { n: number }).n),
        ns,
      );
      assert.deepEqual([...onB.resets, ...onC.resets], []);
      assert.deepEqual([...wsOnC.framesOfType('reset'), ...muxOnB.framesOfType('reset')], []);
    });

    test('a Last-Event-ID received from B resumes on C with exactly the remaining events', async () => {
      const [a, b, c] = urls();
      const topic = uniqueTopic('scale.resume');
      const onB = sse(`${b}/v1/topics/${topic}/events?from=start`);
      await onB.opened;
      const published = await publishEach(range(0, 50), topic, (i) => urls()[i % 3] as string);
      await waitFor(() => onB.events.length === 50, '50 events on B', PATIENCE_MS);
      assert.deepEqual(
        onB.events.map((event) => event.id),
        published,
      );

      const cursor = onB.events[19]?.id as string;
      const onC = sse(`${c}/v1/topics/${topic}/events`, { 'last-event-id': cursor });
      await waitFor(() => onC.events.length === 30, 'the 30 remaining events on C', PATIENCE_MS);
      await untilSubscribers(c, topic, 1);
      // Then live, published elsewhere.
      const live = await publishEach(range(50, 5), topic, () => a);
      await waitFor(() => onC.events.length >= 35, 'the live events on C', PATIENCE_MS);
      const sentinel = await publish(b, topic, { n: 55 });
      await waitFor(() => onC.events.length >= 36, 'the sentinel on C', PATIENCE_MS);
      assert.deepEqual(
        onC.events.map((event) => event.id),
        [...published.slice(20), ...live, sentinel.id],
      );
      assert.deepEqual(
        onC.events.map((event) => (JSON.parse(event.data) as { n: number }).n),
        range(20, 36),
      );
      assert.equal(
        onC.messages.find((message) => message.event === 'reset'),
        undefined,
      );
    });

    test('history pages and topic info agree on every process', async () => {
      const [a, b, c] = urls();
      const topic = uniqueTopic('scale.history');
      const published = await publishEach(range(0, 30), topic, (i) => urls()[i % 3] as string);
      const pages = await Promise.all(urls().map((url) => historyPage(url, topic, 'limit=1000')));
      for (const page of pages) assert.deepEqual(page, pages[0]);
      assert.deepEqual(
        pages[0]?.events.map((event) => [event.id, event.data]),
        published.map((id, n) => [id, { n }]),
      );
      assert.equal(pages[0]?.next, null);
      const middle = await historyPage(
        c,
        topic,
        `after=${encodeURIComponent(published[9] ?? '')}&limit=10`,
      );
      assert.deepEqual(
        middle.events.map((event) => event.id),
        published.slice(10, 20),
      );
      assert.equal(middle.next, published[19]);

      const infos = await Promise.all([a, b, c].map((url) => topicInfo(url, topic)));
      for (const info of infos) {
        assert.deepEqual(info, { topic, last_id: published[29], length: 30, subscribers: 0 });
      }
    });

    test('an Idempotency-Key publish retried on another process answers 200 with the original id and appends nothing', async () => {
      const [a, b, c] = urls();
      const topic = uniqueTopic('scale.idempotent');
      const body = JSON.stringify({ data: { order: 42 }, event: 'order' });
      const send = (url: string, key: string): Promise<HttpResult> =>
        postRaw(url, topic, body, { 'content-type': 'application/json', 'idempotency-key': key });

      const first = await send(a, 'order-42');
      assert.equal(first.status, 201, first.text);
      const retries = [await send(b, 'order-42'), await send(c, 'order-42')];
      for (const retry of retries) {
        assert.equal(retry.status, 200, retry.text);
        assert.deepEqual(retry.json, first.json);
      }
      const other = await send(b, 'order-43');
      assert.equal(other.status, 201, other.text);
      const firstId = (first.json as { id: string }).id;
      const otherId = (other.json as { id: string }).id;
      assert.notEqual(otherId, firstId);
      for (const url of [a, b, c]) {
        assert.deepEqual(await allHistoryIds(url, topic), [firstId, otherId]);
      }
    });

    test('DELETE on B starts a new epoch that subscribers on A and C see as a reset', {
      timeout: 60_000,
    }, async () => {
      const [a, b, c] = urls();
      const topic = uniqueTopic('scale.delete');
      const old = await publishEach(range(0, 3), topic, () => a);
      const onA = browser(`${a}/v1/topics/${topic}/events?from=start`);
      const wsOnC = await pool.connect(wsUrl(c, `/v1/topics/${topic}/ws?from=start`));
      await waitFor(
        () => onA.received.length === 3 && wsOnC.eventCount(topic) === 3,
        'the first epoch on A and C',
        PATIENCE_MS,
      );
      await untilSubscribers(a, topic, 1);
      await untilSubscribers(c, topic, 1);

      const deleted = await request(`${b}/v1/topics/${topic}`, { method: 'DELETE' });
      assert.equal(deleted.status, 204, deleted.text);
      assert.deepEqual(await topicInfo(c, topic), {
        topic,
        last_id: null,
        length: 0,
        subscribers: 1,
      });
      const fresh = await publishEach(range(3, 3), topic, () => b);
      const oldEpoch = parseId(old[0] as string)?.epoch;
      assert.ok(oldEpoch);
      assert.notEqual(parseId(fresh[0] as string)?.epoch, oldEpoch, 'a new epoch');
      assert.equal(parseId(fresh[0] as string)?.seq, 1);

      const reset = { reason: 'epoch_mismatch', oldest: fresh[0] };
      await waitFor(() => onA.received.length >= 6, 'the new epoch on A', PATIENCE_MS);
      assert.deepEqual(onA.ids(), [...old, ...fresh]);
      assert.deepEqual(onA.resets, [reset]);
      await wsOnC.waitForEvents(topic, 6, PATIENCE_MS);
      assert.deepEqual(wsOnC.ids(topic), [...old, ...fresh]);
      const kinds = wsOnC.frames.map((frame) => frame.type);
      assert.deepEqual(kinds, ['event', 'event', 'event', 'reset', 'event', 'event', 'event']);
      assert.deepEqual(wsOnC.framesOfType('reset'), [{ type: 'reset', topic, ...reset }]);

      // A client that was away resumes with an id of the old epoch, on yet another process.
      const late = sse(`${c}/v1/topics/${topic}/events`, { 'last-event-id': old[2] as string });
      await waitFor(() => late.events.length === 3, 'the new epoch for a late client', PATIENCE_MS);
      assert.deepEqual(late.messages[0], {
        id: undefined,
        event: 'reset',
        data: JSON.stringify(reset),
      });
      assert.deepEqual(
        late.events.map((event) => event.id),
        fresh,
      );
    });
  });

  // ---------------------------------------------------------------------------------------------
  // Chat sessions (docs/api.md §4) across processes.

  let sessionCounter = 0;
  const newSessionId = () => `scale-${process.pid}-${++sessionCounter}`;

  function chat(url: string, body: Record<string, unknown>): RawSseClient {
    return sse(`${url}/v1/chat`, {}, body);
  }

  describe('chat sessions across processes', () => {
    test('a reply generated on A is resumed on B (A is superseded) and cancelled through C', {
      timeout: 60_000,
    }, async () => {
      const [a, b, c] = urls();
      const id = newSessionId();
      const { content, reply } = promptFor(70);
      const onA = chat(a, { session_id: id, content });
      await waitFor(() => deltaCount(onA) >= 3, 'a few deltas on A', PATIENCE_MS);
      assert.equal(onA.status, 200);
      // Every process knows the session is busy, and shows the reply so far.
      const busy = await request(`${c}/v1/chat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ session_id: id, content: 'me too' }),
      });
      assertApiError(busy, 409, 'session_busy');
      const generating = await sessionView(b, id);
      assert.equal(generating.status, 'generating');
      assert.equal(generating.messages.length, 2, JSON.stringify(generating.messages));
      const partial = generating.messages[1];
      assert.equal(partial?.role, 'assistant');
      assert.ok(partial.content !== '' && reply.startsWith(partial.content), partial.content);
      const seen = [...onA.events];
      const cursor = seen[seen.length - 1]?.id;

      const onB = sse(`${b}/v1/chat/resume`, {}, { session_id: id, last_event_id: cursor });
      await closedWithin(onA, 'A superseded by the stream on B');
      assert.deepEqual(lastMessage(onA), {
        id: undefined,
        event: 'abort',
        data: JSON.stringify({ reason: 'superseded' }),
      });
      await waitFor(() => deltaCount(onB) >= 5, 'deltas on B', PATIENCE_MS);
      // What A got after the cursor is what B starts with: the same log.
      const overlap = onA.events.slice(seen.length);
      assert.deepEqual(onB.events.slice(0, overlap.length), overlap);

      const cancel = await request(`${c}/v1/sessions/${id}/cancel`, { method: 'POST' });
      assert.equal(cancel.status, 202, cancel.text);
      await closedWithin(onB, 'B ended after the cancel through C');
      const end = lastMessage(onB);
      assert.equal(end?.event, 'abort');
      assert.ok(end?.id, 'the cancel is stored, with an id');
      assert.deepEqual(JSON.parse(end?.data ?? ''), { reason: 'cancelled' });

      const all = [...seen, ...onB.messages];
      assert.equal(all[0]?.event, 'start');
      assert.equal(new Set(all.map((message) => message.id)).size, all.length, 'no event twice');
      const text = deltaText(all);
      assert.ok(text.length > 0 && text.length < reply.length, `a partial reply: ${text}`);
      assert.ok(reply.startsWith(text), `no gap and no repeat: "${text}" vs "${reply}"`);

      for (const url of [a, b, c]) {
        await eventually(
          async () => (await sessionView(url, id)).status === 'idle',
          `session idle on ${url}`,
          PATIENCE_MS,
        );
        assert.deepEqual((await sessionView(url, id)).messages, [
          { role: 'user', content },
          { role: 'assistant', content: text },
        ]);
      }
      // A later resume of the cancelled reply, anywhere, ends with the stored abort too.
      const later = sse(`${a}/v1/sessions/${id}/stream`, { 'last-event-id': cursor ?? '' });
      await closedWithin(later, 'the resume of the cancelled reply');
      assert.deepEqual(later.events, onB.events);
    });

    test('a generator killed mid-reply is reported to viewers elsewhere as generator_lost, and the session goes on', {
      timeout: 60_000,
    }, async (t) => {
      const { cluster } = setup();
      const [a, b, c] = urls();
      const id = newSessionId();
      const { content } = promptFor(70);
      const onA = chat(a, { session_id: id, content });
      await waitFor(() => deltaCount(onA) >= 2, 'the reply to start on A', PATIENCE_MS);
      const viewer = sse(`${b}/v1/sessions/${id}/stream`);
      await waitFor(() => deltaCount(viewer) >= 4, 'deltas on B', PATIENCE_MS);
      try {
        await cluster.kill(0, 'SIGKILL');
        const killedAt = Date.now();
        const cursor = viewer.events[viewer.events.length - 1]?.id;
        await closedWithin(viewer, 'the viewer on B ended', 5 * LEASE_MS + 5000);
        const elapsed = Date.now() - killedAt;
        const end = lastMessage(viewer);
        assert.equal(end?.event, 'error', JSON.stringify(viewer.messages.slice(-3)));
        assert.ok(end?.id, 'the error is stored, with an id');
        assert.equal((JSON.parse(end?.data ?? '') as { code: string }).code, 'generator_lost');
        t.diagnostic(`generator_lost ${elapsed} ms after the kill, with a ${LEASE_MS} ms lease`);
        assert.ok(elapsed < 5 * LEASE_MS + 3000, `generator_lost after ${elapsed} ms`);
        const ids = viewer.events.map((event) => event.id);
        assert.equal(new Set(ids).size, ids.length, 'no event twice');

        // The lost reply ends the same way for anyone resuming it, on another process.
        const resumed = sse(`${c}/v1/sessions/${id}/stream`, { 'last-event-id': cursor ?? '' });
        await closedWithin(resumed, 'the resume of the lost reply');
        assert.deepEqual(
          resumed.events,
          viewer.events.slice(viewer.events.findIndex((e) => e.id === cursor) + 1),
        );

        await eventually(
          async () => (await sessionView(b, id)).status === 'idle',
          'the session idle after the loss',
          PATIENCE_MS,
        );
        const next = chat(b, { session_id: id, content: 'are you still there?', max_tokens: 3 });
        await closedWithin(next, 'the next turn on B');
        assert.equal(next.status, 200, next.raw);
        assert.deepEqual(
          next.messages.map((message) => message.event),
          ['start', 'delta', 'delta', 'delta', 'done'],
        );
        assert.equal((JSON.parse(next.messages[0]?.data ?? '') as { turn: number }).turn, 2);
        const view = await sessionView(c, id);
        assert.equal(view.status, 'idle');
        assert.deepEqual(view.messages[0], { role: 'user', content });
        assert.deepEqual(view.messages.slice(-2), [
          { role: 'user', content: 'are you still there?' },
          { role: 'assistant', content: deltaText(next.messages) },
        ]);
      } finally {
        await cluster.restart(0);
      }
    });

    test('a generator frozen longer than its lease cannot add to its reply once it is reported lost', {
      timeout: 60_000,
    }, async () => {
      // A long GC pause, a frozen VM or a throttled container: the process comes back, its
      // timers fire, and whatever it does then must not reopen a reply that was ended.
      const { cluster } = setup();
      const [a, b, c] = urls();
      const id = newSessionId();
      const onA = chat(a, { session_id: id, content: promptFor(70).content });
      await waitFor(() => deltaCount(onA) >= 2, 'the reply to start on A', PATIENCE_MS);
      const viewer = sse(`${b}/v1/sessions/${id}/stream`);
      await waitFor(() => deltaCount(viewer) >= 4, 'deltas on B', PATIENCE_MS);
      cluster.signal(0, 'SIGSTOP');
      try {
        await closedWithin(viewer, 'the viewer on B ended', 5 * LEASE_MS + 5000);
      } finally {
        cluster.signal(0, 'SIGCONT');
      }
      const end = lastMessage(viewer);
      assert.equal(end?.event, 'error');
      assert.equal((JSON.parse(end?.data ?? '') as { code: string }).code, 'generator_lost');
      // A wakes up with an overdue token and lease renewal; once its generation has given up,
      // nothing more can come from it.
      const generations = async () =>
        ((await request(`${a}/v1/stats`)).json as { generations: number }).generations;
      await eventually(async () => (await generations()) === 0, 'the generation on A to stop');

      const replay = sse(`${c}/v1/sessions/${id}/stream`);
      await closedWithin(replay, 'a replay of the lost reply');
      assert.deepEqual(replay.events, viewer.events, 'the reply ends where it was reported lost');
      assert.equal((await sessionView(c, id)).status, 'idle');
    });

    test("the client of a frozen generator, fed by its writer, gets the reply's end from the log", {
      timeout: 60_000,
    }, async () => {
      // Nobody else watches: the client that began the turn reads it from its writer until the
      // writer gives up, then from the log, where another process recorded the reply as lost.
      const { cluster } = setup();
      const [a, , c] = urls();
      const id = newSessionId();
      const onA = chat(a, { session_id: id, content: promptFor(70).content });
      await waitFor(() => deltaCount(onA) >= 4, 'the reply to start on A', PATIENCE_MS);
      cluster.signal(0, 'SIGSTOP');
      try {
        const lost = async () => (await sessionView(c, id)).status === 'idle';
        await eventually(lost, 'the turn to be ended as lost elsewhere', 5 * LEASE_MS + 5000);
      } finally {
        cluster.signal(0, 'SIGCONT');
      }
      await closedWithin(onA, 'the stream on A, once its writer gave up');
      const end = lastMessage(onA);
      assert.equal(end?.event, 'error');
      assert.equal((JSON.parse(end?.data ?? '') as { code: string }).code, 'generator_lost');
      const replay = sse(`${c}/v1/sessions/${id}/stream`);
      await closedWithin(replay, 'a replay of the lost reply');
      assert.deepEqual(onA.events, replay.events, 'every event once, in order');
    });
  });

  describe('completions across processes', () => {
    test('a streamed completion whose generator was killed ends with generator_lost when resumed elsewhere', {
      timeout: 60_000,
    }, async () => {
      const { cluster } = setup();
      const [a, b] = urls();
      const onA = sse(
        `${a}/v1/chat/completions`,
        {},
        {
          model: 'streamhub-mock',
          stream: true,
          messages: [{ role: 'user', content: promptFor(70).content }],
        },
      );
      await waitFor(() => onA.events.length >= 4, 'chunks on A', PATIENCE_MS);
      const id = onA.headers['x-stream-id'];
      assert.ok(typeof id === 'string' && id.startsWith('chatcmpl-'), String(id));
      try {
        await cluster.kill(0, 'SIGKILL');
        const cursor = onA.events[onA.events.length - 1]?.id ?? '';
        const resumed = sse(`${b}/v1/chat/completions/${id}/stream`, { 'last-event-id': cursor });
        await closedWithin(resumed, 'the resumed completion ended', 15_000);
        const last = lastMessage(resumed);
        assert.match(
          last?.data ?? '',
          /generator_lost/,
          JSON.stringify(resumed.messages.slice(-2)),
        );
        assert.ok(!resumed.messages.some((message) => message.data === '[DONE]'), 'not complete');
      } finally {
        await cluster.restart(0);
      }
    });
  });

  describe('readiness follows Redis', () => {
    test('/readyz is 503 and publishing fails fast with 503 while Redis is down; both recover after it restarts', {
      timeout: 60_000,
    }, async () => {
      const { redis } = setup();
      const topic = uniqueTopic('scale.ready');
      const ready = async (url: string) => (await request(`${url}/readyz`)).status;
      for (const url of urls()) assert.equal(await ready(url), 200);
      assert.equal((await publish(urls()[0], topic, 'before')).topic, topic);

      await redis.halt();
      try {
        await Promise.all(
          urls().map(async (url) => {
            await eventually(async () => (await ready(url)) === 503, `503 from ${url}/readyz`);
            const started = Date.now();
            const refused = await postRaw(url, topic, JSON.stringify({ data: 'while down' }));
            const elapsed = Date.now() - started;
            assertApiError(refused, 503);
            // At most ~1 s waiting for a reconnect, well before the 5 s command timeout that a
            // queued, hanging command would run into.
            assert.ok(elapsed < 4000, `publish on ${url} failed after ${elapsed} ms, not fast`);
          }),
        );
      } finally {
        await redis.start();
      }
      await Promise.all(
        urls().map(async (url) => {
          await eventually(async () => (await ready(url)) === 200, `200 from ${url}/readyz`);
          const published = await postRaw(url, topic, JSON.stringify({ data: 'after' }));
          assert.equal(published.status, 201, published.text);
        }),
      );
    });
  });
}
