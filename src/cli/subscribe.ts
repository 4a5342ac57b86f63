import { type Command, Option } from 'commander';
import { WebSocket } from 'ws';
import {
  type ConnectionState,
  type StateInfo,
  type SubscribeOptions,
  subscribe,
  subscribeWs,
  type TopicEvent,
} from '../client/index.js';
import { describeError, EXIT_FAILURE, fail, urlOption, usableBaseUrl } from './publish.js';

interface SubscribeFlags {
  readonly url: string;
  readonly lastEventId?: string;
  readonly fromStart?: boolean;
  readonly ws?: boolean;
}

/** `streamhub subscribe <topic>`: events as JSON lines on stdout until interrupted. */
export function subscribeCommand(program: Command): void {
  program
    .command('subscribe')
    .description("print a topic's events as JSON lines; reconnects and resumes by itself")
    .argument('<topic>', 'topic name')
    .option('--last-event-id <id>', 'resume after this event id')
    .addOption(
      new Option('--from-start', 'replay all retained history first').conflicts('lastEventId'),
    )
    .option('--ws', 'use a WebSocket instead of Server-Sent Events')
    .addOption(urlOption())
    .addHelpText(
      'after',
      `
Without --last-event-id or --from-start, prints events published from now on.
Each event is one line {"id","event","data"} on stdout; resets (events that can no longer be
replayed) and reconnections are reported on stderr. Runs until SIGINT/SIGTERM (exit status 0);
exit status 1 when the server refuses the subscription, 2 for an invalid --url.

Example:
  $ streamhub subscribe orders --from-start | jq .data`,
    )
    .action(async (topic: string, flags: SubscribeFlags) => {
      const baseUrl = usableBaseUrl(flags.url);
      if (baseUrl === undefined) return;
      const options: SubscribeOptions = {
        lastEventId: flags.lastEventId,
        fromStart: flags.fromStart,
        onEvent: printEvent,
        onReset: ({ reason, oldest }) =>
          notice(
            `reset (${reason}): cannot resume exactly; replaying from ${oldest ?? 'the start'}`,
          ),
        onStateChange: reportState(),
      };
      const subscription = flags.ws
        ? subscribeWs(baseUrl, topic, { ...options, WebSocket })
        : subscribe(baseUrl, topic, options);
      const stop = () => subscription.close();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      // A reader that went away (`| head -1`) ends the subscription, quietly.
      process.stdout.on('error', stop);
      try {
        await subscription.closed;
      } catch (error) {
        fail(EXIT_FAILURE, `subscribe failed: ${describeError(error)}`);
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
}

function printEvent({ id, event, data }: TopicEvent): void {
  process.stdout.write(`${JSON.stringify({ id, event, data })}\n`);
}

function notice(message: string): void {
  process.stderr.write(`streamhub: ${message}\n`);
}

/** Reports connection loss and recovery; the first connection is not news. */
function reportState(): (state: ConnectionState, info: StateInfo) => void {
  let lost = false;
  return (state, { error, delayMs }) => {
    if (state === 'reconnecting') {
      lost = true;
      const why = error === undefined ? 'closed by the server' : `lost: ${describeError(error)}`;
      notice(`connection ${why}; reconnecting in ${delayMs} ms`);
    } else if (state === 'open' && lost) {
      lost = false;
      notice('reconnected');
    }
  };
}
