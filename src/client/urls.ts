/** Throws a TypeError unless `baseUrl` is an absolute http(s) URL: a typo fails at once. */
export function checkBaseUrl(baseUrl: string): void {
  const protocol = URL.canParse(baseUrl) ? new URL(baseUrl).protocol : 'none';
  if (protocol !== 'http:' && protocol !== 'https:') {
    throw new TypeError(
      `base URL must be an http:// or https:// URL, got ${JSON.stringify(baseUrl)}`,
    );
  }
}

/**
 * `{baseUrl}{path}?{query}`, for a `path` whose parts are already encoded. The base may carry a
 * path prefix (a server behind a reverse proxy), so paths are appended rather than resolved
 * against it.
 */
export function apiUrl(
  baseUrl: string,
  path: string,
  query: Record<string, string | undefined> = {},
): string {
  const url = new URL(`${baseUrl.replace(/\/+$/, '')}${path}`);
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined) url.searchParams.set(name, value);
  }
  return url.href;
}

/** `{baseUrl}/v1/topics/{topic}{suffix}?{query}`. */
export const topicUrl = resourceUrl('topics');

/** `{baseUrl}/v1/streams/{id}{suffix}?{query}`. */
export const streamUrl = resourceUrl('streams');

/** The URLs of one kind of named resource, `{baseUrl}/v1/{kind}/{name}{suffix}?{query}`. */
function resourceUrl(kind: string) {
  return (
    baseUrl: string,
    name: string,
    suffix = '',
    query: Record<string, string | undefined> = {},
  ): string => apiUrl(baseUrl, `/v1/${kind}/${encodeURIComponent(name)}${suffix}`, query);
}

/** `{baseUrl}/v1/sessions/{sessionId}{suffix}`. */
export function sessionUrl(baseUrl: string, sessionId: string, suffix = ''): string {
  return apiUrl(baseUrl, `/v1/sessions/${encodeURIComponent(sessionId)}${suffix}`);
}

/** The same URL with the WebSocket scheme matching the HTTP one. */
export function toWebSocketUrl(httpUrl: string): string {
  const url = new URL(httpUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}
