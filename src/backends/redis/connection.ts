import { Cluster, type ClusterOptions, Redis, type RedisOptions, ReplyError } from 'ioredis';
import { BackendUnavailableError, StreamhubError } from '../../core/errors.js';
import { LiveChannels } from './live-channels.js';
import { classicPubSub, type PubSubMode, shardedPubSub } from './pubsub.js';

/** A connection to one Redis server or to a Redis Cluster: both take the same commands. */
export type RedisClient = Redis | Cluster;

type RedisStream = Redis['stream'];

export interface ConnectionOptions {
  /** The server, or with `cluster` one or more comma-separated seed nodes of the cluster. */
  readonly url?: string;
  /** Talk to a Redis Cluster, always with sharded Pub/Sub. */
  readonly cluster?: boolean;
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

const reconnectDelay = (attempt: number) => Math.min(attempt * 100, 1_000);

/** Options of every connection to one server, alone or as a node of a cluster. */
function serverOptions(options: ConnectionOptions): RedisOptions {
  return {
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs ?? 5_000,
    connectTimeout: 5_000,
  };
}

/**
 * The main connection. Commands are not queued while disconnected (`enableOfflineQueue:
 * false`): during an outage publishes and reads fail at once and the server answers 503,
 * instead of piling up requests that would all run late. ioredis keeps reconnecting.
 *
 * One server's commands are written straight to its socket, which `RedisConnection` corks for
 * the rest of the event-loop turn: the same one write per turn as ioredis's auto-pipelining,
 * without the pipeline it builds per turn and the promise and callback it adds per command.
 */
function createClient(options: ConnectionOptions): RedisClient {
  if (options.createClient !== undefined) return options.createClient();
  if (options.cluster === true) return createCluster(options);
  return new Redis(options.url ?? 'redis://127.0.0.1:6379', {
    ...serverOptions(options),
    enableOfflineQueue: false,
    retryStrategy: reconnectDelay,
  });
}

/**
 * A cluster client: one connection per node, found from the seeds. The seeds' credentials and
 * TLS apply to every node, as ioredis only learns the other nodes' addresses from the cluster.
 */
function createCluster(options: ConnectionOptions): Cluster {
  const seeds = (options.url ?? 'redis://127.0.0.1:6379').split(',').map((url) => url.trim());
  const first = new URL(seeds[0] as string);
  const clusterOptions: ClusterOptions = {
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    clusterRetryStrategy: reconnectDelay,
    redisOptions: {
      ...serverOptions(options),
      ...(first.username === '' ? {} : { username: decodeURIComponent(first.username) }),
      ...(first.password === '' ? {} : { password: decodeURIComponent(first.password) }),
      ...(first.protocol === 'rediss:' ? { tls: {} } : {}),
    },
  };
  return new Cluster(seeds, clusterOptions);
}

/**
 * The Pub/Sub connection. On a cluster, ioredis keeps one subscriber connection per master and
 * sends each SSUBSCRIBE to the master owning the channel's slot, subscribing again on the new
 * owner when slots move or a replica is promoted.
 */
function createSubscriber(client: RedisClient): RedisClient {
  if (client instanceof Cluster) return client.duplicate([], { shardedSubscribers: true });
  return client.duplicate();
}

/**
 * The two connections one process needs, however many logs and stores use them: one for
 * commands and one for Pub/Sub, so a process never holds a Redis connection per client. On a
 * cluster each is a cluster client: per node for commands, per master for Pub/Sub.
 */
export class RedisConnection {
  readonly client: RedisClient;
  readonly subscriber: RedisClient;
  readonly pubSub: PubSubMode;
  readonly live: LiveChannels;
  readonly #clientGate: ReadyGate;
  readonly #subscriberGate: ReadyGate;
  /** The socket corked until the end of this event-loop turn, if any. */
  #corked: RedisStream | undefined;

  constructor(readonly options: ConnectionOptions) {
    this.client = createClient(options);
    this.subscriber = createSubscriber(this.client);
    // Classic Pub/Sub would send every message to every node of a cluster.
    const sharded = options.shardedPubSub === true || options.cluster === true;
    this.pubSub = sharded ? shardedPubSub : classicPubSub;
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
  async command<T>(run: (client: RedisClient) => Promise<T>): Promise<T> {
    try {
      await this.#clientGate.wait();
    } catch (error) {
      throw new BackendUnavailableError(true, { cause: error });
    }
    this.#writeAtTurnEnd();
    try {
      return await run(this.client);
    } catch (error) {
      if (error instanceof ReplyError || error instanceof StreamhubError) throw error;
      throw new BackendUnavailableError(isUnsent(error), { cause: error });
    }
  }

  /**
   * Holds what is written to one server's socket until the end of this event-loop turn (the
   * check phase), so that the commands of every request handled in the turn leave in one write.
   * A cluster client pipelines itself, per node.
   */
  #writeAtTurnEnd(): void {
    if (this.#corked !== undefined || !(this.client instanceof Redis)) return;
    const stream: RedisStream | undefined = this.client.stream;
    if (stream === undefined) return;
    this.#corked = stream;
    stream.cork();
    setImmediate(() => {
      this.#corked = undefined;
      stream.uncork();
    });
  }

  /**
   * Hears a channel for as long as the connection lives, subscribing again after every
   * reconnect (and after a first connect that failed).
   */
  listen(channel: string, onMessage: (message: string) => void): Listening {
    const channelBytes = Buffer.from(channel);
    this.subscriber.on(this.pubSub.messageEvent, (name: Buffer, message: Buffer) => {
      if (channelBytes.equals(name)) onMessage(message.toString());
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
    readonly client: RedisClient,
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
  if (!(error instanceof Error)) return false;
  return (
    error.message.includes("Stream isn't writeable") ||
    error.message.includes("Cluster isn't ready")
  );
}

/** Ends a connection politely when it is up, at once otherwise. */
async function closeClient(client: RedisClient): Promise<void> {
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
