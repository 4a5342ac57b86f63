import type {
  StreamEnd,
  StreamOpening,
  StreamState,
  StreamStatus,
  StreamStore,
} from '../../core/stream-store.js';
import type { RedisConnection } from './connection.js';
import {
  END_STREAM_SCRIPT,
  GET_STREAM_SCRIPT,
  OPEN_STREAM_SCRIPT,
  RENEW_STREAM_SCRIPT,
  STREAM_SCRIPTS,
} from './stream-scripts.js';

export interface RedisStreamStoreOptions {
  readonly connection: RedisConnection;
  /** Namespace of every key (default `sh:stream`). */
  readonly keyPrefix?: string;
  /** Ended streams, and open ones whose producer stopped renewing, are forgotten after this. */
  readonly ttlMs: number;
}

const OPENINGS: readonly StreamOpening[] = ['exists', 'opened', 'replaced'];

/** Streams shared by every process: a state hash and a lease key per stream, changed by scripts. */
export class RedisStreamStore implements StreamStore {
  readonly #connection: RedisConnection;
  readonly #prefix: string;
  readonly #ttlMs: number;

  constructor(options: RedisStreamStoreOptions) {
    this.#connection = options.connection;
    this.#prefix = options.keyPrefix ?? 'sh:stream';
    this.#ttlMs = Math.ceil(options.ttlMs);
    for (const script of STREAM_SCRIPTS) script.define(this.#connection.client);
  }

  async get(id: string): Promise<StreamState | undefined> {
    const [status, created, updated, reason, leased] = await this.#connection.command((client) =>
      GET_STREAM_SCRIPT.run(client, this.#keys(id)),
    );
    if (status === null) return undefined;
    return {
      status: status as StreamStatus,
      createdAt: Number(created),
      updatedAt: Number(updated),
      ...(reason === null ? {} : { reason }),
      producerLost: status === 'open' && leased === 0,
    };
  }

  async open(id: string, leaseMs: number): Promise<StreamOpening> {
    const opened = await this.#connection.command((client) =>
      OPEN_STREAM_SCRIPT.run(client, {
        ...this.#keys(id),
        now: Date.now(),
        leaseMs: Math.ceil(leaseMs),
        ttlMs: this.#ttlMs,
      }),
    );
    return OPENINGS[opened] as StreamOpening;
  }

  async renew(id: string, leaseMs: number): Promise<boolean> {
    const renewed = await this.#connection.command((client) =>
      RENEW_STREAM_SCRIPT.run(client, {
        ...this.#keys(id),
        leaseMs: Math.ceil(leaseMs),
        ttlMs: this.#ttlMs,
      }),
    );
    return renewed === 1;
  }

  async end(id: string, { status, reason }: StreamEnd, onlyIfLost = false): Promise<boolean> {
    const ended = await this.#connection.command((client) =>
      END_STREAM_SCRIPT.run(client, {
        ...this.#keys(id),
        status,
        reason,
        onlyIfLost,
        now: Date.now(),
        ttlMs: this.#ttlMs,
      }),
    );
    return ended === 1;
  }

  async delete(id: string): Promise<void> {
    const keys = Object.values(this.#keys(id));
    await this.#connection.command((client) => client.del(...keys));
  }

  async close(): Promise<void> {}

  /** The hash tag is the stream's log's too, so a stream's keys share one cluster slot. */
  #keys(id: string) {
    const base = `${this.#prefix}:{${id}}`;
    return { stateKey: `${base}:state`, leaseKey: `${base}:lease` };
  }
}
