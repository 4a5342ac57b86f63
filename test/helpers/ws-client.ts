import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { type ClientOptions, type RawData, WebSocket } from 'ws';
import { PATIENCE_MS } from './patience.js';

/** A server → client frame of docs/api.md §3, parsed from one text frame. */
export type ServerFrame = { readonly type: string } & Record<string, unknown>;

export interface EventFrame {
  readonly type: 'event';
  readonly topic: string;
  readonly id: string;
  readonly event: string;
  readonly data: unknown;
}

export interface CloseInfo {
  readonly code: number;
  readonly reason: string;
}

/** `http://host:port` + path → `ws://host:port/path`. */
export function wsUrl(baseUrl: string, path: string): string {
  return `${baseUrl.replace(/^http/, 'ws')}${path}`;
}

interface FrameWaiter {
  readonly predicate: (frame: ServerFrame) => boolean;
  readonly resolve: (frame: ServerFrame) => void;
  readonly reject: (error: Error) => void;
}

let nextRef = 0;

/** A ref no other request of this test process uses, so a reply can be matched to its request. */
export function uniqueRef(): string {
  nextRef += 1;
  return `ref-${nextRef}`;
}

/**
 * A `ws` client that records every frame the server sends (parsed JSON, in arrival order),
 * protocol pings, and how the connection closed. Waiting is event-driven: a waiter scans the
 * frames received so far and is then checked against each new one.
 */
export class WsTestClient {
  readonly frames: ServerFrame[] = [];
  /** Text frames that were not JSON objects (there should be none). */
  readonly malformed: string[] = [];
  pings = 0;
  closeInfo: CloseInfo | undefined;
  readonly closed: Promise<CloseInfo>;
  readonly #waiters = new Set<FrameWaiter>();
  readonly #eventCounts = new Map<string, number>();

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        resolve(this.closeInfo);
        for (const waiter of this.#waiters) waiter.reject(this.#closedError());
        this.#waiters.clear();
      });
    });
    ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    ws.on('ping', () => {
      this.pings += 1;
    });
    // A socket error is followed by 'close', which is what tests look at.
    ws.on('error', () => {});
  }

  /**
   * Opens a connection; rejects if the handshake fails. permessage-deflate only when asked:
   * `ws` inflates each compressed message on the thread pool, which makes a client in this
   * busy test process slower than the server it tests.
   */
  static connect(url: string, options: ClientOptions = {}): Promise<WsTestClient> {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...options });
    const client = new WsTestClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
      ws.once('unexpected-response', (_request, response) => {
        reject(new Error(`unexpected handshake response ${response.statusCode}`));
        response.resume();
      });
    });
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }

  /** Sends a frame with a fresh `ref` and resolves with the server's reply carrying that ref. */
  async request(frame: Record<string, unknown>, timeoutMs = PATIENCE_MS): Promise<ServerFrame> {
    const ref = uniqueRef();
    this.send({ ...frame, ref });
    return this.waitForFrame((reply) => reply.ref === ref, `reply to ${JSON.stringify(frame)}`, {
      timeoutMs,
    });
  }

  /** Subscribes on a multiplexed socket and waits for the `subscribed` acknowledgement. */
  async subscribe(topic: string, options: { last_event_id?: string; from?: string } = {}) {
    const reply = await this.request({ type: 'subscribe', topic, ...options });
    if (reply.type !== 'subscribed') {
      throw new Error(`subscribe to ${topic} failed: ${JSON.stringify(reply)}`);
    }
    return reply;
  }

  /** Every `event` frame, optionally of one topic, in arrival order. */
  events(topic?: string): EventFrame[] {
    return this.frames.filter(
      (frame): frame is ServerFrame & EventFrame =>
        frame.type === 'event' && (topic === undefined || frame.topic === topic),
    );
  }

  ids(topic?: string): string[] {
    return this.events(topic).map((event) => event.id);
  }

  /** Cheap count of event frames of a topic, for polling in large tests. */
  eventCount(topic: string): number {
    return this.#eventCounts.get(topic) ?? 0;
  }

  framesOfType(type: string): ServerFrame[] {
    return this.frames.filter((frame) => frame.type === type);
  }

  /**
   * Resolves with the first frame (already received or future) that matches. `after` skips
   * frames received before that index.
   */
  waitForFrame(
    predicate: (frame: ServerFrame) => boolean,
    what: string,
    { timeoutMs = PATIENCE_MS, after = 0 }: { timeoutMs?: number; after?: number } = {},
  ): Promise<ServerFrame> {
    const seen = this.frames.slice(after).find(predicate);
    if (seen !== undefined) return Promise.resolve(seen);
    if (this.closeInfo !== undefined) {
      return Promise.reject(new Error(`${what}: ${this.#closedError().message}`));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`timed out waiting for ${what}; got ${this.summary()}`));
      }, timeoutMs);
      const waiter: FrameWaiter = {
        predicate,
        resolve: (frame) => {
          clearTimeout(timer);
          resolve(frame);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(new Error(`${what}: ${error.message}`));
        },
      };
      this.#waiters.add(waiter);
    });
  }

  /** Resolves once `count` events of `topic` have arrived. */
  async waitForEvents(
    topic: string,
    count: number,
    timeoutMs = PATIENCE_MS,
  ): Promise<EventFrame[]> {
    if (this.eventCount(topic) < count) {
      await this.waitForFrame(
        (frame) => frame.type === 'event' && this.eventCount(topic) >= count,
        `${count} events of ${topic}`,
        { timeoutMs, after: this.frames.length },
      );
    }
    return this.events(topic);
  }

  /** Resolves when the connection closes; rejects if it stays open longer than `timeoutMs`. */
  async waitForClose(timeoutMs = PATIENCE_MS): Promise<CloseInfo> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error('timed out waiting for the socket to close')),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.ws.terminate();
  }

  /**
   * Stops reading from the TCP socket, as a stalled consumer would: the server's frames pile
   * up in kernel buffers and then in the server's own write buffer.
   */
  stopReading(): void {
    (this.ws as unknown as { _socket: net.Socket })._socket.pause();
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    const text = data.toString();
    let frame: unknown;
    try {
      frame = isBinary ? undefined : JSON.parse(text);
    } catch {
      frame = undefined;
    }
    if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
      this.malformed.push(text);
      return;
    }
    const parsed = frame as ServerFrame;
    this.frames.push(parsed);
    if (parsed.type === 'event' && typeof parsed.topic === 'string') {
      this.#eventCounts.set(parsed.topic, this.eventCount(parsed.topic) + 1);
    }
    for (const waiter of this.#waiters) {
      if (waiter.predicate(parsed)) {
        this.#waiters.delete(waiter);
        waiter.resolve(parsed);
      }
    }
  }

  #closedError(): Error {
    return new Error(`socket closed (${JSON.stringify(this.closeInfo)}); got ${this.summary()}`);
  }

  /** The last frames and how the socket closed, for failure messages. */
  summary(): string {
    const last = this.frames.slice(-5).map((frame) => JSON.stringify(frame));
    return `${this.frames.length} frames (last: ${last.join(' ')}), close ${JSON.stringify(this.closeInfo)}`;
  }
}

/** Opens a WebSocket that must be refused; resolves with the HTTP status and body. */
export function rejectedHandshake(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => {
      ws.terminate();
      reject(new Error(`handshake to ${url} unexpectedly succeeded`));
    });
    ws.once('error', reject);
    ws.once('unexpected-response', (_request, response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () => {
        resolve({ status: response.statusCode ?? 0, body });
        ws.terminate();
      });
    });
  });
}

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/**
 * A WebSocket handshake done by hand over a plain TCP socket, for peers that misbehave in
 * ways the `ws` package will not: after the 101 response the socket is paused, so it never
 * reads a frame and never answers a ping. Resolves with the socket once upgraded.
 */
export function rawUpgradedSocket(baseUrl: string, path: string): Promise<net.Socket> {
  const { hostname, port } = new URL(baseUrl);
  const key = randomBytes(16).toString('base64');
  const accept = createHash('sha1')
    .update(key + WS_GUID)
    .digest('base64');
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) }, () => {
      socket.write(
        [
          `GET ${path} HTTP/1.1`,
          `Host: ${hostname}:${port}`,
          'Upgrade: websocket',
          'Connection: Upgrade',
          `Sec-WebSocket-Key: ${key}`,
          'Sec-WebSocket-Version: 13',
          '',
          '',
        ].join('\r\n'),
      );
    });
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.pause();
      const response = head.slice(0, end);
      if (!response.startsWith('HTTP/1.1 101') || !response.includes(accept)) {
        socket.destroy();
        reject(new Error(`handshake refused: ${response}`));
        return;
      }
      resolve(socket);
    };
    socket.on('data', onData);
    socket.on('error', reject);
  });
}

/** Remembers the clients a test opens so `afterEach` can close whatever a failed test left. */
export class WsClientPool {
  readonly #clients = new Set<WsTestClient>();

  async connect(url: string, options: ClientOptions = {}): Promise<WsTestClient> {
    const client = await WsTestClient.connect(url, options);
    this.#clients.add(client);
    return client;
  }

  closeAll(): void {
    for (const client of this.#clients) client.close();
    this.#clients.clear();
  }
}
