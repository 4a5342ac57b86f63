import type { EventLog } from '../core/event-log.js';
import { FiniteLogWriter } from '../core/log-writer.js';
import { describeActiveSpan } from '../core/tracing.js';
import type { LeasedTurn } from '../core/turn-leases.js';
import type { ContinuationStrategy } from './continuation.js';
import type { GenerationRunner, GenerationSpan } from './generation-runner.js';
import type { Usage } from './provider.js';

export interface FailoverOptions {
  /** Continuations of one turn at most; lost once more, it ends with `generator_lost`. */
  readonly maxAttempts: number;
  readonly strategy: ContinuationStrategy;
}

/** A generation (a chat turn, a streamed completion) whose generator was lost. */
export interface LostGeneration {
  readonly turn: LeasedTurn;
  /** Its name among the generations running here. */
  readonly key: string;
  /** Its log. */
  readonly topic: string;
  readonly span: GenerationSpan;
  /** Takes it over as the next attempt (see `TurnLeases.takeOver`). */
  takeOver(maxAttempts: number): Promise<number>;
  /** Ends it with `generator_lost`, held by nobody: failover is off or used up. */
  endLost(): Promise<void>;
  /**
   * Sets up its continuation as `attempt` by `strategy`, appending with `writer` (its log
   * fenced already), and returns the run, which ends the generation (as lost, if it cannot
   * be continued); or undefined when its log shows it ended already (a backend failover
   * forgot that it did), having ended it as its log says.
   */
  continueWith(
    attempt: number,
    writer: FiniteLogWriter,
    strategy: ContinuationStrategy,
  ): Promise<((signal: AbortSignal) => Promise<void>) | undefined>;
}

/** A lost generation that another caller took over, or ended, first. */
class NotTaken extends Error {}

/**
 * What happens to a generation whose process died (docs/api.md §13), the same for chat turns
 * and streamed completions: with failover on, exactly one process takes it over, fences its
 * log against the lost generator and continues it; with failover off or used up, it ends
 * with `generator_lost`.
 */
export class Failover {
  constructor(
    readonly runner: GenerationRunner,
    readonly log: EventLog,
    /** Without it, a lost generation is ended. */
    readonly options: FailoverOptions | undefined,
    /** How long an append of the continuation rides out an unreachable backend. */
    readonly appendRetryMs: number,
  ) {}

  /** A generation stopped by shutdown is handed over to another process rather than ended. */
  get handsOver(): boolean {
    return this.options !== undefined;
  }

  async recover(lost: LostGeneration): Promise<void> {
    const options = this.options;
    if (options === undefined) return lost.endLost();
    // Shutting down: a process that stays continues it. Still generating here (its lease
    // lapsed in a stall): the generation renews it or hears that it lost it.
    if (this.runner.generations.draining || this.runner.isRunning(lost.key)) return;
    try {
      await this.runner.start(() => this.#takeOver(lost, options), undefined, lost.span);
    } catch (error) {
      if (!(error instanceof NotTaken)) throw error;
    }
  }

  /**
   * Takes the generation over (in a generation slot, so a continuation waits its turn like
   * any request) and sets its continuation up. The log is fenced before the partial reply is
   * read: from then on the lost generator, if it was only frozen, cannot add to it.
   */
  async #takeOver(lost: LostGeneration, options: FailoverOptions) {
    const attempt = await lost.takeOver(options.maxAttempts);
    if (attempt === -1) await lost.endLost();
    if (attempt <= 0) throw new NotTaken();
    describeActiveSpan({ 'streamhub.generation.attempt': attempt });
    // The attempt counted by the leases is only the lowest token: a failover of the backend's
    // master may forget a takeover and count the same attempt twice.
    const fence = await this.log.fence(lost.topic, attempt);
    // Bound to the epoch it continues: a log started again meanwhile refuses the continuation.
    const epoch = (await this.log.head(lost.topic)).epoch ?? undefined;
    const writer = new FiniteLogWriter(this.log, lost.topic, this.appendRetryMs, fence, epoch);
    const run = await lost.continueWith(attempt, writer, options.strategy);
    if (run === undefined) throw new NotTaken();
    return { key: lost.key, value: undefined, run };
  }
}

/**
 * The usage of a continued reply: the last request's, plus an estimate for each request that
 * was lost before it, as a lost request never reports its usage. Each is taken to have read
 * the conversation without the partial reply (the last request's prompt less the partial's
 * chunks) and, together, to have written the partial reply, one token per chunk of text.
 */
export function withLostRequests(
  usage: Usage | null,
  lost: number,
  partialChunks: number,
): Usage | null {
  if (usage === null || lost === 0) return usage;
  const lostPrompt = Math.max(0, usage.prompt_tokens - partialChunks);
  const prompt = usage.prompt_tokens + lost * lostPrompt;
  const completion = usage.completion_tokens + partialChunks;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
  };
}
