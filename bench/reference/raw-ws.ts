import WebSocket, { WebSocketServer } from 'ws';
import { Rooms, referenceServer, topicOf } from './common.js';

// Minimal ws broadcaster: one JSON serialization per event (streamhub's event frame shape),
// the same Buffer sent as a text frame to every client of the topic.
const rooms = new Rooms<WebSocket>();

const server = referenceServer((topic, id, event, data) => {
  const frame = Buffer.from(JSON.stringify({ type: 'event', topic, id, event, data }));
  for (const ws of rooms.members(topic)) {
    if (ws.readyState === WebSocket.OPEN) ws.send(frame, { binary: false });
  }
});

const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on('connection', (ws, req) => {
  const topic = topicOf(req.url);
  if (topic === undefined) {
    ws.close(1008, 'unknown path');
    return;
  }
  rooms.add(topic, ws);
  ws.once('close', () => rooms.delete(topic, ws));
});
