import { FastifyOtelInstrumentation } from '@fastify/otel';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { FastifyRequest } from 'fastify';
import type { Tracing } from './index.js';

/**
 * The OpenTelemetry SDK for traces, every setting from the `OTEL_*` variables (exporter,
 * protocol, endpoint, service name, sampler, batching), and `@fastify/otel` for the HTTP
 * requests: a Fastify plugin, nothing patched. Imported only when tracing is on.
 */
export function startSdk(env: NodeJS.ProcessEnv): Tracing {
  // Traces only, unless asked: the SDK would otherwise export metrics and logs over OTLP too,
  // and streamhub's metrics are at /metrics.
  env.OTEL_METRICS_EXPORTER ||= 'none';
  env.OTEL_LOGS_EXPORTER ||= 'none';
  if (
    !env.OTEL_SERVICE_NAME &&
    !/(^|,)\s*service\.name=/.test(env.OTEL_RESOURCE_ATTRIBUTES ?? '')
  ) {
    env.OTEL_SERVICE_NAME = 'streamhub';
  }
  const fastify = new FastifyOtelInstrumentation({
    // A span per request and per handler: one per hook too would multiply them for no insight.
    instrumentHooks: false,
    // Spans named by the route template, as OpenTelemetry's HTTP conventions ask (never the
    // raw path, whose names would be unbounded), rather than `request` and the plugin chain.
    requestHook: (span, request) => span.updateName(`${request.method} ${routeOf(request)}`),
    lifecycleHook: (span, { hookName, request }) =>
      span.updateName(`${hookName} ${routeOf(request)}`),
  });
  const sdk = new NodeSDK({ instrumentations: [fastify] });
  sdk.start();
  return { plugin: fastify.plugin(), shutdown: () => sdk.shutdown() };
}

function routeOf(request: FastifyRequest): string {
  return request.routeOptions.url ?? '(no route)';
}
