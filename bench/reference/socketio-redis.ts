import { createAdapter } from '@socket.io/redis-streams-adapter';
import { Redis } from 'ioredis';
import { serveSocketIo } from './socketio-rooms.js';

// Socket.IO scaled out the way its docs recommend with connection-state recovery: every
// broadcast is XADDed to one Redis stream that each process reads with a blocking XREAD.
const url = process.env.REDIS_URL;
if (!url) throw new Error('socketio-redis needs REDIS_URL');
serveSocketIo({ adapter: createAdapter(new Redis(url)) });
