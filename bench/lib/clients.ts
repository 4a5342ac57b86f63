import { get, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { type DeflateWs, openDeflateWs } from './deflate-ws.js';
import { SegmentGunzip } from './gzip-sse.js';
import { HOST } from './proc.js';
import { SseParser } from './sse.js';

/** How a client subscribes: SSE, per-topic WebSocket, multiplexed WebSocket, or Socket.IO room. */
export type Transport = 'sse' | 'ws' | 'ws-mux' | 'socketio';

export interface SubscribeOptions {
  port: number;
  topic: string;
  /** Extra query string for the subscribe URL, e.g. `from=start`. */
  query?: string;
  lastEventId?: string;
  /** Receives the event's `data` (already JSON-parsed) and its id. */
  onData: (data: unknown, id: string | undefined) => void;
  onClose: () => void;
  timeoutMs?: number;
  /** Ask for a compressed stream: `Accept-Encoding: gzip` (SSE), permessage-deflate (WS). */
  compressed?: boolean;
}

export interface Connection {
  close(): void;
  /** Bytes received on the connection's socket so far (headers included). */
  wireBytes(): number;
}

interface WsEventFrame {
  type: string;
  id?: string;
  data?: unknown;
}

const topicPath = (topic: string) => `/v1/topics/${encodeURIComponent(topic)}`;

function withTimeout<T>(
  p: Promise<T>,
  ms: number,
  what: string,
  onTimeout: () => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => {
      onTimeout();
      reject(new Error(`${what}: timed out after ${ms} ms`));
    }, ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/** Resolves once the server has answered the subscription (headers, open, ack or connect). */
export function subscribe(transport: Transport, o: SubscribeOptions): Promise<Connection> {
  const timeout = o.timeoutMs ?? 10_000;
  switch (transport) {
    case 'sse':
      return subscribeSse(o, timeout);
    case 'ws':
    case 'ws-mux':
      return subscribeWs(transport === 'ws-mux', o, timeout);
    case 'socketio':
      return subscribeSocketIo(o, timeout);
  }
}

function subscribeSse(o: SubscribeOptions, timeout: number): Promise<Connection> {
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (o.lastEventId !== undefined) headers['last-event-id'] = o.lastEventId;
  if (o.compressed) headers['accept-encoding'] = 'gzip';
  // agent: false gives every subscriber its own socket, like separate browsers.
  const req = get({
    host: HOST,
    port: o.port,
    path: `${topicPath(o.topic)}/events${o.query ? `?${o.query}` : ''}`,
    headers,
    agent: false,
  });
  const opened = new Promise<Connection>((resolve, reject) => {
    req.once('error', reject);
    req.once('response', (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`SSE subscribe answered ${res.statusCode}`));
        return;
      }
      const parser = new SseParser((e) => o.onData(JSON.parse(e.data), e.id));
      readBody(res, (text) => parser.push(text));
      res.once('close', o.onClose);
      req.on('error', () => {}); // a reset after open shows up as close
      const socket = res.socket;
      resolve({ close: () => req.destroy(), wireBytes: () => socket.bytesRead });
    });
  });
  return withTimeout(opened, timeout, 'SSE subscribe', () => req.destroy());
}

/** Hands the body's text to `onText`; a gzip body is inflated synchronously (gzip-sse.ts). A
 *  body that does not decode ends the connection, so its events count as lost. */
function readBody(res: IncomingMessage, onText: (text: string) => void): void {
  if (res.headers['content-encoding'] !== 'gzip') {
    res.setEncoding('utf8');
    res.on('data', onText);
    return;
  }
  const gunzip = new SegmentGunzip();
  res.on('data', (chunk: Buffer) => {
    try {
      onText(gunzip.push(chunk));
    } catch {
      res.destroy();
    }
  });
}

function wsPath(mux: boolean, o: SubscribeOptions): string {
  const query = [o.query, o.lastEventId && `last_event_id=${encodeURIComponent(o.lastEventId)}`]
    .filter(Boolean)
    .join('&');
  return mux ? '/v1/ws' : `${topicPath(o.topic)}/ws${query ? `?${query}` : ''}`;
}

/** Hands events to `onData`; true when the message acknowledges the mux subscription. */
function onWsMessage(o: SubscribeOptions, text: string): boolean {
  const frame = JSON.parse(text) as WsEventFrame;
  if (frame.type === 'event') o.onData(frame.data, frame.id);
  return frame.type === 'subscribed';
}

const subscribeMessage = (o: SubscribeOptions) =>
  JSON.stringify({ type: 'subscribe', topic: o.topic });

function subscribeWs(mux: boolean, o: SubscribeOptions, timeout: number): Promise<Connection> {
  if (o.compressed) return subscribeDeflateWs(mux, o, timeout);
  const ws = new WebSocket(`ws://${HOST}:${o.port}${wsPath(mux, o)}`, { perMessageDeflate: false });
  let socket: Socket | undefined;
  ws.once('upgrade', (response) => {
    socket = response.socket;
  });
  const opened = new Promise<Connection>((resolve, reject) => {
    const conn = { close: () => ws.terminate(), wireBytes: () => socket?.bytesRead ?? 0 };
    ws.once('error', reject);
    ws.once('close', () => reject(new Error('WebSocket closed before subscribing')));
    ws.once('open', () => {
      ws.once('close', o.onClose);
      if (!mux) resolve(conn);
      else ws.send(subscribeMessage(o));
    });
    ws.on('message', (raw: Buffer) => {
      if (onWsMessage(o, raw.toString())) resolve(conn);
    });
  });
  return withTimeout(opened, timeout, 'WebSocket subscribe', () => ws.terminate());
}

/** The same over bench/lib/deflate-ws.ts, which inflates synchronously (see there why). */
function subscribeDeflateWs(
  mux: boolean,
  o: SubscribeOptions,
  timeout: number,
): Promise<Connection> {
  let ws: DeflateWs | undefined;
  const opened = new Promise<Connection>((resolve, reject) => {
    const conn = { close: () => ws?.terminate(), wireBytes: () => ws?.bytesRead() ?? 0 };
    let subscribed = false;
    openDeflateWs({
      host: HOST,
      port: o.port,
      path: wsPath(mux, o),
      onMessage: (text) => {
        if (onWsMessage(o, text)) {
          subscribed = true;
          resolve(conn);
        }
      },
      onClose: () => {
        if (!mux || subscribed) o.onClose();
        else reject(new Error('WebSocket closed before subscribing'));
      },
    }).then((opened) => {
      ws = opened;
      if (!mux) resolve(conn);
      else opened.send(subscribeMessage(o));
    }, reject);
  });
  return withTimeout(opened, timeout, 'WebSocket subscribe', () => ws?.terminate());
}

function subscribeSocketIo(o: SubscribeOptions, timeout: number): Promise<Connection> {
  const socket = io(`http://${HOST}:${o.port}`, {
    transports: ['websocket'],
    query: { topic: o.topic },
    reconnection: false,
    forceNew: true,
  });
  const opened = new Promise<Connection>((resolve, reject) => {
    socket.once('connect_error', reject);
    socket.once('connect', () => {
      socket.once('disconnect', o.onClose);
      resolve({ close: () => socket.disconnect(), wireBytes: () => Number.NaN });
    });
    socket.on('event', (frame: WsEventFrame) => o.onData(frame.data, frame.id));
  });
  return withTimeout(opened, timeout, 'Socket.IO connect', () => socket.disconnect());
}

/** Runs `fn` over `items` with at most `limit` in flight, so thousands of connects don't SYN-flood. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export function closeAll(conns: readonly Connection[]): void {
  for (const c of conns) c.close();
}
