import type { LeasedTurn, TurnLeases } from '../../core/turn-leases.js';

/**
 * One process: a generator is never lost without the leases going with it, so there is
 * nothing to hold, find lost or take over, and a turn ends when its generation does.
 */
export class MemoryTurnLeases implements TurnLeases {
  async begin(): Promise<void> {}

  async get(): Promise<LeasedTurn | undefined> {
    return undefined;
  }

  hold(): () => void {
    return () => {};
  }

  async end(): Promise<boolean> {
    return true;
  }

  async endLost(): Promise<boolean> {
    return false;
  }

  async takeOver(): Promise<number> {
    return 0;
  }

  async release(): Promise<void> {}

  async lost(): Promise<LeasedTurn[]> {
    return [];
  }

  async close(): Promise<void> {}
}
