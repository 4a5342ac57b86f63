import assert from 'node:assert/strict';
import OpenAI from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { mockReply } from '../../src/llm/mock.js';
import type { ChatMessage } from '../../src/llm/provider.js';
import type { RunningServer } from '../../src/server/server.js';
import { PATIENCE_MS } from '../helpers/patience.js';
import { RawSseClient, type SseMessage } from '../helpers/sse-client.js';

/** The official SDK pointed at the front door; no retries, so a test sees every failure. */
export function sdkClient(server: RunningServer): OpenAI {
  return new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
}

/** What the mock model answers to `messages`, whole. */
export function expectedReply(messages: readonly ChatMessage[]): string {
  return mockReply(messages).join('');
}

export function userMessages(content: string): ChatMessage[] {
  return [{ role: 'user', content }];
}

/** A streamed completion read off the wire. */
export function postCompletion(server: RunningServer, body: Record<string, unknown>): RawSseClient {
  return new RawSseClient(`${server.url}/v1/chat/completions`, {}, { stream: true, ...body });
}

/** `GET /v1/chat/completions/{id}/stream`, with the cursor in the Last-Event-ID header. */
export function resumeCompletion(
  server: RunningServer,
  id: string,
  lastEventId?: string,
): RawSseClient {
  const headers: Record<string, string> = lastEventId ? { 'last-event-id': lastEventId } : {};
  return new RawSseClient(`${server.url}/v1/chat/completions/${id}/stream`, headers);
}

export const DONE = '[DONE]';

/** The chunks among SSE messages (everything but `[DONE]` and error payloads). */
export function chunksOf(messages: readonly SseMessage[]): ChatCompletionChunk[] {
  return messages
    .filter((message) => message.data !== DONE && !message.data.startsWith('{"error"'))
    .map((message) => JSON.parse(message.data) as ChatCompletionChunk);
}

/** The text of chunks, concatenated as a client shows it. */
export function contentOf(chunks: readonly ChatCompletionChunk[]): string {
  return chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
}

/** Resolves once the client holds at least `count` stored events. */
export async function untilEvents(client: RawSseClient, count: number, timeoutMs = PATIENCE_MS) {
  const deadline = Date.now() + timeoutMs;
  while (client.events.length < count) {
    assert.ok(!client.ended, `stream ended after ${client.events.length} of ${count} events`);
    assert.ok(Date.now() < deadline, `timed out waiting for ${count} events`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export function assertNoDuplicateIds(messages: readonly SseMessage[]): void {
  const ids = messages.map((message) => message.id);
  assert.equal(new Set(ids).size, ids.length, `duplicate ids in ${ids.join(', ')}`);
}

/** Every response body a client received, as text, in the order the requests were sent. */
export interface WireTap {
  readonly bodies: Promise<string>[];
  /** A `fetch` that hands the client its response and keeps a copy of the body. */
  readonly fetch: typeof fetch;
}

export function wireTap(): WireTap {
  const bodies: Promise<string>[] = [];
  return {
    bodies,
    fetch: async (input, init) => {
      const response = await fetch(input, init);
      bodies.push(response.clone().text());
      return response;
    },
  };
}

/** The SDK pointed at streamhub with credentials and headers of the client's own. */
export function tappedSdkClient(server: RunningServer, tap: WireTap): OpenAI {
  return new OpenAI({
    baseURL: `${server.url}/v1`,
    apiKey: CLIENT_SECRETS.apiKey,
    maxRetries: 0,
    fetch: tap.fetch,
    defaultHeaders: {
      cookie: `session=${CLIENT_SECRETS.cookie}`,
      'x-api-key': CLIENT_SECRETS.headerKey,
      'openai-organization': CLIENT_SECRETS.organization,
    },
  });
}

/** What a client sends that must never reach the upstream. */
export const CLIENT_SECRETS = {
  apiKey: 'sk-the-clients-own-key',
  cookie: 'cookie-s3cret',
  headerKey: 'client-header-key',
  organization: 'org-of-the-client',
} as const;

/** The `id` and `data` of each event of an SSE body, comments and `retry:` left out. */
export function sseEvents(text: string): { id: string | undefined; data: string }[] {
  const events: { id: string | undefined; data: string }[] = [];
  for (const frame of text.split('\n\n')) {
    let id: string | undefined;
    const data: string[] = [];
    for (const line of frame.split('\n')) {
      if (line.startsWith('id: ')) id = line.slice(4);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (data.length > 0) events.push({ id, data: data.join('\n') });
  }
  return events;
}

/** The usage-only chunk is the upstream's answer to `include_usage`, which streamhub asks for. */
export function isUsageChunk(data: string): boolean {
  if (data === DONE) return false;
  const chunk = JSON.parse(data) as { choices?: unknown[]; usage?: unknown };
  return chunk.choices?.length === 0 && chunk.usage != null;
}
