import { Redis, ReplyError } from 'ioredis';
import { BackendUnavailableError, StreamhubError } from '../../core/errors.js';
import { LiveChannels } from './live-channels.js';
import { classicPubSub, type PubSubMode, shardedPubSub } from './pubsub.js';

export interface ConnectionOptions {
  readonly url?: string;
  /** Builds the main client; the subscriber connection is its `duplicate()`. */
  readonly createClient?: () => Redis;
  /** Bounds every command, so a hung Redis fails requests instead of stalling them. */
  readonly commandTimeoutMs?: number;
  /** How long a command waits for a (re)connecting Redis before failing (default 1 s). */
  readonly connectWaitMs?: number;
  /** Sharded Pub/Sub (`SSUBSCRIBE`/`SPUBLISH`, Redis 7), which scales on a Redis Cluster. */
  readonly shardedPubSub?: boolean;
  /** How often quiet live channels are checked for a lost last message (default 2 s). */
  readonly healIntervalMs?: number;
}

/**
 * The main connection. Commands are not queued while disconnected (`enableOfflineQueue:
 * false`): during an outage publishes and reads fail at once and the server answers 503,
 * instead of piling up requests that would all run late. ioredis keeps reconnecting.
 */
function createClient(options: ConnectionOptions): Redis {
  if (options.createClient !== undefined) return options.createClient();
  return new Redis(options.url ?? 'redis://127.0.0.1:6379', {
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs ?? 5_000,
    connectTimeout: 5_000,
    retryStrategy: (attempt) => Math.min(attempt * 100, 1_000),
  });
}

/**
 * The two connections one process needs, however many logs and stores use them: one for
 * commands and one for Pub/Sub, so a process never holds a Redis connection per client.
 */
export class RedisConnection {
  readonly client: Redis;
  readonly subscriber: Redis;
  readonly pubSub: PubSubMode;
  readonly live: LiveChannels;
  readonly #clientGate: ReadyGate;
  readonly #subscriberGate: ReadyGate;

  constructor(readonly options: ConnectionOptions) {
    this.client = createClient(options);
    this.subscriber = this.client.duplicate();
    this.pubSub = options.shardedPubSub === true ? shardedPubSub : classicPubSub;
    const waitMs = options.connectWaitMs ?? 1_000;
    this.#clientGate = new ReadyGate(this.client, waitMs);
    this.#subscriberGate = new ReadyGate(this.subscriber, waitMs);
    this.live = new LiveChannels(this.subscriber, this.#subscriberGate, this.pubSub, {
      healIntervalMs: options.healIntervalMs ?? 2_000,
    });
  }

  /**
   * Runs commands once the connection is up. Failing to reach Redis becomes the client-facing
   * `backend_unavailable` (503); an error Redis itself answered is a bug and stays as it is.
   */
  async command<T>(run: (client: Redis) => Promise<T>): Promise<T> {
    try {
      await this.#clientGate.wait();
    } catch (error) {
      throw new BackendUnavailableError(true, { cause: error });
    }
    try {
      return await run(this.client);
    } catch (error) {
      if (error instanceof ReplyError || error instanceof StreamhubError) throw error;
      throw new BackendUnavailableError(isUnsent(error), { cause: error });
    }
  }

  /**
   * Hears a channel for as long as the connection lives, subscribing again after every
   * reconnect (and after a first connect that failed).
   */
  listen(channel: string, onMessage: (message: string) => void): Listening {
    this.subscriber.on(this.pubSub.messageEvent, (name: string, message: string) => {
      if (name === channel) onMessage(message);
    });
    let confirm = () => {};
    const confirmed = new Promise<void>((resolve) => {
      confirm = resolve;
    });
    const subscribe = () => {
      this.pubSub.subscribe(this.subscriber, channel).then(confirm, () => {});
    };
    this.subscriber.on('ready', subscribe);
    if (this.subscriber.status === 'ready') subscribe();
    else if (this.subscriber.status === 'wait') this.subscriber.connect().catch(() => {});
    return {
      async confirmed(waitMs) {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, waitMs);
        });
        await Promise.race([confirmed, late]);
        clearTimeout(timer);
      },
    };
  }

  /**
   * Both connections are up and answer. A connection that was up and is reconnecting counts
   * as not ready at once, so a readiness probe with a short timeout gets its 503 in time;
   * only the first connect after start-up is waited for briefly.
   */
  async isReady(): Promise<boolean> {
    const gates = [this.#clientGate, this.#subscriberGate];
    if (gates.some((gate) => gate.lost)) return false;
    try {
      await Promise.all(gates.map((gate) => gate.wait()));
      await Promise.all([this.client.ping(), this.subscriber.ping()]);
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.live.close();
    await Promise.all([closeClient(this.client), closeClient(this.subscriber)]);
  }
}

/** A channel heard for the connection's life. */
export interface Listening {
  /** Resolves once Redis first confirmed the subscription, or after `waitMs` at the latest. */
  confirmed(waitMs: number): Promise<void>;
}

/**
 * Lets a command wait briefly for a connection that is (re)connecting, which covers the
 * first connect after start-up and short blips, and fails with a clear error otherwise.
 */
export class ReadyGate {
  readonly #waiters = new Set<() => void>();
  #lastError: unknown;
  #wasReady = false;

  constructor(
    readonly client: Redis,
    readonly waitMs: number,
  ) {
    client.on('ready', () => {
      this.#wasReady = true;
      for (const wake of this.#waiters) wake();
      this.#waiters.clear();
    });
    // Without a listener ioredis prints every failed reconnect; the error is reported by the
    // command that cannot run instead.
    client.on('error', (error: unknown) => {
      this.#lastError = error;
    });
  }

  get ready(): boolean {
    return this.client.status === 'ready';
  }

  /** It was up and is not now (as opposed to still making its first connection). */
  get lost(): boolean {
    return this.#wasReady && !this.ready;
  }

  wait(): Promise<void> {
    if (this.ready) return Promise.resolve();
    if (this.client.status === 'end') return Promise.reject(this.#unavailable());
    // A client built with lazyConnect by a caller's factory connects on first use.
    if (this.client.status === 'wait') this.client.connect().catch(() => {});
    return new Promise((resolve, reject) => {
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(wake);
        reject(this.#unavailable());
      }, this.waitMs);
      this.#waiters.add(wake);
    });
  }

  #unavailable(): Error {
    const cause = this.#lastError instanceof Error ? `: ${this.#lastError.message}` : '';
    return new Error(`Redis unavailable (connection ${this.client.status})${cause}`, {
      cause: this.#lastError,
    });
  }
}

/** ioredis refuses a command at once, without sending it, while the connection is down. */
function isUnsent(error: unknown): boolean {
  return error instanceof Error && error.message.includes("Stream isn't writeable");
}

/** Ends a connection politely when it is up, at once otherwise. */
async function closeClient(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  if (client.status === 'ready') {
    try {
      await client.quit();
      return;
    } catch {
      // Fall through: the connection broke while quitting.
    }
  }
  client.disconnect();
}
