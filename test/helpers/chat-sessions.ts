/** Reading chat session replies (docs/api.md §4) over real SSE, for tests across processes. */
import { mockReply } from '../../src/llm/mock.js';
import { getJson } from './http.js';
import { PATIENCE_MS } from './patience.js';
import type { RawSseClient, SseMessage } from './sse-client.js';

/**
 * A prompt whose mock reply has at least `tokens` tokens (the mock model answers 60 to 150),
 * with that reply's tokens.
 */
export function promptFor(
  tokens: number,
  about = 'scale-out',
): { content: string; reply: string; tokens: string[] } {
  // The mock's replies are at most about 130 tokens: a longer one fails the test, not hangs it.
  for (let i = 0; i < 10_000; i++) {
    const content = `tell me about ${about} ${i}`;
    const reply = mockReply([{ role: 'user', content }]);
    if (reply.length >= tokens) return { content, reply: reply.join(''), tokens: reply };
  }
  throw new Error(`no mock reply of ${tokens} tokens about ${about}`);
}

export const deltaText = (messages: readonly SseMessage[]) =>
  messages
    .filter((message) => message.event === 'delta')
    .map((message) => (JSON.parse(message.data) as { content: string }).content)
    .join('');

export const deltaCount = (client: RawSseClient) =>
  client.messages.filter((message) => message.event === 'delta').length;

export const lastMessage = (client: RawSseClient) => client.messages[client.messages.length - 1];

export interface SessionView {
  readonly session_id: string;
  readonly status: string;
  readonly messages: { role: string; content: string }[];
}

export function sessionView(url: string, id: string): Promise<SessionView> {
  return getJson(`${url}/v1/sessions/${id}`);
}

/** Resolves when the stream has closed; fails the test if it stays open past `timeoutMs`. */
export async function closedWithin(client: RawSseClient, what: string, timeoutMs = PATIENCE_MS) {
  let timer: NodeJS.Timeout | undefined;
  const stillOpen = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const recent = JSON.stringify(client.messages.slice(-3));
      reject(new Error(`${what}: still open after ${timeoutMs} ms; last messages ${recent}`));
    }, timeoutMs);
  });
  try {
    await Promise.race([client.closed, stillOpen]);
  } finally {
    clearTimeout(timer);
  }
}
