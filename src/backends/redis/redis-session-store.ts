import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type {
  SessionState,
  SessionStore,
  StoredMessage,
  TurnControl,
  TurnInput,
} from '../../core/session-store.js';
import { type ConnectionOptions, type Listening, RedisConnection } from './connection.js';
import {
  BEGIN_TURN_SCRIPT,
  END_TURN_SCRIPT,
  GET_SESSION_SCRIPT,
  RELEASE_TURN_SCRIPT,
  RENEW_TURN_SCRIPT,
  SESSION_SCRIPTS,
  type Snapshot,
  TAKE_OVER_TURN_SCRIPT,
} from './session-scripts.js';

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

interface HeldTurn {
  readonly turn: number;
  readonly control: TurnControl;
}

/**
 * Sessions shared by every process: state and messages in Redis, the generating turn held
 * under a lease (`SET PX`, renewed by its process) so that exactly one process generates and
 * a process that dies is noticed. Cancels and viewer claims travel over one Pub/Sub channel
 * that every process hears; a cancel is also left in Redis for the lease renewal to find, so
 * a message lost while the generator's connection blinked still stops the reply.
 */
export class RedisSessionStore implements SessionStore {
  readonly #connection: RedisConnection;
  readonly #ownsConnection: boolean;
  readonly #prefix: string;
  readonly #signals: string;
  /**
   * Every generating session by when its lease lapses unless renewed, so that a sweep finds
   * lost turns nobody watches. Outside the sessions' hash slots (a cluster keeps it on one
   * node), so it is kept beside the scripts, not by them: it only says where to look.
   */
  readonly #leases: string;
  /** This process's lease token. */
  readonly #holder = `${hostname()}:${process.pid}:${randomUUID()}`;
  readonly #held = new Map<string, HeldTurn>();
  readonly #claimListeners: Array<(id: string, claim: number) => void> = [];
  readonly #signalsHeard: Listening;

  constructor(readonly options: RedisSessionStoreOptions) {
    this.#prefix = options.keyPrefix ?? 'sh:session';
    this.#signals = `${this.#prefix}:signals`;
    this.#leases = `${this.#prefix}:leases`;
    this.#ownsConnection = options.connection === undefined;
    this.#connection = options.connection ?? new RedisConnection(options);
    for (const script of SESSION_SCRIPTS) script.define(this.#connection.client);
    this.#signalsHeard = this.#connection.listen(this.#signals, (message) =>
      this.#onSignal(message),
    );
  }

  async get(id: string): Promise<SessionState | undefined> {
    const snapshot = await this.#connection.command((client) =>
      GET_SESSION_SCRIPT.run(client, this.#keys(id)),
    );
    return snapshot === null ? undefined : sessionFrom(id, snapshot);
  }

  async beginTurn(id: string, input: TurnInput): Promise<SessionState | undefined> {
    const message: StoredMessage = { role: 'user', content: input.content };
    const [status, snapshot] = await this.#connection.command((client) =>
      BEGIN_TURN_SCRIPT.run(client, {
        ...this.#keys(id),
        now: Date.now(),
        ttlMs: Math.ceil(this.options.ttlMs),
        maxMessages: this.options.maxMessages,
        leaseMs: Math.ceil(this.options.leaseMs),
        holder: this.#holder,
        userMessage: JSON.stringify(message),
        owner: input.owner ?? '',
        system: input.system ?? '',
        setSystem: input.system !== undefined,
        request: input.request ?? '',
      }),
    );
    if (status !== 1) return undefined;
    await this.#leaseLapsesLater(id).catch(() => {}); // only a hint for the sweep: see #leases
    return sessionFrom(id, snapshot);
  }

  holdTurn(id: string, turn: number, control: TurnControl, attempt = 0): () => void {
    this.#held.set(id, { turn, control });
    let cancelled = false;
    const renew = async () => {
      const outcome = await this.#connection
        .command((client) =>
          RENEW_TURN_SCRIPT.run(client, {
            ...this.#keys(id),
            holder: this.#holder,
            turn: String(turn),
            attempt: String(attempt),
            leaseMs: Math.ceil(this.options.leaseMs),
            ttlMs: Math.ceil(this.options.ttlMs),
          }),
        )
        .catch(() => undefined); // Redis unreachable: try again next time; the lease decides.
      if (outcome !== undefined && outcome !== -1) void this.#leaseLapsesLater(id).catch(() => {});
      if (outcome === -1) {
        release();
        control.lost();
      } else if (outcome === 1 && !cancelled) {
        cancelled = true;
        control.cancel();
      }
    };
    const timer = setInterval(renew, Math.max(10, this.options.leaseMs / 3)).unref();
    const release = () => {
      clearInterval(timer);
      if (this.#held.get(id)?.turn === turn) this.#held.delete(id);
    };
    return release;
  }

  endTurn(id: string, turn: number, reply: string, attempt = 0): Promise<boolean> {
    return this.#end(id, turn, reply, this.#holder, attempt);
  }

  endLostTurn(id: string, turn: number, reply: string): Promise<boolean> {
    return this.#end(id, turn, reply, '', 0);
  }

  async takeOverTurn(
    id: string,
    turn: number,
    attempt: number,
    maxAttempts: number,
  ): Promise<number> {
    const taken = await this.#connection.command((client) =>
      TAKE_OVER_TURN_SCRIPT.run(client, {
        ...this.#keys(id),
        holder: this.#holder,
        turn: String(turn),
        attempt: String(attempt),
        maxAttempts,
        leaseMs: Math.ceil(this.options.leaseMs),
      }),
    );
    if (taken > 0) await this.#leaseLapsesLater(id).catch(() => {});
    return taken;
  }

  async releaseTurn(id: string, turn: number, attempt: number): Promise<void> {
    const released = await this.#connection.command((client) =>
      RELEASE_TURN_SCRIPT.run(client, {
        ...this.#keys(id),
        holder: this.#holder,
        turn: String(turn),
        attempt: String(attempt),
      }),
    );
    // Lapsed now: the next sweep of any process finds it.
    if (released === 1)
      await this.#connection.command((client) => client.zadd(this.#leases, 0, id));
  }

  async lostTurns(): Promise<SessionState[]> {
    const lapsed = await this.#connection.command((client) =>
      client.zrangebyscore(this.#leases, '-inf', Date.now(), 'LIMIT', 0, 100),
    );
    const lost: SessionState[] = [];
    for (const id of lapsed) {
      const session = await this.get(id);
      if (session?.generatorLost) lost.push(session);
      else if (!session?.generating) await this.#forgetLease(id);
    }
    return lost;
  }

  async requestCancel(id: string, turn: number): Promise<void> {
    await this.#connection.command(async (client) => {
      await client.set(this.#keys(id).cancelKey, turn, 'PX', Math.ceil(this.options.leaseMs * 2));
      await this.#connection.pubSub.publish(client, this.#signals, `cancel\n${id}\n${turn}`);
    });
  }

  async claimViewer(id: string): Promise<number> {
    const key = this.#keys(id).claimsKey;
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
    const keys = Object.values(this.#keys(id));
    const deleted = await this.#connection.command((client) => client.del(...keys));
    await this.#forgetLease(id);
    return deleted > 0;
  }

  async close(): Promise<void> {
    this.#held.clear();
    if (this.#ownsConnection) await this.#connection.close();
  }

  async #end(
    id: string,
    turn: number,
    reply: string,
    holder: string,
    attempt: number,
  ): Promise<boolean> {
    const message: StoredMessage = { role: 'assistant', content: reply };
    const ended = await this.#connection.command((client) =>
      END_TURN_SCRIPT.run(client, {
        ...this.#keys(id),
        turn: String(turn),
        reply: reply === '' ? '' : JSON.stringify(message),
        holder,
        attempt: String(attempt),
        now: Date.now(),
        ttlMs: Math.ceil(this.options.ttlMs),
        maxMessages: this.options.maxMessages,
      }),
    );
    if (ended === 1) await this.#forgetLease(id).catch(() => {}); // the sweep forgets it later
    return ended === 1;
  }

  /** Where the sweep looks: the lease lapses a lease from now unless renewed. */
  async #leaseLapsesLater(id: string): Promise<void> {
    const lapses = Date.now() + this.options.leaseMs;
    await this.#connection.command((client) => client.zadd(this.#leases, lapses, id));
  }

  async #forgetLease(id: string): Promise<void> {
    await this.#connection.command((client) => client.zrem(this.#leases, id));
  }

  #onSignal(message: string): void {
    const [kind, id, value] = message.split('\n');
    if (id === undefined || value === undefined) return;
    if (kind === 'claim') {
      for (const listener of this.#claimListeners) listener(id, Number(value));
    } else if (kind === 'cancel') {
      const held = this.#held.get(id);
      if (held?.turn === Number(value)) held.control.cancel();
    }
  }

  /** Every key of a session; the hash tag keeps them in one cluster slot, as the scripts need. */
  #keys(id: string) {
    const state = `${this.#prefix}:{${id}}`;
    return {
      stateKey: state,
      messagesKey: `${state}:messages`,
      leaseKey: `${state}:lease`,
      cancelKey: `${state}:cancel`,
      claimsKey: `${state}:claims`,
    };
  }
}

function sessionFrom(id: string, [fields, messages, leased]: Snapshot): SessionState {
  const state = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2)
    state.set(fields[i] as string, fields[i + 1] as string);
  const generating = state.get('generating') === '1';
  return {
    id,
    owner: state.get('owner') ?? null,
    system: state.get('system') ?? null,
    messages: messages.map((message) => JSON.parse(message) as StoredMessage),
    turn: Number(state.get('turn') ?? 0),
    generating,
    generatorLost: generating && leased === 0,
    attempt: Number(state.get('attempt') ?? 0),
    request: state.get('request') || null,
    createdAt: Number(state.get('created')),
    updatedAt: Number(state.get('updated') ?? state.get('created')),
  };
}
