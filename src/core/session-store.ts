import type { LeasedTurn, TurnControl } from './turn-leases.js';

/** One message of a conversation (the same shape the LLM providers take). */
export interface StoredMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

/** A chat session as stored: the conversation plus who may be generating its next reply. */
export interface SessionState extends LeasedTurn {
  /** The subject that created it, when auth is on; others must not see it. */
  readonly owner: string | null;
  /** Completed messages, oldest first, without the system prompt. */
  readonly messages: readonly StoredMessage[];
  readonly system: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface TurnInput {
  readonly content: string;
  readonly system?: string;
  readonly owner: string | null;
  /** The turn's model options (JSON), kept for a continuation. */
  readonly request?: string;
}

/**
 * Session state and the coordination of the processes serving a session, behind one
 * interface, so that the memory store (one process) and the Redis store (many processes, a
 * turn held under a lease) are interchangeable.
 */
export interface SessionStore {
  get(id: string): Promise<SessionState | undefined>;
  /**
   * Atomically: creates the session if it is new, appends the user message, and marks a reply
   * as generating, held by this process. Resolves to `undefined` (changing nothing) if one is
   * already generating.
   */
  beginTurn(id: string, input: TurnInput): Promise<SessionState | undefined>;
  /**
   * Keeps this process's hold on a turn while it generates its `attempt` (0 unless it took the
   * turn over); the returned function lets go.
   */
  holdTurn(id: string, turn: number, control: TurnControl, attempt?: number): () => void;
  /**
   * Ends a turn this process holds for `attempt` (default 0); a non-empty reply (complete or
   * partial) is appended as the assistant's. Resolves to false, changing nothing, if the turn
   * is no longer held (for that attempt).
   */
  endTurn(id: string, turn: number, reply: string, attempt?: number): Promise<boolean>;
  /** Ends a turn whose generator was lost; resolves to true for exactly one caller. */
  endLostTurn(id: string, turn: number, reply: string): Promise<boolean>;
  /**
   * Takes over a turn whose generator was lost at `attempt`, to continue it here: exactly one
   * caller gets the next attempt number, held by this process as by `beginTurn`. Resolves to 0
   * when the turn is not lost at that attempt, and to -1 (changing nothing) when `maxAttempts`
   * continuations were made already.
   */
  takeOverTurn(id: string, turn: number, attempt: number, maxAttempts: number): Promise<number>;
  /**
   * Lets go of a turn this process holds for `attempt` without ending it (this process shuts
   * down), so that another process takes it over at once instead of after its lease.
   */
  releaseTurn(id: string, turn: number, attempt: number): Promise<void>;
  /** Turns whose generator was lost, found whether or not anyone watches them. */
  lostTurns(): Promise<SessionState[]>;
  /** Tells the process generating `turn`, wherever it runs, to stop. */
  requestCancel(id: string, turn: number): Promise<void>;
  /**
   * Takes the next viewer number of a session and tells every process about it, so that the
   * viewers with lower numbers, wherever they are connected, are superseded.
   */
  claimViewer(id: string): Promise<number>;
  onViewerClaimed(listener: (id: string, claim: number) => void): void;
  delete(id: string): Promise<boolean>;
  close(): Promise<void>;
}
