import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { RunningServer } from '../../src/server/server.js';
import { publish, startTestServer, waitFor } from '../helpers/server.js';
import { RawSseClient } from '../helpers/sse-client.js';

let server: RunningServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.shutdown());

test('an SSE subscriber receives a published event with its id', async () => {
  const client = new RawSseClient(`${server.url}/v1/topics/smoke/events`);
  await client.opened;
  await waitFor(() => server.hub.subscriberCount('smoke') === 1, 'subscription');
  const published = await publish(server.url, 'smoke', { n: 1 });
  await waitFor(() => client.events.length === 1, 'event');
  assert.deepEqual(client.events[0], { id: published.id, event: 'message', data: '{"n":1}' });
  client.close();
});
