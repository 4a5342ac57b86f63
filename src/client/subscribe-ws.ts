import { toFrameError, toResetNotice, toTopicEvent } from './frames.js';
import { currentToken } from './http.js';
import { startSubscription } from './subscription.js';
import { startFields } from './topic-cursor.js';
import type { SubscribeOptions, Subscription } from './types.js';
import { topicUrl } from './urls.js';
import { runSocket, type WebSocketConstructor, webSocketClass } from './websocket.js';

export interface SubscribeWsOptions extends SubscribeOptions {
  /** Default: the global `WebSocket` (browsers, Node ≥ 22). From Node 20 pass the `ws` package's
   *  class, e.g. `{ WebSocket: (await import('ws')).WebSocket }`. */
  readonly WebSocket?: WebSocketConstructor;
}

/**
 * `subscribe` over the topic's WebSocket (`/v1/topics/{topic}/ws`), with the same guarantees:
 * reconnects with backoff, resumes with `?last_event_id=`, passes a `reset` to `onReset`.
 * Quiet connections are checked with `{"type":"ping"}` frames, because the server's
 * protocol-level pings are invisible to the WebSocket API.
 *
 * ```ts
 * import { WebSocket } from 'ws'; // not needed in browsers
 * const subscription = subscribeWs('http://127.0.0.1:8080', 'orders', {
 *   WebSocket,
 *   onEvent: ({ id, data }) => console.log(id, data),
 * });
 * ```
 */
export function subscribeWs(
  baseUrl: string,
  topic: string,
  options: SubscribeWsOptions,
): Subscription {
  const WebSocket = webSocketClass(options.WebSocket);
  return startSubscription(baseUrl, topic, options, async (attempt) => {
    // Browsers cannot send headers with a WebSocket: the token goes in the query.
    const token = await currentToken(attempt.token);
    const query = { ...startFields(attempt), token };
    return runSocket({
      ...attempt,
      WebSocket,
      httpUrl: topicUrl(attempt.baseUrl, attempt.topic, '/ws', query),
      opened: () => attempt.opened(),
      frame: (frame) => {
        switch (frame.type) {
          case 'event':
            attempt.event(toTopicEvent(frame));
            break;
          case 'reset':
            attempt.reset(toResetNotice(frame));
            break;
          case 'error':
            // E.g. `subscription_failed`: the server gave up on this subscription; a new one
            // resumes. `token_expired` is followed by close 4401.
            throw toFrameError(frame);
        }
      },
    });
  });
}
