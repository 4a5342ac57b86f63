/**
 * The scale-out tests (see scale-out-suite.ts) on a Redis Cluster of three masters and three
 * replicas: each topic, session and stream lives on the master owning its hash slot, and each
 * process subscribes once per master. "Redis is down" is the whole cluster down.
 */
import { useStreamhubOn } from '../helpers/cluster.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { SCALE_OUT_SETTINGS, scaleOutTests } from './scale-out-suite.js';

scaleOutTests(
  useStreamhubOn(startRedisCluster, 3, { ...SCALE_OUT_SETTINGS, REDIS_CLUSTER: 'true' }),
);
