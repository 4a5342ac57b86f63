export type TransportName = 'sse' | 'ws';

/**
 * The registry ticks this often per heartbeat interval, so a connection silent since a
 * tick gets its heartbeat within one interval plus a quarter, not two intervals.
 */
export const TICKS_PER_HEARTBEAT = 4;

/** An open client connection, as the registry sees it. */
export interface Connection {
  readonly transport: TransportName;
  /**
   * Called TICKS_PER_HEARTBEAT times per heartbeat interval with the registry's tick count:
   * keep the connection alive, or drop it if it is dead.
   */
  heartbeat(tick: number): void;
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
  #tick = 0;

  constructor(readonly heartbeatMs: number) {}

  add(connection: Connection): void {
    this.#connections.add(connection);
    this.#counts[connection.transport]++;
    this.#timer ??= setInterval(() => this.#beat(), this.heartbeatMs / TICKS_PER_HEARTBEAT).unref();
  }

  delete(connection: Connection): void {
    if (!this.#connections.delete(connection)) return;
    this.#counts[connection.transport]--;
  }

  count(transport: TransportName): number {
    return this.#counts[transport];
  }

  /** Increases by one every heartbeat tick: a cheap clock for "silent since when". */
  get tick(): number {
    return this.#tick;
  }

  get size(): number {
    return this.#connections.size;
  }

  shutdownAll(): void {
    for (const connection of [...this.#connections]) connection.shutdown();
    this.#stopTimer();
  }

  /**
   * The timer stops at the first tick that finds no connection, not when the last one leaves:
   * sequential requests would otherwise start and stop it for each request.
   */
  #beat(): void {
    if (this.#connections.size === 0) {
      this.#stopTimer();
      return;
    }
    const tick = ++this.#tick;
    for (const connection of this.#connections) connection.heartbeat(tick);
  }

  #stopTimer(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
