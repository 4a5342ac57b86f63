/**
 * Redis instructions per append, counted by callgrind (deterministic, unlike CPU time on a shared
 * machine): a redis-server under valgrind, 500 reply logs each started by one append, then
 * `appends` more appends bound to each log's epoch and a fence, with the last seq the writer
 * knows, as a reply's writer sends them (its fast path, but on a cluster), 500 in flight at once. `cluster` turns on the cluster's history check (on one Redis).
 *
 *   node dist/bench/append-instructions.js [one|cluster] [appends] [dist of another build]
 *
 * Counting starts after the logs exist (`callgrind_control -z`) and stops with a dump (`-d`).
 */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import type { RedisEventLog } from '../src/backends/redis/redis-event-log.js';
import { freePort, HOST, sleep } from './lib/proc.js';

const [mode = 'one', appendsArg = '10000', otherDist] = process.argv.slice(2);
const appends = Number(appendsArg);
const TOPICS = 500;
const token = { event: 'token', data: '{"text":" hello","index":12}' };

async function logClass(): Promise<typeof RedisEventLog> {
  const path = otherDist
    ? pathToFileURL(resolve(otherDist, 'src/backends/redis/redis-event-log.js')).href
    : '../src/backends/redis/redis-event-log.js';
  return ((await import(path)) as { RedisEventLog: typeof RedisEventLog }).RedisEventLog;
}

async function connected(url: string): Promise<Redis> {
  for (;;) {
    const client = new Redis(url, { lazyConnect: true, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      await client.connect();
      return client;
    } catch {
      client.disconnect();
      await sleep(300);
    }
  }
}

const dir = await mkdtemp(join(tmpdir(), 'streamhub-callgrind-'));
const port = await freePort();
const out = join(dir, 'callgrind.out');
const server = spawn(
  'valgrind',
  [
    '--tool=callgrind',
    `--callgrind-out-file=${out}`,
    'redis-server',
    '--port',
    String(port),
  ].concat(['--save', '', '--appendonly', 'no']),
  { stdio: 'ignore', cwd: dir },
);
const url = `redis://${HOST}:${port}`;
const admin = await connected(url);
const Log = await logClass();
const log = new Log({
  url,
  maxEvents: 1000,
  ttlMs: 3_600_000,
  idempotencyTtlMs: 600_000,
  // The history check without a cluster: the flag, with a plain client for every connection.
  cluster: mode === 'cluster',
  createClient: () => new Redis(url, { enableAutoPipelining: true, maxRetriesPerRequest: 1 }),
});
const topics = Array.from({ length: TOPICS }, (_, n) => `reply-${n}`);
const epochs = new Map<string, string>();
await Promise.all(
  topics.map(async (topic) => {
    epochs.set(topic, (await log.append(topic, token)).id.split('-')[0] as string);
  }),
);
const lastSeqs = new Map(topics.map((topic) => [topic, 1]));
const appendAll = () =>
  Promise.all(
    topics.map(async (topic) => {
      const lastSeq = lastSeqs.get(topic) as number;
      await log.append(topic, token, { epoch: epochs.get(topic), fence: 0, lastSeq });
      lastSeqs.set(topic, lastSeq + 1);
    }),
  );
// The first takes the whole script, the second loads the fast path's.
await appendAll();
await appendAll();
await admin.config('RESETSTAT');
execFileSync('callgrind_control', ['-z', String(server.pid)], { stdio: 'ignore' });
let done = 0;
for (; done < appends; done += TOPICS) await appendAll();
execFileSync('callgrind_control', ['-d', String(server.pid)], { stdio: 'ignore' });
const stats = await admin.info('commandstats');
await log.close();
await admin.call('SHUTDOWN', 'NOSAVE').catch(() => undefined);
await new Promise((r) => server.on('exit', r));

const dump = readdirSync(dir).find((name) => name.endsWith('.1'));
const text = dump === undefined ? '' : readFileSync(join(dir, dump), 'utf8');
const instructions = Number(/^(?:summary|totals): (\d+)/m.exec(text)?.[1] ?? Number.NaN);
rmSync(dir, { recursive: true, force: true });
const commands: Record<string, number> = {};
for (const [, name, calls] of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
  if (name !== 'config|resetstat' && name !== 'info')
    commands[name as string] = Number(calls) / done;
}
console.log(
  JSON.stringify({
    mode,
    appends: done,
    instructionsPerAppend: Math.round(instructions / done),
    commands,
  }),
);
