import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { publish, StreamhubClientError } from '../../src/client/index.js';
import type { RunningServer } from '../../src/server/server.js';
import { startTestServer, UNREACHABLE_URL } from '../helpers/server.js';
import { uniqueTopic } from './harness.js';

let server: RunningServer;
before(async () => {
  server = await startTestServer({ MAX_BODY_BYTES: '1024' });
});
after(() => server.shutdown());

/** Asserts that `promise` rejects with a StreamhubClientError of this status and code. */
async function rejectsWith(promise: Promise<unknown>, status: number, code: string) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof StreamhubClientError, String(error));
    assert.equal(error.name, 'StreamhubClientError');
    assert.equal(error.status, status);
    assert.equal(error.code, code);
    assert.ok(error.message.length > 0);
    return true;
  });
}

test('publish answers with the id, topic and event type', async () => {
  const topic = uniqueTopic('publish');
  const first = await publish(server.url, topic, { n: 1 });
  const second = await publish(`${server.url}/`, topic, 'text', { event: 'note.added' });
  assert.deepEqual(first, { id: first.id, topic, event: 'message' });
  assert.deepEqual(second, { id: second.id, topic, event: 'note.added' });
  assert.notEqual(first.id, second.id);
});

test('an idempotency key makes a retried publish return the original event', async () => {
  const topic = uniqueTopic('publish');
  const first = await publish(server.url, topic, 1, { idempotencyKey: 'order-42' });
  const retried = await publish(server.url, topic, 1, { idempotencyKey: 'order-42' });
  assert.deepEqual(retried, first);
  const info = (await (await fetch(`${server.url}/v1/topics/${topic}`)).json()) as {
    length: number;
  };
  assert.equal(info.length, 1);
});

test("refusals are StreamhubClientErrors with the server's status, code and message", async () => {
  const topic = uniqueTopic('publish');
  await rejectsWith(
    publish(server.url, topic, 1, { event: 'no spaces' }),
    400,
    'invalid_event_type',
  );
  await rejectsWith(publish(server.url, 'no spaces', 1), 400, 'invalid_topic');
  await rejectsWith(publish(server.url, topic, 'x'.repeat(2048)), 413, 'payload_too_large');
  await rejectsWith(
    publish(server.url, topic, 1, { idempotencyKey: 'k'.repeat(129) }),
    400,
    'invalid_idempotency_key',
  );
  const error = await publish(server.url, topic, 1, { event: '' }).catch((caught) => caught);
  assert.equal((error as StreamhubClientError).retryable, false);
});

test('an answer without the error body still gives a typed, retryable error', async () => {
  const gateway = async () => new Response('<html>bad gateway</html>', { status: 502 });
  const failing = publish(server.url, 'topic', 1, { fetch: gateway });
  await rejectsWith(failing, 502, 'http_502');
  const error = await publish(server.url, 'topic', 1, { fetch: gateway }).catch((e) => e);
  assert.match((error as Error).message, /bad gateway/);
  assert.equal((error as StreamhubClientError).retryable, true);
});

test('an unreachable server is a network_error with status 0', async () => {
  await rejectsWith(publish(UNREACHABLE_URL, 'topic', 1), 0, 'network_error');
});

test('a base URL that is not http(s) is a TypeError', async () => {
  await assert.rejects(publish('ftp://example.com', 'topic', 1), TypeError);
  await assert.rejects(publish('not a url', 'topic', 1), TypeError);
});
