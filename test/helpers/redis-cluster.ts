import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { eventually } from './patience.js';
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
  /**
   * Fails over the master owning `key`'s slot, losing writes: its replica is frozen (SIGSTOP)
   * and cut off while `whileReplicaFrozen` runs, so what the master acknowledges meanwhile
   * never reaches it; then the master is killed (SIGKILL) and the replica takes over (`CLUSTER FAILOVER
   * TAKEOVER`, at once rather than after the node timeout). Resolves once it serves the slot.
   */
  failOver(key: string, whileReplicaFrozen: () => Promise<void>): Promise<void>;
  /** Kills every node and removes their directory. */
  stop(): Promise<void>;
}

/** A plain connection to one node, for cluster commands. */
async function onNode<T>(port: number, use: (node: Redis) => Promise<T>): Promise<T> {
  const node = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
  node.on('error', () => {});
  try {
    return await use(node);
  } finally {
    node.disconnect();
  }
}

/** Resolves once the replica on `replicaPort` has received all its master has written so far. */
async function caughtUp(masterPort: number, replicaPort: number): Promise<void> {
  const [, written] = (await onNode(masterPort, (node) => node.role())) as [string, number];
  await eventually(async () => {
    const role = (await onNode(replicaPort, (node) => node.role())) as unknown[];
    return Number(role[4]) >= written;
  }, `replica ${replicaPort} caught up with its master`);
}

/** The ports of the nodes serving `key`'s slot as node `port` sees them, its master first. */
async function servingNodes(port: number, key: string): Promise<number[]> {
  return onNode(port, async (node) => {
    const slot = (await node.cluster('KEYSLOT', key)) as number;
    const range = (await node.cluster('SLOTS')).find(
      ([start, end]) => start <= slot && slot <= end,
    );
    const [, , ...served] = range ?? [0, 0];
    return served.map(([, servedPort]) => servedPort);
  });
}

/** Whether node `port` is a master. */
const isMaster = (port: number) =>
  onNode(port, async (node) => ((await node.role()) as [string])[0] === 'master').catch(
    () => false,
  );

const nodeArgs = (port: number) => [
  '--cluster-enabled',
  'yes',
  '--cluster-config-file',
  `nodes-${port}.conf`,
  '--appendonly',
  'no',
];

const living = (nodes: readonly Node[]) => nodes.filter((node) => node.child !== undefined);

async function allOk(nodes: readonly Node[]): Promise<void> {
  for (const node of nodes) {
    await eventually(() => clusterOk(node.port), `cluster_state:ok on port ${node.port}`);
  }
}

/**
 * Whether the node on `port` sees every slot served (`cluster_state:ok`) and, if it is a
 * replica, is in sync with its master (so a failover can promote it).
 */
function clusterOk(port: number): Promise<boolean> {
  return onNode(port, async (node) => {
    const [cluster, replication] = await Promise.all([
      node.cluster('INFO') as Promise<string>,
      node.info('replication'),
    ]);
    const synced =
      replication.includes('role:master') || replication.includes('master_link_status:up');
    return cluster.includes('cluster_state:ok') && synced;
  }).catch(() => false);
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
    async failOver(key, whileReplicaFrozen) {
      let serving: number[] = [];
      await eventually(async () => {
        serving = await servingNodes(living(nodes)[0]?.port ?? 0, key);
        return serving.length >= 2;
      }, `a master and a replica serving ${key}`);
      const [masterPort, replicaPort] = serving as [number, number];
      const master = nodes.find((node) => node.port === masterPort);
      const replica = nodes.find((node) => node.port === replicaPort);
      // Only what is written while the replica is frozen may be lost, not what a loaded
      // machine had not yet replicated when it froze.
      await caughtUp(masterPort, replicaPort);
      replica?.child?.kill('SIGSTOP');
      // Frozen, it would still read what reached its socket once thawed: the master drops the
      // link, so that its writes from now on stay in its own backlog.
      await onNode(masterPort, (node) => node.client('KILL', 'TYPE', 'replica'));
      try {
        await whileReplicaFrozen();
      } finally {
        if (master?.child !== undefined) await stopChild(master.child);
        if (master !== undefined) master.child = undefined;
        replica?.child?.kill('SIGCONT');
      }
      await onNode(replicaPort, (node) => node.cluster('FAILOVER', 'TAKEOVER'));
      await eventually(() => isMaster(replicaPort), `node ${replicaPort} promoted`);
      await allOk(living(nodes));
      for (const node of living(nodes)) {
        await eventually(
          async () => (await servingNodes(node.port, key).catch(() => []))[0] === replicaPort,
          `node ${node.port} sees ${replicaPort} serving ${key}`,
        );
      }
    },
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
