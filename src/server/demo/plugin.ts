import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/**
 * The page's files, served as they are: plain HTML, CSS and ES modules, no build step. They
 * live next to this file's source, so from `dist/src/server/demo/` that is four levels up.
 */
export const PAGE_DIR = fileURLToPath(
  new URL('../../../../src/server/demo/public/', import.meta.url),
);

/** The compiled client library, browser-ready ESM whose imports are all relative. */
export const CLIENT_DIR = fileURLToPath(new URL('../../client/', import.meta.url));

/** The page talks to its own origin only; nothing inline, nothing from elsewhere. */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
};

/**
 * The demo page (docs/api.md §7: it needs no credentials): `/` is the page, `/demo/*` its
 * assets, and `/client/*` the client library it imports. Only files present at start are
 * routed (no wildcard), so unknown paths stay the API's JSON 404.
 */
export async function demoPage(app: FastifyInstance): Promise<void> {
  for (const dir of [PAGE_DIR, CLIENT_DIR]) {
    if (!existsSync(dir)) throw new Error(`demo page: ${dir} is missing (run npm run build)`);
  }
  // Everything routed here is public, with auth on too; what the page calls is not.
  app.addHook('onRoute', (route) => {
    route.config = { ...route.config, auth: 'public' };
  });
  const setHeaders = (response: { setHeader(name: string, value: string): unknown }) => {
    for (const [name, value] of Object.entries(PAGE_HEADERS)) response.setHeader(name, value);
  };
  await app.register(fastifyStatic, {
    root: PAGE_DIR,
    prefix: '/demo/',
    wildcard: false,
    setHeaders,
  });
  await app.register(fastifyStatic, {
    root: CLIENT_DIR,
    prefix: '/client/',
    wildcard: false,
    // Declarations and source maps point at TypeScript sources the server does not serve.
    globIgnore: ['**/*.d.ts', '**/*.map'],
    decorateReply: false,
    setHeaders,
  });
  app.get('/', (_request, reply) => reply.sendFile('index.html', PAGE_DIR));
}
