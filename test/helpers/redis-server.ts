import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { PATIENCE_MS } from './patience.js';
import { killedOnExit } from './process.js';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** Kills the server (like a crash) and removes its directory: its data is gone. */
  stop(): Promise<void>;
  /**
   * Starts it again on the same port; stops it first if it is running (as `halt()` does).
   * It comes back empty, or with its data when started with `persist`.
   */
  restart(): Promise<void>;
  /**
   * Stops the server until `start()`: with `persist` by SIGTERM, so it writes its append-only
   * file and exits cleanly; otherwise it is killed and its data is gone.
   */
  halt(): Promise<void>;
  /** Starts a halted server again on the same port (a no-op while it runs). */
  start(): Promise<void>;
  flushAll(): Promise<void>;
  /** A plain client for inspecting the server; closed by `stop()`. */
  client(): Promise<Redis>;
}

export interface RedisOptions {
  /**
   * Persist every write (`--appendonly yes --appendfsync always`) so that data survives
   * `halt()`/`restart()`. Default: nothing is persisted.
   */
  readonly persist?: boolean;
}

/** A port that was free a moment ago; a server failing to bind is retried by the caller. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address !== null
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

/**
 * Whether the redis-server with process id `pid` answers on `port`: a port chosen free a moment
 * ago may have been taken meanwhile by another process's server, which must not pass for ours.
 */
async function answers(port: number, pid: number | undefined): Promise<boolean> {
  const probe = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  probe.on('error', () => {});
  try {
    await probe.connect();
    return (await probe.info('server')).includes(`process_id:${pid}\r\n`);
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

function persistence(persist: boolean): string[] {
  return persist ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
}

/** A redis-server in `dir` with `args` beside its port, once it answers there. */
export async function spawnRedisServer(
  port: number,
  dir: string,
  args: readonly string[],
): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...args],
    { cwd: dir, stdio: 'ignore' },
  );
  killedOnExit(child);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const deadline = Date.now() + PATIENCE_MS;
  while (Date.now() < deadline && !exited) {
    if (await answers(port, child.pid)) return child;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server did not answer on port ${port}`);
}

export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

/** A redis-server on a free port, trying other ports if one was taken meanwhile. */
export async function startOnFreePort(
  dir: string,
  args: (port: number) => readonly string[],
): Promise<{ port: number; child: ChildProcess }> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    try {
      return { port, child: await spawnRedisServer(port, dir, args(port)) };
    } catch (error) {
      if (attempt >= 4) throw error;
    }
  }
}

/**
 * Starts a private redis-server on a free port in a temp directory, persisting nothing unless
 * `persist` is set.
 */
export async function startRedis({ persist = false }: RedisOptions = {}): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'streamhub-redis-'));
  const { port, child } = await startOnFreePort(dir, () => persistence(persist));
  let current: ChildProcess | undefined = child;
  const clients: Redis[] = [];
  const url = `redis://127.0.0.1:${port}`;
  const halt = async () => {
    if (current !== undefined) await stopChild(current, persist ? 'SIGTERM' : 'SIGKILL');
    current = undefined;
  };
  const start = async () => {
    if (current !== undefined) return;
    await mkdir(dir, { recursive: true });
    current = await spawnRedisServer(port, dir, persistence(persist));
  };
  return {
    url,
    port,
    async stop() {
      for (const client of clients.splice(0)) client.disconnect();
      if (current !== undefined) await stopChild(current);
      current = undefined;
      await rm(dir, { recursive: true, force: true });
    },
    async restart() {
      await halt();
      await start();
    },
    halt,
    start,
    async flushAll() {
      const client = new Redis(url);
      try {
        await client.flushall();
      } finally {
        client.disconnect();
      }
    },
    async client() {
      const client = new Redis(url);
      client.on('error', () => {});
      clients.push(client);
      await client.ping();
      return client;
    },
  };
}
