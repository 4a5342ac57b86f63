import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { redactToken } from '../../src/server/auth/hook.js';
import { rightsFromClaim } from '../../src/server/auth/rights.js';
import { ConfigError, loadConfig } from '../../src/server/config.js';
import type { RunningServer } from '../../src/server/server.js';
import { assertApiError, request, uniqueTopic } from '../helpers/http.js';
import { withServer } from '../helpers/server.js';
import { WsTestClient, wsUrl } from '../helpers/ws-client.js';

const dir = mkdtempSync(join(tmpdir(), 'streamhub-auth-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function sign(key: KeyObject, alg: string, kid?: string, sub = 'alice'): Promise<string> {
  return new SignJWT({ streamhub: { subscribe: ['**'] } })
    .setProtectedHeader({ alg, ...(kid === undefined ? {} : { kid }) })
    .setSubject(sub)
    .setExpirationTime('5m')
    .sign(key);
}

async function status(server: RunningServer, credential: string): Promise<number> {
  const topic = uniqueTopic('keys');
  const result = await request(`${server.url}/v1/topics/${topic}`, {
    headers: { authorization: `Bearer ${credential}` },
  });
  return result.status;
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const otherEc = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pem = (key: KeyObject) => key.export({ type: 'spki', format: 'pem' }) as string;

describe('public keys', () => {
  test('RS256 with a PEM public key; no algorithm confusion with HS256', async () => {
    const publicPem = pem(rsa.publicKey);
    await withServer({ AUTH_JWT_PUBLIC_KEY_FILE: file('rsa.pem', publicPem) }, async (server) => {
      assert.equal(await status(server, await sign(rsa.privateKey, 'RS256')), 200);
      const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
      assert.equal(await status(server, await sign(other.privateKey, 'RS256')), 401);
      // The public key text as an HMAC secret: the classic confusion attack.
      const forged = await new SignJWT({ streamhub: { subscribe: ['**'] } })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('mallory')
        .sign(new TextEncoder().encode(publicPem));
      assert.equal(await status(server, forged), 401);
      // An EventSource-style query token works with public keys too.
      const topic = uniqueTopic('keys');
      const token = await sign(rsa.privateKey, 'RS256');
      const socket = await WsTestClient.connect(
        wsUrl(server.url, `/v1/topics/${topic}/ws?token=${token}`),
      );
      socket.close();
    });
  });

  test('ES256 with a JWKS file, by key id', async () => {
    const jwk = (key: KeyObject, kid: string) => ({ ...key.export({ format: 'jwk' }), kid });
    const jwks = { keys: [jwk(rsa.publicKey, 'r1'), jwk(ec.publicKey, 'e1')] };
    await withServer(
      { AUTH_JWT_PUBLIC_KEY_FILE: file('keys.jwks', JSON.stringify(jwks)) },
      async (server) => {
        assert.equal(await status(server, await sign(ec.privateKey, 'ES256', 'e1')), 200);
        assert.equal(await status(server, await sign(rsa.privateKey, 'RS256', 'r1')), 200);
        assert.equal(await status(server, await sign(otherEc.privateKey, 'ES256', 'e1')), 401);
        assert.equal(await status(server, await sign(ec.privateKey, 'ES256', 'unknown')), 401);
      },
    );
  });

  test('API keys alone turn auth on: JWTs are then refused', async () => {
    const key = 'only-api-keys-0123456789';
    await withServer({ API_KEYS: key }, async (server) => {
      assert.equal(await status(server, key), 200);
      assert.equal(await status(server, await sign(ec.privateKey, 'ES256')), 401);
      assertApiError(await request(`${server.url}/v1/models`), 401, 'unauthorized');
    });
  });

  test('auth is off by default: no credentials needed, any Authorization ignored', async () => {
    await withServer({}, async (server) => {
      const topic = uniqueTopic('open');
      const anyHeaders: Record<string, string>[] = [{}, { authorization: 'Bearer unused' }];
      for (const headers of anyHeaders) {
        const published = await request(`${server.url}/v1/topics/${topic}/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ data: 1 }),
        });
        assert.equal(published.status, 201);
        assert.equal((await request(`${server.url}/v1/models`, { headers })).status, 200);
      }
      const socket = await WsTestClient.connect(wsUrl(server.url, '/v1/ws'));
      assert.equal((await socket.request({ type: 'subscribe', topic })).type, 'subscribed');
      socket.close();
    });
  });
});

describe('configuration', () => {
  const configError = (env: Record<string, string>): string => {
    try {
      loadConfig(env);
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      return error.message;
    }
    assert.fail('expected a ConfigError');
  };

  test('an unusable key file stops the program with one message naming the setting', () => {
    const rsaPrivate = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const p384Key = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const files = {
      missing: join(dir, 'missing.pem'),
      garbage: file('garbage.pem', 'hello'),
      badPem: file('bad.pem', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'),
      privatePem: file('private.pem', rsaPrivate),
      p384: file('p384.pem', pem(p384Key.publicKey)),
      badJson: file('bad.json', '{"keys": ['),
      emptyJwks: file('empty.json', '{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}'),
      privateJwk: file('private.json', JSON.stringify(ec.privateKey.export({ format: 'jwk' }))),
    };
    for (const [name, path] of Object.entries(files)) {
      const message = configError({ AUTH_JWT_PUBLIC_KEY_FILE: path });
      assert.match(message, /AUTH_JWT_PUBLIC_KEY_FILE/, name);
      assert.ok(!message.includes('PRIVATE'), 'no key material in the message');
    }
    const single = file('single.jwk', JSON.stringify(ec.publicKey.export({ format: 'jwk' })));
    assert.equal(loadConfig({ AUTH_JWT_PUBLIC_KEY_FILE: single }).AUTH_JWT_PUBLIC_KEY_FILE, single);
  });

  test('a secret and a key file together are refused; secrets never appear in errors', () => {
    const keyFile = file('both.pem', pem(ec.publicKey));
    const secret = 'a-secret-that-is-long-enough-for-hs256';
    assert.match(
      configError({ AUTH_JWT_SECRET: secret, AUTH_JWT_PUBLIC_KEY_FILE: keyFile }),
      /AUTH_JWT_SECRET and AUTH_JWT_PUBLIC_KEY_FILE/,
    );
    const short = configError({ AUTH_JWT_SECRET: 'too-short-secret' });
    assert.match(short, /AUTH_JWT_SECRET .*32 characters/);
    assert.ok(!short.includes('too-short-secret'));
    for (const keys of ['short', 'a-long-enough-key-but with spaces', ' , ']) {
      const message = configError({ API_KEYS: keys });
      assert.match(message, /API_KEYS/);
      assert.ok(!message.includes('short') && !message.includes('spaces'), message);
    }
    assert.deepEqual(
      loadConfig({ API_KEYS: ' key-one-0123456789abcdef ,key-two-0123456789abcdef==' }).API_KEYS,
      ['key-one-0123456789abcdef', 'key-two-0123456789abcdef=='],
    );
  });
});

describe('patterns and logs', () => {
  test('rights from the streamhub claim', () => {
    const rights = rightsFromClaim(
      { publish: ['out.{sub}'], subscribe: ['**', 'ignored.**.x'] },
      'u-1',
    );
    assert.ok(rights.allows('subscribe', 'anything.at.all'));
    assert.ok(rights.allows('publish', 'out.u-1'));
    assert.ok(!rights.allows('publish', 'out.u-2'));
    assert.ok(!rightsFromClaim(undefined, 'u').allows('subscribe', 'a'));
    assert.ok(!rightsFromClaim({ subscribe: ['{sub}'] }, 'a.b').allows('subscribe', 'a.b'));
  });

  test('a query token never reaches the logs', () => {
    assert.equal(
      redactToken('/v1/topics/t/events?from=start&token=eyJ.abc.def&x=1'),
      '/v1/topics/t/events?from=start&token=[redacted]&x=1',
    );
    assert.equal(redactToken('/v1/ws?TOKEN=k'), '/v1/ws?TOKEN=[redacted]');
  });
});
