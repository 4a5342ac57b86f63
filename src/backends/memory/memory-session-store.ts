import type {
  SessionState,
  SessionStore,
  StoredMessage,
  TurnInput,
} from '../../core/session-store.js';
import type { TurnControl } from '../../core/turn-leases.js';

export interface MemorySessionStoreOptions {
  /** Idle sessions are dropped after this long. */
  readonly ttlMs: number;
  /** Messages kept per session; the oldest go first. */
  readonly maxMessages: number;
  readonly now?: () => number;
}

/**
 * Sessions in a Map, swept for idle expiry. Everything runs in this one process: a turn's
 * generator cannot be lost without the store going with it, and cancelling is local.
 */
export class MemorySessionStore implements SessionStore {
  readonly #sessions = new Map<string, SessionState>();
  readonly #claimListeners: Array<(id: string, claim: number) => void> = [];
  /** One counter for all sessions: claims are only ever compared within a session. */
  #claims = 0;
  readonly #sweeper: NodeJS.Timeout;
  readonly #now: () => number;

  constructor(readonly options: MemorySessionStoreOptions) {
    this.#now = options.now ?? Date.now;
    const interval = Math.min(60_000, Math.max(1000, options.ttlMs / 4));
    this.#sweeper = setInterval(() => this.sweep(), interval).unref();
  }

  async get(id: string): Promise<SessionState | undefined> {
    const session = this.#sessions.get(id);
    if (session === undefined || this.#expired(session)) return undefined;
    return session;
  }

  async beginTurn(id: string, input: TurnInput): Promise<SessionState | undefined> {
    const now = this.#now();
    const existing = await this.get(id);
    if (existing?.generating) return undefined;
    const base = existing ?? newSession(id, input.owner, now);
    const next: SessionState = {
      ...base,
      system: input.system ?? base.system,
      messages: this.#bounded([...base.messages, { role: 'user', content: input.content }]),
      turn: base.turn + 1,
      generating: true,
      request: input.request ?? null,
      updatedAt: now,
    };
    this.#sessions.set(id, next);
    return next;
  }

  holdTurn(_id: string, _turn: number, _control: TurnControl): () => void {
    return () => {};
  }

  async endTurn(id: string, turn: number, reply: string): Promise<boolean> {
    const session = this.#sessions.get(id);
    if (session === undefined || session.turn !== turn || !session.generating) return false;
    const messages: StoredMessage[] =
      reply === ''
        ? [...session.messages]
        : [...session.messages, { role: 'assistant', content: reply }];
    this.#sessions.set(id, {
      ...session,
      messages: this.#bounded(messages),
      generating: false,
      updatedAt: this.#now(),
    });
    return true;
  }

  async endLostTurn(): Promise<boolean> {
    return false;
  }

  /** One process: a generator is never lost without the store, so there is nothing to take. */
  async takeOverTurn(): Promise<number> {
    return 0;
  }

  /** Nobody else could take it: the turn ends when the process does. */
  async releaseTurn(): Promise<void> {}

  async lostTurns(): Promise<SessionState[]> {
    return [];
  }

  async requestCancel(): Promise<void> {}

  async claimViewer(id: string): Promise<number> {
    const claim = ++this.#claims;
    for (const listener of this.#claimListeners) listener(id, claim);
    return claim;
  }

  onViewerClaimed(listener: (id: string, claim: number) => void): void {
    this.#claimListeners.push(listener);
  }

  async delete(id: string): Promise<boolean> {
    return this.#sessions.delete(id);
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
  }

  /** Drops idle sessions; a session that is generating is never idle. */
  sweep(): void {
    for (const [id, session] of this.#sessions) {
      if (this.#expired(session)) this.#sessions.delete(id);
    }
  }

  get size(): number {
    return this.#sessions.size;
  }

  #expired(session: SessionState): boolean {
    return !session.generating && this.#now() - session.updatedAt > this.options.ttlMs;
  }

  #bounded(messages: StoredMessage[]): StoredMessage[] {
    return messages.length > this.options.maxMessages
      ? messages.slice(messages.length - this.options.maxMessages)
      : messages;
  }
}

function newSession(id: string, owner: string | null, now: number): SessionState {
  return {
    id,
    owner,
    messages: [],
    system: null,
    turn: 0,
    generating: false,
    generatorLost: false,
    attempt: 0,
    request: null,
    createdAt: now,
    updatedAt: now,
  };
}
