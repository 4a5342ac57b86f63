import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, HOST, type ServerProcess, startProcess } from './proc.js';

/** What `INFO cpu` and `INFO commandstats` say at one moment. */
export interface RedisStats {
  /** used_cpu_user + used_cpu_sys: the whole redis-server process, like /proc for the servers. */
  cpuMicros: number;
  /** Calls per command (`cmdstat_<name>`), counting commands that Lua scripts run as well. */
  calls: Map<string, number>;
  /** `used_memory`: what Redis holds (data and buffers), not counting allocator overhead. */
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

/** A private redis-server for one benchmark run, persisting nothing. */
export interface BenchRedis {
  readonly url: string;
  stats(): Promise<RedisStats>;
  /** Watches every command with MONITOR for `ms`; costs Redis CPU, so never in a CPU window. */
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
  return { cpuMicros: cpuSeconds * 1e6, calls, usedMemoryBytes: field('used_memory') };
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

export async function startRedis(): Promise<BenchRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'streamhub-bench-redis-'));
  const proc = await spawnRedis(dir).catch(async (e: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw e;
  });
  const url = `redis://${HOST}:${proc.port}`;
  const client = new Redis(url, { lazyConnect: true });
  client.on('error', () => {}); // a refused command rejects its promise; no crash on stop
  await client.connect();
  return {
    url,
    stats: async () =>
      parseInfo(String(await client.call('INFO', 'cpu', 'commandstats', 'memory'))),
    sampleCommands: (ms, counter) => sampleCommands(proc.port, ms, counter),
    async stop() {
      client.disconnect();
      await proc.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
