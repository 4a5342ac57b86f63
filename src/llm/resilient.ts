import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Admission,
  CircuitBreaker,
  type CircuitState,
  type GenerationOutcome,
} from './breaker.js';
import { AttemptClock, type Deadlines } from './deadlines.js';
import {
  type GenerateRequest,
  type GenerationChunk,
  LlmError,
  type LlmErrorCode,
  type LlmProvider,
  type ModelEntry,
} from './provider.js';

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

  /**
   * One async generator for all attempts (no generator per attempt or per policy): every
   * layer between the socket and the consumer costs promises on each chunk.
   */
  async *generate(request: GenerateRequest): AsyncIterable<GenerationChunk> {
    let admission: Admission;
    try {
      admission = this.#breaker.admit();
    } catch (error) {
      this.#observer.failure?.('circuit_open');
      throw error;
    }
    // Stays neutral when the client aborts or stops reading: that says nothing of the upstream.
    let outcome: GenerationOutcome = 'neutral';
    const deadlines = this.#deadlinesOf(request);
    try {
      for (let retries = 0; ; retries++) {
        const started = this.clock.now();
        const clock = new AttemptClock(request.signal, deadlines);
        const attempt = this.upstream.generate({ ...request, signal: clock.signal });
        const iterator = attempt[Symbol.asyncIterator]();
        let chunks = 0;
        /** The provider yielded its finish: nothing is stopped early any more. */
        let finished = false;
        let exhausted = false;
        try {
          for (;;) {
            clock.waiting();
            const result = await iterator.next();
            clock.arrived();
            if (result.done) break;
            if (result.value.type === 'finish') {
              finished = true;
              outcome = 'success';
            } else if (chunks++ === 0) {
              this.#observer.latency?.((this.clock.now() - started) / 1000);
            }
            yield result.value;
          }
          exhausted = true;
          return;
        } catch (error) {
          request.signal.throwIfAborted(); // the client left: neither retried nor counted
          // Once a chunk is out, another attempt would stream the reply again from its start.
          await this.#beforeRetry(asLlmError(error), chunks === 0 ? retries : undefined, request);
        } finally {
          // Stopped before the finish (timeout, error, consumer gone): the request is aborted.
          clock.end(finished);
          // Consumers stop at the finish, so the provider is most often left at its last yield:
          // returning lets it release its connection. Not awaited: a provider slow to stop
          // must not hold the consumer up.
          if (!exhausted) iterator.return?.().catch(() => {});
        }
      }
    } catch (error) {
      // The upstream judging the request itself says nothing of its health either.
      if (!request.signal.aborted && (error as LlmError).rejection === undefined) {
        outcome = 'failure';
      }
      throw error;
    } finally {
      this.#breaker.settle(admission, outcome);
    }
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

function asLlmError(error: unknown): LlmError {
  if (error instanceof LlmError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new LlmError('upstream_error', `the provider failed unexpectedly: ${detail}`);
}
