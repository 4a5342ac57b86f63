import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { type Connection, type ConnectionRegistry, TICKS_PER_HEARTBEAT } from '../connections.js';

export interface WsConnectionOptions {
  readonly registry: ConnectionRegistry;
  readonly maxBufferedBytes: number;
  readonly onSlowConsumer?: () => void;
}

/** Close codes (RFC 6455 §7.4): 1001 going away, 1008 policy violation. */
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_POLICY_VIOLATION = 1008;

/**
 * One WebSocket: JSON control frames, pre-framed event batches, protocol-level ping/pong to
 * drop dead peers, and backpressure by buffered amount. No protocol semantics here.
 */
export class WsConnection implements Connection {
  readonly transport = 'ws';
  #alive = true;
  #closed = false;

  /** The socket negotiated permessage-deflate: event frames may be sent compressed. */
  readonly deflate: boolean;

  /**
   * `socket` is the upgraded TCP socket under `ws`. Event batches are written to it directly;
   * that is safe because `ws` itself never compresses here (sendJson asks it not to, and the
   * server's threshold keeps it from it), so it writes synchronously and frames from both
   * paths keep their order.
   */
  constructor(
    readonly ws: WebSocket,
    readonly socket: Socket,
    readonly options: WsConnectionOptions,
  ) {
    ws.on('pong', () => {
      this.#alive = true;
    });
    ws.on('close', () => this.#onClose());
    this.deflate = ws.extensions.includes('permessage-deflate');
    options.registry.add(this);
  }

  get closed(): boolean {
    return this.#closed || this.ws.readyState !== this.ws.OPEN;
  }

  /**
   * Replies and control frames obey the same bound as events: a client that floods requests
   * and never reads their answers is a slow consumer too, not a way to grow server memory.
   */
  sendJson(message: unknown): void {
    if (this.#withinBound()) this.ws.send(JSON.stringify(message), { compress: false });
  }

  /**
   * Writes pre-framed bytes; returns false when the producer should wait for `drained()`.
   * As for SSE, a consumer is slow when what it queued before this write is past the bound.
   */
  writeFrames(frames: Buffer): boolean {
    return this.#withinBound() && this.socket.write(frames);
  }

  /** False when closed; a consumer past the bound is dropped first. */
  #withinBound(): boolean {
    if (this.closed) return false;
    if (this.ws.bufferedAmount <= this.options.maxBufferedBytes) return true;
    this.options.onSlowConsumer?.();
    this.ws.terminate();
    return false;
  }

  drained(): Promise<void> {
    if (this.closed || !this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.ws.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.ws.on('close', done);
    });
  }

  close(code: number, reason: string): void {
    if (!this.closed) this.ws.close(code, reason);
  }

  heartbeat(tick: number): void {
    if (tick % TICKS_PER_HEARTBEAT !== 0) return;
    if (!this.#alive) {
      this.ws.terminate();
      return;
    }
    this.#alive = false;
    if (!this.closed) this.ws.ping();
  }

  shutdown(): void {
    this.close(CLOSE_GOING_AWAY, 'server shutting down');
  }

  #onClose(): void {
    this.#closed = true;
    this.options.registry.delete(this);
  }
}
