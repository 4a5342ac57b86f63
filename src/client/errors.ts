/**
 * A failure reported by the streamhub client. `status` is the HTTP status of the server's
 * answer (for a WebSocket `error` frame, that of the same refusal over HTTP), or 0 when no HTTP
 * status applies: there was no answer (network failure, dropped connection, idle timeout), or
 * the stream that came cannot be followed (`protocol_error`, a chat reply that can no longer be
 * resumed); `code` is the server's snake_case error code (docs/api.md §0), or one of the client's
 * own: `network_error`, `idle_timeout` (connection presumed dead), `protocol_error`, and
 * `http_<status>` for an answer without a JSON error body.
 */
export class StreamhubClientError extends Error {
  override readonly name = 'StreamhubClientError';
  /** Whether trying again later may succeed. Default: what `status` says (408, 429 and 5xx). */
  readonly retryable: boolean;

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    options: { readonly retryable?: boolean; readonly cause?: unknown } = {},
  ) {
    const { retryable = isRetryableStatus(status), ...errorOptions } = options;
    super(message, errorOptions);
    this.retryable = retryable;
  }
}

/** Statuses after which the same request may succeed later. */
function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export function networkError(cause: unknown): StreamhubClientError {
  const reason = describeCause(cause);
  const message = `network error: ${reason}`;
  return new StreamhubClientError(0, 'network_error', message, { retryable: true, cause });
}

export function idleTimeoutError(ms: number): StreamhubClientError {
  const message = `nothing received for ${ms} ms`;
  return new StreamhubClientError(0, 'idle_timeout', message, { retryable: true });
}

/** The server answered, but not in a way a retry would change. */
export function protocolError(message: string): StreamhubClientError {
  return new StreamhubClientError(0, 'protocol_error', message, { retryable: false });
}

/** The API's `{"error": {"code", "message"}}` body, or a generic error for any other. */
export async function errorFromResponse(response: Response): Promise<StreamhubClientError> {
  const text = await response.text().catch(() => '');
  const body = parseJson(text) as { error?: { code?: unknown; message?: unknown } } | undefined;
  const { code, message } = body?.error ?? {};
  if (typeof code === 'string' && typeof message === 'string') {
    return new StreamhubClientError(response.status, code, message);
  }
  const detail = text.trim().slice(0, 200) || response.statusText;
  return new StreamhubClientError(
    response.status,
    `http_${response.status}`,
    `HTTP ${response.status}${detail ? `: ${detail}` : ''}`,
  );
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** fetch reports "fetch failed"; the useful part (ECONNREFUSED, …) is in its cause. */
function describeCause(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  const inner = cause.cause;
  if (inner instanceof Error) {
    const code = (inner as { code?: unknown }).code;
    return typeof code === 'string' ? `${code} (${inner.message})` : inner.message;
  }
  return cause.message;
}
