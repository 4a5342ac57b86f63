/**
 * Lua scripts of the Redis stream store. The state hash holds `status`, `created`, `updated` and,
 * once ended, `reason`;
 * the lease key exists while the producer renews it. Each script is one atomic step, so that
 * one stream has one producer and ends once, whichever processes race.
 */

import { luaScript } from './lua-script.js';

const STREAM_KEYS = ['stateKey', 'leaseKey'] as const;

/** status, created, updated, reason (nil when unknown), lease held (0/1). */
export type StreamSnapshot = [
  status: string | null,
  created: string | null,
  updated: string | null,
  reason: string | null,
  leased: 0 | 1,
];

export const GET_STREAM_SCRIPT = luaScript<StreamSnapshot>()({
  command: 'streamGet',
  keys: STREAM_KEYS,
  args: {},
  body: `
local state = redis.call('HMGET', state_key, 'status', 'created', 'updated', 'reason')
return {state[1], state[2], state[3], state[4], redis.call('EXISTS', lease_key)}
`,
});

/** 0 = one is open already, 1 = opened, 2 = replaced an ended one. */
export const OPEN_STREAM_SCRIPT = luaScript<0 | 1 | 2>()({
  command: 'streamOpen',
  keys: STREAM_KEYS,
  args: { now: 'number', leaseMs: 'number', ttlMs: 'number' },
  body: `
local status = redis.call('HGET', state_key, 'status')
if status == 'open' then return 0 end
redis.call('HSET', state_key, 'status', 'open', 'created', now, 'updated', now)
redis.call('HDEL', state_key, 'reason')
redis.call('PEXPIRE', state_key, ttl_ms)
redis.call('SET', lease_key, '1', 'PX', lease_ms)
if status then return 2 end
return 1
`,
});

/** 1 = renewed, 0 = the stream is not open. */
export const RENEW_STREAM_SCRIPT = luaScript<0 | 1>()({
  command: 'streamRenew',
  keys: STREAM_KEYS,
  args: { leaseMs: 'number', ttlMs: 'number' },
  body: `
if redis.call('HGET', state_key, 'status') ~= 'open' then return 0 end
redis.call('SET', lease_key, '1', 'PX', lease_ms)
redis.call('PEXPIRE', state_key, ttl_ms)
return 1
`,
});

/** 1 = ended by this call, 0 = not open, or (`onlyIfLost`) its producer still holds it. */
export const END_STREAM_SCRIPT = luaScript<0 | 1>()({
  command: 'streamEnd',
  keys: STREAM_KEYS,
  args: {
    status: 'string',
    reason: 'string',
    onlyIfLost: 'flag',
    now: 'number',
    ttlMs: 'number',
  },
  body: `
if redis.call('HGET', state_key, 'status') ~= 'open' then return 0 end
if only_if_lost and redis.call('EXISTS', lease_key) == 1 then return 0 end
redis.call('HSET', state_key, 'status', status, 'updated', now, 'reason', reason)
redis.call('PEXPIRE', state_key, ttl_ms)
redis.call('DEL', lease_key)
return 1
`,
});

export const STREAM_SCRIPTS = [
  GET_STREAM_SCRIPT,
  OPEN_STREAM_SCRIPT,
  RENEW_STREAM_SCRIPT,
  END_STREAM_SCRIPT,
] as const;
