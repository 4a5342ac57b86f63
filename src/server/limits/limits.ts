import fastifyRateLimit from '@fastify/rate-limit';
import type {
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  onRequestHookHandler,
  RouteOptions,
} from 'fastify';
import type { Registry } from 'prom-client';
import type { RedisClient } from '../../backends/redis/connection.js';
import { LimitError } from '../../core/errors.js';
import { limitKeyOf, type Principal } from '../auth/principal.js';
import { clientErrorHandler } from './client-errors.js';
import { clientKey } from './client-key.js';
import { ConnectionSlots } from './connection-slots.js';
import { LimitMetrics, type LimitName } from './metrics.js';
import { type RateBuckets, TokenBuckets } from './token-buckets.js';

export type RateName = 'publish' | 'chat' | 'connect';

/** What a route draws on. */
interface RouteLimits {
  /** The per-client rate one request takes a unit of. */
  readonly rate: RateName;
  /** Holds a connection slot while the response (or WebSocket) is open. */
  readonly slot?: boolean;
  /** Only the requests this says open a stream count (the route also answers JSON). */
  readonly opensStream?: (request: FastifyRequest) => boolean;
}

function acceptsEventStream(request: FastifyRequest): boolean {
  return request.headers.accept?.includes('text/event-stream') ?? false;
}

/**
 * The limited routes, by `METHOD url`: publishes, chats (which start a generation and hold a
 * stream), and every other stream open. Kept in one table rather than in each route file so the
 * policy reads in one place; a route missing from the app fails the start-up (see `install`).
 */
const LIMITED_ROUTES: Readonly<Record<string, RouteLimits>> = {
  'POST /v1/topics/:topic/events': { rate: 'publish' },
  'GET /v1/topics/:topic/events': { rate: 'connect', slot: true, opensStream: acceptsEventStream },
  'GET /v1/topics/:topic/ws': { rate: 'connect', slot: true },
  'GET /v1/ws': { rate: 'connect', slot: true },
  'POST /v1/chat': { rate: 'chat', slot: true },
  'POST /v1/chat/resume': { rate: 'connect', slot: true },
  'GET /v1/sessions/:id/stream': { rate: 'connect', slot: true },
  'POST /v1/chat/completions': { rate: 'chat', slot: true },
  'GET /v1/chat/completions/:id/stream': { rate: 'connect', slot: true },
  'POST /v1/streams/:id': { rate: 'connect', slot: true },
  'POST /v1/streams/:id/events': { rate: 'publish' },
  'GET /v1/streams/:id': {
    rate: 'connect',
    slot: true,
    // `?if_active=true` answers an event stream whatever the Accept header.
    opensStream: (request) =>
      acceptsEventStream(request) ||
      (request.query as { if_active?: unknown }).if_active === 'true',
  },
};

/** Nobody knows when a connection frees up; this spreads the retries of refused clients. */
const CONNECTION_RETRY_AFTER_MS = 5000;
/** Clients whose rate counters are kept (least recently seen forgotten first). */
const RATE_CLIENTS_MAX = 100_000;

/** Milliseconds until a request may pass (0: it passes now, and was counted). */
type RateCheck = (request: FastifyRequest, key: string) => number | Promise<number>;

/**
 * Where the per-client rates are counted when every process must see the same counts (with
 * `BACKEND=redis`); without it each process counts on its own.
 */
export interface SharedRates {
  /** For `@fastify/rate-limit`'s Redis store, with the prefix of its keys. */
  readonly redis: RedisClient;
  readonly nameSpace: string;
  /** Token buckets (one per client) named `name`, shared by every process. */
  tokenBuckets(name: RateName, capacity: number, windowMs: number): RateBuckets;
}

/** What the limits allow; 0 turns a rate or a cap off. */
export interface LimitSettings {
  /** Publishes (HTTP and WebSocket), chats and stream opens per client per `rateWindowMs`. */
  readonly rates: Readonly<Record<RateName, number>>;
  readonly rateWindowMs: number;
  /** Streaming connections of this process, and of one client. */
  readonly maxConnections: number;
  readonly maxConnectionsPerClient: number;
  /** Enforced by `TopicSocket` and by Node's HTTP parser; here for the metrics. */
  readonly maxSubscriptionsPerSocket: number;
  readonly maxHeaderBytes: number;
}

/**
 * Per-client and overall limits (docs/api.md §0: 429 per client, 503 overall, with `Retry-After`,
 * in the error shape): rates of publishes, chats and stream opens, concurrent streaming
 * connections, subscriptions per WebSocket (enforced by `TopicSocket`), and the size of
 * request headers (Node's HTTP parser, answered 431). Bodies and WebSocket frames are bounded
 * by MAX_BODY_BYTES where they are parsed.
 */
export class Limits {
  readonly slots: ConnectionSlots;
  readonly metrics: LimitMetrics;
  readonly #publishBuckets: RateBuckets | undefined;
  readonly #rates = new Map<RateName, RateCheck>();

  /** Without `shared`, each process counts the rates of its own clients. */
  constructor(
    readonly settings: LimitSettings,
    registry: Registry,
    readonly shared?: SharedRates,
  ) {
    const { rates } = settings;
    this.slots = new ConnectionSlots(settings.maxConnections, settings.maxConnectionsPerClient);
    this.metrics = new LimitMetrics(registry, this.slots, {
      publish_rate: rates.publish,
      chat_rate: rates.chat,
      connect_rate: rates.connect,
      connections_per_client: settings.maxConnectionsPerClient,
      connections_total: settings.maxConnections,
      subscriptions_per_socket: settings.maxSubscriptionsPerSocket,
      header_size: settings.maxHeaderBytes,
    });
    if (rates.publish > 0) {
      const buckets =
        shared?.tokenBuckets('publish', rates.publish, settings.rateWindowMs) ??
        new TokenBuckets(rates.publish, settings.rateWindowMs, RATE_CLIENTS_MAX);
      this.#publishBuckets = buckets;
      this.#rates.set('publish', (_request, key) => buckets.take(key));
    }
  }

  /** For Fastify's `clientErrorHandler` option: 431 (and other parser refusals) in our shape. */
  readonly answerClientError = clientErrorHandler(() => this.metrics.refused('header_size'));

  /**
   * Attaches the limits to the routes of LIMITED_ROUTES, as route-level `onRequest` hooks: they
   * run after the global ones (CORS, authentication), so a preflight is never limited and the
   * client is known, and before the body is read. Call before the routes are declared.
   */
  async install(app: FastifyInstance): Promise<void> {
    await this.#installRequestRates(app);
    const seen = new Set<string>();
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      for (const method of methods) {
        const name = `${method} ${route.url}`;
        const limits = LIMITED_ROUTES[name];
        if (limits === undefined) continue;
        seen.add(name);
        addOnRequest(route, this.#hook(limits));
      }
    });
    app.addHook('onReady', async () => {
      const missing = Object.keys(LIMITED_ROUTES).filter((name) => !seen.has(name));
      if (missing.length > 0) throw new Error(`limits for routes that do not exist: ${missing}`);
    });
  }

  /**
   * The check of a WebSocket's publish frames, or undefined when publishes are not limited.
   * It shares the client's budget with HTTP publishes. It takes the client's identity rather
   * than the upgrade request, which a WebSocket must not keep alive, and which does not know
   * the principal of a socket that authenticates with its first frame. `address` is the
   * request's `clientAddress`.
   */
  publishGate(principal: Principal, address: string): (() => Promise<void>) | undefined {
    const buckets = this.#publishBuckets;
    if (buckets === undefined) return undefined;
    const key = limitKeyOf(principal, address);
    return async () => {
      const waitMs = await buckets.take(key);
      if (waitMs > 0) throw this.#refuse('publish', waitMs);
    };
  }

  /** Counts the refusals that `TopicSocket` makes itself, from its error frames' codes. */
  frameRefused(code: string | undefined): void {
    if (code === 'too_many_subscriptions') this.metrics.refused('subscriptions_per_socket');
  }

  /**
   * `@fastify/rate-limit` counts the HTTP-only rates (a fixed window per client), in this
   * process (LRU-bounded) or in the shared Redis. Should Redis fail, requests pass rather than
   * fail here: those that need Redis fail on their own with 503.
   */
  async #installRequestRates(app: FastifyInstance): Promise<void> {
    const { rates, rateWindowMs } = this.settings;
    const limited = (['chat', 'connect'] as const).filter((name) => rates[name] > 0);
    if (limited.length === 0) return;
    const store = this.shared && { redis: this.shared.redis, nameSpace: this.shared.nameSpace };
    await app.register(fastifyRateLimit, { global: false, skipOnError: true, ...store });
    for (const name of limited) {
      const options = {
        max: rates[name],
        timeWindow: rateWindowMs,
        // A shared store has one key space: the rate's name keeps the counts apart.
        keyGenerator: (request: FastifyRequest) => `${name}:${clientKey(request)}`,
        // `cache` (clients tracked) is honoured at run time, but missing from the option's type.
        cache: RATE_CLIENTS_MAX,
      };
      const check = app.createRateLimit(options);
      this.#rates.set(name, async (request) => {
        const result = await check(request);
        return !result.isAllowed && result.isExceeded ? Math.max(1, result.ttl) : 0;
      });
    }
  }

  /** A callback, not an async function: without a rate limit (the default), no promise. */
  #hook(limits: RouteLimits): onRequestHookHandler {
    const rate = this.#rates.get(limits.rate);
    return (request, reply, done) => {
      if (limits.opensStream !== undefined && !limits.opensStream(request)) return done();
      const key = clientKey(request);
      if (limits.slot) this.#takeSlot(request, reply, key);
      if (rate === undefined) return done();
      const passes = (waitMs: number) =>
        done(waitMs > 0 ? (this.#refuse(limits.rate, waitMs) as FastifyError) : undefined);
      void Promise.resolve(rate(request, key)).then(passes, done);
    };
  }

  /** Holds a slot until the response ends, or the WebSocket's TCP socket closes. */
  #takeSlot(request: FastifyRequest, reply: FastifyReply, key: string): void {
    const refusal = this.slots.acquire(key);
    if (refusal === 'total') {
      this.metrics.refused('connections_total');
      throw new LimitError(
        'unavailable',
        'overloaded',
        'the server is at its connection limit; try again later or elsewhere',
        CONNECTION_RETRY_AFTER_MS,
      );
    }
    if (refusal === 'per_client') {
      this.metrics.refused('connections_per_client');
      throw new LimitError(
        'rate_limited',
        'too_many_connections',
        `at most ${this.slots.maxPerClient} streaming connections per client`,
        CONNECTION_RETRY_AFTER_MS,
      );
    }
    let held = true;
    const release = () => {
      if (held) this.slots.release(key);
      held = false;
    };
    const socket = request.raw.socket;
    if (socket.destroyed) release();
    else if (request.ws) socket.once('close', release);
    else reply.raw.once('close', release);
  }

  #refuse(rate: RateName, waitMs: number): LimitError {
    const limit: LimitName = `${rate}_rate`;
    this.metrics.refused(limit);
    const per = `${this.settings.rates[rate]} per ${this.settings.rateWindowMs} ms per client`;
    return new LimitError(
      'rate_limited',
      'rate_limited',
      `too many ${RATE_NOUNS[rate]}: ${per}`,
      waitMs,
    );
  }
}

const RATE_NOUNS: Record<RateName, string> = {
  publish: 'publishes',
  chat: 'chats',
  connect: 'stream opens',
};

/** Appends a hook to the route's own `onRequest` hooks, which may be one function or a list. */
function addOnRequest(route: RouteOptions, hook: onRequestHookHandler): void {
  const existing = route.onRequest;
  if (existing === undefined) route.onRequest = [hook];
  else route.onRequest = Array.isArray(existing) ? [...existing, hook] : [existing, hook];
}
