import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PATIENCE_MS } from '../helpers/patience.js';
import { waitFor } from '../helpers/server.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export { PATIENCE_MS };

export interface CliOptions {
  /** Runs it on a pseudo-terminal, through util-linux's script(1), as a person would. */
  readonly terminal?: boolean;
  /** Gives it a stdin the test writes to (`child.stdin`); default: none. */
  readonly stdin?: boolean;
}

/** Whether `CliOptions.terminal` can work here: script(1) of util-linux is installed. */
export const CAN_USE_TERMINAL = spawnSync('script', ['--version']).status === 0;

/** `streamhub <args>` as a child process, its output collected as it arrives. */
export class Cli {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: readonly string[], env: Record<string, string> = {}, options: CliOptions = {}) {
    const { STREAMHUB_URL: _ignored, ...inherited } = process.env;
    const command = [process.execPath, MAIN, ...args];
    const [file, ...argv] = options.terminal
      ? ['script', '-qec', command.map(shellQuoted).join(' '), '/dev/null']
      : command;
    this.child = spawn(file as string, argv, {
      env: { ...inherited, ...env },
      stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => resolve({ code, signal }));
    });
  }

  /** Complete stdout lines, parsed as JSON. */
  get lines(): unknown[] {
    return this.stdout
      .split('\n')
      .slice(0, -1)
      .map((line) => JSON.parse(line));
  }

  waitForLines(count: number): Promise<void> {
    return waitFor(() => this.lines.length >= count, `${count} lines of output`, PATIENCE_MS);
  }

  waitForStderr(text: string): Promise<void> {
    return waitFor(() => this.stderr.includes(text), `"${text}" on stderr`, PATIENCE_MS);
  }

  /** Sends `signal` and resolves to the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGINT'): Promise<number | null> {
    this.child.kill(signal);
    return (await this.exited).code;
  }
}

/** Runs `streamhub <args>` to completion. */
export async function runCli(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const cli = new Cli(args, env);
  const { code } = await cli.exited;
  return { code, stdout: cli.stdout, stderr: cli.stderr };
}

function shellQuoted(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}
