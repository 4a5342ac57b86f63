import { invoke } from './callbacks.js';
import type { StreamhubClientError } from './errors.js';
import type { ConnectionState, StateInfo } from './types.js';

/** A connection state, and the callback told of each change. */
export class StateReport {
  state: ConnectionState = 'connecting';

  constructor(readonly listener: ((state: ConnectionState, info: StateInfo) => void) | undefined) {}

  set(next: ConnectionState, info: StateInfo = {}): void {
    this.state = next;
    if (this.listener) invoke(this.listener, next, info);
  }

  /** Waiting `delayMs` before the next attempt, after `error` (absent after a clean end). */
  reconnecting(delayMs: number, error: StreamhubClientError | undefined): void {
    this.set('reconnecting', error === undefined ? { delayMs } : { error, delayMs });
  }
}
