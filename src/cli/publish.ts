import { type Command, Option } from 'commander';
import { publish, StreamhubClientError } from '../client/index.js';
import { checkBaseUrl } from '../client/urls.js';

/** Exit codes of the client commands: 1 when the server or network fails, 2 for bad usage. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** `--url`, shared by the client commands. */
export function urlOption(): Option {
  return new Option('--url <url>', 'server base URL')
    .env('STREAMHUB_URL')
    .default('http://127.0.0.1:8080');
}

/** The base URL if it is an http(s) URL; otherwise reports a usage error and returns undefined. */
export function usableBaseUrl(url: string): string | undefined {
  try {
    checkBaseUrl(url);
    return url;
  } catch (error) {
    fail(EXIT_USAGE, `--url: ${describeError(error)}`);
    return undefined;
  }
}

/** Reports on stderr and sets the exit code, letting pending output flush before exiting. */
export function fail(exitCode: number, message: string): void {
  process.stderr.write(`streamhub: ${message}\n`);
  process.exitCode = exitCode;
}

export function describeError(error: unknown): string {
  if (error instanceof StreamhubClientError && error.status !== 0) {
    return `${error.message} (HTTP ${error.status}, ${error.code})`;
  }
  return error instanceof Error ? error.message : String(error);
}

interface PublishFlags {
  readonly url: string;
  readonly event?: string;
  readonly idempotencyKey?: string;
}

/** `streamhub publish <topic> <json>`: one event, the server's answer on stdout. */
export function publishCommand(program: Command): void {
  program
    .command('publish')
    .description("publish one event to a topic and print the server's answer as JSON")
    .argument('<topic>', 'topic name')
    .argument('<json>', 'the event data as JSON, e.g. \'{"price":1}\', \'"text"\' or 42')
    .option('--event <type>', 'event type (default: message)')
    .option('--idempotency-key <key>', 'retry-safe key: a repeat publishes nothing new')
    .addOption(urlOption())
    .addHelpText(
      'after',
      `
Prints {"id","topic","event"}. Exit status 1 when the server refuses (its message on stderr)
or cannot be reached, 2 for invalid <json> or --url.

Example:
  $ streamhub publish orders '{"sku":"A1","qty":2}' --event order.created`,
    )
    .action(async (topic: string, json: string, flags: PublishFlags) => {
      const baseUrl = usableBaseUrl(flags.url);
      if (baseUrl === undefined) return;
      let data: unknown;
      try {
        data = JSON.parse(json);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        const hint = 'a text must be quoted as JSON, e.g. \'"hello"\'';
        fail(EXIT_USAGE, `<json> is not valid JSON (${reason}); ${hint}`);
        return;
      }
      try {
        const answer = await publish(baseUrl, topic, data, {
          event: flags.event,
          idempotencyKey: flags.idempotencyKey,
        });
        process.stdout.write(`${JSON.stringify(answer)}\n`);
      } catch (error) {
        fail(EXIT_FAILURE, `publish failed: ${describeError(error)}`);
      }
    });
}
