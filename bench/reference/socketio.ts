import { serveSocketIo } from './socketio-rooms.js';

// One process with Socket.IO's default in-memory adapter.
serveSocketIo();
