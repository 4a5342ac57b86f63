import type { ServerResponse } from 'node:http';
import { Rooms, referenceServer } from './common.js';

// Minimal SSE broadcaster: the frame is serialized once per event and the same Buffer is
// written to every subscriber, which is the cheapest a Node SSE fan-out can get.
const rooms = new Rooms<ServerResponse>();

referenceServer(
  (topic, id, event, data) => {
    const frame = Buffer.from(`id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    for (const res of rooms.members(topic)) res.write(frame);
  },
  (req, res, topic) => {
    if (req.method !== 'GET') return false;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    rooms.add(topic, res);
    res.once('close', () => rooms.delete(topic, res));
    return true;
  },
);
