import { type Agent, request } from 'node:http';
import { HOST } from './proc.js';
import { type SseEvent, SseParser } from './sse.js';

/**
 * A streaming chat client for the gateway benchmark. One code path reads both wire formats,
 * so "directly from the upstream" and "through streamhub" differ only in what is measured.
 * - `completions`: OpenAI's `POST /v1/chat/completions` (the upstream itself, or streamhub's
 *   front door): `data: {chat.completion.chunk}` lines, then `data: [DONE]`.
 * - `session`: streamhub's `POST /v1/chat`: `start`, `delta` `{"content"}`, `done`.
 */
export type ChatApi = 'completions' | 'session';

export interface ChatRequest {
  api: ChatApi;
  port: number;
  agent: Agent;
  /** Picks the fake upstream's pace, e.g. `bench-20tps` or `bench-max`. */
  model: string;
  maxTokens: number;
  /** Required for `session`. */
  sessionId?: string;
  /** Called for each content token after the first with the gap since the previous one (ms). */
  onGap?: (ms: number) => void;
  /** Called for every content token, as it arrives. */
  onToken?: () => void;
  timeoutMs?: number;
}

export interface ChatResult {
  /** Request sent → first non-empty content token, ms; NaN without one. */
  ttftMs: number;
  /** Request sent → last content token, ms. */
  lastTokenMs: number;
  tokens: number;
  /** `[DONE]` or `done` arrived. */
  complete: boolean;
  error: string | undefined;
}

function requestBody(r: ChatRequest): { path: string; body: string } {
  if (r.api === 'session') {
    return {
      path: '/v1/chat',
      body: JSON.stringify({
        session_id: r.sessionId,
        content: 'Say something.',
        model: r.model,
        max_tokens: r.maxTokens,
      }),
    };
  }
  return {
    path: '/v1/chat/completions',
    body: JSON.stringify({
      model: r.model,
      messages: [{ role: 'user', content: 'Say something.' }],
      stream: true,
      max_tokens: r.maxTokens,
    }),
  };
}

interface Frame {
  content: string;
  end: boolean;
  error: string | undefined;
}

const NOTHING: Frame = { content: '', end: false, error: undefined };

function readCompletionEvent(e: SseEvent): Frame {
  if (e.data === '[DONE]') return { content: '', end: true, error: undefined };
  const chunk = JSON.parse(e.data) as {
    choices?: { delta?: { content?: string } }[];
    error?: { code?: string };
  };
  if (chunk.error) return { content: '', end: true, error: chunk.error.code ?? 'error' };
  return { content: chunk.choices?.[0]?.delta?.content ?? '', end: false, error: undefined };
}

function readSessionEvent(e: SseEvent): Frame {
  switch (e.event) {
    case 'delta':
      return { ...NOTHING, content: (JSON.parse(e.data) as { content: string }).content };
    case 'done':
      return { ...NOTHING, end: true };
    case 'error':
    case 'abort':
      return { content: '', end: true, error: `${e.event}: ${e.data}` };
    default:
      return NOTHING;
  }
}

/** Streams one chat to its end; never rejects (failures are in `error`). */
export function streamChat(r: ChatRequest): Promise<ChatResult> {
  const { path, body } = requestBody(r);
  const read = r.api === 'session' ? readSessionEvent : readCompletionEvent;
  return new Promise((resolve) => {
    let sentAt = 0;
    let last = 0;
    const result: ChatResult = {
      ttftMs: Number.NaN,
      lastTokenMs: Number.NaN,
      tokens: 0,
      complete: false,
      error: undefined,
    };
    let settled = false;
    const finish = (error?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      result.error ??= error;
      resolve(result);
    };
    const req = request(
      {
        host: HOST,
        port: r.port,
        method: 'POST',
        path,
        agent: r.agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          accept: 'text/event-stream',
        },
      },
      (res) => {
        res.setEncoding('utf8');
        if (res.statusCode !== 200) {
          let text = '';
          res.on('data', (c: string) => {
            text += c;
          });
          res.on('end', () => finish(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
          return;
        }
        const parser = new SseParser((e) => {
          const frame = read(e);
          if (frame.content !== '') {
            const now = performance.now();
            r.onToken?.();
            if (result.tokens++ === 0) result.ttftMs = now - sentAt;
            else r.onGap?.(now - last);
            last = now;
            result.lastTokenMs = now - sentAt;
          }
          if (frame.end) {
            result.complete = frame.error === undefined;
            result.error = frame.error;
          }
        });
        res.on('data', (chunk: string) => parser.push(chunk));
        res.on('end', () => finish(result.complete ? undefined : 'stream ended early'));
        res.on('error', (e) => finish(e.message));
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      finish('timed out');
    }, r.timeoutMs ?? 60_000);
    req.on('error', (e) => finish(e.message));
    sentAt = performance.now();
    req.end(body);
  });
}
