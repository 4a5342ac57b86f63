/**
 * Streams across processes (docs/api.md §9 on Redis): three streamhub processes on one Redis,
 * a producer on one and consumers on the others; a cancel reaching the producer wherever it
 * is; a producing process killed outright ends its stream as producer_lost once its lease lapses.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { useRedisCluster } from '../helpers/cluster.js';
import { request, uniqueTopic } from '../helpers/http.js';
import { waitFor } from '../helpers/server.js';
import type { RawSseClient } from '../helpers/sse-client.js';
import {
  closedAfterEach,
  type ProducerOutcome,
  StreamProducer,
  streamHolds,
} from '../helpers/stream-producer.js';

const NDJSON = 'application/x-ndjson';

const tracked = closedAfterEach();
const { consumer } = tracked;
const producer = (baseUrl: string, id: string) => tracked.producer(baseUrl, id, NDJSON);

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
    await waitFor(() => onB.events.length === 1 && onC.events.length === 1, 'event 1');
    await producing.write('2\n');
    await waitFor(() => onB.events.length === 2, 'event 2 on B');
    const resumed = consumer(`${c}/v1/streams/${id}`, {
      'last-event-id': onB.events[0]?.id as string,
    });
    await waitFor(() => resumed.events.length === 1, 'the resumed consumer');
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
    await waitFor(() => onC.events.length === 1, 'event 1');
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

  test('/events calls racing to create a stream on three processes lose nothing', async () => {
    const id = uniqueTopic('racing');
    const posts = [...urls(), ...urls()].map((url, n) =>
      request(`${url}/v1/streams/${id}/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ data: n }),
      }),
    );
    const statuses = (await Promise.all(posts)).map((result) => result.status);
    assert.deepEqual(statuses, [201, 201, 201, 201, 201, 201]);
    const status = await request(`${urls()[0]}/v1/streams/${id}`);
    assert.equal((status.json as { events: number }).events, 6);
  });

  test('the producing process killed: producer_lost once its lease lapses', async () => {
    const [a, b, c] = urls();
    const id = uniqueTopic('killed');
    const producing = producer(a, id);
    await producing.write('1\n');
    await streamHolds(a, id, 1);
    const onB = consumer(`${b}/v1/streams/${id}`);
    await waitFor(() => onB.events.length === 1, 'event 1');
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
