/** What the process generating a turn hears about it while it holds it. */
export interface TurnControl {
  /** A client asked to stop the reply, possibly through another process. */
  cancel(): void;
  /** The turn is no longer this process's (its lease lapsed and it was ended as lost). */
  lost(): void;
}

/** A generation (a chat turn, a streamed completion) as its lease records it. */
export interface LeasedTurn {
  readonly id: string;
  /** Which turn of `id` is generated (always 1 for a completion). */
  readonly turn: number;
  readonly generating: boolean;
  /**
   * The turn's generator stopped holding it (its process died or lost the backend for longer
   * than its lease): the reply will never end by itself, so it must be continued or ended.
   */
  readonly generatorLost: boolean;
  /**
   * Which request to the model generates the turn: 0 the first, n the nth continuation after
   * its generator was lost (see `takeOver`); also the fencing token of its log.
   */
  readonly attempt: number;
  /** What the generating feature stored to ask the model again (JSON), for a continuation. */
  readonly request: string | null;
}

/**
 * Who generates a turn, held under a lease that its process renews, so that a process that
 * dies is noticed and exactly one other process takes the turn over (docs/api.md §13).
 * Chat sessions keep their turns' leases in their store (SessionStore); streamed completions
 * use this directly, one turn per completion. In memory (one process) a generator is never
 * lost without the leases going with it, so nothing is ever lost or taken over.
 */
export interface TurnLeases {
  /**
   * Opens turn 1 of `id`, held by this process, keeping `request` (as its JSON) for a
   * continuation. It is serialized only by a backend that keeps it: the one-process memory
   * backend never continues a turn and skips the copy of the whole body per completion.
   */
  begin(id: string, request: unknown): Promise<void>;
  get(id: string): Promise<LeasedTurn | undefined>;
  /**
   * Keeps this process's hold on a turn while it generates its `attempt`; the returned
   * function lets go.
   */
  hold(id: string, turn: number, control: TurnControl, attempt: number): () => void;
  /** Ends a turn this process holds for `attempt`; false (changing nothing) if it no longer does. */
  end(id: string, turn: number, attempt: number): Promise<boolean>;
  /** Ends a turn whose generator was lost; resolves to true for exactly one caller. */
  endLost(id: string, turn: number): Promise<boolean>;
  /**
   * Takes over a turn whose generator was lost at `attempt`: exactly one caller gets the next
   * attempt number, held by this process. Resolves to 0 when the turn is not lost at that
   * attempt, and to -1 (changing nothing) when `maxAttempts` continuations were made already.
   */
  takeOver(id: string, turn: number, attempt: number, maxAttempts: number): Promise<number>;
  /**
   * Lets go of a turn this process holds for `attempt` without ending it (this process shuts
   * down), so that another process takes it over at once instead of after its lease.
   */
  release(id: string, turn: number, attempt: number): Promise<void>;
  /** Turns whose generator was lost, found whether or not anyone watches them. */
  lost(): Promise<LeasedTurn[]>;
  close(): Promise<void>;
}
