import type { StoredEvent } from '../core/types.js';
import type { PartialReply, Seam } from '../llm/continuation.js';
import { withLostRequests } from '../llm/failover.js';
import type { GenerationSink } from '../llm/generation.js';
import type { ModelChunk, Usage } from '../llm/provider.js';

/** The fields that make chunks one completion's, as its first chunk had them. */
interface CompletionIdentity {
  readonly id: unknown;
  readonly created: unknown;
  readonly model: unknown;
}

interface StreamedChunk extends Partial<CompletionIdentity> {
  choices?: StreamedChoice[];
  usage?: Usage | null;
}

interface StreamedChoice {
  index?: number;
  delta?: Record<string, unknown>;
  finish_reason?: string | null;
}

/** What a streamed completion's log held when its generator was lost. */
export type CompletionPartial =
  /** Its log never opened: its client got an error, nobody waits for it. */
  | { readonly kind: 'unopened' }
  /** The model had finished; only the end was not recorded. */
  | { readonly kind: 'finished' }
  /** Not text of one choice (tool calls, a refusal, several choices): it ends as lost. */
  | { readonly kind: 'not_text' }
  | { readonly kind: 'text'; readonly reply: PartialReply; readonly identity: CompletionIdentity };

/** Reads a lost completion's chunks: its text so far is `choices[0].delta.content`. */
export function completionPartial(events: readonly StoredEvent[]): CompletionPartial {
  const chunks = events.filter((event) => event.event === 'chunk');
  const first = chunks[0];
  if (first === undefined) return { kind: 'unopened' };
  let text = '';
  let textChunks = 0;
  for (const event of chunks) {
    const { choices } = JSON.parse(event.data) as StreamedChunk;
    // Not the shape of a chat.completion.chunk: nothing to read a text from.
    if (!Array.isArray(choices)) return { kind: 'not_text' };
    if (choices.some((choice) => choice?.finish_reason != null)) return { kind: 'finished' };
    const [choice, other] = choices;
    if (other !== undefined || (choice?.index ?? 0) !== 0) return { kind: 'not_text' };
    const { role: _role, content, ...rest } = choice?.delta ?? {};
    if (Object.values(rest).some((value) => value != null)) return { kind: 'not_text' };
    if (typeof content === 'string' && content !== '') {
      text += content;
      textChunks++;
    }
  }
  const { id, created, model } = JSON.parse(first.data) as StreamedChunk;
  return { kind: 'text', reply: { text, chunks: textChunks }, identity: { id, created, model } };
}

/**
 * Makes a continuation's chunks read as more of the lost completion: each carries the first
 * chunk's `id`, `created` and `model`; the role is not announced again; the text goes through
 * the seam (the `instruction` strategy), flushed before the chunk that finishes; chunks left
 * with nothing to say are dropped; the usage counts the lost requests too.
 */
export function continuedChunks(
  sink: GenerationSink,
  identity: CompletionIdentity,
  partial: PartialReply,
  lostRequests: number,
  seam: Seam | undefined,
): GenerationSink {
  return {
    ...sink,
    chunk: (chunk) => {
      const json = continuedChunk(chunk, identity, partial, lostRequests, seam);
      return json === undefined ? Promise.resolve() : sink.chunk({ ...chunk, json });
    },
  };
}

function continuedChunk(
  { json, usageOnly }: ModelChunk,
  identity: CompletionIdentity,
  partial: PartialReply,
  lostRequests: number,
  seam: Seam | undefined,
): string | undefined {
  const chunk = { ...(JSON.parse(json) as StreamedChunk), ...identity };
  if (usageOnly) {
    const usage = withLostRequests(chunk.usage ?? null, lostRequests, partial.chunks);
    return JSON.stringify({ ...chunk, usage });
  }
  const choice = Array.isArray(chunk.choices) ? chunk.choices[0] : undefined;
  if (choice == null) return JSON.stringify(chunk);
  const { role: _role, content, ...rest } = choice.delta ?? {};
  const finishing = choice.finish_reason != null;
  let text = typeof content === 'string' && seam !== undefined ? seam.push(content) : content;
  if (finishing && seam !== undefined) text = `${text ?? ''}${seam.flush()}`;
  const delta = text === undefined || text === '' ? rest : { ...rest, content: text };
  const says = Object.values(delta).some((value) => value != null);
  const others = (chunk.choices ?? []).slice(1);
  if (!finishing && !says && others.length === 0) return;
  chunk.choices = [{ ...choice, delta }, ...others];
  return JSON.stringify(chunk);
}
