/**
 * A master failover on a real Redis Cluster loses acknowledged events (its replica is frozen
 * while they are written, then the master is SIGKILLed and the replica promoted). Subscribers
 * on three "processes" (each a log with its own connections and hub) keep resuming from their
 * last id on a random one meanwhile. None may silently miss, repeat or reorder an event: each
 * ends with an unbroken run of ids up to every reset, and after its last reset with exactly the
 * log as it is at the end.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EventBatch } from '../../../src/core/batch.js';
import { type Subscriber, type Subscription, TopicHub } from '../../../src/core/hub.js';
import { parseId } from '../../../src/core/ids.js';
import type { StoredEvent } from '../../../src/core/types.js';
import { eventually } from '../../helpers/http.js';
import { createLog, input, uniquePrefix, useRedisClusterServers } from './harness.js';

const cluster = useRedisClusterServers();

const TOPIC = 'failover';
const SUBSCRIBERS = 30;
const PROCESSES = 3;

/** An event as `<id> <data>`: an id handed out twice shows as the same id with other data. */
const entry = (event: StoredEvent) => `${event.id} ${event.data}`;

/** What one subscriber saw: events (`entry`), and `reset` where it was told to start over. */
class Client implements Subscriber {
  readonly seen: string[] = [];
  #subscription: Subscription | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(readonly hubs: readonly TopicHub[]) {}

  /** Subscribes from its last id on a random hub, and again after a random while. */
  resume(): void {
    this.#subscription?.close();
    if (this.#stopped) return;
    const last = this.seen.findLast((seen) => seen !== 'reset')?.split(' ')[0];
    const hub = this.hubs[Math.floor(Math.random() * this.hubs.length)] as TopicHub;
    const from =
      last === undefined ? { kind: 'start' as const } : { kind: 'after' as const, id: last };
    this.#subscription = hub.subscribe(TOPIC, from, this);
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.resume(), 50 + Math.random() * 300);
  }

  send(batch: EventBatch): boolean {
    for (const event of batch.events) this.seen.push(entry(event));
    return true;
  }

  reset(): void {
    this.seen.push('reset');
  }

  drained(): Promise<void> {
    return Promise.resolve();
  }

  /** The backend failed (its master is gone): reconnect, as a client would. */
  fail(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.resume(), 50);
  }

  /** Subscribes again after `stop()`. */
  wake(): void {
    this.#stopped = false;
    this.resume();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#subscription?.close();
  }
}

/** Checks what one client saw against the log's final events; returns how many resets it got. */
function checkClient(seen: readonly string[], final: readonly string[]): number {
  const runs: string[][] = [[]];
  for (const item of seen) {
    if (item === 'reset') runs.push([]);
    else runs.at(-1)?.push(item.split(' ')[0] as string);
  }
  for (const run of runs) {
    for (let i = 1; i < run.length; i++) {
      const before = parseId(run[i - 1] as string);
      const after = parseId(run[i] as string);
      assert.ok(
        before?.epoch === after?.epoch && (before?.seq ?? 0) + 1 === after?.seq,
        `${run[i - 1]} followed by ${run[i]}: ${seen.join(' ')}`,
      );
    }
  }
  const afterLastReset = seen.slice(seen.lastIndexOf('reset') + 1);
  assert.deepEqual(afterLastReset, final, 'after the last reset, exactly the log');
  return runs.length - 1;
}

test('subscribers resuming through a master failover that lost events miss nothing silently', {
  timeout: 120_000,
}, async () => {
  const keyPrefix = uniquePrefix();
  const logs = Array.from({ length: PROCESSES }, () =>
    createLog(cluster().url, { keyPrefix, cluster: true, healIntervalMs: 200 }),
  );
  const hubs = logs.map((log) => new TopicHub(log));
  let n = 0;
  let lastId = '';
  /** Publishes the next event through one process after the other, retrying with its key. */
  const publish = async () => {
    n++;
    const log = logs[n % PROCESSES] as (typeof logs)[number];
    await eventually(
      () =>
        log.append(TOPIC, input(n), { idempotencyKey: String(n) }).then(
          (appended) => {
            lastId = appended.id;
            return true;
          },
          () => false,
        ),
      `event ${n} published`,
    );
  };
  const publishSome = async (count: number) => {
    for (let i = 0; i < count; i++) await publish();
  };
  const allAt = (some: readonly Client[], id: string) =>
    eventually(
      async () => some.every((client) => client.seen.at(-1)?.startsWith(`${id} `)),
      `clients at ${id}`,
    );
  await publishSome(1);
  const clients = Array.from({ length: SUBSCRIBERS }, () => new Client(hubs));
  for (const client of clients) client.resume();
  try {
    await publishSome(50);
    // Half the clients see the events about to be lost, then stay away until the new master
    // has appended more events than were lost: resuming exactly would skip those.
    const sleepers = clients.slice(0, SUBSCRIBERS / 2);
    await cluster().failOver(`{${TOPIC}}`, async () => {
      await publishSome(30);
      await allAt(sleepers, lastId);
      for (const sleeper of sleepers) sleeper.stop();
    });
    await publishSome(50);
    for (const sleeper of sleepers) sleeper.wake();
    await allAt(clients, lastId);
  } finally {
    for (const client of clients) client.stop();
  }
  const page = await (logs[0] as (typeof logs)[number]).read(TOPIC, null, 1000);
  const final = page.events.map(entry);
  assert.deepEqual(
    page.events.map((event) => JSON.parse(event.data).n),
    Array.from({ length: 50 }, (_, i) => 82 + i),
    'the log starts over after the failover, with every later event once',
  );
  const resets = clients.map((client) => checkClient(client.seen, final));
  assert.ok(
    resets.every((count) => count >= 1),
    `every client was told to start over: ${resets}`,
  );
});
