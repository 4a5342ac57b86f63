import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const children = new Set<ChildProcess>();
// A crashed or failed test must not leave processes behind for the tests after it.
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** Kills `child` when the test process exits, if it still runs then. */
export function killedOnExit(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly exited: Promise<number | null>;
}

/** `streamhub serve` as a child process on a free port; resolves once it listens. */
export function spawnServer(env: Record<string, string> = {}): Promise<ServerProcess> {
  return spawnListening([CLI, 'serve', '--port', '0'], { LOG_LEVEL: 'info', ...env });
}

/**
 * `node <args>` as a child process, a server that prints `listening at <url>` on stdout once it
 * listens; resolves then.
 */
export async function spawnListening(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<ServerProcess> {
  const child = killedOnExit(
    spawn(process.execPath, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const url = await new Promise<string>((resolve, reject) => {
    let output = '';
    // Stops reading once the address is known: a busy server's whole log must not pile up.
    const listen = (chunk: string) => {
      output += chunk;
      const match = /listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match === null) return;
      child.stdout?.off('data', listen).resume();
      resolve(match[1] as string);
    };
    child.stdout?.setEncoding('utf8').on('data', listen);
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before listening`)));
  });
  return { child, url, exited };
}

/** Runs the CLI to completion and returns its exit code and output. */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
