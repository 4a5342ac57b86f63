import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import {
  type ConnectionState,
  connectMux,
  type MuxConnection,
  type MuxOptions,
  StreamhubClientError,
  type Subscription,
  type TopicSubscriptionOptions,
} from '../../src/client/index.js';
import type { RunningServer } from '../../src/server/server.js';
import { publish, startTestServer, waitFor } from '../helpers/server.js';
import {
  PATIENCE_MS,
  Recorder,
  StreamTap,
  startProxy,
  startSilentServer,
  uniqueTopic,
} from './harness.js';

let server: RunningServer;
let tap: StreamTap;

before(async () => {
  // What these tests exercise is reconnection. With permessage-deflate, `ws` inflates every
  // message on the thread pool, and in this one busy process a close frame then waits behind
  // the messages before it longer than the tests' cadence of drops (test/server/compression
  // covers compressed sockets).
  server = await startTestServer({ COMPRESSION: 'off' });
  tap = new StreamTap(server);
});
after(() => server.shutdown());

function until(predicate: () => boolean, what: string): Promise<void> {
  return waitFor(predicate, what, PATIENCE_MS);
}

/** The mux's own state changes, like a Recorder's for a subscription. */
class MuxStates {
  readonly states: ConnectionState[] = [];
  readonly errors: (StreamhubClientError | undefined)[] = [];

  count(state: ConnectionState): number {
    return this.states.filter((recorded) => recorded === state).length;
  }
}

/** A mux to the test server (fast reconnects), closed at the end of the test. */
function connect(
  t: TestContext,
  options: Partial<MuxOptions> = {},
  url = server.url,
): { mux: MuxConnection; states: MuxStates } {
  const states = new MuxStates();
  const mux = connectMux(url, {
    WebSocket,
    backoff: { initialMs: 20, maxMs: 200 },
    onStateChange: (state, info) => {
      states.states.push(state);
      states.errors.push(info.error);
    },
    ...options,
  });
  t.after(() => mux.close());
  return { mux, states };
}

/** Subscribes and waits until the server delivers to the subscription. */
async function open(
  mux: MuxConnection,
  topic: string,
  recorder: Recorder,
  options: Partial<TopicSubscriptionOptions> = {},
): Promise<Subscription> {
  const subscription = mux.subscribe(topic, recorder.options(options));
  await until(() => server.hub.subscriberCount(topic) === 1, `subscription to ${topic}`);
  return subscription;
}

async function publishAll(topic: string, values: readonly unknown[]): Promise<string[]> {
  const ids: string[] = [];
  for (const data of values) ids.push((await publish(server.url, topic, data)).id);
  return ids;
}

/** What `GET /v1/stats` counts: WebSocket connections open on the server. */
async function openSockets(): Promise<number> {
  const response = await fetch(`${server.url}/v1/stats`);
  const stats = (await response.json()) as { connections: { ws: number } };
  return stats.connections.ws;
}

function earlierSocketsClosed(): Promise<void> {
  return until(() => server.connections.count('ws') === 0, 'sockets of earlier tests to close');
}

test('several topics share one socket, and each gets exactly its own events in order', async (t) => {
  await earlierSocketsClosed();
  const upgradesBefore = tap.headers.length;
  const [replayed, live, resumed, other] = [uniqueTopic(), uniqueTopic(), uniqueTopic(), 'x'];
  const history = await publishAll(replayed, ['r0', 'r1']);
  const resumedIds = await publishAll(resumed, ['s0', 's1']);
  const { mux } = connect(t);
  const recorders = { replayed: new Recorder(), live: new Recorder(), resumed: new Recorder() };
  await open(mux, replayed, recorders.replayed, { fromStart: true });
  await open(mux, live, recorders.live);
  await open(mux, resumed, recorders.resumed, { lastEventId: resumedIds[0] });

  const expected = { replayed: [...history], live: [] as string[], resumed: resumedIds.slice(1) };
  for (let n = 0; n < 20; n++) {
    expected.replayed.push((await publish(server.url, replayed, `r${n + 2}`)).id);
    expected.live.push((await publish(server.url, live, `l${n}`)).id);
    expected.resumed.push((await publish(server.url, resumed, `s${n + 2}`)).id);
    await publish(server.url, `${other}.${replayed}`, n);
  }
  for (const [name, recorder] of Object.entries(recorders)) {
    const ids = expected[name as keyof typeof expected];
    await until(() => recorder.events.length >= ids.length, `${name} events`);
  }
  assert.deepEqual(recorders.replayed.ids, expected.replayed);
  assert.deepEqual(
    recorders.replayed.data,
    Array.from({ length: 22 }, (_, n) => `r${n}`),
  );
  assert.deepEqual(recorders.live.ids, expected.live);
  assert.deepEqual(
    recorders.live.data,
    Array.from({ length: 20 }, (_, n) => `l${n}`),
  );
  assert.deepEqual(recorders.resumed.ids, expected.resumed);
  assert.equal(recorders.resumed.data[0], 's1');

  assert.equal(tap.headers.length - upgradesBefore, 1, 'WebSocket upgrades');
  assert.equal(await openSockets(), 1);
  assert.equal(mux.state, 'open');
  for (const recorder of Object.values(recorders)) {
    assert.deepEqual(recorder.resets, []);
    assert.deepEqual(
      recorder.states.map(({ state }) => state),
      ['connecting', 'open'],
    );
  }
});

test('resumes every topic after the socket is dropped again and again while events flow', async (t) => {
  const { mux, states } = connect(t);
  const topics = [uniqueTopic(), uniqueTopic(), uniqueTopic()];
  const recorders = topics.map(() => new Recorder());
  // One live-only subscription (its start is pinned), one from the start, one resumed.
  const [first] = await publishAll(topics[2] as string, ['before']);
  await open(mux, topics[0] as string, recorders[0] as Recorder);
  await open(mux, topics[1] as string, recorders[1] as Recorder, { fromStart: true });
  await open(mux, topics[2] as string, recorders[2] as Recorder, { lastEventId: first });

  const published: string[][] = topics.map(() => []);
  // Each drop hits a socket that is back with every subscription, however slow the reconnect.
  const allOpen = () =>
    mux.state === 'open' && recorders.every((recorder) => recorder.states.at(-1)?.state === 'open');
  let cut = 0;
  let drops = 0;
  for (let n = 0; n < 600; n++) {
    if (n > 0 && n % 60 === 0) {
      await until(allOpen, 'the socket and its subscriptions to be back');
      // Alternate an abrupt cut of the TCP socket with a clean close (server going away).
      if (n % 120 === 0) server.connections.shutdownAll();
      else cut += tap.destroyAll();
      // Noticed before the next drop: on a busy machine two drops could otherwise make one.
      drops++;
      await until(() => states.count('reconnecting') >= drops, 'the drop to be noticed');
    }
    const index = n % topics.length;
    const { id } = await publish(server.url, topics[index] as string, n);
    published[index]?.push(id);
  }
  for (const [index, topic] of topics.entries()) {
    published[index]?.push((await publish(server.url, topic, 'end')).id);
  }
  for (const [index, recorder] of recorders.entries()) {
    await until(() => recorder.events.at(-1)?.data === 'end', `all events of topic ${index}`);
    assert.deepEqual(recorder.ids, published[index], `events of topic ${index}`);
    assert.deepEqual(recorder.resets, []);
    assert.deepEqual(recorder.errors, []);
    assert.ok(recorder.count('reconnecting') >= 5, `topic ${index} reconnects`);
  }
  assert.ok(cut >= 4, `sockets cut: ${cut}`);
  assert.ok(
    states.count('reconnecting') >= 9,
    `socket reconnects: ${states.count('reconnecting')}`,
  );
  assert.equal(states.count('closed'), 0);
  await until(() => server.connections.count('ws') === 1, 'one socket');
});

test('a reset reaches the onReset of its own topic only', async (t) => {
  const { mux } = connect(t);
  const [deleted, kept, unknown] = [uniqueTopic(), uniqueTopic(), uniqueTopic()];
  const recorders = { deleted: new Recorder(), kept: new Recorder(), unknown: new Recorder() };
  await publishAll(unknown, ['u0']);
  await open(mux, deleted, recorders.deleted, { fromStart: true });
  await open(mux, kept, recorders.kept, { fromStart: true });
  await open(mux, unknown, recorders.unknown, { lastEventId: 'not-an-id' });
  await publishAll(deleted, ['d0']);
  await publishAll(kept, ['k0']);

  const response = await fetch(`${server.url}/v1/topics/${deleted}`, { method: 'DELETE' });
  assert.equal(response.status, 204);
  const [newEpoch] = await publishAll(deleted, ['d1']);
  await publishAll(kept, ['k1']);
  await until(() => recorders.deleted.events.length >= 2, 'events of the deleted topic');
  await until(() => recorders.kept.events.length >= 2, 'events of the kept topic');
  await until(() => recorders.unknown.events.length >= 1, 'replay of the unknown id');

  assert.deepEqual(recorders.deleted.resets, [{ reason: 'epoch_mismatch', oldest: newEpoch }]);
  assert.deepEqual(recorders.deleted.data, ['d0', 'd1']);
  assert.deepEqual(recorders.kept.resets, []);
  assert.deepEqual(recorders.kept.data, ['k0', 'k1']);
  assert.equal(recorders.unknown.resets[0]?.reason, 'unknown_id');
  assert.deepEqual(recorders.unknown.data, ['u0']);
});

test('publish over the mux resolves with the id that subscribers receive', async (t) => {
  const { mux } = connect(t);
  const topic = uniqueTopic();
  const recorder = new Recorder();
  await until(() => mux.state === 'open', 'the socket');
  // Not waiting for the subscription: a publish waits until the ones before it are in place.
  mux.subscribe(topic, recorder.options());
  const first = await mux.publish(topic, { n: 1 });
  const second = await mux.publish(topic, 'two', { event: 'order.created' });
  assert.deepEqual(second.topic, topic);
  assert.equal(second.event, 'order.created');
  await until(() => recorder.events.length >= 2, 'events');
  assert.deepEqual(recorder.events, [
    { id: first.id, event: 'message', data: { n: 1 } },
    { id: second.id, event: 'order.created', data: 'two' },
  ]);

  // Concurrent publishes are answered by ref, each with its own id, in order.
  const many = await Promise.all(Array.from({ length: 20 }, (_, n) => mux.publish(topic, n)));
  await until(() => recorder.events.length >= 22, 'concurrent events');
  assert.deepEqual(
    recorder.ids.slice(2),
    many.map(({ id }) => id),
  );
  assert.deepEqual(recorder.data.slice(2), [...Array(20).keys()]);

  await assert.rejects(mux.publish('not a valid topic!', 1), (error: unknown) => {
    assert.ok(error instanceof StreamhubClientError);
    assert.equal(error.code, 'invalid_topic');
    assert.equal(error.status, 400);
    assert.equal(error.retryable, false);
    return true;
  });
  // The refusal does not hurt the connection.
  assert.equal((await mux.publish(topic, 'still open')).topic, topic);
  assert.equal(mux.state, 'open');
});

test('while the socket is away, nothing is missed and publishes wait for it', async (t) => {
  const proxy = await startProxy(server);
  t.after(() => proxy.close());
  const { mux, states } = connect(t, {}, proxy.url);
  const topic = uniqueTopic();
  await publishAll(topic, ['old']);
  // Live only, dropped before its first event: it resumes from the start it pinned.
  const recorder = new Recorder();
  await open(mux, topic, recorder);
  // The socket stays away, whatever the backoff, until the outage ends.
  proxy.cut('reset');
  await until(() => states.count('reconnecting') >= 2, 'a failed reconnection');
  const [away] = await publishAll(topic, ['while away']);
  const queuing = mux.publish(topic, 'queued');
  assert.equal(states.count('open'), 1);
  proxy.restore();
  const queued = await queuing;
  assert.equal(states.count('open'), 2);
  const [next] = await publishAll(topic, ['after']);
  await until(() => recorder.events.length >= 3, 'events');
  assert.deepEqual(recorder.ids, [away, queued.id, next]);
  assert.deepEqual(recorder.data, ['while away', 'queued', 'after']);
});

test('closing one subscription stops its topic only; the socket stays for later ones', async (t) => {
  await earlierSocketsClosed();
  const { mux } = connect(t);
  const [closedTopic, kept] = [uniqueTopic(), uniqueTopic()];
  const gone = new Recorder();
  const stays = new Recorder();
  const subscription = await open(mux, closedTopic, gone);
  const keptSubscription = await open(mux, kept, stays);
  subscription.close();
  await subscription.closed;
  assert.equal(subscription.state, 'closed');
  await until(() => server.hub.subscriberCount(closedTopic) === 0, 'server-side unsubscribe');
  await publishAll(closedTopic, ['after close']);
  await publishAll(kept, ['k']);
  await until(() => stays.events.length === 1, 'event of the kept topic');
  assert.deepEqual(gone.events, []);
  assert.equal(gone.count('closed'), 1);
  assert.deepEqual(gone.errors, []);

  // Without any subscription, the socket stays open, and a topic can be subscribed again.
  keptSubscription.close();
  await keptSubscription.closed;
  await until(() => server.hub.subscriberCount(kept) === 0, 'last unsubscribe');
  assert.equal(await openSockets(), 1);
  assert.equal(mux.state, 'open');
  const again = new Recorder();
  await open(mux, closedTopic, again);
  const [id] = await publishAll(closedTopic, ['again']);
  await until(() => again.events.length === 1, 'event after subscribing again');
  assert.deepEqual(again.ids, [id]);
  assert.equal(await openSockets(), 1);
  assert.throws(() => mux.subscribe(closedTopic, new Recorder().options()), /already has/);
});

test('subscribing again right after close() gets no event of the closed subscription', async (t) => {
  const { mux } = connect(t);
  const topic = uniqueTopic();
  const ids = await publishAll(
    topic,
    Array.from({ length: 300 }, (_, n) => n),
  );
  const again = new Recorder();
  let reopened: Subscription | undefined;
  // Closed from its first event: the rest of the replay is on its way, or already received.
  const subscription = mux.subscribe(topic, {
    fromStart: true,
    onEvent: () => {
      subscription.close();
      reopened ??= mux.subscribe(topic, again.options({ lastEventId: ids[249] }));
    },
  });
  await until(() => again.events.length >= 50, 'events of the new subscription');
  const [end] = await publishAll(topic, ['end']);
  await until(() => again.events.length >= 51, 'the last event');
  assert.deepEqual(again.ids, [...ids.slice(250), end]);
  assert.equal(subscription.state, 'closed');
  assert.equal(reopened?.state, 'open');
});

test('aborting a signal closes a subscription, or the whole connection', async (t) => {
  const { mux } = connect(t);
  const topic = uniqueTopic();
  const controller = new AbortController();
  const subscription = await open(mux, topic, new Recorder(), { signal: controller.signal });
  controller.abort();
  await subscription.closed;
  await until(() => server.hub.subscriberCount(topic) === 0, 'server-side unsubscribe');
  const never = new Recorder();
  await mux.subscribe(topic, never.options({ signal: controller.signal })).closed;
  assert.deepEqual(
    never.states.map(({ state }) => state),
    ['connecting', 'closed'],
  );

  const connection = new AbortController();
  const { mux: aborted } = connect(t, { signal: connection.signal });
  const topics = [uniqueTopic(), uniqueTopic()];
  const subscriptions = [];
  for (const name of topics) subscriptions.push(await open(aborted, name, new Recorder()));
  const abortedPublish = new AbortController();
  const unsent = aborted.publish(topics[0] as string, 'never', { signal: abortedPublish.signal });
  abortedPublish.abort();
  await assert.rejects(unsent, { name: 'AbortError' });
  connection.abort();
  await aborted.closed;
  assert.equal(aborted.state, 'closed');
  await Promise.all(subscriptions.map((each) => each.closed));
  for (const name of topics) {
    await until(() => server.hub.subscriberCount(name) === 0, `server-side close of ${name}`);
  }
  await assert.rejects(aborted.publish(topics[0] as string, 'late'), { name: 'AbortError' });
  const late = new Recorder();
  await aborted.subscribe(uniqueTopic(), late.options()).closed;
  assert.equal(late.count('closed'), 1);
});

test('a refused subscription stops with the server error; the others go on', async (t) => {
  const { mux } = connect(t);
  const topic = uniqueTopic();
  const recorder = new Recorder();
  await open(mux, topic, recorder, { fromStart: true });
  for (const start of [{ fromStart: true }, {}]) {
    // Refused by an error frame over the socket, or by the HTTP lookup of a live start.
    const refused = new Recorder();
    const subscription = mux.subscribe('not a valid topic!', refused.options(start));
    await assert.rejects(subscription.closed, (error: unknown) => {
      assert.ok(error instanceof StreamhubClientError);
      assert.equal(error.status, 400);
      assert.equal(error.code, 'invalid_topic');
      return true;
    });
    assert.equal(refused.errors.length, 1);
    assert.equal(refused.count('reconnecting'), 0);
  }
  await publishAll(topic, ['fine']);
  await until(() => recorder.events.length === 1, 'event of the other topic');
  assert.equal(mux.state, 'open');
});

test('a refused handshake stops the connection and every subscription with the error', async (t) => {
  const errors: StreamhubClientError[] = [];
  const { mux, states } = connect(
    t,
    { onError: (error) => errors.push(error) },
    `${server.url}/nowhere`,
  );
  const recorder = new Recorder();
  const subscription = mux.subscribe(uniqueTopic(), recorder.options({ fromStart: true }));
  const publishing = mux.publish('topic', 1);
  for (const settled of [mux.closed, subscription.closed, publishing]) {
    await assert.rejects(settled, (error: unknown) => {
      assert.ok(error instanceof StreamhubClientError);
      assert.equal(error.status, 404);
      return true;
    });
  }
  assert.equal(errors.length, 1);
  assert.equal(recorder.errors[0], errors[0]);
  assert.deepEqual(states.states, ['connecting', 'closed']);
});

test('a quiet socket is kept open with pings; a silent one is replaced', async (t) => {
  // Pinged after a second of quiet, the socket has another second for the pong: a loaded
  // machine delays it by far less.
  const idleTimeoutMs = 2000;
  const { mux, states } = connect(t, { idleTimeoutMs });
  await open(mux, uniqueTopic(), new Recorder());
  // Absence can only be observed over time: longer than the idle timeout.
  const deadline = Date.now() + 1.5 * idleTimeoutMs;
  await until(() => Date.now() > deadline, 'time to pass');
  assert.equal(states.count('reconnecting'), 0);

  const silent = await startSilentServer();
  t.after(() => silent.close());
  const { states: silentStates } = connect(t, { idleTimeoutMs: 200 }, silent.url);
  await until(() => silentStates.count('reconnecting') >= 2, 'reconnects');
  const failure = silentStates.errors.find((error) => error !== undefined);
  assert.equal(failure?.code, 'idle_timeout');
  assert.ok(silentStates.count('open') >= 2);
});

test('a base URL that is not http(s) is refused at once', () => {
  assert.throws(() => connectMux('ws://127.0.0.1:1', { WebSocket }), TypeError);
});
