import { LlmError } from './provider.js';

/**
 * Maps what an OpenAI-compatible upstream answered, or how its connection failed, into an
 * LlmError, deciding what is worth another attempt.
 */

/** Response headers, read by name: a fetch `Headers` or a lookup over `IncomingHttpHeaders`. */
export interface HeaderLookup {
  get(name: string): string | null | undefined;
}

/** No response came: refused, reset or dropped before the status line. */
export function connectionFailure(error: unknown): LlmError {
  if (error instanceof LlmError) return error;
  return new LlmError(
    'upstream_unavailable',
    `cannot reach the upstream${describeCause(error)}`,
    true,
  );
}

/** The socket failed while the body streamed: a reset, a dropped connection. */
export function midStreamFailure(error: unknown): LlmError {
  if (error instanceof LlmError) return error;
  if (error instanceof SyntaxError) return malformedChunk();
  return new LlmError(
    'upstream_error',
    `the upstream connection failed mid-stream${describeCause(error)}`,
    true,
  );
}

/** An `{"error": …}` event inside a 200 stream. */
export function streamedError(): LlmError {
  return new LlmError('upstream_error', 'the upstream reported an error mid-stream', true);
}

/**
 * A non-2xx answer, `text` its body. Any 4xx but 429 is the upstream's refusal of the request
 * itself (a bad tool schema, a context too long, an unknown model, or streamhub's own key):
 * not worth another attempt, and kept as a `rejection` for the client to get as it came.
 * Its message here, for chat sessions and logs, stays vague for auth failures, whose text can
 * quote part of the server's key.
 */
export function statusFailure(status: number, headers: HeaderLookup, text: string): LlmError {
  const retryAfterMs = retryAfter(headers);
  if (status === 429) {
    return new LlmError(
      'upstream_rate_limited',
      'the upstream is rate limiting requests',
      true,
      retryAfterMs,
    );
  }
  if (status === 502 || status === 503 || status === 504) {
    return new LlmError(
      'upstream_unavailable',
      `the upstream is unavailable (${status})`,
      true,
      retryAfterMs,
    );
  }
  if (status >= 500) {
    return new LlmError('upstream_error', `the upstream failed (${status})`, true, retryAfterMs);
  }
  if (status < 400) return new LlmError('upstream_error', `the upstream answered ${status}`);
  const error = errorObject(text);
  const rejection = { status, body: error === undefined ? undefined : text };
  if (status === 401 || status === 403) {
    const message = `the upstream refused the server's credentials (${status})`;
    return new LlmError('upstream_error', message, false, undefined, rejection);
  }
  const detail = typeof error?.message === 'string' ? `: ${error.message}` : '';
  const message = `the upstream rejected the request (${status})${detail}`;
  return new LlmError('invalid_request', message, false, undefined, rejection);
}

/** The `error` object of OpenAI's error body `{"error": {"message", …}}`, if `text` is one. */
function errorObject(text: string): { message?: unknown } | undefined {
  try {
    const { error } = JSON.parse(text) as { error?: unknown };
    return typeof error === 'object' && error !== null ? error : undefined;
  } catch {
    return undefined;
  }
}

/** Not retried: a garbled stream says more about a broken or incompatible upstream than luck. */
export function malformedChunk(): LlmError {
  return new LlmError('upstream_error', 'the upstream sent a malformed chunk', false);
}

/** `retry-after-ms` (OpenAI's own, precise) or `Retry-After` in seconds or as an HTTP date. */
export function retryAfter(
  headers: HeaderLookup | undefined,
  now = Date.now(),
): number | undefined {
  const milliseconds = Number.parseFloat(headers?.get('retry-after-ms') ?? '');
  if (Number.isFinite(milliseconds) && milliseconds >= 0) return milliseconds;
  const value = headers?.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Number.parseFloat(value) * 1000;
  // Every HTTP date format starts with the day's name; Date.parse alone would take "-4".
  const date = /^[A-Za-z]{3}/.test(value) ? Date.parse(value) : Number.NaN;
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The first system error code down the cause chain (`ECONNREFUSED`, `ECONNRESET`…). */
function describeCause(error: unknown): string {
  for (let cause = error, depth = 0; cause instanceof Object && depth < 4; depth++) {
    const { code } = cause as { code?: unknown };
    if (typeof code === 'string') return ` (${code})`;
    cause = (cause as { cause?: unknown }).cause;
  }
  return '';
}
