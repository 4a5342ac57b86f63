import { randomUUID } from 'node:crypto';
import type { ChatCompletion } from 'openai/resources/chat/completions';
import { StreamhubError } from '../core/errors.js';
import type { StartFrom, Subscriber, Subscription } from '../core/hub.js';
import { formatId, parseId } from '../core/ids.js';
import { type GenerationSink, runGeneration } from '../llm/generation.js';
import type { ConcurrencyLimiter } from '../llm/limiter.js';
import type { LlmProvider } from '../llm/provider.js';
import type { GenerationOutcome, Replies } from '../sessions/session-service.js';
import { CompletionRecorder } from './completion-recorder.js';
import type { CompletionRequest } from './completion-request.js';
import { isTerminal } from './completion-stream.js';
import { ClientClosedError } from './errors.js';
import { type CompletionIdentity, chatCompletion } from './wire.js';

export interface CompletionServiceOptions {
  readonly onGeneration?: (outcome: GenerationOutcome) => void;
  readonly onDelta?: () => void;
  /** A failure of streamhub itself (e.g. the backend) while recording a completion. */
  readonly onInternalError?: (error: unknown) => void;
}

interface Generation {
  readonly controller: AbortController;
  readonly finished: Promise<void>;
}

const COMPLETION_ID = /^chatcmpl-[A-Za-z0-9]{1,64}$/;

/** A streamed completion's log; the `/` keeps it apart from every user topic. */
export function completionTopic(id: string): string {
  return `completion/${id}`;
}

/**
 * OpenAI-style chat completions. A streamed one is generated on the server into its own log,
 * independently of the HTTP connection, so a client that drops can resume it by id; a
 * non-streamed one belongs to its request and stops when its client leaves.
 */
export class CompletionService {
  readonly #running = new Map<string, Generation>();

  constructor(
    readonly replies: Replies,
    readonly provider: LlmProvider,
    readonly limiter: ConcurrencyLimiter,
    readonly options: CompletionServiceOptions = {},
  ) {}

  /**
   * Starts a streamed completion and resolves to its id once its first chunk is stored.
   * `waiting` abandons the wait for a generation slot (the client left while queued).
   */
  async start(request: CompletionRequest, waiting?: AbortSignal): Promise<string> {
    const release = await this.#acquire(waiting);
    try {
      const identity = newIdentity(request.model);
      const recorder = new CompletionRecorder(
        this.replies.log,
        completionTopic(identity.id),
        identity,
        request.includeUsage,
      );
      await recorder.begin();
      const controller = new AbortController();
      const finished = this.#generate(request, controller.signal, recorder)
        .catch((error: unknown) => this.options.onInternalError?.(error))
        .finally(() => {
          release();
          this.#running.delete(identity.id);
        });
      this.#running.set(identity.id, { controller, finished });
      return identity.id;
    } catch (error) {
      release();
      throw error;
    }
  }

  /**
   * Runs a completion to its end and answers it whole. Throws the LlmError of a failed
   * generation, or ClientClosedError once `clientGone` aborts it.
   */
  async complete(request: CompletionRequest, clientGone: AbortSignal): Promise<ChatCompletion> {
    const release = await this.#acquire(clientGone);
    try {
      const identity = newIdentity(request.model);
      let content = '';
      let answer: ChatCompletion | undefined;
      // runGeneration awaits fail/cancelled in its own catch block, so throwing there rejects it.
      await this.#generate(request, clientGone, {
        delta: async (text) => {
          content += text;
        },
        finish: async (finishReason, usage) => {
          answer = chatCompletion(identity, content, finishReason, usage);
        },
        fail: async (error) => {
          throw error;
        },
        cancelled: async () => {
          throw new ClientClosedError();
        },
      });
      return answer as ChatCompletion;
    } finally {
      release();
    }
  }

  /** Where a stream of completion `id` starts for a client that has `lastEventId`. */
  async resumePoint(id: string, lastEventId: string | undefined): Promise<StartFrom> {
    const topic = completionTopic(id);
    const head = COMPLETION_ID.test(id) ? await this.replies.log.head(topic) : undefined;
    if (head?.epoch == null) {
      throw new StreamhubError('not_found', 'completion_not_found', `no completion ${id}`);
    }
    if (lastEventId === undefined) return { kind: 'start' };
    const position = parseId(lastEventId);
    if (position?.epoch === head.epoch && position.seq === head.seq && head.seq > 1) {
      // A client that already has the end would otherwise wait on a stream that never ends:
      // send it the end again, so every resume finishes with `[DONE]` (or the error).
      const before = { kind: 'after', id: formatId(head.epoch, head.seq - 1) } as const;
      if (await this.#endsAt(topic, before.id)) return before;
    }
    return { kind: 'after', id: lastEventId };
  }

  /** Streams completion `id`'s log to a subscriber from `from`. */
  watch(id: string, from: StartFrom, subscriber: Subscriber): Subscription {
    return this.replies.hub.subscribe(completionTopic(id), from, subscriber);
  }

  /** Stops every running streamed completion and waits for each to record it (shutdown). */
  async stopAll(): Promise<void> {
    const running = [...this.#running.values()];
    for (const generation of running) generation.controller.abort();
    await Promise.all(running.map((generation) => generation.finished));
  }

  async #acquire(signal: AbortSignal | undefined): Promise<() => void> {
    try {
      return await this.limiter.acquire(signal);
    } catch (error) {
      if (signal?.aborted) throw new ClientClosedError();
      throw error; // LlmError('overloaded'): answered as 503 before anything is streamed
    }
  }

  /** Whether the event after `id` ends the completion. */
  async #endsAt(topic: string, id: string): Promise<boolean> {
    const page = await this.replies.log.read(topic, parseId(id) ?? 'unknown', 1);
    const next = page.events[0];
    return page.reset === undefined && next !== undefined && isTerminal(next.event);
  }

  /** One generation through `runGeneration`, counted for metrics on the way. */
  #generate(request: CompletionRequest, signal: AbortSignal, sink: GenerationSink): Promise<void> {
    const { onDelta, onGeneration } = this.options;
    const generateRequest = {
      model: request.model,
      messages: request.messages,
      temperature: request.temperature,
      maxTokens: request.maxTokens,
      signal,
    };
    return runGeneration(this.provider, generateRequest, {
      delta: (content) => {
        onDelta?.();
        return sink.delta(content);
      },
      finish: (finishReason, usage) => {
        onGeneration?.('done');
        return sink.finish(finishReason, usage);
      },
      fail: (error) => {
        onGeneration?.('error');
        return sink.fail(error);
      },
      cancelled: () => {
        onGeneration?.('cancelled');
        return sink.cancelled();
      },
    });
  }
}

function newIdentity(model: string): CompletionIdentity {
  return {
    id: `chatcmpl-${randomUUID().replaceAll('-', '')}`,
    created: Math.floor(Date.now() / 1000),
    model,
  };
}
