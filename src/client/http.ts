import { errorFromResponse, networkError, type StreamhubClientError } from './errors.js';
import { topicUrl } from './urls.js';

/** Looked up at call time, so that a fetch installed (or mocked) later is the one used. */
export const globalFetch: typeof fetch = (input, init) => globalThis.fetch(input, init);

/**
 * `fetch` whose failures are StreamhubClientErrors: a network failure becomes `network_error`
 * (status 0), an answer other than 2xx the server's error. An abort is rethrown as it is.
 */
export async function fetchOk(
  fetchImpl: typeof fetch,
  url: string,
  init: RequestInit,
): Promise<Response> {
  let response: Response;
  try {
    response = await fetchImpl(url, init);
  } catch (error) {
    if (init.signal?.aborted) throw error;
    throw networkError(error);
  }
  if (!response.ok) throw await errorFromResponse(response);
  return response;
}

/**
 * An access token (docs/api.md §7): the token itself, or a function returning one, called before
 * every request and (re)connection, so that it can hand out a refreshed token. An empty string
 * means none: no credentials are sent.
 */
export type TokenSource = string | (() => string | Promise<string>);

/** Headers, and the token to send with them. */
export interface Credentials {
  readonly headers: Record<string, string>;
  readonly token?: TokenSource | undefined;
}

/** The current token, or undefined when there is none. */
export async function currentToken(token: TokenSource | undefined): Promise<string | undefined> {
  const value = typeof token === 'function' ? await token() : token;
  return value || undefined;
}

/** `headers`, plus `Authorization: Bearer <token>` when there is a token. */
export async function authHeaders(credentials: Credentials): Promise<Record<string, string>> {
  const token = await currentToken(credentials.token);
  const { headers } = credentials;
  return token === undefined ? headers : { ...headers, authorization: `Bearer ${token}` };
}

/**
 * Whether a connection should be opened again after `error`: when it is retryable, or when the
 * server ended it because its token expired and `token` is a function that can hand out a fresh
 * one (with a fixed token, `token_expired` stops the stream).
 */
export function worthRetrying(
  error: StreamhubClientError,
  token: TokenSource | undefined,
): boolean {
  return error.retryable || (error.code === 'token_expired' && typeof token === 'function');
}

export interface TopicRequest extends Credentials {
  readonly baseUrl: string;
  readonly topic: string;
  readonly fetch: typeof fetch;
  readonly signal: AbortSignal;
}

/** The id of the topic's newest event, or null when it has none (docs/api.md §2 topic info). */
export async function fetchLastId(request: TopicRequest): Promise<string | null> {
  const response = await fetchOk(request.fetch, topicUrl(request.baseUrl, request.topic), {
    headers: { accept: 'application/json', ...(await authHeaders(request)) },
    signal: request.signal,
  });
  const info = (await response.json()) as { last_id?: unknown };
  return typeof info.last_id === 'string' ? info.last_id : null;
}
