/**
 * The Redis backend on a real Redis Cluster (three masters, three replicas): the same contracts
 * as on one server, with topics, sessions and streams spread over every master.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RedisConnection } from '../../../src/backends/redis/connection.js';
import { RedisStreamStore } from '../../../src/backends/redis/redis-stream-store.js';
import { eventually } from '../../helpers/http.js';
import { eventLogContract } from '../event-log-contract.js';
import { sessionStoreContract } from '../session-store-contract.js';
import { streamStoreContract } from '../stream-store-contract.js';
import {
  closedAfterTests,
  createLog,
  createSessionStore,
  input,
  uniquePrefix,
  useRedisClusterServers,
} from './harness.js';

const cluster = useRedisClusterServers();
const clusterConnection = () =>
  closedAfterTests(new RedisConnection({ url: cluster().url, cluster: true }));

/** Resolves once `count` connections subscribe to `channel` on the master owning its slot. */
async function listening(channel: string, count: number): Promise<void> {
  const client = await cluster().client();
  await eventually(async () => {
    const counts = await Promise.all(
      client
        .nodes('master')
        .map((node) => node.pubsub('SHARDNUMSUB', channel) as Promise<[string, number]>),
    );
    return counts.reduce((sum, [, subscribers]) => sum + subscribers, 0) === count;
  }, `${count} subscribers of ${channel}`);
}

// First, while this is the only connection subscribing.
test('topics spread over every master, each process holding one subscriber per master', async () => {
  const connection = clusterConnection();
  const log = createLog(cluster().url, { connection, keyPrefix: uniquePrefix() });
  const topics = Array.from({ length: 30 }, (_, n) => `topic-${n}`);
  const stops = await Promise.all(topics.map((topic) => log.watch(topic, () => {})));
  await Promise.all(topics.map((topic) => log.append(topic, input(1))));
  const client = await cluster().client();
  const masters = client.nodes('master');
  const keysPerMaster = await Promise.all(masters.map((node) => node.dbsize()));
  assert.ok(
    keysPerMaster.every((keys) => keys > 0),
    `keys per master: ${keysPerMaster}`,
  );
  // Per master: the commands' connection and the sharded subscriber, never one per topic.
  const subscribers = await Promise.all(
    masters.map(async (node) => {
      const list = (await node.client('LIST')) as string;
      return list.split('\n').filter((line) => line.includes('cmd=ssubscribe')).length;
    }),
  );
  assert.deepEqual(subscribers, [1, 1, 1]);
  for (const stop of stops) stop();
});

eventLogContract('redis cluster', {
  create: async ({ maxEvents, ttlMs }) =>
    createLog(cluster().url, { maxEvents, ttlMs, cluster: true }),
});

sessionStoreContract('redis cluster', {
  create: async ({ maxMessages }) => {
    const keyPrefix = uniquePrefix();
    const store = createSessionStore(cluster().url, { keyPrefix, maxMessages, cluster: true });
    await listening(`${keyPrefix}:signals`, 1);
    return store;
  },
});

streamStoreContract('redis cluster', {
  create: async ({ ttlMs }) =>
    new RedisStreamStore({ connection: clusterConnection(), keyPrefix: uniquePrefix(), ttlMs }),
});
