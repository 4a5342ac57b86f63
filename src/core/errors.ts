/** What went wrong, independent of the protocol that reports it (HTTP status, WS error frame). */
export type ErrorKind =
  | 'invalid'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'too_large'
  | 'rate_limited'
  | 'unavailable';

/** An error meant for the client: a stable snake_case code and a human message. */
export class StreamhubError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly code: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * Refused by a limit (a rate, a connection cap): trying again after `retryAfterMs` may succeed.
 * Answered with `Retry-After` over HTTP and `retry_after_ms` in a WebSocket error frame.
 */
export class LimitError extends StreamhubError {
  constructor(
    kind: 'rate_limited' | 'unavailable',
    code: string,
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(kind, code, message);
  }
}

/** The backend (e.g. Redis) cannot be reached; answered as 503 `backend_unavailable`. */
export class BackendUnavailableError extends StreamhubError {
  constructor(
    /** The request never reached the backend, so trying it again cannot apply it twice. */
    readonly unsent: boolean,
    options?: ErrorOptions,
  ) {
    super('unavailable', 'backend_unavailable', 'the backend is unavailable', options);
  }
}
