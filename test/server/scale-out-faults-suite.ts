/**
 * The scale-out fault test (issues 4 and 14), on whatever Redis the caller starts: three
 * streamhub processes, 200 subscribers (raw SSE, per-topic WebSocket, multiplexed WebSocket)
 * that reconnect at random moments to a random process with their last event id, and one
 * publisher sending numbered events round-robin over HTTP, retrying a failed publish with the
 * same Idempotency-Key until it succeeds. Meanwhile the caller's faults strike.
 *
 * The publisher runs LANES requests side by side (one at a time would deliver every event in a
 * batch of its own, far too slow for 200 subscribers on two cores), so the order of the events
 * is the order of the log. Scoring: each subscriber's events, cut at each `reset`, form runs;
 * every run must be an unbroken prefix of one epoch of the log (ids 1, 2, 3, ... of that epoch,
 * each id naming the same event for everyone), and the last run must be the whole log as it is
 * at the end, each lane's events in the lane's order. A `reset` is allowed only once the faults
 * have said they may lose events; an event missing from the log at the end must have been
 * acknowledged in an earlier epoch, which those resets discarded.
 *
 * `SCALE_OUT_SEED=<n>` seeds the random choices (which process, when) as in an earlier run; the
 * summary line prints the seed.
 */
import assert from 'node:assert/strict';
import { setMaxListeners } from 'node:events';
import http from 'node:http';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import type { RedisCluster, RedisServers } from '../helpers/cluster.js';
import { allHistoryIds, eventually, request, uniqueTopic } from '../helpers/http.js';
import { waitFor } from '../helpers/server.js';
import { wsUrl } from '../helpers/ws-client.js';

const SUBSCRIBERS = 200;
/** A subscriber drops its connection on purpose after this long, give or take. */
const RECONNECT_AFTER_MS = { min: 1000, max: 8000 };
const PUBLISH_TIMEOUT_MS = 5000;
/** Publishers side by side, each sending its share of the numbers in order. */
const LANES = 32;
/** What a subscriber records for the end event, which has no number. */
const END = 0;

const SEED = Number(process.env.SCALE_OUT_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** mulberry32: a small seeded generator, so a failing run can be replayed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
const random = seededRandom(SEED);
const between = (min: number, max: number) => min + random() * (max - min);

/** An id's epoch and sequence number, without the validation of `parseId` (ours are valid). */
function splitId(id: string): { epoch: string; seq: number } {
  const dash = id.lastIndexOf('-');
  return { epoch: id.slice(0, dash), seq: Number(id.slice(dash + 1)) };
}

/** The numbers of `epoch` in `known` by seq, an empty array added if there are none yet. */
function epochNumbers(known: Map<string, number[]>, epoch: string): number[] {
  const numbers = known.get(epoch) ?? [];
  known.set(epoch, numbers);
  return numbers;
}

/** What a connection reports to its subscriber. */
interface Sink {
  /** `data` is the published JSON: `{n}` for the numbered events, `{end: true}` at the end. */
  event(id: string, data: { n?: number; end?: boolean }): void;
  reset(): void;
  /** The connection is gone (refused, cut, ended by the server or closed by us). */
  closed(): void;
}

/** Opens a connection to `baseUrl` after `lastId` (from the start without one); returns its closer. */
type Connect = (
  baseUrl: string,
  topic: string,
  lastId: string | undefined,
  sink: Sink,
) => () => void;

/** A lean SSE reader over node:http: 200 of these share the test process with the publisher. */
const connectSse: Connect = (baseUrl, topic, lastId, sink) => {
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (lastId !== undefined) headers['last-event-id'] = lastId;
  const query = lastId === undefined ? '?from=start' : '';
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    sink.closed();
  };
  const req = http.get(`${baseUrl}/v1/topics/${topic}/events${query}`, { headers, agent: false });
  req.on('response', (res) => {
    if (res.statusCode !== 200) {
      req.destroy();
      return;
    }
    res.setEncoding('utf8');
    let pending = '';
    let id = '';
    let type = 'message';
    let data: string | undefined;
    res.on('data', (chunk: string) => {
      pending += chunk;
      let start = 0;
      for (let end = pending.indexOf('\n'); end >= 0; end = pending.indexOf('\n', start)) {
        const line = pending.slice(start, end);
        start = end + 1;
        if (line === '') {
          if (data !== undefined) {
            if (type === 'reset') sink.reset();
            else sink.event(id, JSON.parse(data));
          }
          type = 'message';
          data = undefined;
        } else if (line.startsWith('id: ')) id = line.slice(4);
        else if (line.startsWith('event: ')) type = line.slice(7);
        else if (line.startsWith('data: ')) data = line.slice(6);
      }
      pending = pending.slice(start);
    });
    res.on('close', close);
  });
  req.on('error', close);
  req.on('close', close);
  return () => req.destroy();
};

type Frame = { type: string; id?: string; data?: { n?: number; end?: boolean } };

/** A `ws` connection, bound to the topic (`/v1/topics/{t}/ws`) or multiplexed (`/v1/ws`). */
function wsConnect(multiplexed: boolean): Connect {
  return (baseUrl, topic, lastId, sink) => {
    const cursor: Record<string, string> =
      lastId === undefined ? { from: 'start' } : { last_event_id: lastId };
    const path = multiplexed
      ? '/v1/ws'
      : `/v1/topics/${topic}/ws?${new URLSearchParams(cursor).toString()}`;
    // Uncompressed: 20,000 events inflated on the thread pool for each of about 130 sockets
    // slowed this one test process past its hang guard. Compression has tests of its own.
    const ws = new WebSocket(wsUrl(baseUrl, path), { perMessageDeflate: false });
    ws.on('open', () => {
      if (multiplexed) ws.send(JSON.stringify({ type: 'subscribe', topic, ...cursor }));
    });
    ws.on('message', (raw) => {
      const frame = JSON.parse(raw.toString()) as Frame;
      if (frame.type === 'event') sink.event(frame.id as string, frame.data ?? {});
      else if (frame.type === 'reset') sink.reset();
      else if (frame.type === 'error') ws.terminate();
    });
    ws.on('error', () => {});
    ws.on('close', () => sink.closed());
    return () => ws.terminate();
  };
}

const KINDS: readonly (readonly [string, Connect])[] = [
  ['sse', connectSse],
  ['ws', wsConnect(false)],
  ['ws-mux', wsConnect(true)],
];

/** Counts of what went wrong for one subscriber's last run, against the log's order. */
interface Score {
  lost: number;
  duplicated: number;
  reordered: number;
}

/** Events received from one epoch without a reset or a break: `#received[start..]`. */
interface Run {
  readonly start: number;
  readonly epoch: string;
  readonly firstSeq: number;
}

/** Whether a `reset` is justified yet: set by the faults once they may have lost events. */
interface ResetPolicy {
  allowed: boolean;
}

/** The log at the end: its epoch and its numbers in order (END last). */
interface FinalLog {
  readonly epoch: string;
  readonly numbers: readonly number[];
  /** Where each number stands in it (-1: not there). */
  readonly positionOf: Int32Array;
}

/**
 * One subscriber: it keeps a cursor (the last id it received), reconnects to a random process
 * when its connection ends and, on purpose, at random moments, and records the numbers it
 * receives in runs, to be scored against the log at the end.
 */
class Subscriber {
  /** The numbers received, in arrival order (room for every event three times). */
  readonly #received: Uint16Array;
  #count = 0;
  #overflow = 0;
  readonly runs: Run[] = [];
  /** Set by a reset: the next event starts a run. */
  #runEnded = true;
  lastId: string | undefined;
  resets = 0;
  /** Resets before the faults could justify one. */
  earlyResets = 0;
  /** Ids that do not follow the previous one (same epoch, next seq) nor start an epoch. */
  breaks = 0;
  voluntary = 0;
  forced = 0;
  finished = false;
  #generation = 0;
  #failures = 0;
  #close: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #wandering = true;

  constructor(
    readonly kind: string,
    readonly connect: Connect,
    readonly topic: string,
    readonly urls: readonly string[],
    events: number,
    readonly resetPolicy: ResetPolicy,
  ) {
    this.#received = new Uint16Array(events * 3);
  }

  start(): void {
    this.#open();
  }

  /** No more reconnections on purpose (connections that end are still replaced). */
  settle(): void {
    this.#wandering = false;
  }

  stop(): void {
    this.#stopped = true;
    this.#generation++;
    clearTimeout(this.#timer);
    this.#close?.();
  }

  /** Set by `scoreAgainst`. */
  score: Score = { lost: 0, duplicated: 0, reordered: 0 };
  /** Events whose id names another event for someone else; set by `checkIds`. */
  wrongIds = 0;

  /** Everything that went wrong, in one number. */
  get troubles(): number {
    const { lost, duplicated, reordered } = this.score;
    const unfinished = this.finished ? 0 : 1;
    return (
      lost + duplicated + reordered + this.earlyResets + this.breaks + this.wrongIds + unfinished
    );
  }

  describe(): string {
    return (
      `${this.kind}: ${this.#count} received in ${this.runs.length} runs, ` +
      `${JSON.stringify(this.score)}, ${this.resets} resets (${this.earlyResets} early), ` +
      `${this.breaks} breaks, ${this.wrongIds} wrong ids, finished ${this.finished}, ` +
      `last id ${this.lastId}`
    );
  }

  /** The numbers of run `index`. */
  #numbers(index: number): Uint16Array {
    const run = this.runs[index] as Run;
    const end = this.runs[index + 1]?.start ?? this.#count;
    return this.#received.subarray(run.start, end);
  }

  /**
   * Counts ids that name another number than `known` (by epoch, by seq) says, recording the
   * ones nobody named yet: every run must be a stretch of one epoch of one log.
   */
  checkIds(known: Map<string, number[]>): void {
    this.runs.forEach((run, index) => {
      const numbers = epochNumbers(known, run.epoch);
      for (const [i, n] of this.#numbers(index).entries()) {
        const named = numbers[run.firstSeq + i];
        if (named === undefined) numbers[run.firstSeq + i] = n;
        else if (named !== n) this.wrongIds++;
      }
    });
  }

  /** Scores the last run (which must be the whole log) against the log at the end. */
  scoreAgainst(log: FinalLog): void {
    const seen = new Uint8Array(log.numbers.length);
    const score: Score = { lost: log.numbers.length, duplicated: this.#overflow, reordered: 0 };
    const last = this.runs.length - 1;
    const numbers = last >= 0 && this.runs[last]?.epoch === log.epoch ? this.#numbers(last) : [];
    let furthest = -1;
    for (const n of numbers) {
      const position = log.positionOf[n] as number;
      if (position < 0 || seen[position] !== 0) {
        score.duplicated++;
        continue;
      }
      seen[position] = 1;
      score.lost--;
      if (position < furthest) score.reordered++;
      else furthest = position;
    }
    this.score = score;
  }

  #open(): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    const generation = ++this.#generation;
    const current = () => generation === this.#generation;
    const url = this.urls[Math.floor(random() * this.urls.length)] as string;
    this.#close = this.connect(url, this.topic, this.lastId, {
      event: (id, data) => {
        if (current()) this.#onEvent(id, data);
      },
      reset: () => {
        if (current()) this.#onReset();
      },
      closed: () => {
        if (!current()) return;
        clearTimeout(this.#timer);
        this.forced++;
        this.#failures++;
        const delay = between(20, Math.min(1000, 50 * 2 ** this.#failures));
        this.#timer = setTimeout(() => this.#open(), delay);
      },
    });
    if (this.#wandering) {
      this.#timer = setTimeout(
        () => {
          if (!this.#wandering || !current()) return;
          this.voluntary++;
          this.#generation++;
          this.#close?.();
          this.#open();
        },
        between(RECONNECT_AFTER_MS.min, RECONNECT_AFTER_MS.max),
      );
    }
  }

  #onReset(): void {
    this.resets++;
    if (!this.resetPolicy.allowed) this.earlyResets++;
    this.#runEnded = true;
  }

  #onEvent(id: string, data: { n?: number; end?: boolean }): void {
    this.#failures = 0;
    const { epoch, seq } = splitId(id);
    const previous = this.lastId === undefined ? undefined : splitId(this.lastId);
    const follows = previous?.epoch === epoch && previous.seq + 1 === seq;
    // Nothing is trimmed, so a log is read from seq 1: at the start and after a reset.
    if (this.#runEnded ? seq !== 1 : !follows) this.breaks++;
    if (this.#runEnded || !follows) this.runs.push({ start: this.#count, epoch, firstSeq: seq });
    this.#runEnded = false;
    this.lastId = id;
    if (data.end === true) this.finished = true;
    // Past the room for every event three times, the excess can only be duplicates.
    if (this.#count < this.#received.length) this.#received[this.#count++] = data.n ?? END;
    else this.#overflow++;
  }
}

/** Statuses a publish may meet while a process or Redis is down; anything else is a bug. */
const RETRYABLE = new Set([502, 503, 504]);

/**
 * Keep-alive sockets for the publisher. `fetch` (undici) took a third of this process's CPU,
 * which, shared with 200 subscribers, held publishing back to about 80 events/s.
 */
const publishAgent = new http.Agent({ keepAlive: true, maxSockets: LANES });

/** POSTs `body`; a socket silent for PUBLISH_TIMEOUT_MS fails the attempt. */
function post(url: string, headers: Record<string, string>, body: string, signal: AbortSignal) {
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', agent: publishAgent, headers, signal, timeout: PUBLISH_TIMEOUT_MS },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('publish timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/** The publisher: round-robin over the processes, retrying with the same Idempotency-Key. */
class Publisher {
  retries = 0;
  /** Retries answered 200: the event had been stored by an attempt whose answer was lost. */
  replays = 0;
  readonly unexpected: string[] = [];

  constructor(
    readonly urls: readonly string[],
    readonly topic: string,
    readonly signal: AbortSignal,
  ) {}

  /**
   * Publishes `{data, event}` with `key` on the processes in turn, starting with the `first`-th,
   * until one stores it; resolves with its id.
   */
  async publish(first: number, key: string, data: unknown, event = 'message'): Promise<string> {
    const { urls, topic, signal } = this;
    const body = JSON.stringify({ data, event });
    for (let attempt = 0; ; attempt++) {
      signal.throwIfAborted();
      const url = urls[(first + attempt) % urls.length] as string;
      try {
        const headers = { 'content-type': 'application/json', 'idempotency-key': key };
        const { status, text } = await post(
          `${url}/v1/topics/${topic}/events`,
          headers,
          body,
          signal,
        );
        if (status === 201 || status === 200) {
          if (attempt > 0 && status === 200) this.replays++;
          return (JSON.parse(text) as { id: string }).id;
        }
        if (!RETRYABLE.has(status)) this.unexpected.push(`${status} ${text}`);
      } catch {
        // Refused or cut while a process restarts: try the next one.
      }
      signal.throwIfAborted();
      this.retries++;
      // The first retries go at once to the next process; a longer outage (Redis) is waited out.
      if (attempt >= urls.length) await sleep(50);
    }
  }
}

/**
 * The log at the end (`logIds`, in log order, the end event last) read against what was
 * published, and what is wrong with it: it must hold every event published in its epoch once,
 * nothing else, each lane's events in order; an event published in an earlier epoch (which a
 * failover discarded) is counted as `discarded`.
 */
function readLog(logIds: readonly string[], publishedIds: readonly string[], lanes: number) {
  const events = publishedIds.length - 1;
  const epoch = splitId(logIds.at(-1) ?? '-0').epoch;
  const numberOf = new Map<string, number>();
  for (let n = 0; n <= events; n++) numberOf.set(publishedIds[n] as string, n);
  const positionOf = new Int32Array(events + 1).fill(-1);
  const numbers: number[] = [];
  const problems: string[] = [];
  for (const [position, id] of logIds.entries()) {
    const n = numberOf.get(id);
    numbers.push(n ?? -1);
    if (n === undefined) problems.push(`${id} at ${position} was never published`);
    else if (positionOf[n] !== -1) problems.push(`event ${n} is in the log twice`);
    else positionOf[n] = position;
  }
  let discarded = 0;
  for (let n = 1; n <= events; n++) {
    if (positionOf[n] !== -1) {
      const previous = positionOf[n - lanes] ?? -1;
      if (n > lanes && previous !== -1 && (positionOf[n] as number) < previous) {
        problems.push(`events ${n - lanes} and ${n}, published one after the other, are reversed`);
      }
    } else if (splitId(publishedIds[n] as string).epoch !== epoch) discarded++;
    else problems.push(`event ${n} is not in the log`);
  }
  const log: FinalLog = { epoch, numbers, positionOf };
  return { log, problems, discarded };
}

/** The number of each published id, by epoch and seq, as `Subscriber.checkIds` takes them. */
function publishedNumbers(publishedIds: readonly string[]): Map<string, number[]> {
  const known = new Map<string, number[]>();
  for (const [n, id] of publishedIds.entries()) {
    const { epoch, seq } = splitId(id);
    epochNumbers(known, epoch)[seq] = n;
  }
  return known;
}

/** What the faults get to work with. */
export interface FaultContext<R extends RedisServers> {
  readonly servers: RedisCluster<R>;
  readonly topic: string;
  readonly signal: AbortSignal;
  /** The seeded generator of the run's random choices. */
  readonly random: () => number;
  /** Resolves once `count` events have been published. */
  published(count: number): Promise<void>;
  /** From now on the faults may have lost events: subscribers may be told `reset`. */
  allowResets(): void;
}

export interface FaultTestOptions<R extends RedisServers> {
  readonly title: string;
  /** Starts the processes and their Redis for the file (e.g. `useRedisCluster`). */
  readonly start: () => () => RedisCluster<R>;
  readonly events: number;
  /** Strikes while the events are published; resolves once everything is back up. */
  readonly faults: (context: FaultContext<R>) => Promise<void>;
  /** Whether the faults must have discarded events (a failover that lost writes). */
  readonly discards: boolean;
  /**
   * Whether the faults must have failed publishes and cut subscriptions (a process or Redis
   * down). A cluster client waits out a failover instead, and may fail nothing.
   */
  readonly interrupts: boolean;
}

/** Resolves waiters as a count reaches their numbers. */
function progress() {
  let count = 0;
  const waiters: { count: number; resolve: () => void }[] = [];
  return {
    increment() {
      count++;
      for (const waiter of waiters.filter((w) => w.count <= count)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    },
    reached(target: number): Promise<void> {
      if (count >= target) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count: target, resolve }));
    },
  };
}

/** Registers the fault test: its clients stop before the processes and Redis do. */
export function faultTest<R extends RedisServers>(options: FaultTestOptions<R>): void {
  const { events } = options;
  const subscribers: Subscriber[] = [];
  const stopping = new AbortController();
  // Every publish in flight (one per lane, and a lane's pause between retries) listens to it.
  setMaxListeners(LANES * 2, stopping.signal);
  after(() => {
    stopping.abort();
    for (const subscriber of subscribers) subscriber.stop();
    publishAgent.destroy();
  });
  const setup = options.start();

  // The run is bounded by its work (publishes through a restarting Redis): the timeout only
  // catches a hang, so it leaves room for the slowest machine we run on.
  test(options.title, { timeout: 600_000 }, async () => {
    const servers = setup();
    const { urls } = servers.cluster;
    const topic = uniqueTopic('scale.faults');
    const began = Date.now();
    const publishedIds: string[] = new Array(events + 1);
    const resetPolicy: ResetPolicy = { allowed: false };

    for (let i = 0; i < SUBSCRIBERS; i++) {
      const [kind, connect] = KINDS[i % KINDS.length] as readonly [string, Connect];
      const subscriber = new Subscriber(kind, connect, topic, urls, events, resetPolicy);
      subscribers.push(subscriber);
      subscriber.start();
    }
    const subscribed = async () => {
      const counts = await Promise.all(
        urls.map(async (url) => {
          const info = await request(`${url}/v1/topics/${topic}`);
          return (info.json as { subscribers: number }).subscribers;
        }),
      );
      return counts.reduce((sum, count) => sum + count, 0) >= SUBSCRIBERS;
    };
    await eventually(subscribed, `${SUBSCRIBERS} subscriptions`, 30_000, 100);

    const publisher = new Publisher(urls, topic, stopping.signal);
    const published = progress();
    const faults = options.faults({
      servers,
      topic,
      signal: stopping.signal,
      random,
      published: (count) => published.reached(count),
      allowResets: () => {
        resetPolicy.allowed = true;
      },
    });
    // Lane k publishes k+1, k+1+LANES, ... one after the other; the lanes run side by side, so
    // events reach the processes in bursts that they deliver in batches.
    const lane = async (k: number) => {
      for (let n = k + 1; n <= events; n += LANES) {
        publishedIds[n] = await publisher.publish(n, `n-${n}`, { n });
        published.increment();
      }
    };
    const publishStarted = Date.now();
    await Promise.all(Array.from({ length: LANES }, (_, k) => lane(k)));
    await faults;
    const publishSeconds = (Date.now() - publishStarted) / 1000;
    for (const subscriber of subscribers) subscriber.settle();
    publishedIds[END] = await publisher.publish(0, 'end', { end: true }, 'end');

    const unfinished = () => subscribers.filter((subscriber) => !subscriber.finished);
    await waitFor(() => unfinished().length === 0, 'the end at every subscriber', 30_000).catch(
      () => {},
    );
    for (const subscriber of subscribers) subscriber.stop();

    const logIds = await allHistoryIds(urls[0] as string, topic);
    const { log, problems, discarded } = readLog(logIds, publishedIds, LANES);
    // What the publisher was told is known first; subscribers fill in the rest of each epoch.
    const known = publishedNumbers(publishedIds);
    for (const subscriber of subscribers) {
      subscriber.checkIds(known);
      subscriber.scoreAgainst(log);
    }
    const sum = (of: (subscriber: Subscriber) => number) =>
      subscribers.reduce((total, subscriber) => total + of(subscriber), 0);
    const totals = {
      lost: sum((s) => s.score.lost),
      duplicated: sum((s) => s.score.duplicated),
      reordered: sum((s) => s.score.reordered),
      breaks: sum((s) => s.breaks),
      earlyResets: sum((s) => s.earlyResets),
      wrongIds: sum((s) => s.wrongIds),
      unfinished: unfinished().length,
    };
    const seconds = (Date.now() - began) / 1000;
    console.log(
      `scale-out faults (seed ${SEED}): ${events} events × ${SUBSCRIBERS} subscribers, ` +
        `${sum((s) => s.voluntary)} random + ${sum((s) => s.forced)} forced reconnects, ` +
        `${publisher.retries} publish retries (${publisher.replays} idempotent replays), ` +
        `${discarded} events discarded by the faults, ${sum((s) => s.resets)} resets; ` +
        `lost ${totals.lost}, duplicated ${totals.duplicated}, reordered ${totals.reordered}, ` +
        `breaks ${totals.breaks}, early resets ${totals.earlyResets}, ` +
        `wrong ids ${totals.wrongIds}, unfinished ${totals.unfinished}; ` +
        `published in ${publishSeconds.toFixed(1)} s (${Math.round(events / publishSeconds)}/s), ` +
        `${seconds.toFixed(1)} s in all`,
    );

    const troubled = subscribers.filter((s) => s.troubles > 0).slice(0, 5);
    assert.equal(logIds.at(-1), publishedIds[END], 'the end is the last event of the log');
    assert.deepEqual(problems.slice(0, 10), [], 'the log holds what was published');
    assert.equal(discarded > 0, options.discards, `${discarded} events discarded by the faults`);
    assert.deepEqual(
      totals,
      {
        lost: 0,
        duplicated: 0,
        reordered: 0,
        breaks: 0,
        earlyResets: 0,
        wrongIds: 0,
        unfinished: 0,
      },
      `subscribers with trouble: ${troubled.map((s) => s.describe()).join('; ')}`,
    );
    assert.deepEqual(publisher.unexpected, [], 'publish answers other than 2xx or 503');
    if (options.interrupts) {
      assert.ok(publisher.retries > 0, 'the faults made some publishes fail and be retried');
      assert.ok(sum((s) => s.forced) > 0, 'the faults cut some subscriptions');
    }
  });
}
