/**
 * Streams across processes (docs/api.md §9 on Redis): three streamhub processes on one Redis,
 * a producer on one and consumers on the others; a cancel reaching the producer wherever it
 * is; a producing process killed outright ends its stream as producer_lost once its lease lapses.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { useRedisCluster } from '../helpers/cluster.js';
import { request, uniqueTopic } from '../helpers/http.js';
import { waitFor } from '../helpers/server.js';
import { RawSseClient } from '../helpers/sse-client.js';
import { type ProducerOutcome, StreamProducer, streamHolds } from '../helpers/stream-producer.js';

const NDJSON = 'application/x-ndjson';
/** Generous, for a loaded 2-core machine: only reached when something is really wrong. */
const PATIENCE_MS = 20_000;

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

function consumer(url: string, headers: Record<string, string> = {}): RawSseClient {
  const client = new RawSseClient(url, headers);
  closers.push(() => client.close());
  return client;
}

function producer(baseUrl: string, id: string): StreamProducer {
  const made = new StreamProducer(baseUrl, id, NDJSON);
  closers.push(() => made.destroy());
  return made;
}

function statusOf(outcome: ProducerOutcome): [number, unknown] {
  assert.ok('status' in outcome, `the producer's request failed: ${JSON.stringify(outcome)}`);
  return [outcome.status, outcome.json];
}

async function streamStatus(url: string, id: string): Promise<string> {
  const result = await request(`${url}/v1/streams/${id}`);
  return (result.json as { status: string }).status;
}

const numbers = (client: RawSseClient) => client.events.map((event) => JSON.parse(event.data));

describe('streams across three processes on one Redis', () => {
  const setup = useRedisCluster(3, { SESSION_LEASE_MS: '1000', HEARTBEAT_MS: '1000' });
  const urls = () => setup().cluster.urls as [string, string, string];

  test('a producer on one process, consumers on the two others, live and resumed', async () => {
    const [a, b, c] = urls();
    const id = uniqueTopic('spread');
    const producing = producer(a, id);
    await producing.write('1\n');
    await streamHolds(a, id, 1);
    const onB = consumer(`${b}/v1/streams/${id}`);
    const onC = consumer(`${c}/v1/streams/${id}`);
    await waitFor(() => onB.events.length === 1 && onC.events.length === 1, 'event 1', PATIENCE_MS);
    await producing.write('2\n');
    await waitFor(() => onB.events.length === 2, 'event 2 on B', PATIENCE_MS);
    const resumed = consumer(`${c}/v1/streams/${id}`, {
      'last-event-id': onB.events[0]?.id as string,
    });
    await waitFor(() => resumed.events.length === 1, 'the resumed consumer', PATIENCE_MS);
    const [status, summary] = statusOf(await producing.end('3\n'));
    assert.equal(status, 200);
    await Promise.all([onB.closed, onC.closed, resumed.closed]);
    assert.deepEqual(numbers(onB), [1, 2, 3]);
    assert.deepEqual(numbers(onC), [1, 2, 3]);
    assert.deepEqual(numbers(resumed), [2, 3]);
    assert.deepEqual(summary, { id, events: 3, last_event_id: onB.events[2]?.id });
    assert.equal(await streamStatus(c, id), 'complete');
    const again = new StreamProducer(b, id, NDJSON);
    assert.equal(statusOf(await again.end('"new epoch"\n'))[0], 200);
  });

  test('one producer per id across processes; a cancel elsewhere ends the producer', async () => {
    const [a, b, c] = urls();
    const id = uniqueTopic('cancel');
    const producing = producer(a, id);
    await producing.write('1\n');
    await streamHolds(a, id, 1);
    const onC = consumer(`${c}/v1/streams/${id}`);
    await waitFor(() => onC.events.length === 1, 'event 1', PATIENCE_MS);
    const rival = new StreamProducer(b, id, NDJSON);
    const [rivalStatus, refusal] = statusOf(await rival.end('2\n'));
    assert.deepEqual(
      [rivalStatus, (refusal as { error: { code: string } }).error.code],
      [409, 'stream_exists'],
    );
    const cancel = await request(`${b}/v1/streams/${id}/cancel`, { method: 'POST' });
    assert.equal(cancel.status, 202);
    const [status, body] = statusOf(await producing.outcome);
    assert.deepEqual(
      [status, (body as { error: { code: string } }).error.code],
      [409, 'cancelled'],
    );
    await onC.closed;
    assert.deepEqual(
      onC.events.map((event) => event.event),
      ['message', 'cancelled'],
    );
  });

  test('the producing process killed: producer_lost once its lease lapses', async () => {
    const [a, b, c] = urls();
    const id = uniqueTopic('killed');
    const producing = producer(a, id);
    await producing.write('1\n');
    await streamHolds(a, id, 1);
    const onB = consumer(`${b}/v1/streams/${id}`);
    await waitFor(() => onB.events.length === 1, 'event 1', PATIENCE_MS);
    await setup().cluster.kill(0, 'SIGKILL');
    await onB.closed;
    assert.deepEqual(
      onB.events.map((event) => event.event),
      ['message', 'producer_lost'],
    );
    assert.equal(await streamStatus(c, id), 'producer_lost');
    await setup().cluster.restart(0);
  });
});
