/**
 * The scale-out fault test (issue 14, see scale-out-faults-suite.ts) on a Redis Cluster of three
 * masters and three replicas, with REDIS_CLUSTER=true: while 5,000 events are published, the
 * master owning the topic's slot is SIGKILLed and its replica promoted. The replica is frozen
 * for a while before, so the master acknowledges events that it never receives: the failover
 * loses them for sure. Subscribers may then be told `reset` (never before), after which each
 * must receive the new epoch's log exactly; before it, an unbroken prefix of the old one.
 */
import { useStreamhubOn } from '../helpers/cluster.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { faultTest } from './scale-out-faults-suite.js';

/** Publication progress at which the replica is frozen, and the master killed. */
const FREEZE_REPLICA_AT = 1_500;
const KILL_MASTER_AT = 2_000;

faultTest({
  title: '200 wandering subscribers resume exactly or reset once the master of their topic dies',
  start: () =>
    useStreamhubOn(startRedisCluster, 3, {
      REDIS_CLUSTER: 'true',
      HISTORY_MAX_EVENTS: '50000',
      HEARTBEAT_MS: '2000',
      SHUTDOWN_GRACE_MS: '1000',
    }),
  events: 5_000,
  interrupts: false,
  discards: true,
  faults: async ({ servers: { redis }, topic, published, allowResets }) => {
    await published(FREEZE_REPLICA_AT);
    await redis.failOver(`{${topic}}`, async () => {
      await published(KILL_MASTER_AT);
      allowResets();
    });
  },
});
