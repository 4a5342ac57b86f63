/** The scale-out tests (see scale-out-suite.ts) on one Redis server. */
import { useRedisCluster } from '../helpers/cluster.js';
import { SCALE_OUT_SETTINGS, scaleOutTests } from './scale-out-suite.js';

scaleOutTests(useRedisCluster(3, SCALE_OUT_SETTINGS));
