import { after, before } from 'node:test';
import {
  RedisEventLog,
  type RedisEventLogOptions,
} from '../../../src/backends/redis/redis-event-log.js';
import {
  RedisSessionStore,
  type RedisSessionStoreOptions,
} from '../../../src/backends/redis/redis-session-store.js';
import { PATIENCE_MS } from '../../helpers/patience.js';
import { type RedisClusterServers, startRedisCluster } from '../../helpers/redis-cluster.js';
import { type RedisServer, startRedis } from '../../helpers/redis-server.js';

/**
 * Servers of the test file's own, started before its tests and stopped after them, once every
 * log they opened is closed.
 */
function useServers<T extends { stop(): Promise<void> }>(start: () => Promise<T>): () => T {
  let servers: T | undefined;
  before(async () => {
    servers = await start();
  });
  after(async () => {
    await closeAllLogs();
    await servers?.stop();
  });
  return () => servers as T;
}

/** A redis-server of the test file's own. */
export const useRedis = (): (() => RedisServer) => useServers(() => startRedis());

/** A Redis Cluster (three masters, three replicas) of the test file's own. */
export const useRedisClusterServers = (): (() => RedisClusterServers) =>
  useServers(startRedisCluster);

let logs = 0;
const open = new Set<{ close(): Promise<void> }>();

/** A key prefix no other log of this run uses, so tests never see each other's topics. */
export function uniquePrefix(): string {
  return `test${process.pid}x${++logs}`;
}

/** Closes `closable` with the logs, before the servers stop. */
export function closedAfterTests<T extends { close(): Promise<void> }>(closable: T): T {
  open.add(closable);
  return closable;
}

export function createSessionStore(
  url: string,
  options: Partial<RedisSessionStoreOptions> = {},
): RedisSessionStore {
  const store = new RedisSessionStore({
    url,
    keyPrefix: uniquePrefix(),
    ttlMs: 60_000,
    maxMessages: 100,
    leaseMs: 10_000,
    ...options,
  });
  open.add(store);
  return store;
}

export function createLog(url: string, options: Partial<RedisEventLogOptions> = {}): RedisEventLog {
  const log = new RedisEventLog({
    url,
    keyPrefix: uniquePrefix(),
    maxEvents: 1000,
    ttlMs: 60_000,
    idempotencyTtlMs: 60_000,
    ...options,
  });
  open.add(log);
  return log;
}

/**
 * Closes every log and store a test left open (e.g. because it failed half-way): a client still
 * reconnecting to a stopped server would keep the test process alive forever.
 */
export async function closeAllLogs(): Promise<void> {
  await Promise.all([...open].map((log) => log.close()));
  open.clear();
}

export const input = (n: number) => ({ event: 'message', data: JSON.stringify({ n }) });

export function waitFor(condition: () => boolean, timeoutMs = PATIENCE_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const check = () => {
      if (condition()) resolve();
      else if (Date.now() > deadline) reject(new Error('condition not met in time'));
      else setTimeout(check, 10);
    };
    check();
  });
}
