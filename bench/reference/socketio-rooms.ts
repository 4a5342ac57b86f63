import type { Server as HttpServer } from 'node:http';
import { Server, type ServerOptions } from 'socket.io';
import { referenceServer } from './common.js';

/**
 * Socket.IO 4 with connection-state recovery: the popular "batteries included" baseline. Every
 * broadcast then carries an offset and is kept for recovering clients, which is the closest
 * Socket.IO feature to streamhub's resumable streams. A client joins the room named by its
 * `topic` query parameter; a publish emits to that room (on every server, given an adapter).
 */
export function serveSocketIo(options: Partial<ServerOptions> = {}): HttpServer {
  let io: Server | undefined;
  const server = referenceServer((topic, id, event, data) => {
    io?.to(topic).emit('event', { type: 'event', topic, id, event, data });
  });
  io = new Server(server, {
    serveClient: false,
    connectionStateRecovery: { maxDisconnectionDuration: 2 * 60_000 },
    ...options,
  });
  io.on('connection', (socket) => {
    const topic = socket.handshake.query.topic;
    if (typeof topic === 'string') void socket.join(topic);
  });
  return server;
}
