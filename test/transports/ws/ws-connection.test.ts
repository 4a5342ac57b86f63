import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { afterEach, describe, test } from 'node:test';
import type { RunningServer } from '../../../src/server/server.js';
import {
  allHistoryIds,
  metricsText,
  metricValue,
  publishMany,
  uniqueTopic,
} from '../../helpers/http.js';
import { type Settings, startTestServer, waitFor } from '../../helpers/server.js';
import { rawUpgradedSocket, WsClientPool, wsUrl } from '../../helpers/ws-client.js';

const pool = new WsClientPool();
const servers: RunningServer[] = [];
const rawSockets: Socket[] = [];

afterEach(async () => {
  pool.closeAll();
  for (const socket of rawSockets.splice(0)) socket.destroy();
  await Promise.all(servers.splice(0).map((server) => server.shutdown()));
});

async function serverWith(settings: Settings): Promise<RunningServer> {
  const server = await startTestServer(settings);
  servers.push(server);
  return server;
}

/** A sample of /metrics; an unlabelled-yet counter reads as 0. */
async function metric(server: RunningServer, name: string, transport: string): Promise<number> {
  return metricValue(await metricsText(server.url), name, { transport }) ?? 0;
}

/** Polls /metrics until the open WebSocket count is `count`. */
async function wsConnectionsReach(server: RunningServer, count: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const open = await metric(server, 'streamhub_connections', 'ws');
    if (open === count) return;
    if (Date.now() > deadline) {
      throw new Error(`streamhub_connections{transport="ws"} stayed ${open}, wanted ${count}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('protocol heartbeat', () => {
  test('with HEARTBEAT_MS=50 a client receives protocol pings', async () => {
    const server = await serverWith({ HEARTBEAT_MS: '50' });
    const client = await pool.connect(wsUrl(server.url, '/v1/ws'));
    await waitFor(() => client.pings >= 3, '3 protocol pings', 15_000);
  });

  test('with HEARTBEAT_MS=50 a client that stops answering pings is terminated and no longer counted', async () => {
    const server = await serverWith({ HEARTBEAT_MS: '50' });
    const topic = uniqueTopic('hb.silent');
    const silent = await pool.connect(wsUrl(server.url, `/v1/topics/${topic}/ws`), {
      autoPong: false,
    });
    await waitFor(() => server.hub.subscriberCount(topic) === 1, 'the silent subscription');

    const close = await silent.waitForClose(15_000);
    assert.equal(close.code, 1006, 'terminated, not closed with a handshake');
    assert.ok(silent.pings >= 1, 'it was pinged before being dropped');
    await wsConnectionsReach(server, 0);
    await waitFor(() => server.hub.subscriberCount(topic) === 0, 'subscription released');
  });

  // A longer interval here: the peer must answer within one interval, and on a loaded machine
  // the test process (client and server in one event loop) can stall for tens of milliseconds.
  test('a client that answers pings stays connected and served over many intervals', async () => {
    const server = await serverWith({ HEARTBEAT_MS: '300' });
    const topic = uniqueTopic('hb.healthy');
    const healthy = await pool.connect(wsUrl(server.url, '/v1/ws'));
    await healthy.subscribe(topic);
    const silent = await pool.connect(wsUrl(server.url, '/v1/ws'), { autoPong: false });
    await silent.waitForClose(15_000);
    await waitFor(() => healthy.pings >= 4, '4 protocol pings', 15_000);
    assert.ok(healthy.open);
    await wsConnectionsReach(server, 1);
    const reply = await healthy.request({ type: 'publish', topic, data: 'alive' });
    await healthy.waitForEvents(topic, 1);
    assert.deepEqual(healthy.ids(topic), [reply.id]);
  });
});

describe('slow consumers (SLOW_CONSUMER_MAX_BYTES=262144)', () => {
  test('stalled subscribers are dropped and counted while a reading one on the topic gets all ~20 MB', async () => {
    const server = await serverWith({ SLOW_CONSUMER_MAX_BYTES: '262144' });
    const topic = uniqueTopic('slow');
    // The reader takes frames uncompressed: inflating 15 MB in this same busy process would make
    // it a slow consumer too.
    const reader = await pool.connect(wsUrl(server.url, `/v1/topics/${topic}/ws`), {
      perMessageDeflate: false,
    });
    // One stalled peer per route: a hand-made handshake that never reads a byte, and a `ws`
    // client that subscribes on the multiplexed socket and then stops reading.
    rawSockets.push(await rawUpgradedSocket(server.url, `/v1/topics/${topic}/ws`));
    const stalled = await pool.connect(wsUrl(server.url, '/v1/ws'));
    await stalled.subscribe(topic);
    stalled.stopReading();
    await waitFor(() => server.hub.subscriberCount(topic) === 3, 'three subscriptions');
    await wsConnectionsReach(server, 3);

    // Incompressible: permessage-deflate must not shrink what the stalled peers are sent.
    const pad = randomBytes(37_500).toString('base64');
    await publishMany(server.url, topic, 400, { concurrency: 2, data: (n) => ({ n, pad }) });

    await wsConnectionsReach(server, 1);
    await waitFor(() => server.hub.subscriberCount(topic) === 1, 'stalled subscriptions released');
    assert.equal(await metric(server, 'streamhub_slow_consumers_dropped_total', 'ws'), 2);
    assert.equal(await metric(server, 'streamhub_slow_consumers_dropped_total', 'sse'), 0);

    await reader.waitForEvents(topic, 400, 30_000);
    assert.ok(reader.open, 'the reading subscriber was not dropped');
    assert.deepEqual(reader.ids(topic), await allHistoryIds(server.url, topic));
    assert.deepEqual(
      reader
        .events(topic)
        .map((event) => (event.data as { n: number }).n)
        .sort((a, b) => a - b),
      Array.from({ length: 400 }, (_, n) => n),
    );
  });
});
