/**
 * A failure reported by the streamhub client. `status` is the HTTP status of the server's
 * answer (for a WebSocket `error` frame, that of the same refusal over HTTP), or 0 when there
 * was none (network failure, dropped connection); `code` is the server's snake_case error code
 * (contract §0), or one of the client's own: `network_error`, `idle_timeout` (connection
 * presumed dead), `protocol_error`, and `http_<status>` for an answer without a JSON error body.
 */
export class StreamhubClientError extends Error {
  override readonly name = 'StreamhubClientError';

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Whether trying again later may succeed: network failures, 408, 429 and 5xx. */
  get retryable(): boolean {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

export function networkError(cause: unknown): StreamhubClientError {
  const reason = describeCause(cause);
  return new StreamhubClientError(0, 'network_error', `network error: ${reason}`, { cause });
}

export function idleTimeoutError(ms: number): StreamhubClientError {
  return new StreamhubClientError(0, 'idle_timeout', `nothing received for ${ms} ms`);
}

export function protocolError(message: string): StreamhubClientError {
  // Status 200: the server answered, but not in a way a retry would change.
  return new StreamhubClientError(200, 'protocol_error', message);
}

/** The contract's `{"error": {"code", "message"}}` body, or a generic error for any other. */
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
