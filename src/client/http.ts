import { errorFromResponse, networkError } from './errors.js';
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

export interface TopicRequest {
  readonly baseUrl: string;
  readonly topic: string;
  readonly headers: Record<string, string>;
  readonly fetch: typeof fetch;
  readonly signal: AbortSignal;
}

/** The id of the topic's newest event, or null when it has none (contract §2 topic info). */
export async function fetchLastId(request: TopicRequest): Promise<string | null> {
  const response = await fetchOk(request.fetch, topicUrl(request.baseUrl, request.topic), {
    headers: { accept: 'application/json', ...request.headers },
    signal: request.signal,
  });
  const info = (await response.json()) as { last_id?: unknown };
  return typeof info.last_id === 'string' ? info.last_id : null;
}
