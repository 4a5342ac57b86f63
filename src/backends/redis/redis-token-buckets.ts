import type { RedisConnection } from './connection.js';
import { luaScript } from './lua-script.js';

/**
 * Takes a token from a client's bucket: 0 when there was one, else the milliseconds until
 * there is. The bucket is `{tokens, time}` and holds `capacity` tokens, refilled at `capacity`
 * per `windowMs` by Redis's clock, so every process sees one bucket per client. It expires a
 * window after its last take, when it would be full again: forgetting it changes nothing.
 */
const TAKE_SCRIPT = luaScript<number>()({
  command: 'streamhubTakeToken',
  keys: ['bucketKey'],
  args: { capacity: 'number', windowMs: 'number' },
  body: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local bucket = redis.call('HMGET', bucket_key, 'tokens', 'time')
local tokens = capacity
if bucket[1] then
  tokens = math.min(capacity, tonumber(bucket[1]) + (now - tonumber(bucket[2])) * capacity / window_ms)
end
if tokens < 1 then return math.ceil((1 - tokens) * window_ms / capacity) end
redis.call('HSET', bucket_key, 'tokens', string.format('%.6f', tokens - 1),
  'time', string.format('%.3f', now))
redis.call('PEXPIRE', bucket_key, window_ms)
return 0
`,
});

/**
 * The per-client token buckets of every process on one Redis (see `TokenBuckets` for the
 * process-local ones they replace): one script, one round trip per take.
 */
export class RedisTokenBuckets {
  constructor(
    readonly connection: RedisConnection,
    /** Namespace of the buckets' keys, e.g. `sh:rate:publish:`. */
    readonly keyPrefix: string,
    readonly capacity: number,
    readonly windowMs: number,
  ) {
    TAKE_SCRIPT.define(connection.client);
  }

  take(key: string): Promise<number> {
    return this.connection.command((client) =>
      TAKE_SCRIPT.run(client, {
        bucketKey: this.keyPrefix + key,
        capacity: this.capacity,
        windowMs: this.windowMs,
      }),
    );
  }
}
