import { createServer, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { createResumableStreamContext } from 'resumable-stream/ioredis';
import { listen } from './common.js';

/**
 * The peer of the `streams` scenario: Vercel's `resumable-stream` (its ioredis flavour) in a
 * minimal node:http server of the shape its README documents ("usage with explicit
 * resumption"): `POST /streams/{id}` starts the generation in this process and streams it to the
 * caller, its first consumer; `GET /streams/{id}` resumes it from any process on the same Redis
 * (`resumeExistingStream`), 204 once it is done. The generation is the benchmark's producer:
 * `?chunks=N&rate=R` SSE events `data: {"n","t"}` (`t` the wall clock in ms when it was made, for
 * latency), one every 1/R s.
 */
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const context = createResumableStreamContext({
  waitUntil: null,
  publisher: new Redis(redisUrl),
  subscriber: new Redis(redisUrl),
});

const STREAM_RE = /^\/streams\/([^/?]+)(?:\?(.*))?$/;
const now = () => performance.timeOrigin + performance.now();

function generation(chunks: number, rate: number): ReadableStream<string> {
  let n = 0;
  let timer: NodeJS.Timeout | undefined;
  return new ReadableStream<string>({
    start(controller) {
      timer = setInterval(() => {
        controller.enqueue(`data: ${JSON.stringify({ n, t: now() })}\n\n`);
        if (++n === chunks) {
          clearInterval(timer);
          controller.close();
        }
      }, 1000 / rate);
    },
    cancel() {
      clearInterval(timer);
    },
  });
}

function sendStream(res: ServerResponse, stream: ReadableStream<string> | null | undefined): void {
  if (!stream) {
    res.writeHead(204).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  // A consumer that goes away stops only its own copy: the generation goes on for the others.
  Readable.fromWeb(stream as import('node:stream/web').ReadableStream<string>)
    .on('error', () => res.destroy())
    .pipe(res);
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') {
    res.writeHead(200).end('{"ok":true}');
    return;
  }
  const match = STREAM_RE.exec(req.url ?? '');
  if (match === null) {
    res.writeHead(404).end();
    return;
  }
  const id = decodeURIComponent(match[1] ?? '');
  const query = new URLSearchParams(match[2] ?? '');
  const started =
    req.method === 'POST'
      ? context.createNewResumableStream(id, () =>
          generation(Number(query.get('chunks') ?? 100), Number(query.get('rate') ?? 20)),
        )
      : context.resumeExistingStream(id);
  started.then(
    (stream) => sendStream(res, stream),
    (error: unknown) => {
      res.writeHead(500).end(String(error));
    },
  );
});
listen(server, 8080);
