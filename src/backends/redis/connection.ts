import { Redis } from 'ioredis';

export interface ConnectionOptions {
  readonly url?: string;
  /** Builds the main client; the subscriber connection is its `duplicate()`. */
  readonly createClient?: () => Redis;
  /** Bounds every command, so a hung Redis fails requests instead of stalling them. */
  readonly commandTimeoutMs?: number;
}

/**
 * The main connection. Commands are not queued while disconnected (`enableOfflineQueue:
 * false`): during an outage publishes and reads fail at once and the server answers 503,
 * instead of piling up requests that would all run late. ioredis keeps reconnecting.
 */
export function createClient(options: ConnectionOptions): Redis {
  if (options.createClient !== undefined) return options.createClient();
  return new Redis(options.url ?? 'redis://127.0.0.1:6379', {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs ?? 5_000,
    connectTimeout: 5_000,
    retryStrategy: (attempt) => Math.min(attempt * 100, 1_000),
  });
}

/**
 * Lets a command wait briefly for a connection that is (re)connecting, which covers the
 * first connect after start-up and short blips, and fails with a clear error otherwise.
 */
export class ReadyGate {
  readonly #waiters = new Set<() => void>();
  #lastError: unknown;

  constructor(
    readonly client: Redis,
    readonly waitMs: number,
  ) {
    client.on('ready', () => {
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

/** Ends a connection politely when it is up, at once otherwise. */
export async function closeClient(client: Redis): Promise<void> {
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
