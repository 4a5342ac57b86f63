/** What went wrong, independent of the protocol that reports it (HTTP status, WS error frame). */
export type ErrorKind = 'invalid' | 'not_found' | 'conflict' | 'too_large' | 'unavailable';

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
