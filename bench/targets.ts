import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Transport } from './lib/clients.js';
import { freePort, HOST, type ServerProcess, startServer } from './lib/proc.js';

const dist = (p: string) => fileURLToPath(new URL(`../${p}`, import.meta.url));

/** A server program the bench can start as its own process. */
export interface Server {
  name: string;
  script: string;
  args: (port: number) => string[];
  env: (port: number) => Record<string, string>;
}

const referenceServer = (name: string): Server => ({
  name,
  script: dist(`bench/reference/${name}.js`),
  args: (port) => ['--port', String(port)],
  env: (port) => ({ PORT: String(port), HOST }),
});

const streamhub: Server = {
  name: 'streamhub',
  script: dist('src/cli/main.js'),
  args: (port: number) => ['serve', '--port', String(port), '--host', HOST],
  env: (port: number) => ({ PORT: String(port), HOST, LOG_LEVEL: 'warn', BACKEND: 'memory' }),
};

export const servers = {
  streamhub,
  /** The same server with COMPRESSION=off, for the compression scenario's baseline. */
  streamhubUncompressed: {
    ...streamhub,
    env: (port: number) => ({ ...streamhub.env(port), COMPRESSION: 'off' }),
  },
  rawSse: referenceServer('raw-sse'),
  rawWs: referenceServer('raw-ws'),
  socketio: referenceServer('socketio'),
  /** Needs `REDIS_URL` in its environment. */
  socketioRedis: referenceServer('socketio-redis'),
  /** The gateway scenario's OpenAI-compatible upstream. */
  fakeLlm: referenceServer('fake-llm'),
  /** A bare pass-through in front of the upstream at `UPSTREAM_URL` (in its environment). */
  rawProxy: referenceServer('raw-proxy'),
  /** Vercel's resumable-stream; needs `REDIS_URL` in its environment. */
  resumableStream: referenceServer('resumable-stream'),
} satisfies Record<string, Server>;

/** One row in a table: a server plus the transport its subscribers use. */
export interface Subject {
  label: string;
  server: Server;
  transport: Transport;
  /** Subscribers ask for compression (Accept-Encoding: gzip, permessage-deflate). */
  compressed?: boolean;
}

export const subjects = {
  streamhubSse: { label: 'streamhub SSE', server: servers.streamhub, transport: 'sse' },
  streamhubWs: { label: 'streamhub WS (per-topic)', server: servers.streamhub, transport: 'ws' },
  streamhubMux: { label: 'streamhub WS (/v1/ws)', server: servers.streamhub, transport: 'ws-mux' },
  rawSse: { label: 'raw SSE', server: servers.rawSse, transport: 'sse' },
  rawWs: { label: 'raw ws', server: servers.rawWs, transport: 'ws' },
  socketio: { label: 'Socket.IO 4 (recovery)', server: servers.socketio, transport: 'socketio' },
} satisfies Record<string, Subject>;

export const streamhubBuilt = () => existsSync(servers.streamhub.script);

export async function launch(server: Server, extraEnv: Record<string, string> = {}) {
  const port = await freePort();
  return startServer(
    server.name,
    server.script,
    server.args(port),
    { ...server.env(port), ...extraEnv },
    port,
  );
}

/** Starts the server, runs `fn`, and always stops the server afterwards. */
export function withServer<T>(
  server: Server,
  extraEnv: Record<string, string>,
  fn: (proc: ServerProcess) => Promise<T>,
): Promise<T> {
  return withServers(server, 1, extraEnv, ([proc]) => {
    if (!proc) throw new Error(`${server.name} did not start`);
    return fn(proc);
  });
}

/** Starts `count` processes of one server (e.g. behind one Redis), runs `fn`, stops them all. */
export async function withServers<T>(
  server: Server,
  count: number,
  extraEnv: Record<string, string>,
  fn: (procs: ServerProcess[]) => Promise<T>,
): Promise<T> {
  const started = await Promise.allSettled(
    Array.from({ length: count }, () => launch(server, extraEnv)),
  );
  const procs = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  try {
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    return await fn(procs);
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}
