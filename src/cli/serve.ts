import type { Command } from 'commander';
import { type Config, flagName, loadConfig, SETTINGS, type SettingName } from '../server/config.js';
import { VERSION } from './version.js';

/** `streamhub serve`: every setting is an environment variable and also a flag. */
export function serveCommand(program: Command): void {
  const serve = program
    .command('serve')
    .description('run the server (settings from flags, else environment, else defaults)');
  for (const [name, { help }] of Object.entries(SETTINGS)) {
    serve.option(`--${flagName(name)} <value>`, `${help} [env ${name}]`);
  }
  serve.action(async (options: Record<string, string>) => {
    const flags: Partial<Record<SettingName, string>> = {};
    for (const name of Object.keys(SETTINGS) as SettingName[]) {
      const value = options[camelCase(flagName(name))];
      if (value !== undefined) flags[name] = value;
    }
    await run(loadConfig(process.env, flags));
  });
}

/**
 * What someone who started the server in a terminal wants to read among the JSON logs: where it
 * listens, and how it runs.
 */
export function startupLine(version: string, url: string, config: Config): string {
  const tls = config.TLS_CERT_FILE === undefined ? '' : ', HTTP/2 and HTTP/1.1 over TLS';
  const mode = `${config.BACKEND} backend, ${config.LLM_PROVIDER} model${tls}`;
  return `streamhub ${version} listening on ${url} — demo page: ${url}/ (${mode})`;
}

async function run(config: Config): Promise<void> {
  // Loaded here, not at the top: the server's modules take most of a CLI start (0.9 of 1.2 s
  // CPU measured), which the client commands have no use for.
  const { startServer } = await import('../server/server.js');
  const { startTracing } = await import('../server/tracing/index.js');
  const server = await startServer(config, await startTracing(process.env));
  // Only for a person: log collectors reading a pipe get the JSON lines alone, as ever.
  if (process.stdout.isTTY) process.stdout.write(`${startupLine(VERSION, server.url, config)}\n`);
  const stop = async (signal: string) => {
    server.app.log.info({ signal }, 'shutting down');
    const clean = await server.shutdown();
    process.exit(clean ? 0 : 1);
  };
  // A bug in one request's handling must not take every other client down with it.
  process.on('unhandledRejection', (reason) => {
    server.app.log.error({ err: reason }, 'unhandled rejection');
  });
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

function camelCase(flag: string): string {
  return flag.replace(/-([a-z])/g, (_match, letter: string) => letter.toUpperCase());
}
