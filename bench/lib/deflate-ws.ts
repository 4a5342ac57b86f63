import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { inflateSegment } from './inflate-segment.js';

/**
 * A minimal WebSocket client for the load generator, for compressed benchmarks only.
 *
 * Why not `ws`: its permessage-deflate inflates every message through zlib's asynchronous API
 * (see bench/lib/inflate-segment.ts for why that does not do). This client offers
 * permessage-deflate without context takeover (the only kind streamhub accepts), so each
 * compressed message is a raw-deflate stream on its own that one synchronous call decodes as
 * soon as it arrives.
 *
 * Scope: what the server sends to a subscriber — unfragmented text frames, compressed or not,
 * pings and a close. Anything else is a protocol error that closes the connection, so an
 * unexpected frame shows up as a disconnected subscriber rather than being skipped.
 */
export interface DeflateWsOptions {
  host: string;
  port: number;
  path: string;
  /** Each text message, inflated if it was compressed. */
  onMessage: (text: string) => void;
  /** Once, when the socket closes for any reason after the handshake succeeded. */
  onClose: () => void;
}

export interface DeflateWs {
  /** True when the server accepted permessage-deflate. */
  readonly deflate: boolean;
  send(text: string): void;
  /** Bytes read from the socket, handshake included. */
  bytesRead(): number;
  terminate(): void;
}

const OFFER = 'permessage-deflate; client_no_context_takeover; server_no_context_takeover';
const OP_TEXT = 0x1;
const OP_PING = 0x9;
const OP_PONG = 0xa;

/** Resolves once the server has answered 101 (with or without permessage-deflate). */
export function openDeflateWs(o: DeflateWsOptions): Promise<DeflateWs> {
  const socket = connect(o.port, o.host);
  socket.setNoDelay(true);
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const fail = (e: Error) => {
      socket.destroy();
      reject(e);
    };
    socket.once('error', fail);
    socket.once('close', () => fail(new Error('WebSocket closed during the handshake')));
    socket.once('connect', () => socket.write(handshake(o)));
    const onHead = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onHead);
      socket.removeAllListeners('error').removeAllListeners('close');
      const answer = head.subarray(0, end).toString('latin1');
      if (!answer.startsWith('HTTP/1.1 101')) {
        fail(new Error(`WebSocket upgrade answered ${answer.split('\r\n')[0]}`));
        return;
      }
      const extensions = /^sec-websocket-extensions:(.*)$/im.exec(answer)?.[1] ?? '';
      const deflate = extensions.includes('permessage-deflate');
      if (deflate && !extensions.includes('server_no_context_takeover')) {
        fail(new Error('server kept its deflate context: one inflate per message would not do'));
        return;
      }
      resolve(new FrameReader(socket, deflate, o).start(head.subarray(end + 4)));
    };
    socket.on('data', onHead);
  });
}

function handshake(o: DeflateWsOptions): string {
  return [
    `GET ${o.path} HTTP/1.1`,
    `Host: ${o.host}:${o.port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
    `Sec-WebSocket-Extensions: ${OFFER}`,
    '',
    '',
  ].join('\r\n');
}

/** Parses server frames (unmasked, RFC 6455 §5.2) out of the byte stream. */
class FrameReader implements DeflateWs {
  #buffered = Buffer.alloc(0);
  #closed = false;

  constructor(
    readonly socket: Socket,
    readonly deflate: boolean,
    readonly o: DeflateWsOptions,
  ) {}

  start(rest: Buffer): DeflateWs {
    this.socket.on('data', (chunk: Buffer) => this.#read(chunk));
    this.socket.on('error', () => {}); // a reset shows up as close
    this.socket.once('close', () => this.#onClose());
    if (rest.length > 0) this.#read(rest); // frames that came with the handshake's answer
    return this;
  }

  send(text: string): void {
    this.socket.write(maskedFrame(OP_TEXT, Buffer.from(text)));
  }

  bytesRead(): number {
    return this.socket.bytesRead;
  }

  terminate(): void {
    this.socket.destroy();
  }

  #read(chunk: Buffer): void {
    let buf = this.#buffered.length > 0 ? Buffer.concat([this.#buffered, chunk]) : chunk;
    for (;;) {
      const frame = nextFrame(buf);
      if (frame === undefined) break;
      buf = buf.subarray(frame.end);
      if (!this.#handle(frame)) return;
    }
    // Copy the tail so a small leftover does not pin the whole chunk.
    this.#buffered = Buffer.from(buf);
  }

  /** False when the frame closed the connection. */
  #handle(f: Frame): boolean {
    if (f.opcode === OP_TEXT && f.fin && (!f.compressed || this.deflate)) {
      this.o.onMessage(f.compressed ? inflateSegment(f.payload, true) : f.payload.toString('utf8'));
      return true;
    }
    if (f.opcode === OP_PING) {
      this.socket.write(maskedFrame(OP_PONG, f.payload));
      return true;
    }
    if (f.opcode === OP_PONG) return true;
    // A close frame, or one this client does not expect: either way the connection ends.
    this.socket.destroy();
    return false;
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.o.onClose();
  }
}

interface Frame {
  fin: boolean;
  compressed: boolean;
  opcode: number;
  payload: Buffer;
  /** Where the next frame starts in the buffer. */
  end: number;
}

/** The first whole frame in `buf`, or undefined if it has not all arrived yet. */
function nextFrame(buf: Buffer): Frame | undefined {
  if (buf.length < 2) return undefined;
  const b0 = buf[0] as number;
  const b1 = buf[1] as number;
  let length = b1 & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (buf.length < 4) return undefined;
    length = buf.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (buf.length < 10) return undefined;
    length = Number(buf.readBigUInt64BE(2));
    offset = 10;
  }
  const end = offset + length;
  if (buf.length < end) return undefined;
  return {
    fin: (b0 & 0x80) !== 0,
    compressed: (b0 & 0x40) !== 0,
    opcode: b0 & 0x0f,
    payload: buf.subarray(offset, end),
    end,
  };
}

/** Clients must mask what they send (RFC 6455 §5.3). */
function maskedFrame(opcode: number, payload: Buffer): Buffer {
  if (payload.length >= 126) throw new Error('the load generator only sends short frames');
  const mask = randomBytes(4);
  const frame = Buffer.allocUnsafe(6 + payload.length);
  frame[0] = 0x80 | opcode;
  frame[1] = 0x80 | payload.length;
  mask.copy(frame, 2);
  for (let i = 0; i < payload.length; i++) {
    frame[6 + i] = (payload[i] as number) ^ (mask[i % 4] as number);
  }
  return frame;
}
