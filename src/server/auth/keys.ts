import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { JSONWebKeySet } from 'jose';

/** The asymmetric algorithms of docs/api.md §7. */
export type PublicKeyAlgorithm = 'RS256' | 'ES256';
export const PUBLIC_KEY_ALGORITHMS: readonly PublicKeyAlgorithm[] = ['RS256', 'ES256'];

/** What `AUTH_JWT_PUBLIC_KEY_FILE` holds: one PEM key, or a JSON Web Key Set. */
export type PublicKeyFile =
  | { readonly kind: 'pem'; readonly key: KeyObject; readonly algorithm: PublicKeyAlgorithm }
  | { readonly kind: 'jwks'; readonly jwks: JSONWebKeySet };

/** A key file that cannot be used; the message names what is wrong, never the content. */
export class KeyFileError extends Error {
  override readonly name = 'KeyFileError';
}

/**
 * Reads a public key file: a PEM public key or certificate (RSA → RS256, P-256 → ES256), a
 * JWKS (`{"keys": [...]}`) or a single JWK. Private keys are refused: the server only needs
 * the public half, and a private key on the server is one more place for it to leak from.
 */
export function loadPublicKeyFile(path: string): PublicKeyFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new KeyFileError(`cannot read the file (${(error as NodeJS.ErrnoException).code})`);
  }
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN')) return pemKey(trimmed);
  if (trimmed.startsWith('{')) return { kind: 'jwks', jwks: jwkSet(trimmed) };
  throw new KeyFileError('expected a PEM public key, a JWKS or a JWK');
}

function pemKey(pem: string): PublicKeyFile {
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw new KeyFileError('holds a private key: give the public key');
  }
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new KeyFileError('not a valid PEM public key or certificate');
  }
  return { kind: 'pem', key, algorithm: algorithmOf(key) };
}

function algorithmOf(key: KeyObject): PublicKeyAlgorithm {
  if (key.asymmetricKeyType === 'rsa') return 'RS256';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    return 'ES256';
  }
  throw new KeyFileError('unsupported key: RS256 needs an RSA key, ES256 a P-256 key');
}

function jwkSet(json: string): JSONWebKeySet {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new KeyFileError('not valid JSON');
  }
  const set = parsed as { keys?: unknown; kty?: unknown };
  const keys = Array.isArray(set.keys) ? (set.keys as unknown[]) : set.kty ? [parsed] : undefined;
  if (keys === undefined) throw new KeyFileError('a JWKS needs a "keys" array');
  const usable = keys.filter(isUsableJwk);
  if (usable.length === 0) throw new KeyFileError('no RSA or P-256 public key in the JWKS');
  return { keys: usable };
}

/** An RSA or P-256 public JWK that Node can import; a private one is an error. */
function isUsableJwk(jwk: unknown): jwk is JSONWebKeySet['keys'][number] {
  if (typeof jwk !== 'object' || jwk === null) return false;
  const { kty, crv, d } = jwk as Record<string, unknown>;
  if (d !== undefined) throw new KeyFileError('holds a private key: give the public keys');
  if (kty !== 'RSA' && !(kty === 'EC' && crv === 'P-256')) return false;
  try {
    createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    return true;
  } catch {
    throw new KeyFileError(`a ${String(kty)} key in the JWKS is malformed`);
  }
}
