import { type Frame, parseJson, toFrameError, toResetNotice } from './frames.js';
import { authHeaders } from './http.js';
import { readEventStream } from './sse-fetch.js';
import type { SseMessage } from './sse-parser.js';
import { type Attempt, startSubscription } from './subscription.js';
import type { SubscribeOptions, Subscription } from './types.js';
import { topicUrl } from './urls.js';

/**
 * Subscribes to a topic over Server-Sent Events, read with streaming `fetch` so that headers
 * such as `Authorization` can be sent. Reconnects by itself (exponential backoff with full
 * jitter) and resumes after the last event received, so `onEvent` sees every event once, in
 * order; a `reset` from the server is passed to `onReset`. Throws a TypeError at once when
 * `baseUrl` is not an http(s) URL.
 *
 * ```ts
 * const subscription = subscribe('http://127.0.0.1:8080', 'orders', {
 *   onEvent: ({ id, event, data }) => console.log(id, event, data),
 *   onReset: ({ reason }) => console.warn('missed events:', reason),
 * });
 * // later
 * subscription.close();
 * ```
 */
export function subscribe(baseUrl: string, topic: string, options: SubscribeOptions): Subscription {
  return startSubscription(baseUrl, topic, options, connectSse);
}

async function connectSse(attempt: Attempt): Promise<void> {
  const request = {
    fetch: attempt.fetch,
    url: sseUrl(attempt),
    init: { headers: await sseHeaders(attempt) },
    signal: attempt.signal,
    idleTimeoutMs: attempt.idleTimeoutMs,
  };
  return readEventStream(request, {
    opened: () => attempt.opened(),
    message: (message) => onMessage(attempt, message),
    retry: (ms) => attempt.suggestRetry(ms),
  });
}

function onMessage(attempt: Attempt, message: SseMessage): void {
  // Only stored events carry an id; an id-less `reset` is the server's per-connection notice,
  // an id-less `error` why the server ends the stream (e.g. `token_expired`).
  if (message.id === undefined) {
    if (message.event === 'reset') attempt.reset(toResetNotice(parseJson(message.data, 'reset')));
    if (message.event === 'error')
      throw toFrameError((parseJson(message.data, 'error') ?? {}) as Frame);
    return;
  }
  const data = parseJson(message.data, `data of event ${message.id}`);
  attempt.event({ id: message.id, event: message.event, data });
}

function sseUrl(attempt: Attempt): string {
  const from = attempt.lastEventId === undefined && attempt.fromStart ? 'start' : undefined;
  return topicUrl(attempt.baseUrl, attempt.topic, '/events', { from });
}

async function sseHeaders(attempt: Attempt): Promise<Record<string, string>> {
  const headers: Record<string, string> = { ...(await authHeaders(attempt)) };
  if (attempt.lastEventId !== undefined) headers['last-event-id'] = attempt.lastEventId;
  return headers;
}
