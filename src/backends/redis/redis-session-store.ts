import type {
  SessionState,
  SessionStore,
  StoredMessage,
  TurnInput,
} from '../../core/session-store.js';
import type { TurnControl } from '../../core/turn-leases.js';
import { type ConnectionOptions, type Listening, RedisConnection } from './connection.js';
import { leasedTurnFrom, RedisTurnLeases, snapshotFields } from './redis-turn-leases.js';
import type { Snapshot } from './session-scripts.js';

export interface RedisSessionStoreOptions extends ConnectionOptions {
  /** Shared with the process's logs; without it the store opens its own. */
  readonly connection?: RedisConnection;
  /** Namespace of every key and channel (default `sh:session`). */
  readonly keyPrefix?: string;
  /** Idle sessions expire after this long. */
  readonly ttlMs: number;
  readonly maxMessages: number;
  /** A generating process that stops renewing its hold for this long has lost the turn. */
  readonly leaseMs: number;
}

/**
 * Sessions shared by every process: state and messages in Redis, the generating turn held
 * under a lease (RedisTurnLeases) so that exactly one process generates and a process that
 * dies is noticed. Cancels and viewer claims travel over one Pub/Sub channel that every
 * process hears; a cancel is also left in Redis for the lease renewal to find, so a message
 * lost while the generator's connection blinked still stops the reply.
 */
export class RedisSessionStore implements SessionStore {
  readonly #connection: RedisConnection;
  readonly #ownsConnection: boolean;
  readonly #signals: string;
  readonly #turns: RedisTurnLeases;
  readonly #claimListeners: Array<(id: string, claim: number) => void> = [];
  readonly #signalsHeard: Listening;

  constructor(readonly options: RedisSessionStoreOptions) {
    const prefix = options.keyPrefix ?? 'sh:session';
    this.#signals = `${prefix}:signals`;
    this.#ownsConnection = options.connection === undefined;
    this.#connection = options.connection ?? new RedisConnection(options);
    this.#turns = new RedisTurnLeases({
      ...options,
      connection: this.#connection,
      keyPrefix: prefix,
    });
    this.#signalsHeard = this.#connection.listen(this.#signals, (message) =>
      this.#onSignal(message),
    );
  }

  async get(id: string): Promise<SessionState | undefined> {
    const snapshot = await this.#turns.snapshot(id);
    return snapshot === null ? undefined : sessionFrom(id, snapshot);
  }

  async beginTurn(id: string, input: TurnInput): Promise<SessionState | undefined> {
    const message: StoredMessage = { role: 'user', content: input.content };
    const [status, snapshot] = await this.#turns.open(id, {
      userMessage: JSON.stringify(message),
      owner: input.owner ?? '',
      system: input.system ?? '',
      setSystem: input.system !== undefined,
      request: input.request ?? '',
    });
    return status === 1 ? sessionFrom(id, snapshot) : undefined;
  }

  holdTurn(id: string, turn: number, control: TurnControl, attempt = 0): () => void {
    return this.#turns.hold(id, turn, control, attempt);
  }

  endTurn(id: string, turn: number, reply: string, attempt = 0): Promise<boolean> {
    return this.#turns.finish(id, turn, assistantMessage(reply), attempt);
  }

  endLostTurn(id: string, turn: number, reply: string): Promise<boolean> {
    return this.#turns.finish(id, turn, assistantMessage(reply), 0, true);
  }

  takeOverTurn(id: string, turn: number, attempt: number, maxAttempts: number): Promise<number> {
    return this.#turns.takeOver(id, turn, attempt, maxAttempts);
  }

  releaseTurn(id: string, turn: number, attempt: number): Promise<void> {
    return this.#turns.release(id, turn, attempt);
  }

  lostTurns(): Promise<SessionState[]> {
    return this.#turns.lostOf((id) => this.get(id));
  }

  async requestCancel(id: string, turn: number): Promise<void> {
    await this.#connection.command(async (client) => {
      await client.set(
        this.#turns.keys(id).cancelKey,
        turn,
        'PX',
        Math.ceil(this.options.leaseMs * 2),
      );
      await this.#connection.pubSub.publish(client, this.#signals, `cancel\n${id}\n${turn}`);
    });
  }

  async claimViewer(id: string): Promise<number> {
    const key = this.#turns.keys(id).claimsKey;
    // A viewer may only exist here once this process hears newer claims (just started:
    // waits for the subscription; bounded, as a down subscriber must not block streams).
    await this.#signalsHeard.confirmed(1_000);
    return this.#connection.command(async (client) => {
      const [[, claim]] = (await client
        .multi()
        .incr(key)
        .pexpire(key, Math.ceil(this.options.ttlMs))
        .exec()) as [[unknown, number], unknown];
      await this.#connection.pubSub.publish(client, this.#signals, `claim\n${id}\n${claim}`);
      return claim;
    });
  }

  onViewerClaimed(listener: (id: string, claim: number) => void): void {
    this.#claimListeners.push(listener);
  }

  async delete(id: string): Promise<boolean> {
    const keys = Object.values(this.#turns.keys(id));
    const deleted = await this.#connection.command((client) => client.del(...keys));
    await this.#turns.forget(id);
    return deleted > 0;
  }

  async close(): Promise<void> {
    await this.#turns.close();
    if (this.#ownsConnection) await this.#connection.close();
  }

  #onSignal(message: string): void {
    const [kind, id, value] = message.split('\n');
    if (id === undefined || value === undefined) return;
    if (kind === 'claim') {
      for (const listener of this.#claimListeners) listener(id, Number(value));
    } else if (kind === 'cancel') {
      this.#turns.heldControl(id, Number(value))?.cancel();
    }
  }
}

/** A reply as the messages keep it (JSON), '' for none. */
function assistantMessage(reply: string): string {
  const message: StoredMessage = { role: 'assistant', content: reply };
  return reply === '' ? '' : JSON.stringify(message);
}

function sessionFrom(id: string, snapshot: Snapshot): SessionState {
  const state = snapshotFields(snapshot);
  return {
    ...leasedTurnFrom(id, snapshot),
    owner: state.get('owner') ?? null,
    system: state.get('system') ?? null,
    messages: snapshot[1].map((message) => JSON.parse(message) as StoredMessage),
    createdAt: Number(state.get('created')),
    updatedAt: Number(state.get('updated') ?? state.get('created')),
  };
}
