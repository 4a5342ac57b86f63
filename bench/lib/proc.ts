import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';

export const HOST = '127.0.0.1';

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU time (user + system, all threads) and resident set size of a process, from /proc. */
export interface ProcSample {
  cpuMicros: number;
  rssBytes: number;
}

export function sampleProc(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces and parentheses; fields are counted after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  return { cpuMicros: (ticks * 1e6) / CLK_TCK, rssBytes: rssKb * 1024 };
}

/** CPU time spent by the whole machine (all processes, all CPUs), from /proc/stat. */
export function sampleMachine(): { busyMicros: number; totalMicros: number } {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const ticks = cpu.trim().split(/\s+/).slice(1, 9).map(Number); // user … steal
  const total = ticks.reduce((a, b) => a + b, 0);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0); // idle + iowait
  return { busyMicros: ((total - idle) * 1e6) / CLK_TCK, totalMicros: (total * 1e6) / CLK_TCK };
}

/** How busy the machine is while we do nothing, in % of all CPUs: other tenants' load. */
export async function backgroundLoad(ms: number): Promise<number> {
  const a = sampleMachine();
  await sleep(ms);
  const b = sampleMachine();
  return ((b.busyMicros - a.busyMicros) / (b.totalMicros - a.totalMicros)) * 100;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.connect(port, HOST);
  });
}

export interface ServerProcess {
  name: string;
  pid: number;
  port: number;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();

/** Kill every server still running; safe to call from exit/signal handlers. */
export function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

/** Node flags for every server the bench starts, e.g. `--cpu-prof` to see where one spends. */
const serverNodeFlags = (process.env.BENCH_SERVER_NODE_FLAGS ?? '').split(' ').filter(Boolean);

/** Spawns `node <script> ...` directly (no shell) so the pid we sample is the server itself. */
export function startServer(
  name: string,
  script: string,
  args: string[],
  env: Record<string, string>,
  port: number,
  timeoutMs = 15_000,
): Promise<ServerProcess> {
  const argv = [...serverNodeFlags, script, ...args];
  return startProcess(name, process.execPath, argv, { env, port, timeoutMs });
}

export interface ProcessOptions {
  env?: Record<string, string>;
  /** The port it listens on: it counts as started once a connection there succeeds. */
  port: number;
  cwd?: string;
  timeoutMs?: number;
}

/** Spawns any server program (e.g. redis-server) without a shell, killed by `killAll` too. */
export async function startProcess(
  name: string,
  command: string,
  argv: string[],
  { env = {}, port, cwd, timeoutMs = 15_000 }: ProcessOptions,
): Promise<ServerProcess> {
  const child = spawn(command, argv, {
    env: { ...process.env, ...env },
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let output = '';
  const keep = (b: Buffer) => {
    output = (output + b.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  // A program that cannot be spawned (e.g. redis-server not installed) emits 'error', not 'exit'.
  const exited = new Promise<void>((r) => {
    child.once('exit', () => r());
    child.once('error', (e) => {
      output += `\n${e.message}`;
      r();
    });
  });
  let dead = false;
  void exited.then(() => {
    dead = true;
    running.delete(child);
  });

  const stop = async () => {
    if (dead) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  };

  const deadline = Date.now() + timeoutMs;
  while (!(await canConnect(port))) {
    if (dead || Date.now() > deadline) {
      await stop();
      throw new Error(`${name} did not start listening on ${port}:\n${output}`);
    }
    await sleep(50);
  }
  if (child.pid === undefined) throw new Error(`${name}: no pid`);
  return { name, pid: child.pid, port, stop };
}

export function machineInfo(): { nproc: number; cpu: string; node: string } {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const cpu = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  const nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
  return { nproc, cpu, node: process.version };
}
