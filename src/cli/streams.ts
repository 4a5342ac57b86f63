import { type Command, Option } from 'commander';
import { produce, readStream, type StreamBodyType } from '../client/index.js';
import { describeError, EXIT_FAILURE, fail, urlOption, usableBaseUrl } from './publish.js';

interface ProduceFlags {
  readonly url: string;
  readonly type: StreamBodyType;
}

/** `streamhub produce <id>`: stdin streamed into a stream, the server's answer on stdout. */
export function produceCommand(program: Command): void {
  program
    .command('produce')
    .description('stream stdin into a resumable stream; each event is readable as it arrives')
    .argument('<id>', 'stream id')
    .addOption(
      new Option('--type <type>', 'how stdin is split into events')
        .choices(['text', 'ndjson', 'sse'])
        .default('text'),
    )
    .addOption(urlOption())
    .addHelpText(
      'after',
      `
--type text: each chunk read becomes one event whose data is a JSON string; ndjson: each line one
event; sse: Server-Sent Events, each event kept with its type and data.
When stdin ends the stream is complete and {"id","events","last_event_id"} is printed. Exit
status 1 when the server refuses (e.g. a stream with that id is open) or the upload breaks (the
stream then ends as producer_lost), 2 for an invalid --url.

Example:
  $ my-generator | streamhub produce reply-42 --type ndjson`,
    )
    .action(async (id: string, flags: ProduceFlags) => {
      const baseUrl = usableBaseUrl(flags.url);
      if (baseUrl === undefined) return;
      try {
        const { events, lastEventId } = await produce(baseUrl, id, process.stdin, {
          type: flags.type,
        });
        process.stdout.write(`${JSON.stringify({ id, events, last_event_id: lastEventId })}\n`);
      } catch (error) {
        fail(EXIT_FAILURE, `produce failed: ${describeError(error)}`);
      }
    });
}

interface ReadFlags {
  readonly url: string;
  readonly lastEventId?: string;
}

/** `streamhub read <id>`: a stream's events as JSON lines, to its end. */
export function readCommand(program: Command): void {
  program
    .command('read')
    .description("print a stream's events as JSON lines until it ends; resumes by itself")
    .argument('<id>', 'stream id')
    .option('--last-event-id <id>', 'resume after this event id')
    .addOption(urlOption())
    .addHelpText(
      'after',
      `
Each event is one line {"id","event","data"} on stdout, data the event's text as stored (JSON
text unless an SSE producer sent something else). Exits when the stream ends: status 0 when it
is complete, 1 when it was cancelled, lost its producer or grew too long (the reason on stderr),
or cannot be read; 2 for an invalid --url.

Example:
  $ streamhub read reply-42 | jq '.data | fromjson'`,
    )
    .action(async (id: string, flags: ReadFlags) => {
      const baseUrl = usableBaseUrl(flags.url);
      if (baseUrl === undefined) return;
      const reader = readStream(baseUrl, id, { lastEventId: flags.lastEventId });
      const stop = () => reader.close();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      // A reader that went away (`| head -1`) ends the reading, quietly.
      process.stdout.on('error', stop);
      try {
        for await (const { id: eventId, event, data } of reader) {
          process.stdout.write(`${JSON.stringify({ id: eventId, event, data })}\n`);
        }
      } catch (error) {
        fail(EXIT_FAILURE, `read failed: ${describeError(error)}`);
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
}
