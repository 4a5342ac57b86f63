import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** Kills the server (like a crash); its data is gone, as nothing is persisted. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty; stops it first if it is running. */
  restart(): Promise<void>;
  flushAll(): Promise<void>;
  /** A plain client for inspecting the server; closed by `stop()`. */
  client(): Promise<Redis>;
}

/** A port that was free a moment ago; redis-server failing to bind is retried by the caller. */
function freePort(): Promise<number> {
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

const running = new Set<ChildProcess>();
// A crashed test run must not leave servers behind.
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

async function ping(port: number): Promise<boolean> {
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
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

async function spawnServer(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { cwd: dir, stdio: 'ignore' },
  );
  running.add(child);
  let exited = false;
  child.once('exit', () => {
    exited = true;
    running.delete(child);
  });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && !exited) {
    if (await ping(port)) return child;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server did not answer on port ${port}`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Starts a private redis-server on a free port, persisting nothing, in a temp directory. */
export async function startRedis(): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'streamhub-redis-'));
  let port = 0;
  let child: ChildProcess | undefined;
  for (let attempt = 0; child === undefined; attempt++) {
    port = await freePort();
    try {
      child = await spawnServer(port, dir);
    } catch (error) {
      if (attempt >= 4) throw error;
    }
  }
  let current: ChildProcess | undefined = child;
  const clients: Redis[] = [];
  const url = `redis://127.0.0.1:${port}`;
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
      if (current !== undefined) await stopChild(current);
      current = undefined;
      await mkdir(dir, { recursive: true });
      current = await spawnServer(port, dir);
    },
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
