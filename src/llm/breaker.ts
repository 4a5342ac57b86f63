import { LlmError } from './provider.js';

export type CircuitState = 'closed' | 'open' | 'half_open';

/** How a generation that the breaker admitted ended. `neutral`: says nothing about the
 *  upstream's health (the client aborted, or the request itself was invalid). */
export type GenerationOutcome = 'success' | 'failure' | 'neutral';

export interface Admission {
  /** The one generation let through to probe a half-open circuit. */
  readonly trial: boolean;
}

/**
 * Stops sending generations to an upstream that keeps failing: after `failureThreshold`
 * consecutive failures the circuit opens and generations fail fast for `cooldownMs`; then one
 * trial is let through (half-open), which closes the circuit on success and re-opens it on
 * failure. Spares a struggling upstream a stampede and clients a long wait for a certain error.
 */
export class CircuitBreaker {
  #consecutiveFailures = 0;
  /** When the circuit last opened; undefined while closed. */
  #openedAt: number | undefined;
  #trialRunning = false;

  constructor(
    readonly failureThreshold: number,
    readonly cooldownMs: number,
    readonly now: () => number = () => performance.now(),
    readonly onChange: (state: CircuitState) => void = () => {},
  ) {}

  /** Half-open once the cooldown has passed, even before the next generation asks. */
  state(): CircuitState {
    if (this.#openedAt === undefined) return 'closed';
    return this.now() - this.#openedAt >= this.cooldownMs ? 'half_open' : 'open';
  }

  /** Lets a generation through or throws `circuit_open`. Pair with `settle`. */
  admit(): Admission {
    const state = this.state();
    if (state === 'closed') return { trial: false };
    if (state === 'half_open' && !this.#trialRunning) {
      this.#trialRunning = true;
      this.onChange('half_open');
      return { trial: true };
    }
    throw this.#rejection(state);
  }

  settle(admission: Admission, outcome: GenerationOutcome): void {
    if (admission.trial) this.#trialRunning = false;
    if (outcome === 'success') {
      // Any success, even of a generation admitted before the circuit opened, shows the
      // upstream works again.
      this.#consecutiveFailures = 0;
      if (this.#openedAt !== undefined) {
        this.#openedAt = undefined;
        this.onChange('closed');
      }
    } else if (outcome === 'failure') {
      this.#consecutiveFailures++;
      // A failed trial re-opens at once; a late failure of a generation admitted before the
      // circuit opened must not push the end of the cooldown back.
      const opens =
        admission.trial ||
        (this.#openedAt === undefined && this.#consecutiveFailures >= this.failureThreshold);
      if (opens) {
        this.#openedAt = this.now();
        this.onChange('open');
      }
    }
  }

  #rejection(state: CircuitState): LlmError {
    if (state === 'half_open') {
      return new LlmError(
        'circuit_open',
        'the upstream has been failing; a trial request is checking whether it recovered, retry shortly',
        false,
        1000,
      );
    }
    const remainingMs = Math.max(0, (this.#openedAt ?? 0) + this.cooldownMs - this.now());
    return new LlmError(
      'circuit_open',
      `the upstream has been failing (${this.#consecutiveFailures} failures in a row); ` +
        `requests fail fast until it is tried again in ${Math.ceil(remainingMs / 1000)} s`,
      false,
      remainingMs,
    );
  }
}
