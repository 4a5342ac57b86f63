import { ALL_RIGHTS, NO_RIGHTS, type TopicRights } from './rights.js';

/** Who is calling, as far as authentication could tell (docs/api.md §7). */
export interface Principal {
  /** The token's subject; null with auth off, for API keys and without credentials. */
  readonly sub: string | null;
  readonly rights: TopicRights;
  /** `open`: auth is off; `none`: no credentials (a public route, or a socket that has not
   *  sent its auth frame yet). */
  readonly via: 'open' | 'none' | 'jwt' | 'api_key';
  /** Who owns the chat sessions this principal creates; null = unowned (auth off). */
  readonly owner: string | null;
  /** When the credentials stop being valid (ms since the epoch); null = never. */
  readonly expiresAt: number | null;
  /** A stable name for per-client limits: `sub:<sub>` or `key:<n>`; null when anonymous. */
  readonly clientId: string | null;
}

/** Auth is off: everyone may do everything, and sessions are unowned. */
export const OPEN_ACCESS: Principal = {
  sub: null,
  rights: ALL_RIGHTS,
  via: 'open',
  owner: null,
  expiresAt: null,
  clientId: null,
};

/** Auth is on and the request carries no credentials. */
export const ANONYMOUS: Principal = { ...OPEN_ACCESS, rights: NO_RIGHTS, via: 'none' };

/**
 * The owner of sessions created with an API key. No JWT subject can equal it (subjects with
 * control characters are refused), so a token can never reach a server's sessions and a
 * server's key cannot read a user's by accident.
 */
export const API_KEY_OWNER = '\u0000api-key';

export function apiKeyPrincipal(index: number): Principal {
  return {
    sub: null,
    rights: ALL_RIGHTS,
    via: 'api_key',
    owner: API_KEY_OWNER,
    expiresAt: null,
    clientId: `key:${index + 1}`,
  };
}

/**
 * The key a principal counts against in per-client limits: its authenticated identity
 * (`sub:<sub>` or `key:<n>`) when it has one, else `address`, the client's IP. An IP address
 * never starts with `sub:` or `key:`, so a subject never shares an address's bucket.
 */
export function limitKeyOf(principal: Principal, address: string): string {
  return principal.clientId ?? address;
}
