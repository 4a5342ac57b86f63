import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { lazyRequestLogger } from '../../src/server/request-logger.js';

/** Fastify's pino logger at `level`, whose lines are kept, and how many children it made. */
function capturing(level: string) {
  const lines: Record<string, unknown>[] = [];
  const stream = { write: (line: string) => lines.push(JSON.parse(line)) };
  const logger = Fastify({ logger: { level, stream } }).log;
  let children = 0;
  const { child } = logger;
  // Children inherit it, so each calls pino's own `child` on itself.
  logger.child = function (this: FastifyBaseLogger, ...args: Parameters<typeof child>) {
    children++;
    return child.apply(this, args);
  };
  return { logger, lines, children: () => children };
}

test('a request logger logs enabled levels with its bindings, made real only then', () => {
  const { logger, lines, children } = capturing('warn');
  const log = lazyRequestLogger(logger, { reqId: 'req-1' }, {});
  log.info({ detail: 1 }, 'not written');
  log.debug('nor this');
  assert.equal(lines.length, 0);
  assert.equal(children(), 0);
  assert.equal(log.level, 'warn');

  log.warn({ code: 'slow' }, 'written');
  log.error('and this');
  assert.equal(children(), 1);
  assert.deepEqual(
    lines.map(({ reqId, code, msg, level }) => ({ reqId, code, msg, level })),
    [
      { reqId: 'req-1', code: 'slow', msg: 'written', level: 40 },
      { reqId: 'req-1', code: undefined, msg: 'and this', level: 50 },
    ],
  );
});

test("a request logger's children carry the request's bindings and their own", () => {
  const { logger, lines } = capturing('info');
  const log = lazyRequestLogger(logger, { reqId: 'req-2' }, {});
  log.child({ trace_id: 't' }).info('traced');
  assert.deepEqual(
    lines.map(({ reqId, trace_id, msg }) => ({ reqId, trace_id, msg })),
    [{ reqId: 'req-2', trace_id: 't', msg: 'traced' }],
  );
});

test("a route's own level makes the child at once, at that level", () => {
  const { logger, lines, children } = capturing('warn');
  const log = lazyRequestLogger(logger, { reqId: 'req-3' }, { level: 'debug' });
  assert.equal(children(), 1);
  log.debug('route debug');
  assert.deepEqual(
    lines.map(({ reqId, msg }) => ({ reqId, msg })),
    [{ reqId: 'req-3', msg: 'route debug' }],
  );
});
