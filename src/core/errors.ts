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
