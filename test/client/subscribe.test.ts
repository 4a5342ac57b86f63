import assert from 'node:assert/strict';
import { after, before, describe, type TestContext, test } from 'node:test';
import { WebSocket } from 'ws';
import {
  StreamhubClientError,
  type SubscribeOptions,
  type Subscription,
  type WebSocketConstructor,
} from '../../src/client/index.js';
import type { RunningServer } from '../../src/server/server.js';
import { publish, startTestServer, waitFor } from '../helpers/server.js';
import {
  downPort,
  PATIENCE_MS,
  Recorder,
  StreamTap,
  startSilentServer,
  TRANSPORTS,
  uniqueTopic,
} from './harness.js';

/** Small history for resets, fast heartbeats for keep-alive. */
const SMALL_HISTORY = 3;
const HEARTBEAT_MS = 50;

let server: RunningServer;
let small: RunningServer;
let tap: StreamTap;

before(async () => {
  server = await startTestServer();
  small = await startTestServer({
    HISTORY_MAX_EVENTS: String(SMALL_HISTORY),
    HEARTBEAT_MS: String(HEARTBEAT_MS),
  });
  tap = new StreamTap(server);
});
after(() => Promise.all([server.shutdown(), small.shutdown()]));

async function publishAll(topic: string, values: readonly unknown[], on = server) {
  const ids: string[] = [];
  for (const data of values) ids.push((await publish(on.url, topic, data)).id);
  return ids;
}

function until(predicate: () => boolean, what: string): Promise<void> {
  return waitFor(predicate, what, PATIENCE_MS);
}

test('a base URL that is not http(s) is refused at once', () => {
  for (const transport of TRANSPORTS) {
    assert.throws(
      () => transport.subscribe('ws://127.0.0.1:1', 'topic', new Recorder().options()),
      TypeError,
    );
  }
});

test('the ws package and the browser WebSocket both fit WebSocketConstructor', () => {
  const constructors: WebSocketConstructor[] = [WebSocket, globalThis.WebSocket];
  assert.equal(constructors.length, 2);
});

for (const transport of TRANSPORTS) {
  describe(`subscription over ${transport.name}`, () => {
    /** Subscribes, closes at the end of the test, and waits until the server delivers to it. */
    async function open(
      t: TestContext,
      topic: string,
      recorder: Recorder,
      options: Partial<SubscribeOptions> = {},
      on = server,
    ): Promise<Subscription> {
      const subscription = transport.subscribe(on.url, topic, recorder.options(options));
      t.after(() => subscription.close());
      await until(() => on.hub.subscriberCount(topic) === 1, `subscription to ${topic}`);
      return subscription;
    }

    test('is live by default and delivers events in order with ids and parsed data', async (t) => {
      const topic = uniqueTopic();
      await publishAll(topic, ['before subscribing']);
      const recorder = new Recorder();
      const subscription = await open(t, topic, recorder);
      const values = [{ n: 1 }, 'two\nlines', 42, null, [1, { text: 'é😀' }], true];
      const ids = await publishAll(topic, values);
      await until(() => recorder.events.length >= values.length, 'events');
      assert.deepEqual(
        recorder.events,
        values.map((data, index) => ({ id: ids[index], event: 'message', data })),
      );
      assert.equal(subscription.lastEventId, ids.at(-1));
      assert.equal(subscription.state, 'open');
      assert.deepEqual(recorder.resets, []);
    });

    test('passes event types through; an event named reset is an event', async (t) => {
      const topic = uniqueTopic();
      const recorder = new Recorder();
      await open(t, topic, recorder);
      await publish(server.url, topic, 1, { event: 'order.created' });
      await publish(server.url, topic, 2, { event: 'reset' });
      await until(() => recorder.events.length >= 2, 'events');
      assert.deepEqual(
        recorder.events.map(({ event, data }) => [event, data]),
        [
          ['order.created', 1],
          ['reset', 2],
        ],
      );
      assert.deepEqual(recorder.resets, []);
    });

    test('fromStart replays the retained history, then continues live', async (t) => {
      const topic = uniqueTopic();
      const ids = await publishAll(topic, ['a', 'b']);
      const recorder = new Recorder();
      await open(t, topic, recorder, { fromStart: true });
      ids.push(...(await publishAll(topic, ['c'])));
      await until(() => recorder.events.length >= 3, 'events');
      assert.deepEqual(recorder.ids, ids);
      assert.deepEqual(recorder.data, ['a', 'b', 'c']);
    });

    test('lastEventId resumes right after that event', async (t) => {
      const topic = uniqueTopic();
      const ids = await publishAll(topic, ['a', 'b', 'c']);
      const recorder = new Recorder();
      await open(t, topic, recorder, { lastEventId: ids[0], fromStart: true });
      await until(() => recorder.events.length >= 2, 'events');
      assert.deepEqual(recorder.data, ['b', 'c']);
    });

    test('a live subscription dropped before its first event misses nothing', async (t) => {
      const topic = uniqueTopic();
      await publishAll(topic, ['old']);
      const recorder = new Recorder();
      // A slow reconnect leaves time to publish while the subscriber is away.
      await open(t, topic, recorder, { retryMs: 300 });
      server.connections.shutdownAll();
      await until(() => recorder.count('reconnecting') >= 1, 'disconnection');
      await publishAll(topic, ['while away']);
      await until(() => recorder.events.length >= 1, 'the event published while away');
      await publishAll(topic, ['after']);
      await until(() => recorder.events.length >= 2, 'the next event');
      assert.deepEqual(recorder.data, ['while away', 'after']);
    });

    test('reconnects while 1,000 events flow and delivers exactly the published sequence', async (t) => {
      const topic = uniqueTopic();
      const recorder = new Recorder();
      const subscription = await open(t, topic, recorder);
      const ids: string[] = [];
      let socketsCut = 0;
      let drops = 0;
      for (let n = 0; n < 1000; n++) {
        if (n > 0 && n % 125 === 0) {
          // Each drop hits a connection that is back, however slow the reconnect, and is
          // noticed before the next: on a busy machine two drops could otherwise make one.
          await until(() => subscription.state === 'open', 'the subscription to be back');
          await until(() => server.hub.subscriberCount(topic) === 1, 'the server to deliver');
          // Alternate a clean end of every stream with an abrupt cut of the sockets.
          if (n % 250 === 0) server.connections.shutdownAll();
          else socketsCut += tap.destroyAll();
          drops++;
          await until(() => recorder.count('reconnecting') >= drops, 'the drop to be noticed');
        }
        ids.push((await publish(server.url, topic, n)).id);
      }
      // A last event, so that a duplicate of any earlier one would arrive before it.
      ids.push((await publish(server.url, topic, 'end')).id);
      await until(() => recorder.events.at(-1)?.data === 'end', 'all events');
      assert.deepEqual(recorder.ids, ids);
      assert.deepEqual(recorder.data.slice(0, -1), [...Array(1000).keys()]);
      assert.ok(socketsCut >= 1, 'no socket was cut');
      assert.deepEqual(recorder.errors, []);
    });

    test('a reset is passed to onReset before the retained events are replayed', async (t) => {
      const topic = uniqueTopic();
      const ids = await publishAll(topic, ['a', 'b', 'c', 'd', 'e'], small);
      const recorder = new Recorder();
      let eventsBeforeReset = -1;
      await open(
        t,
        topic,
        recorder,
        {
          lastEventId: ids[0],
          onReset: (notice) => {
            eventsBeforeReset = recorder.events.length;
            recorder.resets.push(notice);
          },
        },
        small,
      );
      await until(() => recorder.events.length >= SMALL_HISTORY, 'replayed events');
      assert.deepEqual(recorder.resets, [{ reason: 'history_truncated', oldest: ids[2] }]);
      assert.equal(eventsBeforeReset, 0);
      assert.deepEqual(recorder.data, ['c', 'd', 'e']);
    });

    test('an id the server never issued is reset as unknown_id', async (t) => {
      const topic = uniqueTopic();
      const ids = await publishAll(topic, ['a'], small);
      const recorder = new Recorder();
      await open(t, topic, recorder, { lastEventId: 'not-an-id' }, small);
      await until(() => recorder.events.length >= 1, 'replayed event');
      assert.deepEqual(recorder.resets, [{ reason: 'unknown_id', oldest: ids[0] }]);
    });

    for (const start of [{ fromStart: true }, {}]) {
      test(`a 4xx answer stops the subscription with a typed error (${JSON.stringify(start)})`, async () => {
        const recorder = new Recorder();
        const subscription = transport.subscribe(
          server.url,
          'not a valid topic!',
          recorder.options(start),
        );
        await assert.rejects(subscription.closed, (error: unknown) => {
          assert.ok(error instanceof StreamhubClientError);
          assert.equal(error.status, 400);
          assert.equal(error.code, 'invalid_topic');
          return true;
        });
        assert.equal(subscription.state, 'closed');
        assert.equal(recorder.errors.length, 1);
        assert.equal(recorder.count('reconnecting'), 0);
        assert.equal(recorder.states.at(-1)?.info.error, recorder.errors[0]);
      });
    }

    test('network failures are retried until the server is back', async (t) => {
      const { port, release } = await downPort();
      const topic = uniqueTopic();
      const recorder = new Recorder();
      const subscription = transport.subscribe(
        `http://127.0.0.1:${port}`,
        topic,
        recorder.options({ fromStart: true, retryMs: 50, maxRetryMs: 200 }),
      );
      t.after(() => subscription.close());
      await until(() => recorder.count('reconnecting') >= 2, 'failed attempts');
      const failure = recorder.states.find(({ state }) => state === 'reconnecting')?.info.error;
      assert.equal(failure?.code, 'network_error');
      assert.equal(failure?.status, 0);

      await release();
      const revived = await startTestServer({ PORT: String(port) });
      t.after(() => revived.shutdown());
      await until(() => revived.hub.subscriberCount(topic) === 1, 'subscription to the new server');
      await publishAll(topic, ['back'], revived);
      await until(() => recorder.events.length >= 1, 'event');
      assert.deepEqual(recorder.data, ['back']);
      subscription.close();
    });

    test('close() ends the subscription and its connection', async (t) => {
      const topic = uniqueTopic();
      const closedOne = new Recorder();
      const subscription = await open(t, topic, closedOne);
      subscription.close();
      await subscription.closed;
      assert.equal(subscription.state, 'closed');
      await until(() => server.hub.subscriberCount(topic) === 0, 'server-side close');

      // A second subscriber proves an event was delivered meanwhile; the closed one got none.
      const witness = new Recorder();
      await open(t, topic, witness);
      await publishAll(topic, ['after close']);
      await until(() => witness.events.length === 1, 'event to the witness');
      assert.deepEqual(closedOne.events, []);
    });

    test('aborting the signal closes the subscription', async (t) => {
      const topic = uniqueTopic();
      const controller = new AbortController();
      const subscription = await open(t, topic, new Recorder(), { signal: controller.signal });
      controller.abort();
      await subscription.closed;
      await until(() => server.hub.subscriberCount(topic) === 0, 'server-side close');

      const recorder = new Recorder();
      const never = transport.subscribe(
        server.url,
        topic,
        recorder.options({ signal: controller.signal }),
      );
      await never.closed;
      assert.deepEqual(
        recorder.states.map(({ state }) => state),
        ['connecting', 'closed'],
      );
    });

    test('sends the given headers with the stream request', async (t) => {
      const topic = uniqueTopic();
      const headers = { authorization: 'Bearer test-token', 'x-request-id': 'req-1' };
      await open(t, topic, new Recorder(), { headers, fromStart: true });
      const sent = tap.headers.at(-1);
      assert.equal(sent?.authorization, headers.authorization);
      assert.equal(sent?.['x-request-id'], headers['x-request-id']);
    });

    test('a connection on which nothing arrives is replaced', async (t) => {
      const silent = await startSilentServer();
      t.after(() => silent.close());
      const recorder = new Recorder();
      const subscription = transport.subscribe(
        silent.url,
        'quiet',
        recorder.options({ fromStart: true, idleTimeoutMs: 200 }),
      );
      t.after(() => subscription.close());
      await until(() => recorder.count('reconnecting') >= 2, 'reconnects');
      const failure = recorder.states.find(({ state }) => state === 'reconnecting')?.info.error;
      assert.equal(failure?.code, 'idle_timeout');
      assert.ok(recorder.count('open') >= 2);
    });

    test('a quiet but healthy connection is kept open', async (t) => {
      const topic = uniqueTopic();
      const recorder = new Recorder();
      // Heartbeats come every HEARTBEAT_MS; a WebSocket is pinged after a second of quiet and
      // has another second for the pong: a loaded machine delays them by far less.
      const idleTimeoutMs = 2000;
      await open(t, topic, recorder, { idleTimeoutMs }, small);
      // Absence can only be observed over time: longer than the idle timeout, covered by
      // heartbeats (SSE) or ping/pong (WebSocket).
      const deadline = Date.now() + 1.5 * idleTimeoutMs;
      await until(() => Date.now() > deadline, 'time to pass');
      assert.equal(recorder.count('reconnecting'), 0);
      assert.equal(small.hub.subscriberCount(topic), 1);
    });
  });
}
