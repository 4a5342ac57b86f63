import { randomUUID } from 'node:crypto';
import { StreamhubError } from '../core/errors.js';
import { rethrowUnlessEnded } from '../core/event-log.js';
import { lastEvent, resumeFinite } from '../core/finite-log.js';
import type { LiveLog, StartFrom, Subscriber, Subscription } from '../core/hub.js';
import { FiniteLogWriter } from '../core/log-writer.js';
import type { GenerationOutcome, GenerationSink } from '../llm/generation.js';
import type { GenerationRunner, GenerationSpan } from '../llm/generation-runner.js';
import { type CompletionFeed, CompletionRecorder } from './completion-recorder.js';
import type { CompletionRequest } from './completion-request.js';
import { endsCompletion } from './completion-stream.js';
import { ClientClosedError } from './errors.js';
import { errorBody } from './wire.js';

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

/** A streamed completion that has begun, for the client that started it. */
export interface StartedCompletion {
  readonly id: string;
  /** Feeds that client the completion from its first event on (see CompletionRecorder). */
  follow(feed: CompletionFeed): void;
}

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
   * Starts a streamed completion and resolves once its first chunk is stored; a
   * failure before that chunk rejects with its LlmError (the client's HTTP answer). `waiting`
   * is the client: gone before the first chunk, the completion stops and this rejects with
   * its reason.
   */
  async start(request: CompletionRequest, waiting?: AbortSignal): Promise<StartedCompletion> {
    const id = `chatcmpl-${randomUUID().replaceAll('-', '')}`;
    const writer = new FiniteLogWriter(this.replies.log, completionTopic(id), 0);
    const recorder = new CompletionRecorder(writer, request.includeUsage);
    const key = generationKey(id);
    await this.runner.start(
      async () => ({ key, value: id, run: (signal) => this.#generate(request, signal, recorder) }),
      waiting,
      completionSpan(request, id),
    );
    const leave = () => void this.runner.cancel(key);
    waiting?.addEventListener('abort', leave, { once: true });
    if (waiting?.aborted) leave();
    try {
      await recorder.opened;
      return { id, follow: (feed) => recorder.follow(feed) };
    } catch (error) {
      waiting?.throwIfAborted();
      throw error;
    } finally {
      waiting?.removeEventListener('abort', leave);
    }
  }

  /**
   * Runs an unstreamed completion to its end and resolves to the model's answer, the text of a
   * `chat.completion` as its server sent it. Throws the LlmError of a failed generation,
   * ClientClosedError once `clientGone` aborts it, or `clientGone`'s reason when it aborts the
   * wait for a generation slot.
   */
  complete(request: CompletionRequest, clientGone: AbortSignal): Promise<string> {
    return this.runner.inSlot(
      async () => {
        let answer = '';
        // runGeneration awaits fail/cancelled in its own catch block, so throwing there rejects it.
        await this.#generate(request, clientGone, {
          chunk: async (chunk) => {
            answer = chunk.json;
          },
          finish: async () => {},
          fail: async (error) => {
            throw error;
          },
          cancelled: async () => {
            throw new ClientClosedError();
          },
        });
        return answer;
      },
      clientGone,
      completionSpan(request),
    );
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
      .catch(rethrowUnlessEnded);
  }

  /** One generation through the runner, counted for metrics on the way. */
  #generate(request: CompletionRequest, signal: AbortSignal, sink: GenerationSink): Promise<void> {
    const { onDelta, onGeneration } = this.options;
    const counted: GenerationSink = {
      chunk: (chunk) => {
        if (request.stream && !chunk.usageOnly) onDelta?.();
        return sink.chunk(chunk);
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
    return this.runner.generate({ body: request.body }, counted, signal);
  }
}

function completionSpan(request: CompletionRequest, id?: string): GenerationSpan {
  const attributes = {
    'gen_ai.request.model': request.body.model,
    'streamhub.stream': request.stream,
  };
  return {
    name: 'chat completion',
    attributes: id === undefined ? attributes : { ...attributes, 'streamhub.completion.id': id },
  };
}

function generationKey(id: string): string {
  return `completion/${id}`;
}
