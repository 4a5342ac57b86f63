import assert from 'node:assert/strict';
import { after, before, describe, type TestContext, test } from 'node:test';
import type { RunningServer } from '../../src/server/server.js';
import { publish, startTestServer, waitFor } from '../helpers/server.js';
import { Cli, PATIENCE_MS, runCli } from './cli.js';

let server: RunningServer;
let small: RunningServer;
before(async () => {
  server = await startTestServer();
  small = await startTestServer({ HISTORY_MAX_EVENTS: '2' });
});
after(() => Promise.all([server.shutdown(), small.shutdown()]));

let topicCounter = 0;
function uniqueTopic(): string {
  topicCounter += 1;
  return `cli.sub.${topicCounter}`;
}

async function publishAll(topic: string, values: readonly unknown[], on = server) {
  const ids: string[] = [];
  for (const data of values) ids.push((await publish(on.url, topic, data)).id);
  return ids;
}

/** `streamhub subscribe`, killed at the end of the test if it is still running. */
async function subscriber(
  t: TestContext,
  topic: string,
  args: readonly string[],
  on = server,
): Promise<Cli> {
  const cli = new Cli(['subscribe', topic, '--url', on.url, ...args]);
  t.after(() => cli.child.kill('SIGKILL'));
  await waitFor(
    () => on.hub.subscriberCount(topic) === 1 || cli.child.exitCode !== null,
    `subscription to ${topic}`,
    PATIENCE_MS,
  );
  return cli;
}

for (const transport of [[], ['--ws']]) {
  describe(`subscribe ${transport.join(' ') || '(SSE)'}`, () => {
    test('prints each event as a JSON line and exits 0 on SIGINT', async (t) => {
      const topic = uniqueTopic();
      await publishAll(topic, ['old']);
      const cli = await subscriber(t, topic, transport);
      const ids = await publishAll(topic, [{ a: 1 }, 'two']);
      await publish(server.url, topic, null, { event: 'custom.type' }).then(({ id }) =>
        ids.push(id),
      );
      await cli.waitForLines(3);
      assert.deepEqual(cli.lines, [
        { id: ids[0], event: 'message', data: { a: 1 } },
        { id: ids[1], event: 'message', data: 'two' },
        { id: ids[2], event: 'custom.type', data: null },
      ]);
      assert.equal(await cli.stop('SIGINT'), 0);
      assert.equal(cli.stderr, '');
    });

    test('--from-start and --last-event-id choose where to start', async (t) => {
      const topic = uniqueTopic();
      const ids = await publishAll(topic, ['a', 'b', 'c']);
      const fromStart = await subscriber(t, topic, [...transport, '--from-start']);
      await fromStart.waitForLines(3);
      assert.deepEqual(
        fromStart.lines.map((line) => (line as { id: string }).id),
        ids,
      );
      assert.equal(await fromStart.stop('SIGTERM'), 0);

      await waitFor(() => server.hub.subscriberCount(topic) === 0, 'unsubscribed', PATIENCE_MS);
      const resumed = await subscriber(t, topic, [
        ...transport,
        '--last-event-id',
        ids[1] as string,
      ]);
      await resumed.waitForLines(1);
      assert.deepEqual(resumed.lines, [{ id: ids[2], event: 'message', data: 'c' }]);
      assert.equal(await resumed.stop('SIGTERM'), 0);
    });

    test('resumes by itself when the server ends the stream, without gaps or duplicates', async (t) => {
      const topic = uniqueTopic();
      const cli = await subscriber(t, topic, transport);
      const ids = await publishAll(topic, [1]);
      await cli.waitForLines(1);
      for (let round = 2; round <= 4; round++) {
        server.connections.shutdownAll();
        ids.push(...(await publishAll(topic, [round * 10, round * 10 + 1])));
        await cli.waitForLines(ids.length);
      }
      assert.deepEqual(
        cli.lines.map((line) => (line as { id: string }).id),
        ids,
      );
      assert.match(cli.stderr, /connection closed by the server; reconnecting in \d+ ms/);
      assert.equal(await cli.stop('SIGTERM'), 0);
    });

    test('reports a reset on stderr and prints the replayed events', async (t) => {
      const topic = uniqueTopic();
      const ids = await publishAll(topic, ['a', 'b', 'c', 'd'], small);
      const cli = await subscriber(
        t,
        topic,
        [...transport, '--last-event-id', ids[0] as string],
        small,
      );
      await cli.waitForLines(2);
      assert.deepEqual(
        cli.lines.map((line) => (line as { data: unknown }).data),
        ['c', 'd'],
      );
      assert.match(cli.stderr, new RegExp(`reset \\(history_truncated\\).*${ids[2]}`));
      assert.equal(await cli.stop(), 0);
    });

    test('a refused subscription exits 1 with the server message', async () => {
      const { code, stdout, stderr } = await runCli([
        'subscribe',
        'not a topic',
        '--url',
        server.url,
        ...transport,
      ]);
      assert.equal(code, 1);
      assert.equal(stdout, '');
      assert.match(stderr, /subscribe failed: topic must be .* \(HTTP 400, invalid_topic\)/);
    });
  });
}
