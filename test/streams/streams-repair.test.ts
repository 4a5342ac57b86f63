/**
 * Streams on Redis left half-done: a process that recorded a stream's end and died before
 * appending its ending event, and a DELETE racing a producer on another process.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RedisConnection } from '../../src/backends/redis/connection.js';
import { RedisStreamStore } from '../../src/backends/redis/redis-stream-store.js';
import { useRedisCluster } from '../helpers/cluster.js';
import { request, uniqueTopic } from '../helpers/http.js';
import { waitFor } from '../helpers/server.js';
import { closedAfterEach, streamHolds } from '../helpers/stream-producer.js';

const tracked = closedAfterEach();
const { consumer } = tracked;

/** The server's stream store: REDIS_KEY_PREFIX `sh`, streams under `sh:stream`. */
const STREAM_PREFIX = 'sh:stream';

async function appendEvent(url: string, id: string, data: unknown): Promise<void> {
  const result = await request(`${url}/v1/streams/${id}/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ data }),
  });
  assert.equal(result.status, 201);
}

describe('streams on Redis made whole after a crash or a racing DELETE', () => {
  // Consumers check a stream they watch every 5 s (half the idle limit, which holds the lease
  // of a stream built with /events: long enough that it cannot lapse during a test).
  const setup = useRedisCluster(2, { STREAM_PRODUCER_IDLE_MS: '10000' });
  const urls = () => setup().cluster.urls as [string, string];
  let connection: RedisConnection;
  let crashed: RedisStreamStore;
  before(() => {
    connection = new RedisConnection({ url: setup().redis.url });
    crashed = new RedisStreamStore({ connection, keyPrefix: STREAM_PREFIX, ttlMs: 60_000 });
  });
  after(() => connection.close());

  test('an end recorded by a process that died before its ending event is repaired', async () => {
    const [a, b] = urls();
    const id = uniqueTopic('crashed');
    await appendEvent(a, id, 1);
    const watching = consumer(`${b}/v1/streams/${id}`);
    await waitFor(() => watching.events.length === 1, 'the event');
    // What a process leaves when it dies right after the store recorded the end.
    assert.equal(
      await crashed.end(id, { status: 'cancelled', reason: 'the stream was cancelled' }),
      true,
    );

    await waitFor(() => watching.ended, 'the watching consumer to learn the end');
    const ending = { type: 'error', errorText: 'cancelled: the stream was cancelled' };
    assert.deepEqual(
      watching.events.map((event) => [event.event, JSON.parse(event.data)]),
      [
        ['message', 1],
        ['cancelled', ending],
      ],
    );
    const late = consumer(`${a}/v1/streams/${id}`);
    await waitFor(() => late.ended, 'the late consumer to read to the end');
    assert.deepEqual(
      late.events.map((event) => event.id),
      watching.events.map((event) => event.id),
      'the ending was appended once',
    );
    const view = (await request(`${a}/v1/streams/${id}`)).json as {
      status: string;
      events: number;
    };
    assert.deepEqual([view.status, view.events], ['cancelled', 2]);
  });

  test('a reader arriving after the crash repairs the stream before reading it', async () => {
    const [a, b] = urls();
    const id = uniqueTopic('crashed-late');
    await appendEvent(a, id, 1);
    assert.equal(await crashed.end(id, { status: 'complete', reason: 'complete' }), true);
    const late = consumer(`${b}/v1/streams/${id}`);
    await waitFor(() => late.ended, 'the late consumer to read to the end');
    assert.deepEqual(
      late.events.map((event) => event.data),
      ['1'],
    );
  });

  test('a DELETE racing a producer on another process leaves nothing behind', async () => {
    const [a, b] = urls();
    const id = uniqueTopic('deleted');
    const producing = tracked.producer(a, id, 'application/x-ndjson');
    await producing.write('1\n');
    await streamHolds(a, id, 1);
    const deleted = await request(`${b}/v1/streams/${id}`, { method: 'DELETE' });
    assert.equal(deleted.status, 204);
    // Process A has not heard of the DELETE: this event races it.
    await producing.write('2\n');
    const outcome = await producing.outcome;
    assert.ok('status' in outcome, 'the producer got an answer');
    assert.equal(outcome.status, 409);
    const redis = await setup().redis.client();
    assert.deepEqual(await redis.keys(`*{${id}}*`), [], 'no key of the stream is left');
    assert.equal((await request(`${a}/v1/streams/${id}`)).status, 404);
  });
});
