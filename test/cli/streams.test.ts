import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { RunningServer } from '../../src/server/server.js';
import { uniqueStreamId, waitForStream } from '../client/harness.js';
import { startTestServer } from '../helpers/server.js';
import { Cli, PATIENCE_MS, runCli } from './cli.js';

const BOUNDED = { timeout: PATIENCE_MS };

let server: RunningServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.shutdown());

interface Line {
  readonly id: string;
  readonly event: string;
  readonly data: string;
}

test(
  'produce streams stdin in as it comes; read prints each event as it is stored',
  BOUNDED,
  async () => {
    const id = uniqueStreamId('cli-stream');
    const producer = new Cli(
      ['produce', id, '--type', 'ndjson', '--url', server.url],
      {},
      {
        stdin: true,
      },
    );
    producer.child.stdin?.write('{"n":1}\n');
    await waitForStream(server.url, id);
    const reader = new Cli(['read', id, '--url', server.url]);
    await reader.waitForLines(1);
    producer.child.stdin?.write('{"n":2}\n{"n":3}\n');
    await reader.waitForLines(3);
    producer.child.stdin?.end();
    assert.equal((await producer.exited).code, 0);
    assert.equal((await reader.exited).code, 0);
    const lines = reader.lines as Line[];
    assert.deepEqual(
      lines.map(({ event, data }) => ({ event, data })),
      [1, 2, 3].map((n) => ({ event: 'message', data: `{"n":${n}}` })),
    );
    const answer = JSON.parse(producer.stdout);
    assert.deepEqual(answer, { id, events: 3, last_event_id: lines[2]?.id });
  },
);

test(
  'read resumes after --last-event-id, and reports a stream that did not complete',
  BOUNDED,
  async () => {
    const id = uniqueStreamId('cli-stream');
    const producer = new Cli(['produce', id, '--url', server.url], {}, { stdin: true });
    producer.child.stdin?.write('first chunk');
    await waitForStream(server.url, id);
    const first = new Cli(['read', id, '--url', server.url]);
    await first.waitForLines(1);
    const [{ id: firstId }] = first.lines as [Line];
    // The producer dies before its input ends: the stream ends as producer_lost.
    producer.child.kill('SIGKILL');
    assert.equal((await first.exited).code, 1);
    assert.match(first.stderr, /producer_lost/);
    const rest = await runCli(['read', id, '--last-event-id', firstId, '--url', server.url]);
    assert.equal(rest.code, 1);
    assert.equal(rest.stdout, '');
    assert.match(rest.stderr, /read failed: producer_lost/);
  },
);

test(
  'produce reports a refusal with exit status 1, and refuses an unknown --type',
  BOUNDED,
  async () => {
    const id = uniqueStreamId('cli-stream');
    const producer = new Cli(['produce', id, '--url', server.url], {}, { stdin: true });
    producer.child.stdin?.write('open');
    await waitForStream(server.url, id);
    const second = await runCli(['produce', id, '--url', server.url]);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /produce failed: .*\(HTTP 409, stream_exists\)/);
    producer.child.stdin?.end();
    assert.equal((await producer.exited).code, 0);
    const badType = await runCli(['produce', id, '--type', 'xml']);
    assert.notEqual(badType.code, 0);
    assert.match(badType.stderr, /Allowed choices are text, ndjson, sse/);
  },
);
