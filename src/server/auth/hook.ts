import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import type { Authenticator } from './authenticator.js';
import { ANONYMOUS, OPEN_ACCESS, type Principal } from './principal.js';
import type { TopicAction } from './rights.js';

/**
 * What a route asks of its callers, as `config.auth`: nothing (`public`), valid credentials
 * (`token`, the default), the right to publish to or subscribe to the route's `:topic` (or a
 * stream's `:id`), or,
 * for a WebSocket that may authenticate with its first frame, valid credentials if any are
 * presented (`deferred`).
 */
export type RouteAuth = 'public' | 'token' | 'deferred' | TopicAction;

declare module 'fastify' {
  interface FastifyRequest {
    /** Set before anything else runs (an `onRequest` hook); see `installAuth`. */
    principal: Principal;
  }
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
}

const MISSING = 'authentication required: send Authorization: Bearer <token>';
/** One message for every bad token: bad signature, expired, not yet valid, malformed. */
export const INVALID_TOKEN = 'invalid or expired credentials';

const PRINCIPAL = Symbol('principal');
type WithPrincipal = { [PRINCIPAL]: Principal | null };

const BEARER = /^Bearer +([^\s]+) *$/i;

function unauthorized(message: string, error?: 'invalid_token'): ApiError {
  const challenge = error === undefined ? 'Bearer' : `Bearer error="${error}"`;
  return new ApiError(401, 'unauthorized', message, { 'www-authenticate': challenge });
}

function forbidden(action: TopicAction): ApiError {
  return new ApiError(403, 'forbidden', `the token does not allow ${action} on this topic`, {
    'www-authenticate': 'Bearer error="insufficient_scope"',
  });
}

/**
 * Contract §7: sets `request.principal` on every request, before anything is parsed or
 * looked up. With auth off everyone gets every right. With auth on, a route's `config.auth`
 * says what it needs: 401 `unauthorized` without valid credentials, 403 `forbidden` without
 * the topic right. Unknown routes (404) and CORS preflights need nothing.
 */
export function installAuth(app: FastifyInstance, auth: Authenticator): void {
  if (!auth.enabled) {
    app.decorateRequest('principal', { getter: () => OPEN_ACCESS });
    return;
  }
  // Anonymous until the hook has run, so an earlier hook reading it sees no rights at all.
  app.decorateRequest(PRINCIPAL, null);
  app.decorateRequest('principal', {
    getter(this: FastifyRequest) {
      return (this as unknown as WithPrincipal)[PRINCIPAL] ?? ANONYMOUS;
    },
    setter(this: FastifyRequest, principal: Principal) {
      (this as unknown as WithPrincipal)[PRINCIPAL] = principal;
    },
  });
  app.addHook('onRequest', async (request) => {
    request.principal = await principalOf(request, auth);
  });
}

async function principalOf(request: FastifyRequest, auth: Authenticator): Promise<Principal> {
  const needs = request.routeOptions.config.auth ?? 'token';
  if (needs === 'public' || request.is404 || request.method === 'OPTIONS') return ANONYMOUS;
  const token = presentedToken(request);
  if (token === undefined) {
    if (needs === 'deferred') return ANONYMOUS;
    throw unauthorized(MISSING);
  }
  const principal = await auth.authenticate(token);
  if (principal === undefined) throw unauthorized(INVALID_TOKEN, 'invalid_token');
  if (needs === 'publish' || needs === 'subscribe') {
    // A stream's id is a topic name as far as rights go.
    const { topic = (request.params as { id?: unknown }).id } = request.params as {
      topic?: unknown;
    };
    if (typeof topic !== 'string' || !principal.rights.allows(needs, topic)) {
      throw forbidden(needs);
    }
  }
  return principal;
}

/**
 * The `Authorization: Bearer` token, or for GET (EventSource, WebSocket: browsers cannot set
 * headers there) the `token` query parameter. A malformed header is a bad token, not none.
 */
function presentedToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header !== undefined) {
    const token = BEARER.exec(header)?.[1];
    if (token === undefined) throw unauthorized(INVALID_TOKEN, 'invalid_token');
    return token;
  }
  if (request.method !== 'GET') return undefined;
  const { token } = request.query as { token?: unknown };
  if (token === undefined || token === '') return undefined;
  if (typeof token !== 'string') throw unauthorized(INVALID_TOKEN, 'invalid_token');
  return token;
}

/** The URL as logged: a `token` query parameter must not end up in log files. */
export function redactToken(url: string): string {
  return url.replace(/([?&]token=)[^&#]*/gi, '$1[redacted]');
}

/** Fastify's default request log serializer, with `?token=` redacted from the URL. */
export function requestForLog(request: FastifyRequest) {
  return {
    method: request.method,
    url: redactToken(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}
