import { authHeaders, fetchOk, globalFetch, type TokenSource } from './http.js';
import { checkBaseUrl, topicUrl } from './urls.js';

export interface PublishOptions {
  /** Event type; the server's default is `message`. */
  readonly event?: string;
  /** Makes retries safe: a repeated key on the topic appends nothing and returns the
   *  original event's id (within the server's IDEMPOTENCY_TTL_MS). */
  readonly idempotencyKey?: string;
  /** Sent with the request. */
  readonly headers?: Record<string, string>;
  /** Access token (docs/api.md §7), sent as `Authorization: Bearer`; a function is called for it. */
  readonly token?: TokenSource;
  readonly signal?: AbortSignal;
  /** The `fetch` to use; default: the global one. */
  readonly fetch?: typeof fetch;
}

/** The server's answer: where the event was stored. */
export interface Published {
  readonly id: string;
  readonly topic: string;
  readonly event: string;
}

/**
 * Publishes one event: `data` is any JSON value. Throws a StreamhubClientError with the
 * server's `status`, `code` and `message` when it refuses, or `network_error` (status 0).
 *
 * ```ts
 * const { id } = await publish('http://127.0.0.1:8080', 'orders', { sku: 'A1', qty: 2 }, {
 *   event: 'order.created',
 *   idempotencyKey: 'order-1234',
 * });
 * ```
 */
export async function publish(
  baseUrl: string,
  topic: string,
  data: unknown,
  options: PublishOptions = {},
): Promise<Published> {
  checkBaseUrl(baseUrl);
  const headers: Record<string, string> = {
    ...(await authHeaders({ headers: options.headers ?? {}, token: options.token })),
    'content-type': 'application/json',
  };
  if (options.idempotencyKey !== undefined) headers['idempotency-key'] = options.idempotencyKey;
  const body = options.event === undefined ? { data } : { data, event: options.event };
  const response = await fetchOk(
    options.fetch ?? globalFetch,
    topicUrl(baseUrl, topic, '/events'),
    { method: 'POST', headers, body: JSON.stringify(body), signal: options.signal },
  );
  return (await response.json()) as Published;
}
