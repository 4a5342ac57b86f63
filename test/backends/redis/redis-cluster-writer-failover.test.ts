/**
 * The writer's fast path on a real Redis Cluster: a failover may lose a fence (or an end) that
 * another process wrote after the writer's last append, and the promoted replica then holds the
 * writer's token again. The fast path must see, as the whole script does, that the replica is
 * another replication history, and send the stale writer to the whole script, which starts the
 * log over instead of taking its event.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { topicKeys } from '../../../src/backends/redis/keys.js';
import { StreamhubError } from '../../../src/core/errors.js';
import { parseId } from '../../../src/core/ids.js';
import { eventually } from '../../helpers/http.js';
import { createLog, input, uniquePrefix, useRedisClusterServers } from './harness.js';

const cluster = useRedisClusterServers();

test('a stale writer cannot append to a log whose fence a failover lost: the log starts over', {
  timeout: 120_000,
}, async () => {
  const keyPrefix = uniquePrefix();
  // A TTL far longer than the failover: the writer's next append is not due for the whole
  // script's TTL refresh, so it takes the fast path.
  const log = createLog(cluster().url, { keyPrefix, cluster: true, ttlMs: 3_600_000 });
  const first = parseId((await log.append('t', input(0), { fence: 0 })).id);
  assert.ok(first?.epoch);
  const { epoch } = first;
  await log.append('t', input(1), { epoch, fence: 0 });
  await log.append('t', input(2), { epoch, fence: 0, lastSeq: 2 }); // the fast path, in place
  const stale = { epoch, fence: 0, lastSeq: 3 };

  // Another writer takes the log over, and the failover loses its fence.
  await cluster().failOver(topicKeys(keyPrefix, 't').meta, async () => {
    assert.equal(await log.fence('t', 1), 1);
  });

  let refusal: unknown;
  await eventually(async () => {
    try {
      await log.append('t', input(3), stale);
      refusal = 'appended';
    } catch (error) {
      // Until the promoted replica serves the slot to this client, errors of the failover.
      if (!(error instanceof StreamhubError) || error.code === 'backend_unavailable') return false;
      refusal = error;
    }
    return true;
  }, 'the stale writer to be answered by the promoted replica');
  assert.equal((refusal as StreamhubError).code, 'log_ended', `answered: ${String(refusal)}`);
  assert.notEqual((await log.head('t')).epoch, epoch, 'its epoch is over');
});
