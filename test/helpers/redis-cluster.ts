import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { eventually } from './http.js';
import { spawnRedisServer, startOnFreePort, stopChild } from './redis-server.js';

const run = promisify(execFile);

/** Three masters, each with one replica: the smallest cluster that survives losing a master. */
const NODES = 6;

interface Node {
  readonly port: number;
  child: ChildProcess | undefined;
}

/** A private Redis Cluster of real redis-server processes on free ports. */
export interface RedisClusterServers {
  /** Every node as a comma-separated list of URLs: `REDIS_URL` for `REDIS_CLUSTER=true`. */
  readonly url: string;
  /** A cluster client for inspecting the cluster; closed by `stop()`. */
  client(): Promise<Cluster>;
  /** Kills every node (an outage of the whole cluster): their data is gone. */
  halt(): Promise<void>;
  /**
   * Starts halted nodes again on their ports; they remember the cluster from their config
   * files. Resolves once every node says the cluster is ok.
   */
  start(): Promise<void>;
  /** Kills every node and removes their directory. */
  stop(): Promise<void>;
}

const nodeArgs = (port: number) => [
  '--cluster-enabled',
  'yes',
  '--cluster-config-file',
  `nodes-${port}.conf`,
  '--appendonly',
  'no',
];

async function allOk(nodes: readonly Node[]): Promise<void> {
  for (const node of nodes) {
    await eventually(() => clusterOk(node.port), `cluster_state:ok on port ${node.port}`);
  }
}

/** Whether the node on `port` sees every slot served (`cluster_state:ok`). */
async function clusterOk(port: number): Promise<boolean> {
  const probe = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    retryStrategy: () => null,
  });
  probe.on('error', () => {});
  try {
    const info = (await probe.cluster('INFO')) as string;
    return info.includes('cluster_state:ok');
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/**
 * Starts three masters and three replicas (`redis-cli --cluster create`, which gives the first
 * three the slots), persisting nothing, and resolves once every node says the cluster is ok.
 */
export async function startRedisCluster(): Promise<RedisClusterServers> {
  const dir = await mkdtemp(join(tmpdir(), 'streamhub-redis-cluster-'));
  const started = await Promise.allSettled(
    Array.from({ length: NODES }, () => startOnFreePort(dir, nodeArgs)),
  );
  const nodes: Node[] = started.flatMap((result) =>
    result.status === 'fulfilled' ? [{ ...result.value }] : [],
  );
  const halt = async () => {
    await Promise.all(nodes.map((node) => node.child && stopChild(node.child)));
    for (const node of nodes) node.child = undefined;
  };
  const clients: Cluster[] = [];
  const url = nodes.map((node) => `redis://127.0.0.1:${node.port}`).join(',');
  const servers: RedisClusterServers = {
    url,
    async client() {
      const client = new Cluster(url.split(','));
      client.on('error', () => {});
      clients.push(client);
      await client.ping();
      return client;
    },
    halt,
    async start() {
      await Promise.all(
        nodes.map(async (node) => {
          node.child ??= await spawnRedisServer(node.port, dir, nodeArgs(node.port));
        }),
      );
      await allOk(nodes);
    },
    async stop() {
      for (const client of clients.splice(0)) client.disconnect();
      await halt();
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    const failed = started.find((result) => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    const addresses = nodes.map((node) => `127.0.0.1:${node.port}`);
    await run('redis-cli', [
      '--cluster',
      'create',
      ...addresses,
      '--cluster-replicas',
      '1',
      '--cluster-yes',
    ]);
    await allOk(nodes);
  } catch (error) {
    await servers.stop();
    throw error;
  }
  return servers;
}
