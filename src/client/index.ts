/**
 * The streamhub client: publish to topics and subscribe to them over SSE or WebSocket (a
 * socket per topic, or many topics on one with `connectMux`), stream chat replies, and produce
 * and read resumable streams (`produce`, `readStream`), with automatic reconnection and
 * resumption. No dependencies and no Node-only APIs, so it runs in
 * Node ≥ 20 and in browsers alike (docs/client.md).
 *
 * ```ts
 * import { createChat, publish, subscribe } from 'streamhub/client';
 *
 * const subscription = subscribe('http://127.0.0.1:8080', 'chat.room1', {
 *   fromStart: true,
 *   onEvent: ({ id, event, data }) => console.log(id, event, data),
 *   onReset: ({ reason, oldest }) => console.warn(`gap (${reason}); replaying from ${oldest}`),
 *   onError: (error) => console.error(error.status, error.code, error.message),
 * });
 * await publish('http://127.0.0.1:8080', 'chat.room1', { text: 'hello' });
 * subscription.close();
 *
 * const chat = createChat('http://127.0.0.1:8080');
 * for await (const event of chat.send('session-1', 'hello')) {
 *   if (event.type === 'delta') console.log(event.content);
 * }
 * ```
 */
export {
  type ChatClient,
  type ChatClientOptions,
  createChat,
  type ReplyEvent,
  type ReplyStream,
  type ResumeOptions,
  type SendOptions,
} from './chat.js';
export { StreamhubClientError } from './errors.js';
export type { TokenSource } from './http.js';
export {
  connectMux,
  type MuxConnection,
  type MuxOptions,
  type MuxPublishOptions,
} from './mux.js';
export {
  type Produced,
  type ProduceOptions,
  type ProduceSource,
  produce,
  type StreamBodyType,
  type StreamEventInput,
} from './produce.js';
export { type Published, type PublishOptions, publish } from './publish.js';
export {
  type ReadStreamOptions,
  readStream,
  type StreamEvent,
  type StreamReader,
} from './read-stream.js';
export { type SseMessage, SseParser, type SseParserHandlers } from './sse-parser.js';
export { subscribe } from './subscribe.js';
export { type SubscribeWsOptions, subscribeWs } from './subscribe-ws.js';
export type {
  ConnectionState,
  ResetNotice,
  StateInfo,
  SubscribeOptions,
  Subscription,
  TopicEvent,
  TopicSubscriptionOptions,
} from './types.js';
export type { WebSocketConstructor, WebSocketLike } from './websocket.js';
