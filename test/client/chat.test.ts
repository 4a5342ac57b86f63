import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import {
  type ChatClient,
  createChat,
  type ReplyEvent,
  type ReplyStream,
} from '../../src/client/index.js';
import { mockReply } from '../../src/llm/mock.js';
import type { RunningServer } from '../../src/server/server.js';
import { startTestServer, UNREACHABLE_URL, waitFor } from '../helpers/server.js';
import { PATIENCE_MS, rejectsWith, StreamTap, startProxy } from './harness.js';

/** Each test is bounded, so that a hang fails it instead of the whole run. */
const BOUNDED = { timeout: PATIENCE_MS };
/** Fast retries keep the tests short. */
const BACKOFF = { initialMs: 20, maxMs: 100 };

let fast: RunningServer;
/** Slow enough to act in the middle of a reply (20-80 tokens: 0.4-1.6 s). */
let slow: RunningServer;
let tap: StreamTap;
let fastChat: ChatClient;
let slowChat: ChatClient;

before(async () => {
  [fast, slow] = await Promise.all([
    startTestServer({ MOCK_TOKENS_PER_SEC: '2000' }),
    startTestServer({ MOCK_TOKENS_PER_SEC: '50' }),
  ]);
  tap = new StreamTap(slow);
  fastChat = createChat(fast.url, { backoff: BACKOFF });
  slowChat = createChat(slow.url, { backoff: BACKOFF });
});
after(() => Promise.all([fast.shutdown(), slow.shutdown()]));

let sessionCounter = 0;
function newSessionId(): string {
  sessionCounter += 1;
  return `chat-${process.pid}-${sessionCounter}`;
}

/** A first message whose mock reply has at least `tokens` tokens. */
function promptOfAtLeast(tokens: number): string {
  for (let n = 0; ; n++) {
    const content = `tell me about streams, take ${n}`;
    if (mockReply([{ role: 'user', content }]).length >= tokens) return content;
  }
}

/** Reads a reply to its end; `onEvent` runs after each event is recorded. */
async function collect(
  reply: ReplyStream,
  onEvent: (event: ReplyEvent, events: readonly ReplyEvent[]) => unknown = () => {},
): Promise<ReplyEvent[]> {
  const events: ReplyEvent[] = [];
  for await (const event of reply) {
    events.push(event);
    await onEvent(event, events);
  }
  return events;
}

const deltas = (events: readonly ReplyEvent[]) =>
  events.filter((event) => event.type === 'delta').length;
const textOf = (events: readonly ReplyEvent[]) =>
  events.map((event) => (event.type === 'delta' ? event.content : '')).join('');

/** The session as the server stores it: its status and the (latest, maybe partial) reply. */
async function stored(server: RunningServer, sessionId: string) {
  const response = await fetch(`${server.url}/v1/sessions/${sessionId}`);
  assert.equal(response.status, 200);
  const body = (await response.json()) as {
    status: string;
    messages: { role: string; content: string }[];
  };
  const last = body.messages.at(-1);
  return { status: body.status, reply: last?.role === 'assistant' ? last.content : '' };
}

function assertUniqueIds(events: readonly ReplyEvent[]) {
  const ids = events.map((event) => event.id).filter((id) => id !== undefined);
  assert.equal(new Set(ids).size, ids.length, `repeated ids: ${ids.join(' ')}`);
}

test('send streams start, deltas and done; the text is the stored reply', BOUNDED, async () => {
  const sessionId = newSessionId();
  const reply = fastChat.send(sessionId, 'What is streamhub?');
  const events = await collect(reply);

  const [start, ...rest] = events;
  const done = rest.pop();
  assert.deepEqual(start, { type: 'start', id: start?.id, turn: 1, model: 'streamhub-mock' });
  assert.ok(rest.length >= 20 && rest.every((event) => event.type === 'delta'));
  assert.ok(done?.type === 'done');
  assert.equal(done.finishReason, 'stop');
  assert.equal((done.usage as { completion_tokens: number }).completion_tokens, rest.length);
  assertUniqueIds(events);
  assert.equal(reply.lastEventId, done.id);
  assert.equal(reply.text, textOf(events));
  assert.deepEqual(await stored(fast, sessionId), { status: 'idle', reply: reply.text });

  // The next turn of the same session, with the options passed through.
  const second = await collect(fastChat.send(sessionId, 'And then?', { maxTokens: 3 }));
  assert.deepEqual(
    second.map((event) => event.type),
    ['start', 'delta', 'delta', 'delta', 'done'],
  );
  const [secondStart, secondDone] = [second[0], second.at(-1)];
  assert.ok(secondStart?.type === 'start' && secondDone?.type === 'done');
  assert.equal(secondStart.turn, 2);
  assert.equal(secondDone.finishReason, 'length');
});

test(
  'resume from a saved lastEventId gives exactly the rest of a running reply',
  BOUNDED,
  async () => {
    const sessionId = newSessionId();
    const first = slowChat.send(sessionId, promptOfAtLeast(30));
    // Like a page closed after 5 deltas: `break` closes the stream.
    let seen = 0;
    for await (const event of first) if (event.type === 'delta' && ++seen === 5) break;
    const saved = { lastEventId: first.lastEventId, text: first.text };
    assert.equal((await stored(slow, sessionId)).status, 'generating');

    const rest = slowChat.resume(sessionId, { lastEventId: saved.lastEventId });
    const events = await collect(rest);
    assert.equal(events[0]?.type, 'delta', 'resumed after the saved id, not from the start');
    assert.equal(events.at(-1)?.type, 'done');
    const whole = (await stored(slow, sessionId)).reply;
    assert.equal(saved.text + rest.text, whole);

    // Without an id: the whole reply from its start; with the final id: just the end again.
    const all = await collect(slowChat.resume(sessionId));
    assert.equal(all[0]?.type, 'start');
    assert.equal(textOf(all), whole);
    const end = await collect(slowChat.resume(sessionId, { lastEventId: rest.lastEventId }));
    assert.deepEqual(end, [events.at(-1)]);
  },
);

test(
  'connections cut mid-reply are resumed with no repeat and no gap, again and again',
  BOUNDED,
  async (t) => {
    const proxy = await startProxy(slow);
    t.after(() => proxy.close());
    const chat = createChat(proxy.url, { backoff: BACKOFF });
    // Every way a stream can end early: reset sockets (client and server side), a clean end by
    // the server (as on shutdown), and reconnections failing for a while (reset, 503).
    const cuts = [
      () => proxy.cut(),
      () => tap.destroyAll(),
      () => slow.connections.shutdownAll(),
      () => proxy.cut('reset', 150),
      () => proxy.cut('503', 150),
    ];
    let cutCount = 0;
    for (let round = 0; round < 3; round++) {
      const sessionId = newSessionId();
      const streamsBefore = tap.headers.length;
      const cutsBefore = cutCount;
      const reply = chat.send(sessionId, promptOfAtLeast(60));
      const events = await collect(reply, (event, so) => {
        if (event.type === 'delta' && deltas(so) % 7 === 0) cuts[cutCount++ % cuts.length]?.();
      });
      assert.deepEqual(
        events.map((event) => event.type),
        ['start', ...Array(events.length - 2).fill('delta'), 'done'],
      );
      assertUniqueIds(events);
      assert.equal(reply.text, (await stored(slow, sessionId)).reply);
      // Not one each: a cut while a reconnection is under way, or after the connection has
      // delivered the end (events come in bursts after an outage), needs none.
      const streams = tap.headers.length - streamsBefore;
      const roundCuts = cutCount - cutsBefore;
      assert.ok(streams >= 4, `${streams} stream requests for ${roundCuts} cuts`);
    }
    assert.ok(cutCount >= 20, `only ${cutCount} cuts`);
  },
);

test(
  'a send refused before streaming throws its error code; nothing is retried',
  BOUNDED,
  async () => {
    const sessionId = newSessionId();
    const running = slowChat.send(sessionId, promptOfAtLeast(40));
    const events = collect(running);
    await waitFor(() => running.text !== '', 'the first delta', PATIENCE_MS);
    const streamsBefore = tap.headers.length;
    await rejectsWith(collect(slowChat.send(sessionId, 'me too')), 409, 'session_busy');
    assert.equal(tap.headers.length, streamsBefore + 1, 'one request, no retry');
    await rejectsWith(collect(slowChat.send('not a valid id!', 'hi')), 400, 'invalid_session_id');
    await rejectsWith(collect(slowChat.resume(newSessionId())), 404, 'session_not_found');

    // The message may or may not have arrived: sending it again is the caller's decision.
    const nowhere = createChat(UNREACHABLE_URL, { backoff: BACKOFF });
    await rejectsWith(collect(nowhere.send(newSessionId(), 'hello?')), 0, 'network_error');
    await rejectsWith(nowhere.cancel('x'), 0, 'network_error');

    // The refused send did not disturb the running reply.
    await slowChat.cancel(sessionId);
    assert.equal((await events).at(-1)?.type, 'abort');
  },
);

test(
  'an answer that is not an event stream is a protocol_error, not retried',
  BOUNDED,
  async (t) => {
    let requests = 0;
    const page = http.createServer((_request, response) => {
      requests += 1;
      response.writeHead(200, { 'content-type': 'text/html' }).end('<p>Please sign in</p>');
    });
    await new Promise<void>((resolve) => page.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      page.closeAllConnections();
      page.close();
    });
    const { port } = page.address() as AddressInfo;
    // A resume, unlike a send, is retried after any retryable error.
    const chat = createChat(`http://127.0.0.1:${port}`, { backoff: BACKOFF });
    await rejectsWith(collect(chat.resume(newSessionId())), 0, 'protocol_error', false);
    assert.equal(requests, 1);
  },
);

test('cancel ends the stream with a stored abort cancelled', BOUNDED, async () => {
  const sessionId = newSessionId();
  const reply = slowChat.send(sessionId, promptOfAtLeast(40));
  const events = await collect(reply, async (event, so) => {
    if (event.type === 'delta' && deltas(so) === 2) await slowChat.cancel(sessionId);
  });
  const abort = events.at(-1);
  assert.ok(abort?.type === 'abort');
  assert.equal(abort.reason, 'cancelled');
  assert.equal(typeof abort.id, 'string');
  assert.equal(reply.lastEventId, abort.id);
  assert.deepEqual(await stored(slow, sessionId), { status: 'idle', reply: reply.text });

  await rejectsWith(slowChat.cancel(sessionId), 409, 'not_generating');
  await rejectsWith(slowChat.cancel(newSessionId()), 404, 'session_not_found');
  // A later resume of the cancelled reply ends with the same abort.
  const again = await collect(slowChat.resume(sessionId, { lastEventId: events[1]?.id }));
  assert.deepEqual(again.at(-1), abort);
});

test('a second viewer supersedes the first, which ends without reconnecting', BOUNDED, async () => {
  const sessionId = newSessionId();
  const streamsBefore = tap.headers.length;
  const first = slowChat.send(sessionId, promptOfAtLeast(40));
  let second: ReplyStream | undefined;
  const firstEvents = await collect(first, (event) => {
    if (event.type === 'delta') second ??= slowChat.resume(sessionId);
  });
  assert.deepEqual(firstEvents.at(-1), { type: 'abort', reason: 'superseded' });
  assert.ok(second !== undefined);
  const secondEvents = await collect(second);
  // Had the first reconnected, it would in turn have superseded the second.
  assert.equal(secondEvents.at(-1)?.type, 'done');
  assert.equal(tap.headers.length, streamsBefore + 2);
  assert.equal(first.lastEventId, firstEvents.at(-2)?.id, 'the abort has no id');
  const whole = (await stored(slow, sessionId)).reply;
  assert.equal(second.text, whole);
  assert.ok(whole.startsWith(first.text) && first.text.length < whole.length);
});

test(
  'a reply the session moved on from while disconnected is an error, not a mix',
  BOUNDED,
  async (t) => {
    const proxy = await startProxy(slow);
    t.after(() => proxy.close());
    const sessionId = newSessionId();
    const away = createChat(proxy.url, { backoff: BACKOFF }).send(sessionId, promptOfAtLeast(40));
    let next: Promise<ReplyEvent[]> | undefined;
    const following = collect(away, async (event, so) => {
      if (event.type !== 'delta' || deltas(so) !== 2) return;
      // Away for a while, during which another tab cancels and starts the next turn.
      proxy.cut('reset', 1000);
      await slowChat.cancel(sessionId);
      next = collect(slowChat.send(sessionId, 'something else'));
    });
    await rejectsWith(following, 0, 'reply_expired', false);
    assert.ok(away.text.length > 0);
    await next;
  },
);

test('aborting the signal stops the iteration; the reply goes on', BOUNDED, async () => {
  const sessionId = newSessionId();
  const controller = new AbortController();
  const reply = slowChat.send(sessionId, promptOfAtLeast(30), { signal: controller.signal });
  const events: ReplyEvent[] = [];
  let eventsAtAbort: number | undefined;
  for await (const event of reply) {
    events.push(event);
    // Aborted while the iteration waits for the next event. A timer cannot fire while events
    // already received are handed out, so more than one delta may come before it.
    if (event.type === 'delta' && deltas(events) === 1) {
      setTimeout(() => {
        eventsAtAbort = events.length;
        controller.abort();
      }, 5);
    }
  }
  assert.equal(events.length, eventsAtAbort, 'no event after the abort');
  assert.equal(events.at(-1)?.type, 'delta');
  const textAtAbort = reply.text;
  await waitFor(() => slow.connections.size === 0, 'the stream to close', PATIENCE_MS);
  for (;;) {
    const session = await stored(slow, sessionId);
    if (session.status === 'idle') {
      assert.ok(session.reply.length > textAtAbort.length);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(reply.text, textAtAbort);

  // Already aborted: nothing is sent.
  const never = createChat(slow.url).send(newSessionId(), 'hi', { signal: controller.signal });
  assert.deepEqual(await collect(never), []);
  // close() is the same.
  const closed = slowChat.resume(sessionId);
  closed.close();
  assert.deepEqual(await collect(closed), []);
});

test('headers are sent with every request', BOUNDED, async () => {
  const authorization = 'Bearer test-token';
  const chat = createChat(slow.url, { headers: { authorization } });
  const streamsBefore = tap.headers.length;
  await collect(chat.send(newSessionId(), 'hi', { maxTokens: 2 }));
  assert.equal(tap.headers.length, streamsBefore + 1);
  assert.equal(tap.headers.at(-1)?.authorization, authorization);
  assert.throws(() => createChat('ws://127.0.0.1:1'), TypeError);
});
