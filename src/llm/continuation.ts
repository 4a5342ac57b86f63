import type { CompletionBody } from './provider.js';

/**
 * How a reply cut off by a lost generator is continued (LLM_CONTINUATION, docs/api.md §13):
 * - `prefix`: the partial reply is sent as the last message, from the assistant, for the model
 *   to complete (vLLM `continue_final_message`, DeepSeek prefix mode, Anthropic prefill). The
 *   model writes only the rest, so the seam is exact; the upstream must support it.
 * - `instruction`: the partial reply is sent as the assistant's message followed by a user
 *   message asking to continue exactly where it stops. Any chat model accepts it, but it may
 *   repeat the end of the partial text, which is trimmed at the seam (`Seam`).
 */
export type ContinuationStrategy = 'prefix' | 'instruction';

/** The user message of the `instruction` strategy. */
export const CONTINUE_INSTRUCTION =
  'Your previous message was cut off. Continue it exactly where it stops, mid-word if it ' +
  'stops mid-word: do not repeat any of it, add no preamble and do not start over.';

/** What a continuation adds to a turn's request: its messages and top-level fields. */
export interface ContinuationRequest {
  readonly messages: readonly unknown[];
  readonly fields: Readonly<Record<string, unknown>>;
}

/** The request continuing `partial`, the cut-off reply to `conversation`. */
export function continuationRequest(
  conversation: readonly unknown[],
  partial: string,
  strategy: ContinuationStrategy,
): ContinuationRequest {
  if (strategy === 'prefix') {
    return {
      // `prefix: true` is DeepSeek's flag; vLLM reads the two top-level fields instead.
      messages: [...conversation, { role: 'assistant', content: partial, prefix: true }],
      fields: { continue_final_message: true, add_generation_prompt: false },
    };
  }
  return {
    messages: [
      ...conversation,
      { role: 'assistant', content: partial },
      { role: 'user', content: CONTINUE_INSTRUCTION },
    ],
    fields: {},
  };
}

/** A reply's text so far, and the chunks of text it came in (about a token each). */
export interface PartialReply {
  readonly text: string;
  readonly chunks: number;
}

export const NO_REPLY: PartialReply = { text: '', chunks: 0 };

/**
 * The request continuing `partial`, the cut-off reply to `body`: the same request, with the
 * continuation's messages and fields, and its token limits less what the partial reply used,
 * so the whole reply keeps them.
 */
export function continuationBody(
  body: CompletionBody,
  partial: PartialReply,
  strategy: ContinuationStrategy,
): CompletionBody {
  const continued = continuationRequest(body.messages, partial.text, strategy);
  const limits: Record<string, number> = {};
  for (const field of ['max_tokens', 'max_completion_tokens']) {
    const limit = body[field];
    if (typeof limit === 'number') limits[field] = Math.max(1, limit - partial.chunks);
  }
  return { ...body, ...limits, messages: continued.messages, ...continued.fields };
}

/** A message as a model reads it: its role and text. */
interface TextMessage {
  readonly role: string;
  readonly content: string;
}

/**
 * The conversation and partial reply of a continuation request of either strategy, or
 * `undefined` for any other request: how a model (the mock) recognises one.
 */
export function continuedReply<M extends TextMessage>(
  messages: readonly M[],
): { conversation: M[]; partial: string } | undefined {
  const last = messages[messages.length - 1];
  if (last?.role === 'assistant') {
    return { conversation: messages.slice(0, -1), partial: last.content };
  }
  const before = messages[messages.length - 2];
  if (
    last?.role === 'user' &&
    last.content === CONTINUE_INSTRUCTION &&
    before?.role === 'assistant'
  ) {
    return { conversation: messages.slice(0, -2), partial: before.content };
  }
  return undefined;
}

/** How far back into the partial reply a repeated overlap is looked for. */
const SEAM_WINDOW_CHARS = 200;

/**
 * The seam between a partial reply and its continuation: a model asked to go on may first
 * repeat the end of the partial text. The continuation's start is held back until it is
 * clear whether it repeats a word-aligned end of the partial (at most `SEAM_WINDOW_CHARS`),
 * and the longest such repetition is dropped; the continuation's own whitespace is kept.
 */
export class Seam {
  readonly #ends: readonly string[];
  #held = '';
  #settled: boolean;

  constructor(partial: string) {
    this.#ends = wordAlignedEnds(partial);
    this.#settled = this.#ends.length === 0;
  }

  /** The part of `text` that can be passed on now. */
  push(text: string): string {
    if (this.#settled) return text;
    this.#held += text;
    const start = this.#held.trimStart();
    // A longer repetition may still be coming: wait for the text that tells.
    if (this.#ends.some((end) => end.length > start.length && end.startsWith(start))) return '';
    return this.#settle();
  }

  /** Whatever is still held back, once the continuation has ended. */
  flush(): string {
    return this.#settled ? '' : this.#settle();
  }

  #settle(): string {
    this.#settled = true;
    const start = this.#held.trimStart();
    const repeated = this.#ends.find((end) => start.startsWith(end));
    return repeated === undefined ? this.#held : start.slice(repeated.length);
  }
}

/** The ends of `text` that begin at a word, within the window, longest first. */
function wordAlignedEnds(text: string): string[] {
  const from = Math.max(0, text.length - SEAM_WINDOW_CHARS);
  const ends: string[] = [];
  for (let i = from; i < text.length; i++) {
    const wordStart =
      !/\s/.test(text[i] as string) && (i === 0 || /\s/.test(text[i - 1] as string));
    if (wordStart) ends.push(text.slice(i));
  }
  return ends;
}
