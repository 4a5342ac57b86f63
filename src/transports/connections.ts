export type TransportName = 'sse' | 'ws';

/** An open client connection, as the registry sees it. */
export interface Connection {
  readonly transport: TransportName;
  /** Called every heartbeat interval: keep the connection alive, or drop it if it is dead. */
  heartbeat(): void;
  /** Ends the connection so that the client reconnects (to this or another node). */
  shutdown(): void;
}

/**
 * Every open streaming connection of the process. One timer drives all heartbeats, which is
 * cheaper than a timer per connection at tens of thousands of connections, and shutdown
 * closes them all in one sweep.
 */
export class ConnectionRegistry {
  readonly #connections = new Set<Connection>();
  readonly #counts: Record<TransportName, number> = { sse: 0, ws: 0 };
  #timer: NodeJS.Timeout | undefined;

  constructor(readonly heartbeatMs: number) {}

  add(connection: Connection): void {
    this.#connections.add(connection);
    this.#counts[connection.transport]++;
    this.#timer ??= setInterval(() => this.#beat(), this.heartbeatMs).unref();
  }

  delete(connection: Connection): void {
    if (!this.#connections.delete(connection)) return;
    this.#counts[connection.transport]--;
    if (this.#connections.size === 0) this.#stopTimer();
  }

  count(transport: TransportName): number {
    return this.#counts[transport];
  }

  get size(): number {
    return this.#connections.size;
  }

  shutdownAll(): void {
    for (const connection of [...this.#connections]) connection.shutdown();
    this.#stopTimer();
  }

  #beat(): void {
    for (const connection of this.#connections) connection.heartbeat();
  }

  #stopTimer(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
