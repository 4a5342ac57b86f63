import type { LlmErrorCode } from '../llm/provider.js';

/** The client went away before its answer was ready (non-streamed requests only). */
export class ClientClosedError extends Error {
  constructor() {
    super('the client closed the request');
  }
}

/**
 * The HTTP status a generation failure answers with when nothing was sent yet: the upstream's
 * fault is 502/504, "try again shortly" is 503, and the upstream refusing the request itself
 * (e.g. an unknown model) is the client's 400.
 */
export function statusOfLlmError(code: LlmErrorCode): number {
  switch (code) {
    case 'invalid_request':
      return 400;
    case 'upstream_timeout':
      return 504;
    case 'upstream_error':
      return 502;
    case 'upstream_rate_limited':
    case 'upstream_unavailable':
    case 'circuit_open':
      return 503;
  }
}

/** OpenAI's error `type` for a status, which SDKs expose as `error.type`. */
export function errorTypeOf(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}
