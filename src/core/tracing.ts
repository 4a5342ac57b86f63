import {
  type Attributes,
  context,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';

/**
 * The spans features open, through `@opentelemetry/api` alone: until the server installs the
 * SDK (only when an exporter is configured, see `src/server/tracing/`), every call here is the
 * API's no-op, and nothing is recorded or sent.
 */
export const tracer = trace.getTracer('streamhub');

export { SpanKind };

/** Runs `work` in a new span, the active one meanwhile; the span ends when `work` settles. */
export function inSpan<T>(
  name: string,
  attributes: Attributes,
  work: () => Promise<T>,
  kind: SpanKind = SpanKind.INTERNAL,
): Promise<T> {
  const span = tracer.startSpan(name, { attributes, kind });
  return endedWith(span, context.with(trace.setSpan(context.active(), span), work));
}

/** `settled`, which ends `span` when it settles (as failed when it rejects). */
export function endedWith<T>(span: Span, settled: Promise<T>): Promise<T> {
  return settled.then(
    (value) => {
      span.end();
      return value;
    },
    (error: unknown) => {
      endSpan(span, error);
      throw error;
    },
  );
}

/**
 * Runs `work` in a new span that outlives it, the active one meanwhile (so that what `work`
 * starts in the background runs inside it too): whoever `work` hands the span to ends it
 * (`endedWith`, `endSpan`). A failure of `work` ends it at once.
 */
export async function inLongSpan<T>(
  name: string,
  attributes: Attributes,
  work: (span: Span) => Promise<T>,
): Promise<T> {
  const span = tracer.startSpan(name, { attributes });
  try {
    return await context.with(trace.setSpan(context.active(), span), work, undefined, span);
  } catch (error) {
    endSpan(span, error);
    throw error;
  }
}

/** Ends `span`, marked as failed with `error` when there is one. */
export function endSpan(span: Span, error?: unknown): void {
  if (error !== undefined) {
    span.recordException(error instanceof Error ? error : String(error));
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message : String(error),
    });
  }
  span.end();
}

/** Runs `work` in a trace context captured earlier by `inCurrentTrace`. */
export type InTrace = <T>(work: () => T) => T;

/**
 * The trace context active now, as a function that runs later work in it: for work that
 * arrives on a long-lived connection (a WebSocket's frames), whose callbacks run in the
 * context of the TCP socket, outside the request that opened the connection.
 */
export function inCurrentTrace(): InTrace {
  const captured = context.active();
  return (work) => context.with(captured, work);
}

/** Adds attributes to the active span, if any (e.g. what a feature learns once it started). */
export function describeActiveSpan(attributes: Attributes): void {
  trace.getActiveSpan()?.setAttributes(attributes);
}
