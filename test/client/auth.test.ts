import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { WebSocket } from 'ws';
import {
  connectMux,
  createChat,
  publish,
  type Subscription,
  subscribe,
  subscribeWs,
} from '../../src/client/index.js';
import type { RunningServer } from '../../src/server/server.js';
import { startTestServer, waitFor } from '../helpers/server.js';
import { PATIENCE_MS, Recorder, rejectsWith, StreamTap, uniqueTopic } from './harness.js';

const SECRET = 'streamhub-client-auth-test-secret-0123456789';

let server: RunningServer;
let tap: StreamTap;

before(async () => {
  server = await startTestServer({ AUTH_JWT_SECRET: SECRET, MOCK_TOKENS_PER_SEC: '2000' });
  tap = new StreamTap(server);
});
after(() => server.shutdown());

/** A token with every right, valid for `seconds`. */
function sign(seconds = 3600): Promise<string> {
  return new SignJWT({ streamhub: { publish: ['**'], subscribe: ['**'] } })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('client-test')
    .setExpirationTime(Math.floor(Date.now() / 1000) + seconds)
    .sign(new TextEncoder().encode(SECRET));
}

let token: string;
before(async () => {
  token = await sign();
});

/** A function token that hands out `first` once, then long-lived ones; counts its calls. */
function refreshing(first: Promise<string>): { calls: number; token: () => Promise<string> } {
  const source = {
    calls: 0,
    token: () => {
      source.calls += 1;
      return source.calls === 1 ? first : sign();
    },
  };
  return source;
}

function until(predicate: () => boolean, what: string): Promise<void> {
  return waitFor(predicate, what, PATIENCE_MS);
}

const TRANSPORTS = [
  { name: 'SSE', subscribe },
  {
    name: 'WebSocket',
    subscribe: (...[baseUrl, topic, options]: Parameters<typeof subscribe>) =>
      subscribeWs(baseUrl, topic, { ...options, WebSocket }),
  },
];

test('chat: replies with a token, 401 unauthorized without', async () => {
  const reply = createChat(server.url, { token }).send(uniqueTopic('session'), 'hello');
  const types: string[] = [];
  for await (const event of reply) types.push(event.type);
  assert.equal(types.at(-1), 'done');
  assert.ok(reply.text.length > 0);

  const refused = createChat(server.url).send(uniqueTopic('session'), 'hello');
  const reading = (async () => {
    for await (const _ of refused);
  })();
  await rejectsWith(reading, 401, 'unauthorized');
});

test('publish: with a function token; 401 unauthorized without', async () => {
  const topic = uniqueTopic('auth');
  const published = await publish(server.url, topic, { n: 1 }, { token: async () => token });
  assert.equal(published.topic, topic);
  await rejectsWith(publish(server.url, topic, { n: 1 }), 401, 'unauthorized');
});

for (const transport of TRANSPORTS) {
  describe(`subscribe over ${transport.name}`, () => {
    test('receives events with a token; stops with 401 unauthorized without', async () => {
      const topic = uniqueTopic('auth');
      const recorder = new Recorder();
      const subscription = transport.subscribe(server.url, topic, recorder.options({ token }));
      await until(() => subscription.state === 'open', 'subscription open');
      await publish(server.url, topic, { n: 1 }, { token });
      await until(() => recorder.events.length === 1, 'the event');
      subscription.close();

      const refused = new Recorder();
      const failing = transport.subscribe(server.url, topic, refused.options({ fromStart: true }));
      await rejectsWith(failing.closed, 401, 'unauthorized');
      assert.equal(refused.errors[0]?.code, 'unauthorized');
    });
  });
}

describe('connectMux', () => {
  test('authenticates with a first frame; stops with unauthorized without a token', async () => {
    const topic = uniqueTopic('auth');
    const recorder = new Recorder();
    const mux = connectMux(server.url, { WebSocket, token });
    try {
      mux.subscribe(topic, recorder.options());
      await mux.publish(topic, { n: 1 });
      await until(() => recorder.events.length === 1, 'the event');
    } finally {
      mux.close();
    }

    const refused = connectMux(server.url, { WebSocket, backoff: { initialMs: 20 } });
    const subscription = refused.subscribe(topic, new Recorder().options({ fromStart: true }));
    await rejectsWith(refused.closed, 401, 'unauthorized');
    await rejectsWith(subscription.closed, 401, 'unauthorized');
  });

  test('authenticates again after the server side drops the socket', async () => {
    const topic = uniqueTopic('auth');
    const recorder = new Recorder();
    const source = refreshing(sign());
    let opened = 0;
    const mux = connectMux(server.url, {
      WebSocket,
      token: source.token,
      backoff: { initialMs: 20 },
      onStateChange: (state) => {
        if (state === 'open') opened += 1;
      },
    });
    try {
      mux.subscribe(topic, recorder.options({ fromStart: true }));
      await mux.publish(topic, { n: 1 });
      await until(() => recorder.events.length === 1, 'the first event');
      const calls = source.calls;
      assert.ok(tap.destroyAll() > 0);
      // Open again only once the new socket is authenticated; then the subscription is back.
      await until(() => opened === 2 && recorder.count('open') === 2, 'reconnected');
      await mux.publish(topic, { n: 2 });
      await until(() => recorder.events.length === 2, 'the event after the drop');
      assert.ok(source.calls > calls, 'the token function is called again on reconnection');
      assert.deepEqual(recorder.data, [{ n: 1 }, { n: 2 }]);
    } finally {
      mux.close();
    }
  });
});

test('token_expired: a function token is renewed, a fixed one stops the stream', async () => {
  const topic = uniqueTopic('auth');
  const renewed: { recorder: Recorder; source: ReturnType<typeof refreshing> }[] = [];
  const stopped: Subscription[] = [];
  const subscriptions: Subscription[] = [];
  const muxes = [
    connectMux(server.url, { WebSocket, token: await sign(2) }),
    (() => {
      const source = refreshing(sign(2));
      const recorder = new Recorder();
      const mux = connectMux(server.url, { WebSocket, token: source.token });
      mux.subscribe(topic, recorder.options({ fromStart: true }));
      renewed.push({ recorder, source });
      return mux;
    })(),
  ];
  try {
    for (const transport of TRANSPORTS) {
      const source = refreshing(sign(2));
      const recorder = new Recorder();
      subscriptions.push(
        transport.subscribe(
          server.url,
          topic,
          recorder.options({ fromStart: true, token: source.token }),
        ),
      );
      renewed.push({ recorder, source });
      const fixed = transport.subscribe(
        server.url,
        topic,
        new Recorder().options({ fromStart: true, token: await sign(2) }),
      );
      stopped.push(fixed);
    }
    const [fixedMux] = muxes;
    fixedMux?.subscribe(topic, new Recorder().options({ fromStart: true }));
    await Promise.all([
      ...stopped.map((subscription) => rejectsWith(subscription.closed, 401, 'token_expired')),
      rejectsWith(fixedMux?.closed ?? Promise.resolve(), 401, 'token_expired'),
    ]);
    await until(() => renewed.every(({ source }) => source.calls >= 2), 'renewed tokens');
    await publish(server.url, topic, { n: 1 }, { token });
    await until(
      () => renewed.every(({ recorder }) => recorder.events.length === 1),
      'the event after renewal',
    );
    for (const { recorder } of renewed) assert.deepEqual(recorder.errors, []);
  } finally {
    for (const subscription of [...subscriptions, ...stopped]) subscription.close();
    for (const mux of muxes) mux.close();
  }
});
