import { randomUUID } from 'node:crypto';
import type { LogFeed } from '../core/creator-feed.js';
import { StreamhubError } from '../core/errors.js';
import { rethrowUnlessEnded } from '../core/event-log.js';
import { readAll, resumeFinite } from '../core/finite-log.js';
import type { LiveLog, StartFrom, Subscriber, Subscription } from '../core/hub.js';
import { FiniteLogWriter } from '../core/log-writer.js';
import type { LeasedTurn, TurnLeases } from '../core/turn-leases.js';
import { continuationBody, Seam } from '../llm/continuation.js';
import { Failover, type FailoverOptions, type LostGeneration } from '../llm/failover.js';
import type { GenerationOutcome, GenerationSink } from '../llm/generation.js';
import type { GenerationRunner, GenerationSpan } from '../llm/generation-runner.js';
import { abortedByShutdown } from '../llm/running.js';
import { completionPartial, continuedChunks } from './completion-continuation.js';
import { CompletionRecorder } from './completion-recorder.js';
import type { CompletionRequest } from './completion-request.js';
import { endsCompletion } from './completion-stream.js';
import { ClientClosedError } from './errors.js';
import { errorBody } from './wire.js';

export interface CompletionServiceOptions {
  readonly onGeneration?: (outcome: GenerationOutcome) => void;
  readonly onDelta?: () => void;
  readonly onInternalError?: (error: unknown) => void;
  /** How often lost completions are looked for (every process's sweep, and each stream's). */
  readonly lostCheckMs?: number;
  /** Continue a completion whose generator was lost (docs/api.md §13); without it, end it. */
  readonly failover?: FailoverOptions;
}

/** What a streamed completion's lease keeps, so that another process can ask again. */
interface StoredRequest {
  readonly body: CompletionRequest['body'];
  readonly includeUsage: boolean;
}

/** A streamed completion is one turn of its lease. */
const TURN = 1;

const COMPLETION_ID = /^chatcmpl-[A-Za-z0-9]{1,64}$/;

const TOPIC_PREFIX = 'completion/';

/**
 * A streamed completion's log, and the name of its lease; the `/` keeps it apart from every
 * user topic.
 */
export function completionTopic(id: string): string {
  return `${TOPIC_PREFIX}${id}`;
}

/**
 * OpenAI-style chat completions. A streamed one is generated on the server into its own log,
 * independently of the HTTP connection, so a client that drops can resume it by id; a
 * non-streamed one belongs to its request and stops when its client leaves.
 */
export class CompletionService {
  readonly #failover: Failover;
  readonly #lostCheck: NodeJS.Timeout;

  constructor(
    readonly replies: LiveLog,
    /** Shared with the other features that generate, so they share one limit and one drain. */
    readonly runner: GenerationRunner,
    /** Who generates each streamed completion, keyed by its log's topic. */
    readonly leases: TurnLeases,
    readonly options: CompletionServiceOptions = {},
  ) {
    this.#failover = new Failover(runner, replies.log, options.failover, 0);
    this.#lostCheck = setInterval(() => {
      void this.#recoverLost().catch((error) => options.onInternalError?.(error));
    }, this.#lostCheckMs).unref();
  }

  close(): void {
    clearInterval(this.#lostCheck);
  }

  get #lostCheckMs(): number {
    return this.options.lostCheckMs ?? 1_000;
  }

  /**
   * Starts a streamed completion. Once its first chunk is stored, `open` is called with the
   * completion's id, in the same call, and returns the feed of the client that started it (see
   * `CompletionRecorder.openFor`); then this resolves. A failure before that chunk rejects with
   * its LlmError (the client's HTTP answer). `waiting` is the client: gone before the first
   * chunk, the completion stops and this rejects with its reason.
   */
  async start(
    request: CompletionRequest,
    waiting: AbortSignal | undefined,
    open: (id: string) => LogFeed,
  ): Promise<void> {
    const id = `chatcmpl-${randomUUID().replaceAll('-', '')}`;
    const topic = completionTopic(id);
    // Fenced from the first attempt on: a continuation fences the log with a higher token.
    const writer = new FiniteLogWriter(this.replies.log, topic, 0, 0);
    const recorder = new CompletionRecorder(writer, request.includeUsage);
    recorder.openFor(() => open(id));
    const key = generationKey(id);
    const stored: StoredRequest = { body: request.body, includeUsage: request.includeUsage };
    const prepare = async () => {
      await this.leases.begin(topic, stored);
      const run = (signal: AbortSignal) =>
        this.#generate(request, signal, this.#held(key, topic, 0, recorder, signal).sink);
      return { key, value: id, run };
    };
    await this.runner.start(prepare, waiting, completionSpan(request, id));
    const leave = () => void this.runner.cancel(key);
    waiting?.addEventListener('abort', leave, { once: true });
    if (waiting?.aborted) leave();
    try {
      await recorder.opened;
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
    if (known) await this.#recoverIfLost(id);
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
    const { onInternalError } = this.options;
    const check = () => void this.#recoverIfLost(id).catch((error) => onInternalError?.(error));
    const timer = setInterval(check, this.#lostCheckMs).unref();
    return {
      close() {
        clearInterval(timer);
        subscription.close();
      },
    };
  }

  /**
   * A generation of `topic` while this process holds its lease for `attempt`: the lease is
   * ended before the final event is recorded, so a generation that lost it records nothing
   * more; stopped by shutdown, it hands the completion over instead.
   */
  #held(
    key: string,
    topic: string,
    attempt: number,
    recorder: CompletionRecorder,
    signal: AbortSignal,
  ): { sink: GenerationSink; end(): Promise<boolean> } {
    const stop = () => void this.runner.cancel(key);
    const release = this.leases.hold(topic, TURN, { cancel: stop, lost: stop }, attempt);
    const end = async () => {
      release();
      return this.leases.end(topic, TURN, attempt);
    };
    const sink: GenerationSink = {
      chunk: (chunk) => recorder.chunk(chunk),
      finish: async () => {
        if (await end()) await recorder.finish();
      },
      fail: async (error) => {
        if (await end()) await recorder.fail(error);
      },
      cancelled: async () => {
        if (recorder.isOpen && abortedByShutdown(signal) && this.#failover.handsOver) {
          release();
          return this.leases.release(topic, TURN, attempt);
        }
        if (await end()) await recorder.cancelled();
      },
    };
    return { sink, end };
  }

  async #recoverIfLost(id: string): Promise<void> {
    if (this.runner.isRunning(generationKey(id))) return;
    const lost = await this.leases.get(completionTopic(id));
    if (lost?.generatorLost) await this.#failover.recover(this.#lost(id, lost));
  }

  /** Every completion whose lease lapsed, so that one nobody watches is finished too. */
  async #recoverLost(): Promise<void> {
    for (const lost of await this.leases.lost()) {
      const id = lost.id.slice(TOPIC_PREFIX.length);
      await this.#failover.recover(this.#lost(id, lost));
    }
  }

  #lost(id: string, lost: LeasedTurn): LostGeneration {
    const topic = completionTopic(id);
    const key = generationKey(id);
    return {
      turn: lost,
      key,
      topic,
      span: { name: 'chat completion continuation', attributes: { 'streamhub.completion.id': id } },
      takeOver: (maxAttempts) => this.leases.takeOver(topic, TURN, lost.attempt, maxAttempts),
      endLost: async () => {
        if (await this.leases.endLost(topic, TURN)) await this.#appendLost(topic);
      },
      continueWith: async (attempt, writer, strategy) => {
        const stored = JSON.parse(lost.request ?? 'null') as StoredRequest | null;
        const recorder = new CompletionRecorder(writer, stored?.includeUsage ?? false, true);
        const partial = completionPartial(await readAll(this.replies.log, topic));
        return async (signal) => {
          const held = this.#held(key, topic, attempt, recorder, signal);
          // Nobody waits for a completion that never opened: its client got an error.
          if (stored === null || partial.kind === 'unopened') return void (await held.end());
          if (partial.kind === 'finished') return held.sink.finish('stop', null);
          if (partial.kind === 'not_text' || (stored.body.n ?? 1) > 1) {
            if (await held.end()) await this.#appendLost(topic);
            return;
          }
          const seam = strategy === 'instruction' ? new Seam(partial.reply.text) : undefined;
          const sink = continuedChunks(held.sink, partial.identity, partial.reply, attempt, seam);
          const body = continuationBody(stored.body, partial.reply, strategy);
          const request = { body, stream: true, includeUsage: stored.includeUsage };
          await this.#generate(request, signal, sink);
        };
      },
    };
  }

  /** Ends the log with `generator_lost`; a log that never opened is not made for it. */
  async #appendLost(topic: string): Promise<void> {
    if ((await this.replies.log.head(topic)).epoch === null) return;
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
