import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { startupLine } from '../../src/cli/serve.js';
import { loadConfig } from '../../src/server/config.js';
import { waitFor } from '../helpers/server.js';
import { selfSignedCertificate } from '../helpers/tls.js';
import { CAN_USE_TERMINAL, Cli, PATIENCE_MS, runCli } from './cli.js';

const { version } = JSON.parse(
  readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
) as { version: string };

/** Fastify's own log line once the server listens, with the address. */
const LISTENING = /listening at (http:\/\/127\.0\.0\.1:\d+)/;

test('--version and -V print the version in package.json', async () => {
  for (const flag of ['--version', '-V']) {
    const { code, stdout } = await runCli([flag]);
    assert.equal(code, 0);
    assert.equal(stdout, `${version}\n`);
  }
});

test('the startup line says where the server listens and how it runs', () => {
  const config = loadConfig({ BACKEND: 'redis', LLM_PROVIDER: 'openai' });
  assert.equal(
    startupLine('1.2.3', 'http://127.0.0.1:8080', config),
    'streamhub 1.2.3 listening on http://127.0.0.1:8080 — demo page: http://127.0.0.1:8080/ ' +
      '(redis backend, openai model)',
  );
});

test('with TLS, the startup line gives the https URL and says HTTP/2 is served', () => {
  const certificate = selfSignedCertificate();
  try {
    const config = loadConfig(certificate.settings);
    assert.equal(
      startupLine('1.2.3', 'https://127.0.0.1:8443', config),
      'streamhub 1.2.3 listening on https://127.0.0.1:8443 — demo page: https://127.0.0.1:8443/ ' +
        '(memory backend, mock model, HTTP/2 and HTTP/1.1 over TLS)',
    );
  } finally {
    certificate.remove();
  }
});

test('serve writes only JSON log lines to an output that is not a terminal', async () => {
  const server = new Cli(['serve', '--port', '0']);
  try {
    await waitFor(() => LISTENING.test(server.stdout), 'the server to listen', PATIENCE_MS);
    const url = LISTENING.exec(server.stdout)?.[1] as string;
    // Logged after the start-up has run to its end, so a startup line would be out by then.
    await fetch(`${url}/healthz`);
    await waitFor(
      () => server.stdout.includes('request completed'),
      'the request to be logged',
      PATIENCE_MS,
    );
    assert.ok(server.lines.every((line) => typeof line === 'object' && line !== null));
  } finally {
    await server.stop('SIGTERM');
  }
});

test('serve prints a readable startup line on a terminal', {
  skip: !CAN_USE_TERMINAL && 'needs script(1) from util-linux',
}, async () => {
  const server = new Cli(['serve', '--port', '0'], {}, { terminal: true });
  const line =
    /streamhub (\S+) listening on (http:\S+) — demo page: \2\/ \(memory backend, mock model\)/;
  try {
    await waitFor(() => line.test(server.stdout), 'the startup line', PATIENCE_MS);
    assert.equal(line.exec(server.stdout)?.[1], version);
  } finally {
    await server.stop('SIGTERM');
  }
});
