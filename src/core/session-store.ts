/** One message of a conversation (the same shape the LLM providers take). */
export interface StoredMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

/** A chat session as stored: the conversation plus who may be generating its next reply. */
export interface SessionState {
  readonly id: string;
  /** The subject that created it, when auth is on; others must not see it. */
  readonly owner: string | null;
  /** Completed messages, oldest first, without the system prompt. */
  readonly messages: readonly StoredMessage[];
  readonly system: string | null;
  /** Number of the latest turn (1 for the first reply); each turn has its own reply log. */
  readonly turn: number;
  readonly generating: boolean;
  /**
   * The turn's generator stopped holding it (its process died or lost Redis for longer than
   * its lease): the reply will never end by itself, so it must be ended as lost.
   */
  readonly generatorLost: boolean;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface TurnInput {
  readonly content: string;
  readonly system?: string;
  readonly owner: string | null;
}

/** What the process generating a turn hears about it while it holds it. */
export interface TurnControl {
  /** A client asked to stop the reply, possibly through another process. */
  cancel(): void;
  /** The turn is no longer this process's (its lease lapsed and it was ended as lost). */
  lost(): void;
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
  /** Keeps this process's hold on a turn while it generates; the returned function lets go. */
  holdTurn(id: string, turn: number, control: TurnControl): () => void;
  /**
   * Ends a turn this process holds; a non-empty reply (complete or partial) is appended as
   * the assistant's. Resolves to false, changing nothing, if the turn is no longer held.
   */
  endTurn(id: string, turn: number, reply: string): Promise<boolean>;
  /** Ends a turn whose generator was lost; resolves to true for exactly one caller. */
  endLostTurn(id: string, turn: number, reply: string): Promise<boolean>;
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
