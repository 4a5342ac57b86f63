import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Admission,
  CircuitBreaker,
  type CircuitState,
  type GenerationOutcome,
} from './breaker.js';
import { AttemptClock, type Deadlines } from './deadlines.js';
import {
  type ChunkReceiver,
  type GenerateRequest,
  type GenerationChunk,
  type GenerationFinish,
  LlmError,
  type LlmErrorCode,
  type LlmProvider,
  type ModelChunk,
  type ModelEntry,
} from './provider.js';
import { pulled, streamFrom } from './push.js';

/** Hooks for metrics and logs; every one optional. */
export interface ResilienceObserver {
  /** An attempt failed before its first token and is tried again after `delayMs`. */
  retry?(code: LlmErrorCode, delayMs: number): void;
  /** A generation failed for good: retries exhausted or not allowed, failed mid-stream, or
   *  refused at once with `circuit_open`. Client aborts are not reported. */
  failure?(code: LlmErrorCode): void;
  /** Seconds from the start of an attempt to its first token (upstream time to first token). */
  latency?(firstTokenSeconds: number): void;
  /** The circuit changed state (`half_open`: a trial generation was let through). */
  circuit?(state: CircuitState): void;
}

export interface ResilienceOptions {
  /** LLM_TIMEOUT_MS: per attempt, from its start to the first token. */
  readonly firstTokenTimeoutMs: number;
  /** LLM_IDLE_TIMEOUT_MS: longest silence between chunks once tokens flow. */
  readonly idleTimeoutMs: number;
  /** LLM_MAX_RETRIES: further attempts after a failure before the first token. */
  readonly maxRetries: number;
  /** LLM_BREAKER_FAILURES: consecutive failed generations that open the circuit. */
  readonly breakerFailures: number;
  /** LLM_BREAKER_COOLDOWN_MS: how long an open circuit fails fast. */
  readonly breakerCooldownMs: number;
  /** Backoff before retry n (from 0) is random in [0, min(max, base · 2ⁿ)) ("full jitter"). */
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /** A Retry-After longer than this is not waited out: the error goes to the client instead. */
  readonly maxRetryAfterMs?: number;
  /** Random numbers in [0, 1) for the jitter; tests pin them. */
  readonly random?: () => number;
  readonly observer?: ResilienceObserver;
}

/** Milliseconds from an arbitrary, monotonic origin. */
export interface Clock {
  now(): number;
}

export interface ResilientProvider extends LlmProvider {
  /** This upstream's circuit, for a metrics gauge or a readiness check. */
  circuitState(): CircuitState;
}

const DEFAULT_BACKOFF_BASE_MS = 200;
const DEFAULT_BACKOFF_MAX_MS = 4000;
/**
 * How long an unstreamed answer may take upstream (unless LLM_TIMEOUT_MS is longer): it comes
 * whole, after the model wrote all of it. As long as the official SDKs wait by default.
 */
export const WHOLE_ANSWER_TIMEOUT_MS = 10 * 60_000;
/** The longest `Retry-After` honoured; a longer one fails the attempt instead. */
export const DEFAULT_MAX_RETRY_AFTER_MS = 30_000;

const systemClock: Clock = { now: () => performance.now() };

/**
 * Wraps a provider with the policy an unreliable upstream needs: time limits on the first
 * token and between chunks, retries with backoff while nothing has been streamed yet (tokens
 * are never replayed), and a circuit breaker shared by every generation of this provider.
 */
export function withResilience(
  provider: LlmProvider,
  options: ResilienceOptions,
  clock: Clock = systemClock,
): ResilientProvider {
  return new ResilientUpstream(provider, options, clock);
}

class ResilientUpstream implements ResilientProvider {
  readonly name: string;
  readonly defaultModel: string;
  readonly #breaker: CircuitBreaker;
  readonly #observer: ResilienceObserver;

  constructor(
    readonly upstream: LlmProvider,
    readonly options: ResilienceOptions,
    readonly clock: Clock,
  ) {
    this.name = upstream.name;
    this.defaultModel = upstream.defaultModel;
    this.#observer = options.observer ?? {};
    this.#breaker = new CircuitBreaker(
      options.breakerFailures,
      options.breakerCooldownMs,
      () => clock.now(),
      (state) => this.#observer.circuit?.(state),
    );
  }

  listModels(signal: AbortSignal): Promise<readonly ModelEntry[]> {
    return this.upstream.listModels(signal);
  }

  circuitState(): CircuitState {
    return this.#breaker.state();
  }

  generate(request: GenerateRequest): AsyncIterable<GenerationChunk> {
    return pulled((r, receiver) => this.stream(r, receiver), request);
  }

  /**
   * All attempts in one async function, the chunks passed straight through: no layer of its own
   * per chunk but the attempt clock's two calls and, when the receiver holds a chunk, a `then`.
   */
  async stream(request: GenerateRequest, receiver: ChunkReceiver): Promise<GenerationFinish> {
    let admission: Admission;
    try {
      admission = this.#breaker.admit();
    } catch (error) {
      this.#observer.failure?.('circuit_open');
      throw error;
    }
    // Stays neutral when the client aborts or the receiver fails: that says nothing of the
    // upstream.
    let outcome: GenerationOutcome = 'neutral';
    const deadlines = this.#deadlinesOf(request);
    const receiverFailed = { failed: false };
    try {
      for (let retries = 0; ; retries++) {
        const clock = new AttemptClock(request.signal, deadlines);
        const attempt = new AttemptReceiver(receiver, clock, receiverFailed, this.#onFirstChunk());
        let finished = false;
        try {
          const finish = await streamFrom(
            this.upstream,
            { ...request, signal: clock.signal },
            attempt,
          );
          finished = true;
          outcome = 'success';
          return finish;
        } catch (error) {
          if (receiverFailed.failed) throw error;
          request.signal.throwIfAborted(); // the client left: neither retried nor counted
          // Once a chunk is out, another attempt would stream the reply again from its start.
          const retriesLeft = attempt.chunks === 0 ? retries : undefined;
          await this.#beforeRetry(asLlmError(error), retriesLeft, request);
        } finally {
          // Stopped before the finish (timeout, error, receiver gone): the request is aborted.
          clock.end(finished);
        }
      }
    } catch (error) {
      // The upstream judging the request itself says nothing of its health either.
      if (
        !receiverFailed.failed &&
        !request.signal.aborted &&
        (error as LlmError).rejection === undefined
      ) {
        outcome = 'failure';
      }
      throw error;
    } finally {
      this.#breaker.settle(admission, outcome);
    }
  }

  /** Reports an attempt's upstream time to its first chunk, when called at that chunk. */
  #onFirstChunk(): () => void {
    const started = this.clock.now();
    return () => this.#observer.latency?.((this.clock.now() - started) / 1000);
  }

  #deadlinesOf(request: GenerateRequest): Deadlines {
    const { firstTokenTimeoutMs, idleTimeoutMs } = this.options;
    return {
      // An unstreamed answer comes whole, so its first chunk is its last.
      firstTokenMs:
        request.body.stream === true
          ? firstTokenTimeoutMs
          : Math.max(firstTokenTimeoutMs, WHOLE_ANSWER_TIMEOUT_MS),
      idleMs: idleTimeoutMs,
    };
  }

  /**
   * Waits before the next attempt, or throws `failure` when it is not worth one: not
   * retryable, retries used up, or `retries` undefined because chunks were already streamed.
   */
  async #beforeRetry(
    failure: LlmError,
    retries: number | undefined,
    request: GenerateRequest,
  ): Promise<void> {
    const delayMs =
      retries !== undefined && retries < this.options.maxRetries
        ? this.#retryDelay(failure, retries)
        : undefined;
    if (delayMs === undefined) {
      this.#observer.failure?.(failure.code);
      throw failure;
    }
    this.#observer.retry?.(failure.code, delayMs);
    await sleep(delayMs, undefined, { signal: request.signal }).catch((aborted: unknown) => {
      request.signal.throwIfAborted();
      throw aborted;
    });
  }

  /** Undefined when the failure is not worth another attempt. */
  #retryDelay(failure: LlmError, retriesSoFar: number): number | undefined {
    if (!failure.retryable) return undefined;
    const ceiling = Math.min(
      this.options.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS,
      (this.options.backoffBaseMs ?? DEFAULT_BACKOFF_BASE_MS) * 2 ** retriesSoFar,
    );
    const backoff = (this.options.random ?? Math.random)() * ceiling;
    if (failure.retryAfterMs === undefined) return backoff;
    // Asked to wait longer than a client should be kept waiting: better to fail now and pass
    // the advice on than to come back early and be refused again.
    if (failure.retryAfterMs > (this.options.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS)) {
      return undefined;
    }
    return Math.max(failure.retryAfterMs, backoff);
  }
}

/**
 * One attempt's chunks on their way to the receiver: the attempt clock stops while the
 * receiver holds a chunk, and a failure of the receiver's own is told apart from the upstream's.
 */
class AttemptReceiver implements ChunkReceiver {
  chunks = 0;

  constructor(
    readonly receiver: ChunkReceiver,
    readonly clock: AttemptClock,
    readonly receiverFailed: { failed: boolean },
    readonly onFirstChunk: () => void,
  ) {}

  chunk(chunk: ModelChunk): Promise<unknown> | undefined {
    this.clock.arrived();
    if (this.chunks++ === 0) this.onFirstChunk();
    let held: Promise<unknown> | undefined;
    try {
      held = this.receiver.chunk(chunk);
    } catch (error) {
      this.#failed(error);
    }
    if (held === undefined) {
      this.clock.waiting();
      return undefined;
    }
    return held.then(this.#released, this.#failed);
  }

  readonly #released = (): void => this.clock.waiting();

  readonly #failed = (error: unknown): never => {
    this.receiverFailed.failed = true;
    throw error;
  };
}

function asLlmError(error: unknown): LlmError {
  if (error instanceof LlmError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new LlmError('upstream_error', `the provider failed unexpectedly: ${detail}`);
}
