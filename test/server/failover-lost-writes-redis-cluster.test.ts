/**
 * A master failover that loses acknowledged writes in the middle of a reply (docs/api.md §12,
 * issue 14), on a real Redis Cluster of three masters and three replicas: the replica of the
 * master holding the reply's log is frozen and cut off while the reply goes on, then the master
 * is SIGKILLed and the replica promoted, so what was written meanwhile is lost for sure. The
 * writer's next append finds its log started again under it. Every viewer must end, and with
 * either exactly the reply or a `reset` followed by exactly what the log now holds, ending in a
 * terminal event; the writer gets a clear outcome, and nothing waits forever.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import type { RunningServer } from '../../src/server/server.js';
import {
  closedWithin,
  deltaCount,
  deltaText,
  promptFor,
  sessionView,
} from '../helpers/chat-sessions.js';
import { getJson, request } from '../helpers/http.js';
import { PATIENCE_MS } from '../helpers/patience.js';
import { type RedisClusterServers, startRedisCluster } from '../helpers/redis-cluster.js';
import { startTestServer, waitFor } from '../helpers/server.js';
import { RawSseClient, type SseMessage } from '../helpers/sse-client.js';
import { closedAfterEach, streamHolds } from '../helpers/stream-producer.js';

const open = closedAfterEach();
let redis: RedisClusterServers | undefined;
let running: RunningServer | undefined;
const cluster = () => redis as RedisClusterServers;
const url = () => (running as RunningServer).url;

before(async () => {
  redis = await startRedisCluster();
  running = await startTestServer({
    BACKEND: 'redis',
    REDIS_CLUSTER: 'true',
    REDIS_URL: cluster().url,
    // Slow enough that the reply (120 tokens, 15 s) is still running once the failover is
    // over, however long a loaded machine takes to set it up: at 20 tokens/s it once ended first.
    MOCK_TOKENS_PER_SEC: '8',
    // A reply's appends ride out the failover (half the lease) rather than failing.
    SESSION_LEASE_MS: '30000',
  });
});

// The master a test killed comes back as a replica, so that the next test's shard has one.
beforeEach(() => cluster().start());

after(async () => {
  await running?.shutdown();
  await redis?.stop();
});

const LONG = promptFor(120, 'lost writes');

/** What a viewer saw after its last `reset` (everything, if it got none). */
const afterLastReset = (messages: readonly SseMessage[]) =>
  messages.slice(messages.findLastIndex((message) => message.event === 'reset') + 1);

/**
 * What `client` read until the stream's end, `ends` telling the event that ends it, and the
 * statuses of the resumes it took. A response that closes before that (a stream the failover
 * forgot altogether closes its consumers, docs/api.md §12) is resumed from its last event id,
 * as `EventSource` resumes: after a pause, again until the end comes or patience runs out.
 */
async function readToTheEnd(
  client: RawSseClient,
  url: string,
  ends: (message: SseMessage) => boolean,
): Promise<{ messages: SseMessage[]; resumes: number[] }> {
  await closedWithin(client, 'the consumer');
  const messages = [...client.messages];
  const resumes: number[] = [];
  const deadline = Date.now() + PATIENCE_MS;
  while (!messages.some(ends) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, RESUME_PAUSE_MS));
    const lastId = messages.findLast((message) => message.id !== undefined)?.id;
    const resumed = open.consumer(url, lastId === undefined ? {} : { 'last-event-id': lastId });
    await closedWithin(resumed, 'the resumed consumer');
    resumes.push(resumed.status);
    messages.push(...resumed.messages);
  }
  return { messages, resumes };
}

/** How long a reader whose response closed early waits before it resumes (`retry:`'s role). */
const RESUME_PAUSE_MS = 200;

/** The stored events a fresh reader gets now, from the start. */
async function logNow(url: string): Promise<SseMessage[]> {
  const reader = open.consumer(url);
  await closedWithin(reader, `a fresh reader of ${url}`);
  return reader.events;
}

test('a chat reply whose log loses writes in a failover ends, after a reset, as lost', {
  timeout: 120_000,
}, async () => {
  const id = `lost-${process.pid}`;
  const chat = new RawSseClient(`${url()}/v1/chat`, {}, { session_id: id, content: LONG.content });
  open.track(() => chat.close());
  await waitFor(() => deltaCount(chat) >= 10, 'the reply under way');
  await cluster().failOver(`{session/${id}/1}`, async () => {
    const before = deltaCount(chat);
    await waitFor(() => deltaCount(chat) >= before + 10, 'deltas the failover loses');
  });
  await closedWithin(chat, 'the chat stream');
  // The reply went on after the failover, into a log that had lost some of it.
  assert.ok(
    chat.messages.some((message) => message.event === 'reset'),
    'told to reset',
  );
  const after = afterLastReset(chat.messages);
  assert.deepEqual(after, await logNow(`${url()}/v1/sessions/${id}/stream`));
  assert.deepEqual(
    after.map((message) => [message.event, JSON.parse(message.data).code]),
    [['error', 'reply_lost']],
    'then the end of a reply that was lost',
  );
  const session = await sessionView(url(), id);
  assert.equal(session.status, 'idle', 'the turn ended');
  assert.deepEqual(
    session.messages.map((message) => message.role),
    ['user'],
    'no reply is kept that no viewer could have',
  );
  await nextReplyWhole(id);
});

/** The session goes on after a failover: its next reply is whole. */
async function nextReplyWhole(id: string): Promise<void> {
  const again = new RawSseClient(`${url()}/v1/chat`, {}, { session_id: id, content: 'again' });
  open.track(() => again.close());
  await closedWithin(again, 'the next reply');
  assert.equal(again.events.at(-1)?.event, 'done');
  assert.ok(!again.messages.some((message) => message.event === 'reset'));
}

test('a chat whose turn a failover of the session master forgets still ends for its viewer', {
  timeout: 120_000,
}, async () => {
  const id = `forgotten-${process.pid}`;
  const chats: RawSseClient[] = [];
  // The session and its turn are created while the replica is frozen: the failover forgets them.
  await cluster().failOver(`{${id}}`, async () => {
    const begun = new RawSseClient(
      `${url()}/v1/chat`,
      {},
      { session_id: id, content: LONG.content },
    );
    open.track(() => begun.close());
    chats.push(begun);
    await waitFor(() => deltaCount(begun) >= 5, 'the reply under way');
  });
  const chat = chats[0] as RawSseClient;
  await closedWithin(chat, 'the chat stream');
  const end = chat.events.at(-1);
  assert.equal(end?.event, 'error');
  const { code } = JSON.parse(end.data) as { code: string };
  if (chat.messages.some((message) => message.event === 'reset')) {
    // The reply's log was on the same master, and lost events too.
    assert.equal(code, 'reply_lost');
    assert.deepEqual(afterLastReset(chat.messages), [end]);
  } else {
    assert.equal(code, 'turn_lost');
    assert.ok(LONG.reply.startsWith(deltaText(chat.messages)), 'the reply as far as it went');
  }
  const forgotten = await request(`${url()}/v1/sessions/${id}`);
  assert.equal(forgotten.status, 404, 'the session was forgotten');
  await nextReplyWhole(id);
});

test('a /v1/streams stream whose log loses writes in a failover ends for its producer and consumers', {
  timeout: 120_000,
}, async () => {
  const id = `lost-stream-${process.pid}`;
  const producer = open.producer(url(), id, 'application/x-ndjson');
  let n = 0;
  const produce = async (count: number) => {
    for (let i = 0; i < count; i++) await producer.write(`${JSON.stringify({ n: ++n })}\n`);
  };
  await produce(10);
  await streamHolds(url(), id, 10);
  const consumer = open.consumer(`${url()}/v1/streams/${id}`);
  await waitFor(() => consumer.events.length >= 10, 'the consumer under way');
  await cluster().failOver(`{${id}}`, async () => {
    await produce(10);
    await waitFor(() => consumer.events.length >= 20, 'events the failover loses');
  });
  // Refused from the first of these on: the producer's answer may come before the rest is sent.
  await produce(5).catch(() => {});
  const outcome = await producer.end();
  const streamUrl = `${url()}/v1/streams/${id}`;
  const ended = (message: SseMessage) => message.event !== 'message' && message.event !== 'reset';
  const { messages: read, resumes } = await readToTheEnd(consumer, streamUrl, ended);
  assert.ok('status' in outcome, `the producer got an answer: ${JSON.stringify(outcome)}`);
  assert.equal(outcome.status, 409);
  assert.equal((outcome.json as { error: { code: string } }).error.code, 'producer_lost');
  assert.ok(
    read.some((message) => message.event === 'reset'),
    `told to reset: ${JSON.stringify(read.slice(-4))}, resumes answered ${resumes.join(', ')}`,
  );
  const after = afterLastReset(read);
  assert.deepEqual(after, await logNow(streamUrl));
  assert.deepEqual(
    after.map((message) => message.event),
    ['producer_lost'],
    'then how the stream ended',
  );
  const view = await getJson<{ status: string }>(`${url()}/v1/streams/${id}`);
  assert.equal(view.status, 'producer_lost');
});

test('a streamed completion whose log loses writes in a failover ends as lost for every viewer', {
  timeout: 120_000,
}, async () => {
  const body = { model: 'mock', stream: true, messages: [{ role: 'user', content: LONG.content }] };
  const creator = new RawSseClient(`${url()}/v1/chat/completions`, {}, body);
  open.track(() => creator.close());
  await waitFor(() => creator.events.length >= 5, 'the completion under way');
  const id = creator.headers['x-stream-id'] as string;
  const viewer = open.consumer(`${url()}/v1/chat/completions/${id}/stream`);
  await waitFor(() => viewer.events.length >= 5, 'a second viewer under way');
  await cluster().failOver(`{completion/${id}}`, async () => {
    const before = viewer.events.length;
    await waitFor(() => viewer.events.length >= before + 10, 'chunks the failover loses');
  });
  await closedWithin(creator, 'the creator');
  await closedWithin(viewer, 'the viewer');
  const lost = (client: RawSseClient) =>
    (JSON.parse(client.events.at(-1)?.data ?? '{}') as { error?: { code: string } }).error?.code;
  // The creator is fed by the writer itself: every chunk it wrote, then the end.
  assert.equal(lost(creator), 'completion_lost');
  assert.ok(!creator.messages.some((message) => message.data === '[DONE]'));
  assert.ok(
    viewer.messages.some((message) => message.event === 'reset'),
    'told to reset',
  );
  assert.deepEqual(afterLastReset(viewer.messages), [viewer.events.at(-1)]);
  assert.equal(lost(viewer), 'completion_lost');
});
