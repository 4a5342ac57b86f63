#!/usr/bin/env node
import { Command } from 'commander';
import { ConfigError } from '../server/config.js';
import { publishCommand } from './publish.js';
import { serveCommand } from './serve.js';
import { produceCommand, readCommand } from './streams.js';
import { subscribeCommand } from './subscribe.js';
import { VERSION } from './version.js';

const program = new Command('streamhub')
  .description('Real-time streaming server: resumable SSE and WebSocket topics and streams')
  .version(VERSION)
  .showHelpAfterError();
serveCommand(program);
publishCommand(program);
subscribeCommand(program);
produceCommand(program);
readCommand(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  const message = error instanceof ConfigError ? error.message : String(error);
  process.stderr.write(`streamhub: ${message}\n`);
  process.exit(error instanceof ConfigError ? 2 : 1);
});
