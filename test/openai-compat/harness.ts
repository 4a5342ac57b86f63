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
