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
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface TurnInput {
  readonly content: string;
  readonly system?: string;
  readonly owner: string | null;
}

/**
 * Session state behind one interface, so that the memory store (one process) and a Redis
 * store (many processes, the generating flag as a lease) are interchangeable.
 */
export interface SessionStore {
  get(id: string): Promise<SessionState | undefined>;
  /**
   * Atomically: creates the session if it is new, appends the user message, and marks a reply
   * as generating. Resolves to `undefined` (changing nothing) if one is already generating.
   */
  beginTurn(id: string, input: TurnInput): Promise<SessionState | undefined>;
  /** Ends the turn; a non-empty reply (complete or partial) is appended as the assistant's. */
  endTurn(id: string, turn: number, reply: string): Promise<void>;
  delete(id: string): Promise<boolean>;
  close(): Promise<void>;
}
