import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { after, before } from 'node:test';
import { PATIENCE_MS } from './patience.js';
import { CLI, killedOnExit } from './process.js';
import { freePort, type RedisOptions, type RedisServer, startRedis } from './redis-server.js';

/** How much of each process's output is kept for failure messages. */
const OUTPUT_TAIL_CHARS = 8000;

/**
 * Several `streamhub serve` processes, each on a port of its own that it keeps across
 * restarts, so clients can reconnect to the same URL.
 */
export interface Cluster {
  /** `http://127.0.0.1:<port>` of each process, by index. */
  readonly urls: readonly string[];
  /** Sends `signal` to process `index` and waits until it has exited. */
  kill(index: number, signal?: NodeJS.Signals): Promise<void>;
  /** Sends `signal` to process `index` without waiting, e.g. SIGSTOP and SIGCONT to freeze it. */
  signal(index: number, signal: NodeJS.Signals): void;
  /** Starts process `index` again on its port (killing it first if it runs) and waits until it
   *  answers `/healthz`. */
  restart(index: number): Promise<void>;
  /** Processes that exited without being told to (crashes), with their output. */
  readonly crashes: readonly string[];
  /** Kills every process; safe to call more than once. */
  stop(): Promise<void>;
}

interface Member {
  readonly index: number;
  readonly port: number;
  child: ChildProcess | undefined;
  output: string;
  /** Set while the cluster itself stops the process, so its exit is not a crash. */
  stopping: boolean;
  /** Set once the process answers on its port: an exit before is a failed start, not a crash. */
  started: boolean;
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Whether process `pid` holds the listening socket of `port` (Linux): a port chosen free a
 * moment ago may have been taken meanwhile by another process's server, which must not pass
 * for ours.
 */
function listensOn(pid: number | undefined, port: number): boolean {
  const local = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const listening = new Set(
    readFileSync('/proc/net/tcp', 'utf8')
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      // Fields: sl, local address, remote address, state (0A: LISTEN), ..., inode (10th).
      .filter((fields) => fields[1]?.endsWith(local) && fields[3] === '0A')
      .map((fields) => `socket:[${fields[9]}]`),
  );
  try {
    const fds = readdirSync(`/proc/${pid}/fd`);
    return fds.some((fd) => listening.has(readlinkSync(`/proc/${pid}/fd/${fd}`)));
  } catch {
    return false; // gone, or a descriptor closed while being read: asked again shortly
  }
}

async function healthy(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

/** Spawns a member's process and resolves once it answers `/healthz`. */
async function launch(
  member: Member,
  env: Record<string, string>,
  crashes: string[],
): Promise<void> {
  const url = `http://127.0.0.1:${member.port}`;
  const child = spawn(process.execPath, [CLI, 'serve', '--port', String(member.port)], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  member.child = child;
  member.stopping = false;
  member.started = false;
  killedOnExit(child);
  const record = (chunk: string) => {
    member.output = (member.output + chunk).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.setEncoding('utf8').on('data', record);
  child.stderr?.setEncoding('utf8').on('data', record);
  child.once('exit', (code, signal) => {
    if (member.started && !member.stopping) {
      crashes.push(
        `process ${member.index} (${url}) exited (${code ?? signal}):\n${member.output}`,
      );
    }
  });
  // A loaded machine has been seen taking 12 s to start one process: the shared patience.
  const deadline = Date.now() + PATIENCE_MS;
  while (!((await healthy(url)) && listensOn(child.pid, member.port))) {
    if (exited(child) || Date.now() > deadline) {
      member.stopping = true;
      child.kill('SIGKILL');
      throw new Error(`streamhub on port ${member.port} did not start:\n${member.output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  member.started = true;
}

function terminate(member: Member, signal: NodeJS.Signals): Promise<void> {
  const child = member.child;
  member.child = undefined;
  if (child === undefined || exited(child)) return Promise.resolve();
  member.stopping = true;
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

/**
 * Starts `count` streamhub processes (LOG_LEVEL=warn unless `env` says otherwise) on free
 * ports, in parallel; resolves once every one answers `/healthz`.
 */
export async function startCluster(count: number, env: Record<string, string>): Promise<Cluster> {
  const crashes: string[] = [];
  const members: Member[] = [];
  const startMember = async (index: number) => {
    for (let attempt = 0; ; attempt++) {
      const member: Member = {
        index,
        port: await freePort(),
        child: undefined,
        output: '',
        stopping: false,
        started: false,
      };
      try {
        await launch(member, env, crashes);
        return member;
      } catch (error) {
        // The port may have been taken between choosing it and binding it.
        if (attempt >= 2) throw error;
      }
    }
  };
  const started = await Promise.allSettled(Array.from({ length: count }, (_, i) => startMember(i)));
  for (const result of started) if (result.status === 'fulfilled') members.push(result.value);
  let stopped = false;
  const cluster: Cluster = {
    urls: members.map((member) => `http://127.0.0.1:${member.port}`),
    crashes,
    kill: (index, signal = 'SIGKILL') => terminate(memberAt(members, index), signal),
    signal(index, signal) {
      memberAt(members, index).child?.kill(signal);
    },
    async restart(index) {
      const member = memberAt(members, index);
      await terminate(member, 'SIGKILL');
      // A test that failed half-way must not bring back a process once the cluster is stopped.
      if (stopped) throw new Error('the cluster is stopped');
      await launch(member, env, crashes);
    },
    async stop() {
      stopped = true;
      await Promise.all(members.map((member) => terminate(member, 'SIGKILL')));
    },
  };
  const failure = started.find((result) => result.status === 'rejected');
  if (failure !== undefined) {
    await cluster.stop();
    throw failure.reason;
  }
  return cluster;
}

function memberAt(members: readonly Member[], index: number): Member {
  const member = members[index];
  if (member === undefined) throw new RangeError(`no process ${index} in the cluster`);
  return member;
}

/** What the tests do to the Redis under the processes: one server, or a cluster of them. */
export type RedisServers = Pick<RedisServer, 'url' | 'halt' | 'start' | 'stop'>;

export interface RedisCluster<R extends RedisServers = RedisServer> {
  readonly redis: R;
  readonly cluster: Cluster;
}

/**
 * For the enclosing block: a private redis-server and `count` streamhub processes with
 * BACKEND=redis on it, started before the tests and stopped after them, whatever happened.
 * The `after` hook fails if a process crashed (exited without being told to).
 */
export function useRedisCluster(
  count: number,
  env: Record<string, string>,
  redisOptions: RedisOptions = {},
): () => RedisCluster {
  return useStreamhubOn(() => startRedis(redisOptions), count, env);
}

/** As `useRedisCluster`, on the Redis `startRedisServers` starts (e.g. a Redis Cluster). */
export function useStreamhubOn<R extends RedisServers>(
  startRedisServers: () => Promise<R>,
  count: number,
  env: Record<string, string>,
): () => RedisCluster<R> {
  let redis: R | undefined;
  let cluster: Cluster | undefined;
  before(async () => {
    redis = await startRedisServers();
    cluster = await startCluster(count, { BACKEND: 'redis', REDIS_URL: redis.url, ...env });
  });
  after(async () => {
    const crashes = [...(cluster?.crashes ?? [])];
    await cluster?.stop();
    await redis?.stop();
    if (crashes.length > 0) throw new Error(`streamhub crashed:\n${crashes.join('\n')}`);
  });
  return () => {
    if (redis === undefined || cluster === undefined) throw new Error('cluster not started');
    return { redis, cluster };
  };
}
