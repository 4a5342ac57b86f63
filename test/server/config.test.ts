import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ConfigError, flagName, loadConfig, SETTINGS } from '../../src/server/config.js';
import { selfSignedCertificate } from '../helpers/tls.js';

/** The table rows of a document that start with a setting: name → each such row's other cells. */
function settingRows(path: string): Map<string, string[][]> {
  const text = readFileSync(new URL(`../../../${path}`, import.meta.url), 'utf8');
  const rows = new Map<string, string[][]>();
  // Biome pads the columns: `| `NAME`   | cell   | cell |`.
  for (const [, name, rest] of text.matchAll(/^\| `([A-Z][A-Z0-9_]+)` +\|(.*)\|$/gm)) {
    const cells = (rest as string).split('|').map((cell) => cell.trim());
    rows.set(name as string, [...(rows.get(name as string) ?? []), cells]);
  }
  return rows;
}

test('docs/api.md has a row for every setting, with its flag and default', () => {
  const rows = settingRows('docs/api.md');
  const defaults: Record<string, unknown> = loadConfig({});
  const undocumented = Object.keys(SETTINGS).filter((name) => {
    const value = defaults[name];
    const defaultCell = value === undefined ? 'unset' : `\`${String(value)}\``;
    const documented = ([flag, documentedDefault]: string[]) =>
      flag === `\`--${flagName(name)}\`` && documentedDefault?.startsWith(defaultCell) === true;
    return !rows.get(name)?.some(documented);
  });
  assert.deepEqual(undocumented, []);
});

test('the settings tables of the README and docs/api.md name only real settings', () => {
  for (const path of ['README.md', 'docs/api.md']) {
    // OpenTelemetry's own variables, read by its SDK, are documented beside the settings.
    const unknown = [...settingRows(path).keys()].filter(
      (name) => !(name in SETTINGS) && !name.startsWith('OTEL_'),
    );
    assert.deepEqual(unknown, [], path);
  }
});

test('flags win over the environment, and defaults fill the rest', () => {
  const config = loadConfig({ PORT: '9000', SESSION_TAKEOVER: 'false' }, { PORT: '9100' });
  assert.equal(config.PORT, 9100);
  assert.equal(config.SESSION_TAKEOVER, false);
  assert.equal(config.HISTORY_MAX_EVENTS, 1000);
  assert.equal(flagName('HISTORY_MAX_EVENTS'), 'history-max-events');
});

test('auth settings are taken, and a weak secret is refused rather than used', () => {
  const secret = 'a-secret-of-at-least-thirty-two-chars';
  assert.equal(loadConfig({ AUTH_JWT_SECRET: secret }).AUTH_JWT_SECRET, secret);
  assert.throws(() => loadConfig({ AUTH_JWT_SECRET: 's3cret' }), ConfigError);
});

test('REDIS_URL lists several seed nodes only for a cluster, each a redis URL', () => {
  const seeds = 'redis://10.0.0.1:7000, rediss://user:pw@10.0.0.2:7000';
  const config = loadConfig({ REDIS_CLUSTER: 'true', REDIS_URL: seeds });
  assert.equal(config.REDIS_CLUSTER, true);
  assert.equal(config.REDIS_URL, seeds);
  assert.equal(loadConfig({}).REDIS_CLUSTER, false);
  assert.throws(() => loadConfig({ REDIS_URL: seeds }), {
    name: 'ConfigError',
    message: /REDIS_URL lists several servers: only a cluster \(REDIS_CLUSTER=true\)/,
  });
  assert.throws(() => loadConfig({ REDIS_CLUSTER: 'true', REDIS_URL: 'redis://a:1,http://b:2' }), {
    name: 'ConfigError',
    message: /REDIS_URL \(--redis-url\) = .*: expected redis:\/\/ or rediss:\/\/ URLs/,
  });
});

test('TLS takes a readable certificate and its own key, both or neither', () => {
  const one = selfSignedCertificate();
  const other = selfSignedCertificate();
  const refused = (settings: Record<string, string>, message: RegExp) =>
    assert.throws(() => loadConfig(settings), { name: 'ConfigError', message });
  try {
    const config = loadConfig(one.settings);
    assert.equal(config.TLS_CERT_FILE, one.certFile);
    assert.equal(config.TLS_KEY_FILE, one.keyFile);
    refused({ TLS_CERT_FILE: one.certFile }, /TLS_KEY_FILE is unset: .* go together/);
    refused({ TLS_KEY_FILE: one.keyFile }, /TLS_CERT_FILE is unset: .* go together/);
    refused(
      { ...one.settings, TLS_KEY_FILE: `${one.keyFile}.missing` },
      /TLS_KEY_FILE \(--tls-key-file\) = ".*": cannot read the file \(ENOENT\)/,
    );
    refused(
      { TLS_CERT_FILE: one.certFile, TLS_KEY_FILE: other.keyFile },
      /not a usable certificate and private key \(PEM\): .*key values mismatch/,
    );
    refused({ TLS_CERT_FILE: one.keyFile, TLS_KEY_FILE: one.keyFile }, /not a usable certificate/);
  } finally {
    one.remove();
    other.remove();
  }
});
