import { randomUUID } from 'node:crypto';
import type { ChatCompletion } from 'openai/resources/chat/completions';
import { StreamhubError } from '../core/errors.js';
import { lastEvent, resumeFinite } from '../core/finite-log.js';
import type { LiveLog, StartFrom, Subscriber, Subscription } from '../core/hub.js';
import { FiniteLogWriter } from '../core/log-writer.js';
import type { GenerationOutcome, GenerationSink } from '../llm/generation.js';
import type { GenerationRunner } from '../llm/generation-runner.js';
import { CompletionRecorder } from './completion-recorder.js';
import type { CompletionRequest } from './completion-request.js';
import { endsCompletion } from './completion-stream.js';
import { ClientClosedError } from './errors.js';
import { type CompletionIdentity, chatCompletion, errorBody } from './wire.js';

export interface CompletionServiceOptions {
  readonly onGeneration?: (outcome: GenerationOutcome) => void;
  readonly onDelta?: () => void;
  /**
   * A streamed completion generated elsewhere whose log has been silent this long lost its
   * generator (its process died): it is ended with `generator_lost` so no stream waits for
   * ever. Unset: never (one process, where a generator cannot be lost without its streams).
   */
  readonly lostAfterMs?: number;
  readonly onInternalError?: (error: unknown) => void;
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
  constructor(
    readonly replies: LiveLog,
    /** Shared with the other features that generate, so they share one limit and one drain. */
    readonly runner: GenerationRunner,
    readonly options: CompletionServiceOptions = {},
  ) {}

  /**
   * Starts a streamed completion and resolves to its id once its first chunk is stored.
   * `waiting` abandons the wait for a generation slot (the client left while queued), which
   * then rejects with its reason.
   */
  start(request: CompletionRequest, waiting?: AbortSignal): Promise<string> {
    return this.runner.start(async () => {
      const identity = newIdentity(request.model);
      const topic = completionTopic(identity.id);
      const recorder = new CompletionRecorder(
        new FiniteLogWriter(this.replies.log, topic, 0),
        identity,
        request.includeUsage,
      );
      await recorder.begin();
      return {
        key: generationKey(identity.id),
        value: identity.id,
        run: (signal) => this.#generate(request, signal, recorder),
      };
    }, waiting);
  }

  /**
   * Runs a completion to its end and answers it whole. Throws the LlmError of a failed
   * generation, ClientClosedError once `clientGone` aborts it, or `clientGone`'s reason when
   * it aborts the wait for a generation slot.
   */
  complete(request: CompletionRequest, clientGone: AbortSignal): Promise<ChatCompletion> {
    return this.runner.inSlot(async () => {
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
    }, clientGone);
  }

  /** Where a stream of completion `id` starts for a client that has `lastEventId`. */
  async resumePoint(id: string, lastEventId: string | undefined): Promise<StartFrom> {
    const known = COMPLETION_ID.test(id);
    if (known) await this.#endIfLost(id);
    const from = known
      ? await resumeFinite(this.replies.log, completionTopic(id), lastEventId, endsCompletion)
      : undefined;
    if (from === undefined) {
      throw new StreamhubError('not_found', 'completion_not_found', `no completion ${id}`);
    }
    return from;
  }

  /** Streams completion `id`'s log to a subscriber from `from`. */
  watch(id: string, from: StartFrom, subscriber: Subscriber): Subscription {
    const subscription = this.replies.hub.subscribe(completionTopic(id), from, subscriber);
    const { lostAfterMs, onInternalError } = this.options;
    if (lostAfterMs === undefined) return subscription;
    const check = () => void this.#endIfLost(id).catch((error) => onInternalError?.(error));
    const timer = setInterval(check, Math.max(100, lostAfterMs / 2)).unref();
    return {
      close() {
        clearInterval(timer);
        subscription.close();
      },
    };
  }

  /** Ends a completion whose generator is gone (see `lostAfterMs`); racing processes end it once. */
  async #endIfLost(id: string): Promise<void> {
    const { lostAfterMs } = this.options;
    if (lostAfterMs === undefined || this.runner.isRunning(generationKey(id))) return;
    const topic = completionTopic(id);
    const last = await lastEvent(this.replies.log, topic);
    if (last === undefined || endsCompletion(last) || Date.now() - last.time < lostAfterMs) return;
    const data = errorBody('generator_lost', 'the server generating this stopped', 'server_error');
    await this.replies.log
      .append(topic, { event: 'error', data: JSON.stringify(data) }, { final: true })
      .catch((error: unknown) => {
        if (!(error instanceof StreamhubError && error.code === 'log_ended')) throw error;
      });
  }

  /** One generation through the runner, counted for metrics on the way. */
  #generate(request: CompletionRequest, signal: AbortSignal, sink: GenerationSink): Promise<void> {
    const { onDelta, onGeneration } = this.options;
    const params = {
      model: request.model,
      messages: request.messages,
      temperature: request.temperature,
      maxTokens: request.maxTokens,
    };
    const counted: GenerationSink = {
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
    };
    return this.runner.generate(params, counted, signal);
  }
}

function generationKey(id: string): string {
  return `completion/${id}`;
}

function newIdentity(model: string): CompletionIdentity {
  return {
    id: `chatcmpl-${randomUUID().replaceAll('-', '')}`,
    created: Math.floor(Date.now() / 1000),
    model,
  };
}
