import type { Attributes } from '@opentelemetry/api';
import { endedWith, inLongSpan, inSpan } from '../core/tracing.js';
import { type GenerationSink, runGeneration } from './generation.js';
import type { ConcurrencyLimiter } from './limiter.js';
import type { GenerateRequest, LlmProvider, Usage } from './provider.js';
import type { RunningGenerations } from './running.js';

/** What a feature asks of the model; the runner adds the signal that stops it. */
export type GenerationParams = Omit<GenerateRequest, 'signal'>;

/** The span a generation runs in (a chat turn, a completion), child of the request's. */
export interface GenerationSpan {
  readonly name: string;
  readonly attributes: Attributes;
}

const GENERATION_SPAN: GenerationSpan = { name: 'generation', attributes: {} };

/**
 * A generation set up to run in the background: typically its log exists, with one writer
 * that has appended the first event, and `run` appends the rest up to a final event.
 */
export interface BackgroundGeneration<T> {
  /** Its name among the generations running on this process (see `isRunning`, `cancel`). */
  readonly key: string;
  /** What `start` resolves to, e.g. the log's topic. */
  readonly value: T;
  /** Generates until the end is recorded; `signal` aborts it (cancel, shutdown). */
  run(signal: AbortSignal): Promise<void>;
}

/**
 * The one way features generate: with the configured provider, each generation in a slot of
 * the concurrency limiter, the background ones registered with the running generations so
 * that they can be cancelled, found (a generation running here has not lost its generator),
 * and drained at shutdown.
 */
export class GenerationRunner {
  constructor(
    readonly provider: LlmProvider,
    readonly limiter: ConcurrencyLimiter,
    readonly generations: RunningGenerations,
    /** Hears the usage the model reports for each finished generation (for metrics). */
    readonly onUsage?: (usage: Usage) => void,
  ) {}

  /**
   * Takes a slot (refused with LimitError `overloaded` when the line is full; `waiting` aborts
   * the wait with its reason), lets `prepare` set a generation up, and runs it in the
   * background. The slot is given back when the generation ends, or at once if `prepare`
   * fails. Resolves to the prepared generation's value as soon as it runs. All of it, the
   * background part included, is in `span`, which ends with the generation.
   */
  start<T>(
    prepare: () => Promise<BackgroundGeneration<T>>,
    waiting?: AbortSignal,
    span = GENERATION_SPAN,
  ): Promise<T> {
    return inLongSpan(span.name, span.attributes, async (active) => {
      const release = await this.limiter.acquire(waiting);
      try {
        const generation = await prepare();
        this.generations.start(generation.key, (signal) =>
          endedWith(active, generation.run(signal)).finally(release),
        );
        return generation.value;
      } catch (error) {
        release();
        throw error;
      }
    });
  }

  /** Runs `work`, which generates in the foreground, in a slot of its own (see `start`). */
  inSlot<T>(work: () => Promise<T>, waiting?: AbortSignal, span = GENERATION_SPAN): Promise<T> {
    return inSpan(span.name, span.attributes, async () => {
      const release = await this.limiter.acquire(waiting);
      try {
        return await work();
      } finally {
        release();
      }
    });
  }

  /** Runs the provider into `sink` (see `runGeneration`) until it ends or `signal` aborts. */
  generate(params: GenerationParams, sink: GenerationSink, signal: AbortSignal): Promise<void> {
    return runGeneration(this.provider, { ...params, signal }, sink, this.onUsage);
  }

  isRunning(key: string): boolean {
    return this.generations.has(key);
  }

  /** Aborts the generation running here under `key`; resolves once it has recorded its end. */
  cancel(key: string): Promise<boolean> {
    return this.generations.cancel(key);
  }
}
