import { createHash, timingSafeEqual } from 'node:crypto';
import { createLocalJWKSet, type JWTPayload, jwtVerify } from 'jose';
import { loadPublicKeyFile, PUBLIC_KEY_ALGORITHMS } from './keys.js';
import { apiKeyPrincipal, type Principal } from './principal.js';
import { rightsFromClaim } from './rights.js';

/** How credentials are checked; auth is off when none is given. */
export interface AuthOptions {
  /** HS256 secret for JWTs. */
  readonly jwtSecret?: string | undefined;
  /** RS256/ES256 public key (PEM) or JWKS file for JWTs, when there is no secret. */
  readonly jwtPublicKeyFile?: string | undefined;
  /** Bearer tokens with full rights. */
  readonly apiKeys?: readonly string[] | undefined;
}

/**
 * Seconds of clock skew tolerated on `exp` and `nbf`. A token is valid until `exp` plus this,
 * and its streams end then, so that a client reconnecting after the end is refused.
 */
export const CLOCK_TOLERANCE_S = 2;

/** A subject: printable, bounded; control characters would let it pose as API_KEY_OWNER. */
const SUBJECT = /^[^\p{Cc}]{1,256}$/u;

type VerifyJwt = (token: string) => Promise<JWTPayload>;

/**
 * Checks credentials: API keys (compared in constant time) and JWTs (HS256 with a secret, or
 * RS256/ES256 with a public key or JWKS). Every failure is the same `undefined`: the caller
 * cannot, and the client must not, learn whether a signature, a date or the format was wrong.
 */
export class Authenticator {
  readonly #apiKeys: readonly Buffer[];
  readonly #verifyJwt: VerifyJwt | undefined;

  private constructor(apiKeys: readonly string[], verifyJwt: VerifyJwt | undefined) {
    this.#apiKeys = apiKeys.map(digest);
    this.#verifyJwt = verifyJwt;
  }

  /** Throws on an unusable key file (the configuration has checked it already). */
  static create(options: AuthOptions): Authenticator {
    return new Authenticator(options.apiKeys ?? [], jwtVerifier(options));
  }

  /** Off unless a JWT key or API keys are configured. */
  get enabled(): boolean {
    return this.#verifyJwt !== undefined || this.#apiKeys.length > 0;
  }

  async authenticate(token: string): Promise<Principal | undefined> {
    const key = this.#apiKeyIndex(token);
    if (key >= 0) return apiKeyPrincipal(key);
    if (this.#verifyJwt === undefined) return undefined;
    let payload: JWTPayload;
    try {
      payload = await this.#verifyJwt(token);
    } catch {
      return undefined;
    }
    const { sub, exp } = payload;
    if (typeof sub !== 'string' || !SUBJECT.test(sub)) return undefined;
    return {
      sub,
      rights: rightsFromClaim(payload.streamhub, sub),
      via: 'jwt',
      owner: sub,
      expiresAt: typeof exp === 'number' ? (exp + CLOCK_TOLERANCE_S) * 1000 : null,
      clientId: `sub:${sub}`,
    };
  }

  /** Compares with every key, whatever matched, so timing tells nothing about the keys. */
  #apiKeyIndex(token: string): number {
    if (this.#apiKeys.length === 0) return -1;
    const presented = digest(token);
    let index = -1;
    for (const [i, key] of this.#apiKeys.entries()) {
      if (timingSafeEqual(key, presented)) index = i;
    }
    return index;
  }
}

/** Equal-length digests, so `timingSafeEqual` applies whatever the lengths of the keys. */
function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

function jwtVerifier(auth: AuthOptions): VerifyJwt | undefined {
  const options = { clockTolerance: CLOCK_TOLERANCE_S };
  if (auth.jwtSecret !== undefined) {
    const secret = new TextEncoder().encode(auth.jwtSecret);
    return async (token) =>
      (await jwtVerify(token, secret, { ...options, algorithms: ['HS256'] })).payload;
  }
  if (auth.jwtPublicKeyFile === undefined) return undefined;
  const file = loadPublicKeyFile(auth.jwtPublicKeyFile);
  if (file.kind === 'pem') {
    const algorithms = [file.algorithm];
    return async (token) => (await jwtVerify(token, file.key, { ...options, algorithms })).payload;
  }
  const keys = createLocalJWKSet(file.jwks);
  const algorithms = [...PUBLIC_KEY_ALGORITHMS];
  return async (token) => (await jwtVerify(token, keys, { ...options, algorithms })).payload;
}
