import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { RunningServer } from '../../src/server/server.js';
import { startTestServer, UNREACHABLE_URL } from '../helpers/server.js';
import { runCli } from './cli.js';

let server: RunningServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.shutdown());

interface Stored {
  readonly id: string;
  readonly event: string;
  readonly data: unknown;
}

/** The topic's retained events, without their timestamps. */
async function history(topic: string): Promise<Stored[]> {
  const response = await fetch(`${server.url}/v1/topics/${topic}/events`);
  const page = (await response.json()) as { events: Stored[] };
  return page.events.map(({ id, event, data }) => ({ id, event, data }));
}

test('help lists the client commands and explains them', async () => {
  const { code, stdout } = await runCli(['--help']);
  assert.equal(code, 0);
  assert.match(stdout, /publish \[options\] <topic> <json>/);
  assert.match(stdout, /subscribe \[options\] <topic>/);
  const publishHelp = await runCli(['publish', '--help']);
  assert.match(publishHelp.stdout, /--idempotency-key <key>/);
  assert.match(publishHelp.stdout, /env: STREAMHUB_URL/);
});

test('publish prints the server answer and stores the event', async () => {
  const { code, stdout, stderr } = await runCli([
    'publish',
    'cli.pub.1',
    '{"price": 1.5, "tags": ["a"]}',
    '--event',
    'price.updated',
    '--url',
    server.url,
  ]);
  assert.equal(stderr, '');
  assert.equal(code, 0);
  const answer = JSON.parse(stdout) as Stored & { topic: string };
  assert.deepEqual(answer, { id: answer.id, topic: 'cli.pub.1', event: 'price.updated' });
  assert.deepEqual(await history('cli.pub.1'), [
    { id: answer.id, event: 'price.updated', data: { price: 1.5, tags: ['a'] } },
  ]);
});

test('publish takes the server from STREAMHUB_URL and any JSON value as data', async () => {
  const { code, stdout } = await runCli(['publish', 'cli.pub.2', '"just text"'], {
    STREAMHUB_URL: server.url,
  });
  assert.equal(code, 0);
  const { id } = JSON.parse(stdout) as Stored;
  assert.deepEqual(await history('cli.pub.2'), [{ id, event: 'message', data: 'just text' }]);
});

test('a repeated idempotency key publishes nothing new and prints the original answer', async () => {
  const args = ['publish', 'cli.pub.3', '1', '--idempotency-key', 'key-1', '--url', server.url];
  const first = await runCli(args);
  const second = await runCli(args);
  assert.equal(second.code, 0);
  assert.equal(second.stdout, first.stdout);
  assert.equal((await history('cli.pub.3')).length, 1);
});

test('invalid JSON is refused with exit status 2 before anything is sent', async () => {
  const { code, stdout, stderr } = await runCli([
    'publish',
    'cli.pub.4',
    'hello',
    '--url',
    server.url,
  ]);
  assert.equal(code, 2);
  assert.equal(stdout, '');
  assert.match(stderr, /<json> is not valid JSON/);
  assert.match(stderr, /'"hello"'/);
  assert.deepEqual(await history('cli.pub.4'), []);
});

test('an invalid --url is refused with exit status 2', async () => {
  const { code, stderr } = await runCli(['publish', 'cli.pub.5', '1', '--url', 'not a url']);
  assert.equal(code, 2);
  assert.match(stderr, /--url: base URL must be an http/);
});

test("the server's refusal is reported with its message and exit status 1", async () => {
  const { code, stdout, stderr } = await runCli([
    'publish',
    'cli.pub.6',
    '1',
    '--event',
    'not valid!',
    '--url',
    server.url,
  ]);
  assert.equal(code, 1);
  assert.equal(stdout, '');
  assert.match(stderr, /publish failed: event type must be .* \(HTTP 400, invalid_event_type\)/);
});

test('an unreachable server is reported with exit status 1', async () => {
  const { code, stderr } = await runCli(['publish', 'cli.pub.7', '1', '--url', UNREACHABLE_URL]);
  assert.equal(code, 1);
  assert.match(stderr, /publish failed: network error: ECONNREFUSED/);
});
