import fastifyCors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';

/** `CORS_ORIGINS` once parsed: any origin, or exactly these (serialized as browsers send them). */
export type CorsOrigins = '*' | readonly string[];

/** Request headers a cross-origin page may send (docs/api.md §7, plus idempotent publishes). */
const ALLOWED_HEADERS = ['Authorization', 'Content-Type', 'Last-Event-ID', 'Idempotency-Key'];
/** Response headers a cross-origin page may read: the completion id, and when to retry. */
const EXPOSED_HEADERS = ['x-stream-id', 'Retry-After'];
const METHODS = ['GET', 'HEAD', 'POST', 'DELETE'];
/** How long a browser may reuse a preflight answer (browsers cap it at 2 h or less anyway). */
const PREFLIGHT_MAX_AGE_S = 600;

/** `*`, or comma-separated origins such as `https://app.example.com,http://localhost:5173`. */
export const corsOriginsSchema = z.string().transform((value, context): CorsOrigins => {
  const entries = value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 1 && entries[0] === '*') return '*';
  const origins: string[] = [];
  for (const entry of entries) {
    const origin = originOf(entry);
    if (origin === undefined) {
      context.addIssue({
        code: 'custom',
        message: `${JSON.stringify(entry)} is not an origin: use "*" or scheme://host[:port], comma-separated`,
      });
      return z.NEVER;
    }
    origins.push(origin);
  }
  return origins;
});

/** The origin as a browser serializes it in `Origin` (lower-case host, no default port). */
function originOf(entry: string): string | undefined {
  if (!URL.canParse(entry)) return undefined;
  const url = new URL(entry);
  const bare = url.pathname === '/' && url.search === '' && url.hash === '' && url.username === '';
  if (!bare || (url.protocol !== 'http:' && url.protocol !== 'https:')) return undefined;
  return url.origin;
}

/**
 * Cross-origin access for browsers (docs/api.md §7), with `@fastify/cors`. Its hook runs on every
 * request before the others, so a preflight is answered before authentication or limits look
 * at it (a browser sends no `Authorization` with a preflight), and refusals (401, 429…) carry
 * the CORS headers too, so that a page can read them. A disallowed origin gets no CORS
 * headers, and its preflight falls through to 404: the browser blocks the request either way.
 * Nothing is registered when `CORS_ORIGINS` is unset, so there is no cross-origin access.
 */
export async function registerCors(
  app: FastifyInstance,
  origins: CorsOrigins | undefined,
): Promise<void> {
  if (origins === undefined) return;
  const allowed = new Set(origins);
  await app.register(fastifyCors, {
    origin:
      origins === '*'
        ? '*'
        : (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
    methods: METHODS,
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: PREFLIGHT_MAX_AGE_S,
    // Bearer tokens, not cookies: no credentialed requests, so `*` stays valid.
    credentials: false,
    // An OPTIONS without `Origin` is no preflight: not worth a plain-text 400 of the plugin's.
    strictPreflight: false,
  });
}
