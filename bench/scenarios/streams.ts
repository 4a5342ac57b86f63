import { Agent, type ClientRequest, request } from 'node:http';
import { HOST, type ServerProcess, sampleProc, sleep } from '../lib/proc.js';
import type { BenchRedis } from '../lib/redis.js';
import { SseParser } from '../lib/sse.js';
import { LatencyHistogram, median } from '../lib/stats.js';
import type { Step } from '../lib/step.js';
import { type Server, servers, withServers } from '../targets.js';
import { withRedis } from './scale-out.js';

/**
 * Resumable streams from a producer, through streamhub (`/v1/streams`, Redis backend) and
 * through Vercel's `resumable-stream` on the same Redis (bench/reference/resumable-stream.ts):
 * for each of `loads`, that many streams of `chunks` SSE chunks at `rate` chunks/s, started over `staggerMs`, each
 * with one consumer from its start, and every `resumeEvery`-th also with a consumer that joins
 * half-way (a refreshed page) and reads it from its start.
 *
 * The two differ in where the producer runs, as each is meant to be used: streamhub's producer
 * is the application, streaming its chunks up (`POST /v1/streams/{id}`) from this load
 * generator; resumable-stream's producer is the generation inside the server's own process, and
 * its first consumer is the request that started it.
 */
export interface StreamsOptions {
  /** How many concurrent streams, per load: the first, then lighter ones. */
  loads: number[];
  chunks: number;
  rate: number;
  staggerMs: number;
  resumeEvery: number;
  rounds: number;
  /**
   * Consumers are waited for while any of them still moves (a chunk or an end); once none has
   * for this long, those still open are hung: stuck, not merely behind a busy server.
   */
  stallMs: number;
  /** A consumer that ended this long after its stream's last chunk was due counts as late. */
  lateMs: number;
  death: { streams: number; killAfterChunks: number; watchMs: number };
}

export type StreamsTargetName = 'streamhub' | 'streamhub-memory' | 'resumable-stream';

interface StreamsTarget {
  name: StreamsTargetName;
  label: string;
  server: Server;
  env: Record<string, string>;
  /** Starts stream `id` and its first consumer. */
  start(port: number, id: string, o: StreamsOptions, onChunk: OnChunk): Consumer;
  /** A consumer that joins later and reads the stream from its start. */
  resume(port: number, id: string, onChunk?: OnChunk): Consumer;
}

type OnChunk = (n: number, sentAt: number) => void;

const now = () => performance.timeOrigin + performance.now();
const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });

/** How one consumer's response went. */
interface Consumer {
  readonly chunks: number[];
  /** Request sent → first chunk, ms. */
  firstChunkMs: number;
  /** The stream's ending as a consumer learns it: `end` (response ended), an ending event's
   *  type (`producer_lost`…), `http <status>`, or the network error. */
  ending: string | undefined;
  endedAt: number;
  readonly ended: Promise<void>;
  close(): void;
}

/** Streamhub's endings that are not `complete`: one last event typed by the status. */
const ENDINGS = new Set(['cancelled', 'producer_lost', 'too_long']);

interface ConsumeOptions {
  /** Sends the request once this resolves. */
  after?: Promise<void>;
  /** How many times a 404 (a stream not created yet) is tried again. */
  retries404?: number;
}

/** `GET` or `POST` an SSE stream of `{"n","t"}` chunks. */
function consume(
  port: number,
  method: 'GET' | 'POST',
  path: string,
  onChunk: OnChunk | undefined,
  { after = Promise.resolve(), retries404 = 0 }: ConsumeOptions = {},
): Consumer {
  let finish: () => void = () => {};
  let req: ClientRequest | undefined;
  let sentAt = Number.NaN;
  const consumer: Consumer = {
    chunks: [],
    firstChunkMs: Number.NaN,
    ending: undefined,
    endedAt: Number.NaN,
    ended: new Promise<void>((resolve) => {
      finish = resolve;
    }),
    close: () => req?.destroy(),
  };
  const end = (ending: string) => {
    if (consumer.ending !== undefined) return;
    consumer.ending = ending;
    consumer.endedAt = performance.now();
    finish();
  };
  const attempt = (left: number) => {
    sentAt = performance.now();
    req = request({
      host: HOST,
      port,
      method,
      path,
      agent,
      headers: { accept: 'text/event-stream' },
    });
    req.on('response', (res) => {
      if (res.statusCode === 404 && left > 0) {
        res.resume();
        setTimeout(() => attempt(left - 1), 20);
        return;
      }
      if (res.statusCode !== 200) {
        res.resume();
        return end(`http ${res.statusCode}`);
      }
      res.setEncoding('utf8');
      const parser = new SseParser((e) => {
        if (ENDINGS.has(e.event)) return end(e.event);
        const chunk = JSON.parse(e.data) as { n: number; t: number };
        if (consumer.chunks.length === 0) consumer.firstChunkMs = performance.now() - sentAt;
        consumer.chunks.push(chunk.n);
        onChunk?.(chunk.n, chunk.t);
      });
      res.on('data', (text: string) => parser.push(text));
      res.on('end', () => end('end'));
      res.on('error', (error) => end(error.message));
    });
    req.on('error', (error) => end(error.message));
    req.end();
  };
  void after.then(() => attempt(retries404));
  return consumer;
}

/** Streams `chunks` SSE chunks up to streamhub, one every 1/rate s; calls `started` after one. */
function produceUp(port: number, id: string, o: StreamsOptions, started: () => void): void {
  const req = request({
    host: HOST,
    port,
    method: 'POST',
    path: `/v1/streams/${encodeURIComponent(id)}`,
    agent,
    headers: { 'content-type': 'text/event-stream' },
  });
  req.on('error', () => {});
  req.on('response', (res) => res.resume());
  let n = 0;
  const timer = setInterval(() => {
    if (req.destroyed) return clearInterval(timer);
    req.write(`data: ${JSON.stringify({ n, t: now() })}\n\n`);
    if (++n === 1) started();
    if (n === o.chunks) {
      clearInterval(timer);
      req.end();
    }
  }, 1000 / o.rate);
}

const streamhubStart: StreamsTarget['start'] = (port, id, o, onChunk) => {
  const after = new Promise<void>((started) => produceUp(port, id, o, started));
  // A stream the server has not created yet (it lags under load) answers 404: try again.
  return consume(port, 'GET', streamPath(id), onChunk, { after, retries404: 500 });
};
const streamhubResume: StreamsTarget['resume'] = (port, id, onChunk) =>
  consume(port, 'GET', streamPath(id), onChunk);

export const streamsTargets: Record<StreamsTargetName, StreamsTarget> = {
  streamhub: {
    name: 'streamhub',
    label: 'streamhub ×1, Redis backend',
    server: servers.streamhub,
    env: { BACKEND: 'redis' },
    start: streamhubStart,
    resume: streamhubResume,
  },
  // The same upload, hub and delivery with nothing stored in Redis: what storage costs.
  'streamhub-memory': {
    name: 'streamhub-memory',
    label: 'streamhub ×1, memory backend (no durable storage)',
    server: servers.streamhub,
    env: { BACKEND: 'memory' },
    start: streamhubStart,
    resume: streamhubResume,
  },
  'resumable-stream': {
    name: 'resumable-stream',
    label: 'resumable-stream 2.2 ×1 (node:http), same Redis',
    server: servers.resumableStream,
    env: {},
    start: (port, id, o, onChunk) =>
      consume(
        port,
        'POST',
        `/streams/${encodeURIComponent(id)}?chunks=${o.chunks}&rate=${o.rate}`,
        onChunk,
      ),
    resume: (port, id, onChunk) =>
      consume(port, 'GET', `/streams/${encodeURIComponent(id)}`, onChunk),
  },
};

const streamPath = (id: string) => `/v1/streams/${encodeURIComponent(id)}`;

/** One run of the main workload. */
export interface StreamsRun {
  target: StreamsTargetName;
  streams: number;
  chunks: number;
  serverCpuMicrosPerChunk: number;
  redisCpuMicrosPerChunk: number;
  serverRssBytesPerStream: number;
  redisBytesPerStream: number;
  latency: LatencyHistogram;
  resumeMs: number[];
  /** Consumers (first and resuming) that got every chunk once, in order. */
  whole: number;
  consumers: number;
  /** Consumers still open once no consumer had moved for `stallMs`. */
  hung: number;
  /** Consumers that ended, but over `lateMs` after their stream's last chunk was due. */
  late: number;
  /** The latest end of a consumer after its stream's last chunk was due, ms. */
  maxLateMs: number;
  /** Consumers that ended without every chunk, and how they ended. */
  incomplete: Map<string, number>;
}

const isWhole = (c: Consumer, chunks: number) =>
  c.chunks.length === chunks && c.chunks.every((n, i) => n === i);

/** Every consumer's end, or `deadlineMs`; the ones still open then are closed and counted. */
async function closeAfter(consumers: readonly Consumer[], deadlineMs: number): Promise<number> {
  const timeout = sleep(deadlineMs).then(() => 'timeout' as const);
  await Promise.race([Promise.all(consumers.map((c) => c.ended)), timeout]);
  return closeOpen(consumers);
}

function closeOpen(consumers: readonly Consumer[]): number {
  const open = consumers.filter((c) => c.ending === undefined);
  for (const c of open) c.close();
  return open.length;
}

/** Chunks received and ends reached, by all consumers: it grows while any of them moves. */
const progressOf = (consumers: readonly Consumer[]) =>
  consumers.reduce((n, c) => n + c.chunks.length + (c.ending === undefined ? 0 : 1), 0);

/**
 * Every consumer's end, waited for as long as some consumer moves: a saturated server delivers
 * late but delivers. Once none has moved for `stallMs` (or after `capMs` in all), the ones still
 * open are stuck; they are closed and counted as hung.
 */
async function settleByProgress(
  consumers: readonly Consumer[],
  stallMs: number,
  capMs: number,
): Promise<number> {
  const all = Promise.all(consumers.map((c) => c.ended));
  const start = performance.now();
  let seen = progressOf(consumers);
  let movedAt = start;
  while (consumers.some((c) => c.ending === undefined)) {
    await Promise.race([all, sleep(250)]);
    const progress = progressOf(consumers);
    if (progress !== seen) {
      seen = progress;
      movedAt = performance.now();
    }
    if (performance.now() - movedAt > stallMs || performance.now() - start > capMs) break;
  }
  return closeOpen(consumers);
}

function cpuOf(procs: readonly ServerProcess[]): number {
  return procs.reduce((sum, p) => sum + sampleProc(p.pid).cpuMicros, 0);
}

function rssOf(procs: readonly ServerProcess[]): number {
  return procs.reduce((sum, p) => sum + sampleProc(p.pid).rssBytes, 0);
}

async function runWorkload(
  target: StreamsTarget,
  o: StreamsOptions,
  streams: number,
  proc: ServerProcess,
  redis: BenchRedis,
  round: number,
): Promise<StreamsRun> {
  const latency = new LatencyHistogram();
  // The first chunks of a streamhub stream may be replayed to a consumer that connected just
  // after them; from the fifth on, every chunk of either target is delivered live.
  const onChunk: OnChunk = (n, sentAt) => {
    if (n >= 5) latency.record(now() - sentAt);
  };
  const streamMs = (o.chunks * 1000) / o.rate;
  const before = { cpu: cpuOf([proc]), redis: await redis.stats(), rss: rssOf([proc]) };
  const firsts: Consumer[] = [];
  const resumers: Promise<Consumer>[] = [];
  /** When each consumer's stream's last chunk is due (performance.now()), by consumer. */
  const due = new Map<Consumer, number>();
  for (let i = 0; i < streams; i++) {
    const id = `bench-${round}-${i}`;
    const dueAt = performance.now() + streamMs;
    const first = target.start(proc.port, id, o, onChunk);
    firsts.push(first);
    due.set(first, dueAt);
    if (i % o.resumeEvery === 0) {
      const resumer = sleep(streamMs / 2).then(() => target.resume(proc.port, id));
      resumers.push(
        resumer.then((c) => {
          due.set(c, dueAt);
          return c;
        }),
      );
    }
    await sleep(o.staggerMs / streams);
  }
  // Every stream is open now, about half-way through the first ones.
  await sleep(Math.min(1000, streamMs / 4));
  const open = { rss: rssOf([proc]), redis: await redis.stats() };
  const resumed = await Promise.all(resumers);
  const consumers = [...firsts, ...resumed];
  // Bounded: every stream ends by itself; the cap only guards against a bench bug.
  const hung = await settleByProgress(consumers, o.stallMs, streamMs + 10 * 60_000);
  const lateMs = consumers.flatMap((c) =>
    c.ending === undefined ? [] : [c.endedAt - (due.get(c) ?? c.endedAt)],
  );
  const after = { cpu: cpuOf([proc]), redis: await redis.stats() };
  const produced = streams * o.chunks;
  const incomplete = new Map<string, number>();
  for (const c of consumers.filter((c) => !isWhole(c, o.chunks))) {
    const key = `${c.ending ?? 'hung'} after ${c.chunks.length} chunks`;
    incomplete.set(key, (incomplete.get(key) ?? 0) + 1);
  }
  return {
    target: target.name,
    streams,
    chunks: produced,
    serverCpuMicrosPerChunk: (after.cpu - before.cpu) / produced,
    redisCpuMicrosPerChunk: (after.redis.cpuMicros - before.redis.cpuMicros) / produced,
    serverRssBytesPerStream: (open.rss - before.rss) / streams,
    redisBytesPerStream: (open.redis.usedMemoryBytes - before.redis.usedMemoryBytes) / streams,
    latency,
    resumeMs: resumed.map((c) => c.firstChunkMs).filter((ms) => !Number.isNaN(ms)),
    whole: consumers.filter((c) => isWhole(c, o.chunks)).length,
    consumers: consumers.length,
    hung,
    late: lateMs.filter((ms) => ms > o.lateMs).length,
    maxLateMs: Math.max(0, ...lateMs),
    incomplete,
  };
}

/** What the consumers of a stream saw when the process producing it was killed. */
export interface DeathRun {
  target: StreamsTargetName;
  /** Consumers on another process, reading when the producer died. */
  watching: number;
  /** How they ended (`producer_lost`, `end`, …) or `still waiting`, with how many and when. */
  outcomes: { ending: string; count: number; medianMs: number }[];
  /** A consumer arriving on another process after the death. */
  latecomer: string;
}

/**
 * Two processes on one Redis; each stream's producer goes through process A (streamhub: the
 * upload; resumable-stream: the generation itself), its consumer reads from process B. A is
 * killed (SIGKILL) after `killAfterChunks` chunks; B's consumers are watched for `watchMs`.
 */
async function runDeath(
  target: StreamsTarget,
  o: StreamsOptions,
  [a, b]: ServerProcess[],
): Promise<DeathRun> {
  if (a === undefined || b === undefined) throw new Error('two processes needed');
  const ids = Array.from({ length: o.death.streams }, (_, i) => `death-${i}`);
  for (const id of ids) target.start(a.port, id, o, () => {});
  await sleep((o.death.killAfterChunks / 2) * (1000 / o.rate));
  const watchers = ids.map((id) => target.resume(b.port, id));
  await sleep((o.death.killAfterChunks / 2) * (1000 / o.rate));
  process.kill(a.pid, 'SIGKILL');
  const killedAt = performance.now();
  await closeAfter(watchers, o.death.watchMs);
  const latecomer = target.resume(b.port, ids[0] as string);
  await closeAfter([latecomer], 5000);
  const groups = new Map<string, number[]>();
  for (const w of watchers) {
    const ending =
      w.ending === undefined || w.endedAt > killedAt + o.death.watchMs ? 'hung' : w.ending;
    groups.set(ending, [...(groups.get(ending) ?? []), w.endedAt - killedAt]);
  }
  return {
    target: target.name,
    watching: watchers.length,
    outcomes: [...groups].map(([ending, times]) => ({
      ending,
      count: times.length,
      medianMs: ending === 'hung' ? Number.NaN : median(times),
    })),
    latecomer: describeLatecomer(latecomer),
  };
}

function describeLatecomer(c: Consumer): string {
  if (c.ending === undefined) return `still waiting after 5 s, ${c.chunks.length} chunks`;
  return `${c.ending} after ${c.chunks.length} chunks`;
}

export interface StreamsReport {
  opts: StreamsOptions;
  runs: StreamsRun[];
  deaths: DeathRun[];
}

const ORDER: StreamsTarget[] = [
  streamsTargets.streamhub,
  streamsTargets['resumable-stream'],
  streamsTargets['streamhub-memory'],
];
/** A producer's death across processes needs shared storage. */
const DEATH_ORDER = ORDER.filter((target) => target.name !== 'streamhub-memory');

/** Rounds interleave the targets; each run gets a fresh Redis and fresh processes. */
export async function runStreamsScenario(o: StreamsOptions, attempt: Step): Promise<StreamsReport> {
  const report: StreamsReport = { opts: o, runs: [], deaths: [] };
  const onRedis = (
    target: StreamsTarget,
    processes: number,
    fn: (procs: ServerProcess[], redis: BenchRedis) => Promise<void>,
  ) =>
    withRedis('one', (redis) =>
      withServers(target.server, processes, { ...target.env, ...redis?.env }, (procs) => {
        if (redis === undefined) throw new Error('no Redis');
        return fn(procs, redis);
      }),
    );
  for (let round = 1; round <= o.rounds; round++) {
    const progress = o.rounds > 1 ? ` [round ${round}/${o.rounds}]` : '';
    for (const streams of o.loads) {
      for (const target of ORDER) {
        await attempt(
          `${target.label} @ ${streams} streams`,
          target.name !== 'resumable-stream',
          progress,
          () =>
            onRedis(target, 1, async ([proc], redis) => {
              if (proc === undefined) throw new Error('no server');
              report.runs.push(await runWorkload(target, o, streams, proc, redis, round));
            }),
        );
      }
    }
  }
  for (const target of DEATH_ORDER) {
    await attempt(`${target.label}: producer killed`, target.name === 'streamhub', '', () =>
      onRedis(target, 2, async (procs) => {
        report.deaths.push(await runDeath(target, o, procs));
      }),
    );
  }
  return report;
}

/** The rows of one target, pooled over rounds. */
export function pooled(runs: readonly StreamsRun[]) {
  const latency = new LatencyHistogram();
  for (const r of runs) latency.merge(r.latency);
  const resume = runs.flatMap((r) => r.resumeMs).sort((x, y) => x - y);
  const incomplete = new Map<string, number>();
  for (const r of runs)
    for (const [k, n] of r.incomplete) incomplete.set(k, (incomplete.get(k) ?? 0) + n);
  return {
    rounds: runs.length,
    serverCpu: median(runs.map((r) => r.serverCpuMicrosPerChunk)),
    redisCpu: median(runs.map((r) => r.redisCpuMicrosPerChunk)),
    totalCpu: median(runs.map((r) => r.serverCpuMicrosPerChunk + r.redisCpuMicrosPerChunk)),
    serverRss: median(runs.map((r) => r.serverRssBytesPerStream)),
    redisBytes: median(runs.map((r) => r.redisBytesPerStream)),
    latency,
    resume,
    whole: runs.reduce((s, r) => s + r.whole, 0),
    consumers: runs.reduce((s, r) => s + r.consumers, 0),
    hung: runs.reduce((s, r) => s + r.hung, 0),
    late: runs.reduce((s, r) => s + r.late, 0),
    maxLateMs: Math.max(0, ...runs.map((r) => r.maxLateMs)),
    incomplete,
  };
}
