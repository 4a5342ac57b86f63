import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
// The tests' cluster fixture, so that bench and tests start a cluster the same way.
import { startRedisCluster } from '../../test/helpers/redis-cluster.js';
import { freePort, HOST, type ServerProcess, startProcess } from './proc.js';

/** What `INFO cpu` and `INFO commandstats` say at one moment. */
export interface RedisStats {
  /** used_cpu_user + used_cpu_sys: the whole redis-server process, like /proc for the servers. */
  cpuMicros: number;
  /** Calls per command (`cmdstat_<name>`), counting commands that Lua scripts run as well. */
  calls: Map<string, number>;
  /**
   * `used_memory`: what Redis holds (data and buffers), not counting allocator overhead, nor
   * what a master keeps for its replicas (`mem_replication_backlog`, `mem_clients_slaves`): its
   * backlog fills up to 1 MB with the first writes, which would pass for data.
   */
  usedMemoryBytes: number;
}

/** Commands clients sent (round trips), as MONITOR sees them; not those that scripts run. */
export interface CommandSample {
  clientCommands: number;
  /** Client commands per command name, e.g. `evalsha` → 212. */
  byCommand: Map<string, number>;
  /** How much the caller's counter (e.g. events published) grew while MONITOR was on. */
  counted: number;
}

/** One redis-server or a Redis Cluster, as a benchmark run needs it. */
export type RedisKind = 'one' | 'cluster';

/** A private Redis for one benchmark run, persisting nothing. */
export interface BenchRedis {
  /** `REDIS_URL` (and `REDIS_CLUSTER`) for the servers under test. */
  readonly env: Record<string, string>;
  /** Every master's figures added up: what the deployment's Redis did. */
  stats(): Promise<RedisStats>;
  /** Each master's figures, in a fixed order: how evenly a cluster shares the load. */
  masterStats(): Promise<RedisStats[]>;
  /**
   * Watches every command on every master with MONITOR for `ms`; costs Redis CPU, so never in
   * a CPU window.
   */
  sampleCommands(ms: number, counter: () => number): Promise<CommandSample>;
  stop(): Promise<void>;
}

/** Our own INFO calls would otherwise count as commands of the system under test. */
const OWN_COMMANDS = new Set(['info', 'monitor']);

function parseInfo(text: string): RedisStats {
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1]);
  const calls = new Map<string, number>();
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    calls.set(m[1] ?? '', Number(m[2]));
  }
  const cpuSeconds = field('used_cpu_user') + field('used_cpu_sys');
  const forReplicas = (field('mem_replication_backlog') || 0) + (field('mem_clients_slaves') || 0);
  const usedMemoryBytes = field('used_memory') - forReplicas;
  return { cpuMicros: cpuSeconds * 1e6, calls, usedMemoryBytes };
}

/** Calls made between two samples, without the bench's own INFO calls. */
export function callsBetween(a: RedisStats, b: RedisStats): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, n] of b.calls) {
    const d = n - (a.calls.get(name) ?? 0);
    if (d > 0 && !OWN_COMMANDS.has(name)) out.set(name, d);
  }
  return out;
}

async function spawnRedis(dir: string): Promise<ServerProcess> {
  // The port is free only "a moment ago": another process may take it before redis binds.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const argv = ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no'];
    try {
      return await startProcess('redis-server', 'redis-server', argv, { port, cwd: dir });
    } catch (e) {
      if (attempt >= 3) throw e;
    }
  }
}

/** `+1700000000.123 [0 127.0.0.1:5678] "evalsha" ...`: source (`lua` inside scripts), command. */
const MONITOR_LINE = /^\+[\d.]+ \[\d+ ([^\]]+)\] "([^"]+)"/;

/**
 * MONITOR over a plain socket: ioredis's monitor mode breaks under load ("Command queue state
 * error") when lines arrive in the same chunk as the OK that enters it. Redis quotes every
 * argument with escapes, so one line is one command. `counter` is read when Redis confirms
 * MONITOR and when we stop reading, so the commands and the count cover the same time.
 */
function sampleCommands(port: number, ms: number, counter: () => number): Promise<CommandSample> {
  const sample: CommandSample = { clientCommands: 0, byCommand: new Map(), counted: 0 };
  let start: number | undefined;
  const count = (line: string) => {
    if (start === undefined && line === '+OK') start = counter();
    const m = MONITOR_LINE.exec(line);
    const name = m?.[2]?.toLowerCase();
    if (m?.[1] === 'lua' || name === undefined || OWN_COMMANDS.has(name)) return;
    sample.clientCommands++;
    sample.byCommand.set(name, (sample.byCommand.get(name) ?? 0) + 1);
  };
  return new Promise((resolve, reject) => {
    const socket = connect(port, HOST, () => socket.write('MONITOR\r\n'));
    let rest = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\r\n');
      rest = lines.pop() ?? '';
      for (const line of lines) count(line);
    });
    socket.once('error', reject);
    setTimeout(() => {
      socket.destroy();
      sample.counted = counter() - (start ?? counter());
      resolve(sample);
    }, ms);
  });
}

/** Adds up the figures of several masters. */
export function sumStats(list: readonly RedisStats[]): RedisStats {
  const calls = new Map<string, number>();
  for (const stats of list) {
    for (const [name, n] of stats.calls) calls.set(name, (calls.get(name) ?? 0) + n);
  }
  const sum = (field: (stats: RedisStats) => number) =>
    list.reduce((total, stats) => total + field(stats), 0);
  return {
    cpuMicros: sum((s) => s.cpuMicros),
    calls,
    usedMemoryBytes: sum((s) => s.usedMemoryBytes),
  };
}

/** MONITOR on every master at once; they see the same window, so the first count stands. */
async function sampleMasters(
  ports: readonly number[],
  ms: number,
  counter: () => number,
): Promise<CommandSample> {
  const samples = await Promise.all(ports.map((port) => sampleCommands(port, ms, counter)));
  const byCommand = new Map<string, number>();
  for (const sample of samples) {
    for (const [name, n] of sample.byCommand) byCommand.set(name, (byCommand.get(name) ?? 0) + n);
  }
  const clientCommands = samples.reduce((total, sample) => total + sample.clientCommands, 0);
  return { clientCommands, byCommand, counted: samples[0]?.counted ?? 0 };
}

interface Master {
  port: number;
  client: Redis;
}

const info = async (master: Master) =>
  parseInfo(String(await master.client.call('INFO', 'cpu', 'commandstats', 'memory')));

function benchRedis(
  env: Record<string, string>,
  masters: readonly Master[],
  stop: () => Promise<void>,
): BenchRedis {
  const masterStats = () => Promise.all(masters.map(info));
  return {
    env,
    masterStats,
    stats: async () => sumStats(await masterStats()),
    sampleCommands: (ms, counter) =>
      sampleMasters(
        masters.map((m) => m.port),
        ms,
        counter,
      ),
    stop,
  };
}

/**
 * Three masters with a replica each, like the tests' cluster. The figures are the masters':
 * they run the commands; a replica only applies what its master sends it.
 */
async function startCluster(): Promise<BenchRedis> {
  const servers = await startRedisCluster();
  try {
    const cluster = await servers.client();
    const masters = cluster.nodes('master').map((client) => ({
      port: Number(client.options.port),
      client,
    }));
    if (masters.length !== 3)
      throw new Error(`expected 3 masters, the client sees ${masters.length}`);
    const env = { REDIS_URL: servers.url, REDIS_CLUSTER: 'true' };
    return benchRedis(env, masters, () => servers.stop());
  } catch (error) {
    await servers.stop();
    throw error;
  }
}

async function startOne(): Promise<BenchRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'streamhub-bench-redis-'));
  const proc = await spawnRedis(dir).catch(async (e: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw e;
  });
  const url = `redis://${HOST}:${proc.port}`;
  const client = new Redis(url, { lazyConnect: true });
  client.on('error', () => {}); // a refused command rejects its promise; no crash on stop
  await client.connect();
  return benchRedis({ REDIS_URL: url }, [{ port: proc.port, client }], async () => {
    client.disconnect();
    await proc.stop();
    await rm(dir, { recursive: true, force: true });
  });
}

/** A fresh Redis of `kind` for one run. */
export const startBenchRedis = (kind: RedisKind): Promise<BenchRedis> =>
  kind === 'one' ? startOne() : startCluster();
