import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/**
 * Shared skeleton of the reference broadcasters: the same publish API as streamhub
 * (`POST /v1/topics/{topic}/events` with `{"data", "event"?}` → 201 `{"id","topic","event"}`),
 * so one load generator drives every target. Deliberately minimal: no validation beyond
 * what keeps the process alive, no history, no limits — the floor streamhub is compared with.
 */
export type Fanout = (topic: string, id: string, event: string, data: unknown) => void;
export type Route = (req: IncomingMessage, res: ServerResponse, topic: string) => boolean;

const TOPIC_RE = /^\/v1\/topics\/([^/?]+)\/(events|ws)(?:\?|$)/;

export function topicOf(url: string | undefined): string | undefined {
  const m = TOPIC_RE.exec(url ?? '');
  return m?.[1] === undefined ? undefined : decodeURIComponent(m[1]);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Starts an HTTP server on PORT/HOST (or --port) that handles publish and /healthz. */
export function referenceServer(fanout: Fanout, route?: Route): Server {
  let lastId = 0;
  const server = createServer((req, res) => {
    const topic = topicOf(req.url);
    if (req.method === 'GET' && req.url === '/healthz') return json(res, 200, { ok: true });
    if (topic !== undefined && route?.(req, res, topic)) return;
    if (topic === undefined || req.method !== 'POST') {
      return json(res, 404, { error: { code: 'not_found', message: 'not found' } });
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: { data?: unknown; event?: string };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
      } catch {
        return json(res, 400, { error: { code: 'invalid_json', message: 'bad JSON' } });
      }
      const id = String(++lastId);
      const event = body.event ?? 'message';
      fanout(topic, id, event, body.data);
      json(res, 201, { id, topic, event });
    });
  });
  return listen(server, 8080);
}

/** Listens on `--port` (or PORT) and HOST, as the bench starts every reference process. */
export function listen(server: Server, defaultPort: number): Server {
  const argPort = process.argv.indexOf('--port');
  const port = Number(argPort === -1 ? process.env.PORT : process.argv[argPort + 1]) || defaultPort;
  server.listen(port, process.env.HOST ?? '127.0.0.1');
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => process.exit(0));
  return server;
}

/** Subscriber sets per topic, shared by the broadcasters. */
export class Rooms<T> {
  private readonly rooms = new Map<string, Set<T>>();

  add(topic: string, member: T): void {
    const room = this.rooms.get(topic);
    if (room) room.add(member);
    else this.rooms.set(topic, new Set([member]));
  }

  delete(topic: string, member: T): void {
    const room = this.rooms.get(topic);
    room?.delete(member);
    if (room?.size === 0) this.rooms.delete(topic);
  }

  members(topic: string): Iterable<T> {
    return this.rooms.get(topic) ?? [];
  }
}
