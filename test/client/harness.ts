import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import http, {
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import {
  type ConnectionState,
  type ResetNotice,
  type StateInfo,
  StreamhubClientError,
  type SubscribeOptions,
  type Subscription,
  subscribe,
  subscribeWs,
  type TopicEvent,
} from '../../src/client/index.js';
import type { RunningServer } from '../../src/server/server.js';
import { PATIENCE_MS } from '../helpers/patience.js';

/**
 * Asserts that `promise` rejects with a StreamhubClientError of this status and code (and
 * retryability, when given).
 */
export async function rejectsWith(
  promise: Promise<unknown>,
  status: number,
  code: string,
  retryable?: boolean,
) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof StreamhubClientError, String(error));
    assert.equal(error.status, status);
    assert.equal(error.code, code);
    if (retryable !== undefined) assert.equal(error.retryable, retryable);
    return true;
  });
}

export { PATIENCE_MS };

export interface Transport {
  readonly name: string;
  subscribe(baseUrl: string, topic: string, options: SubscribeOptions): Subscription;
}

/** The guarantees are the same over both transports, so the same tests run over each. */
export const TRANSPORTS: readonly Transport[] = [
  { name: 'SSE', subscribe },
  {
    name: 'WebSocket',
    subscribe: (baseUrl, topic, options) => subscribeWs(baseUrl, topic, { ...options, WebSocket }),
  },
];

let topicCounter = 0;
export function uniqueTopic(prefix = 'client'): string {
  topicCounter += 1;
  return `${prefix}.${process.pid}.${topicCounter}`;
}

let streamCounter = 0;
export function uniqueStreamId(prefix = 'stream'): string {
  streamCounter += 1;
  return `${prefix}-${process.pid}-${streamCounter}`;
}

/** Everything a subscription reports, in arrival order. */
export class Recorder {
  readonly events: TopicEvent[] = [];
  readonly resets: ResetNotice[] = [];
  readonly states: { state: ConnectionState; info: StateInfo }[] = [];
  readonly errors: StreamhubClientError[] = [];

  /** Subscription options that record into this recorder; fast retries keep tests short. */
  options(extra: Partial<SubscribeOptions> = {}): SubscribeOptions {
    return {
      retryMs: 20,
      onEvent: (event) => this.events.push(event),
      onReset: (notice) => this.resets.push(notice),
      onStateChange: (state, info) => this.states.push({ state, info }),
      onError: (error) => this.errors.push(error),
      ...extra,
    };
  }

  get ids(): string[] {
    return this.events.map((event) => event.id);
  }

  get data(): unknown[] {
    return this.events.map((event) => event.data);
  }

  count(state: ConnectionState): number {
    return this.states.filter((change) => change.state === state).length;
  }
}

/**
 * Records the sockets and request headers of the server's streaming requests (SSE and
 * WebSocket upgrades), so a test can cut them abruptly, as a crash or a network failure would.
 */
export class StreamTap {
  readonly #sockets = new Set<Socket>();
  readonly headers: IncomingHttpHeaders[] = [];

  constructor(server: RunningServer) {
    const record = (request: IncomingMessage, done: EventEmitter) => {
      const { socket } = request;
      this.headers.push(request.headers);
      this.#sockets.add(socket);
      // After a clean end the keep-alive socket may serve other requests: no longer a stream.
      done.once('close', () => this.#sockets.delete(socket));
    };
    server.app.server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      if (request.headers.accept?.includes('text/event-stream')) record(request, response);
    });
    server.app.server.on('upgrade', (request: IncomingMessage, socket: Socket) => {
      record(request, socket);
    });
  }

  /** Destroys every open streaming socket; returns how many there were. */
  destroyAll(): number {
    const sockets = [...this.#sockets];
    for (const socket of sockets) socket.destroy();
    return sockets.length;
  }
}

/**
 * A loopback port where a server is down: held by a listener that resets every connection, so
 * that no other process can take it; `release()` frees it for a server to take right after.
 */
export async function downPort(): Promise<{ port: number; release(): Promise<void> }> {
  const holder = net.createServer((socket) => socket.resetAndDestroy());
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  return {
    port: (holder.address() as AddressInfo).port,
    release: () => new Promise((resolve) => holder.close(() => resolve())),
  };
}

/**
 * A server that accepts SSE requests and WebSocket upgrades and then says nothing, like a peer
 * that vanished without closing the TCP connection.
 */
export async function startSilentServer(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new WebSocketServer({ noServer: true });
  const server = http.createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    response.write('retry: 20\n\n');
  });
  server.on('upgrade', (request, socket, head) => {
    sockets.handleUpgrade(request, socket, head, () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const client of sockets.clients) client.terminate();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * A TCP proxy in front of a server, for network failures on real sockets: `cut()` resets every
 * connection through it; during an `outage`, new connections are reset, or answered
 * `503` as a load balancer would while its backend restarts.
 */
export async function startProxy(target: { readonly url: string }) {
  const { hostname, port } = new URL(target.url);
  const sockets = new Set<net.Socket>();
  let outage: 'reset' | '503' | undefined;
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  };
  const server = net.createServer((client) => {
    track(client);
    if (outage === 'reset') return void client.resetAndDestroy();
    if (outage === '503') {
      const body = '{"error":{"code":"overloaded","message":"restarting"}}';
      client.once('data', () =>
        client.end(
          'HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n' +
            `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
        ),
      );
      return;
    }
    const upstream = net.connect(Number(port), hostname);
    track(upstream);
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: proxyPort } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${proxyPort}`,
    /**
     * Resets every connection; with an `outage` kind, refuses new ones for `ms`, or until
     * `restore()` when `ms` is not given.
     */
    cut(kind?: 'reset' | '503', ms?: number): void {
      outage = kind;
      for (const socket of sockets) socket.resetAndDestroy();
      if (kind !== undefined && ms !== undefined) {
        setTimeout(() => {
          outage = undefined;
        }, ms);
      }
    },
    /** Ends an outage: new connections go through again. */
    restore(): void {
      outage = undefined;
    },
    async close(): Promise<void> {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Resolves once the server holds at least `events` events of the stream `id` (by default,
 *  once it knows the stream: its producer's first event has arrived). */
export async function waitForStream(baseUrl: string, id: string, events = 0): Promise<void> {
  const url = `${baseUrl}/v1/streams/${encodeURIComponent(id)}`;
  const deadline = Date.now() + PATIENCE_MS;
  for (;;) {
    const response = await fetch(url);
    const status = response.ok ? ((await response.json()) as { events: number }) : undefined;
    if (!response.ok) await response.body?.cancel();
    if (status !== undefined && status.events >= events) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for stream ${id}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
