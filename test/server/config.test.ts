import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ConfigError, flagName, loadConfig, SETTINGS } from '../../src/server/config.js';

test('every setting is documented in the README configuration table', () => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  // A table row whose first cell is the setting (Biome pads the columns).
  const documented = (name: string) => new RegExp(`^\\| \`${name}\` +\\|`, 'm').test(readme);
  const undocumented = Object.keys(SETTINGS).filter((name) => !documented(name));
  assert.deepEqual(undocumented, []);
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
