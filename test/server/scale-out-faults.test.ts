/**
 * The scale-out fault test (issue 4) on one persistent Redis (see scale-out-faults-suite.ts):
 * 20,000 events while one streamhub process is killed (SIGKILL) and restarted, and Redis is
 * restarted (SIGTERM, its append-only file keeps the data). Nothing may be lost, so no
 * subscriber may be told `reset`: every one must receive exactly the log's sequence.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { useRedisCluster } from '../helpers/cluster.js';
import { faultTest } from './scale-out-faults-suite.js';

/** Publication progress at which the faults are injected. */
const KILL_PROCESS_AT = 5_000;
const RESTART_REDIS_AT = 12_000;
/** How long the killed process and Redis stay down. */
const DOWNTIME_MS = 1000;

// About 35 s on a quiet 2-core machine, over 180 s when it is several times oversubscribed.
faultTest({
  title: '200 wandering subscribers get exactly the 20000 events while a process and Redis restart',
  start: () =>
    useRedisCluster(
      3,
      { HISTORY_MAX_EVENTS: '50000', HEARTBEAT_MS: '2000', SHUTDOWN_GRACE_MS: '1000' },
      { persist: true },
    ),
  events: 20_000,
  interrupts: true,
  discards: false,
  faults: async ({ servers: { redis, cluster }, published, random, signal }) => {
    const killed = Math.floor(random() * cluster.urls.length);
    await Promise.all([
      (async () => {
        await published(KILL_PROCESS_AT);
        await cluster.kill(killed, 'SIGKILL');
        await sleep(DOWNTIME_MS, undefined, { signal });
        await cluster.restart(killed);
      })(),
      (async () => {
        await published(RESTART_REDIS_AT);
        await redis.halt();
        await sleep(DOWNTIME_MS, undefined, { signal });
        await redis.start();
      })(),
    ]);
  },
});
