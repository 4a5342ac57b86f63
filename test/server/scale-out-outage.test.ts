/**
 * A chat reply rides out a short Redis outage (restart with persistence) instead of being
 * declared lost: appends that never reached Redis are tried again within half the lease.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mockReply } from '../../src/llm/mock.js';
import { useRedisCluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/server.js';
import { RawSseClient, type SseMessage } from '../helpers/sse-client.js';

const setup = useRedisCluster(
  2,
  { MOCK_TOKENS_PER_SEC: '20', SESSION_LEASE_MS: '6000', SHUTDOWN_GRACE_MS: '1000' },
  { persist: true },
);

const deltas = (messages: readonly SseMessage[]) =>
  messages.filter((message) => message.event === 'delta');

test('a reply being generated during a Redis restart completes, with no token lost or repeated', {
  timeout: 60_000,
}, async () => {
  const { redis, cluster } = setup();
  const [a, b] = cluster.urls as [string, string];
  const content = 'ride out the outage please';
  const reply = mockReply([{ role: 'user', content }]).join('');
  const onA = new RawSseClient(`${a}/v1/chat`, {}, { session_id: 'outage', content });
  let viewer: RawSseClient | undefined;
  try {
    await waitFor(() => deltas(onA.messages).length >= 3, 'the reply to start', 20_000);
    // Without takeover fighting it: the viewer on B resumes where A is, A is superseded.
    viewer = new RawSseClient(`${b}/v1/sessions/outage/stream`);
    await waitFor(() => deltas(viewer?.messages ?? []).length >= 4, 'deltas on B', 20_000);
    await redis.halt();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await redis.start();
    const stream = viewer;
    let ended = false;
    void stream.closed.then(() => {
      ended = true;
    });
    await waitFor(() => ended, 'the reply to end', 30_000);
    const last = stream.messages[stream.messages.length - 1];
    assert.equal(last?.event, 'done', JSON.stringify(stream.messages.slice(-3)));
    const text = deltas(stream.messages)
      .map((message) => (JSON.parse(message.data) as { content: string }).content)
      .join('');
    assert.equal(text, reply);
    const ids = stream.events.map((event) => event.id);
    assert.equal(new Set(ids).size, ids.length, 'no event twice');
  } finally {
    onA.close();
    viewer?.close();
  }
});
