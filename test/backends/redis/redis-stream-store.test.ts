import { after } from 'node:test';
import { RedisConnection } from '../../../src/backends/redis/connection.js';
import { RedisStreamStore } from '../../../src/backends/redis/redis-stream-store.js';
import { streamStoreContract } from '../stream-store-contract.js';
import { uniquePrefix, useRedis } from './harness.js';

const redis = useRedis();
const connections: RedisConnection[] = [];
after(() => Promise.all(connections.map((connection) => connection.close())));

streamStoreContract('redis', {
  create: async ({ ttlMs }) => {
    const connection = new RedisConnection({ url: redis().url });
    connections.push(connection);
    return new RedisStreamStore({ connection, keyPrefix: uniquePrefix(), ttlMs });
  },
});
