import type { IncomingMessage } from 'node:http';
import { context, isSpanContextValid, type Span, trace } from '@opentelemetry/api';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyPluginCallback,
  FastifyRequest,
} from 'fastify';

/** Tracing as the server uses it once the SDK runs: see `startTracing`. */
export interface Tracing {
  /** Opens a span per HTTP request (a W3C `traceparent` makes it that trace's child). Register
   *  it before any other hook, so that every hook and handler runs inside the span. */
  readonly plugin: FastifyPluginCallback;
  /** Sends the spans not yet exported and stops. */
  shutdown(): Promise<void>;
}

/**
 * Tracing is on when an OTLP endpoint is set, as OpenTelemetry's own variables say (and
 * neither `OTEL_SDK_DISABLED` nor `OTEL_TRACES_EXPORTER=none` turns it off).
 */
export function tracingWanted(env: NodeJS.ProcessEnv): boolean {
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  return (
    Boolean(endpoint) &&
    env.OTEL_SDK_DISABLED?.toLowerCase() !== 'true' &&
    env.OTEL_TRACES_EXPORTER?.toLowerCase() !== 'none'
  );
}

/**
 * Starts the OpenTelemetry SDK, configured by the standard `OTEL_*` variables, when they ask
 * for tracing; undefined otherwise. The SDK is loaded only then: without it every span of
 * `src/core/tracing.ts` is the API's no-op, and the server runs as if tracing did not exist.
 * Once per process: it installs itself globally.
 */
export async function startTracing(env: NodeJS.ProcessEnv): Promise<Tracing | undefined> {
  if (!tracingWanted(env)) return undefined;
  const { startSdk } = await import('./sdk.js');
  return startSdk(env);
}

interface TraceIds {
  trace_id?: string;
  span_id?: string;
}

/** Marks the request loggers that carry their request span's ids already. */
const BOUND = Symbol('trace ids bound');

/**
 * Traces `app`'s requests: registers `tracing`'s plugin, which must come before every other
 * hook, gives each request's log lines (`request completed` too, which is written outside
 * any span) its span's ids, and flushes the spans when the app closes.
 */
export async function traceRequests(app: FastifyInstance, tracing: Tracing): Promise<void> {
  await app.register(tracing.plugin);
  const upgrades = endSpansOnUpgrade(app);
  app.addHook('onRequest', (request, reply, done) => {
    upgrades.track(request);
    const ids = activeTraceIds();
    if (ids.trace_id !== undefined) {
      const log = Object.assign(request.log.child(ids), { [BOUND]: true });
      request.log = log;
      reply.log = log;
    }
    done();
  });
  app.addHook('onClose', () => tracing.shutdown());
}

/**
 * `@fastify/otel` ends a request's span when its answer is sent, which an upgraded request's
 * never is: its span would stay open for ever, never exported, and the spans of the socket's
 * publishes (children of it, see `inCurrentTrace`) would point at a parent no backend sees.
 * Ends it at the upgrade instead, with the 101 as its status.
 */
function endSpansOnUpgrade(app: FastifyInstance): { track(request: FastifyRequest): void } {
  const spans = new WeakMap<IncomingMessage, Span>();
  app.addHook('onReady', function (done) {
    this.websocketServer.on('connection', (_socket: unknown, raw: IncomingMessage) => {
      spans.get(raw)?.setAttribute('http.response.status_code', 101).end();
      spans.delete(raw);
    });
    done();
  });
  return {
    track(request) {
      const span = trace.getActiveSpan();
      if (span !== undefined && request.headers.upgrade !== undefined) spans.set(request.raw, span);
    },
  };
}

/**
 * A pino mixin: the ids of the span active when a line is logged, so that logs and traces
 * meet. Lines of a request's logger have their request's already.
 */
export function traceIdsForLog(_line: object, _level: number, logger: FastifyBaseLogger): TraceIds {
  return BOUND in logger ? {} : activeTraceIds();
}

function activeTraceIds(): TraceIds {
  const span = trace.getSpan(context.active())?.spanContext();
  if (span === undefined || !isSpanContextValid(span)) return {};
  return { trace_id: span.traceId, span_id: span.spanId };
}
