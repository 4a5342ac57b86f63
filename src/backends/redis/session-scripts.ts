/**
 * Lua scripts of the Redis session store. Each changes a session's keys in one atomic step,
 * so that "is a reply generating, and who holds it" has one answer for every process.
 *
 * KEYS are always: state hash, messages list, lease. The state hash holds `turn`,
 * `generating` ('1'/'0'), `created`, `updated` and, when set, `owner` and `system`; the
 * messages list holds JSON messages, oldest first; the lease holds the generating process's
 * token and expires unless that process renews it.
 */

/** Returns the session as {state hash fields, messages, lease held (0/1)}. */
const SNAPSHOT = `
local function snapshot(state, messages, lease)
  return {redis.call('HGETALL', state), redis.call('LRANGE', messages, 0, -1),
    redis.call('EXISTS', lease)}
end

local function keep(state, messages, ttl)
  redis.call('PEXPIRE', state, ttl)
  redis.call('PEXPIRE', messages, ttl)
end

local function add_message(messages, message, max)
  redis.call('RPUSH', messages, message)
  redis.call('LTRIM', messages, -max, -1)
end
`;

export const GET_SESSION_SCRIPT = `${SNAPSHOT}
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return snapshot(KEYS[1], KEYS[2], KEYS[3])
`;

/**
 * ARGV: now, ttl ms, max messages, lease ms, holder, user message (JSON), owner ('' = none),
 * system prompt ('' with ARGV[9] = '0' = keep the current one), system given (1/0).
 * Returns {status, snapshot}: status 1 = begun, 0 = busy, -1 = busy but its generator is lost.
 */
export const BEGIN_TURN_SCRIPT = `${SNAPSHOT}
local state, messages, lease = KEYS[1], KEYS[2], KEYS[3]
local now, ttl, max, lease_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
if redis.call('HGET', state, 'generating') == '1' then
  local status = 0
  if redis.call('EXISTS', lease) == 0 then status = -1 end
  return {status, snapshot(state, messages, lease)}
end
if redis.call('EXISTS', state) == 0 then
  redis.call('DEL', messages)
  redis.call('HSET', state, 'created', now, 'turn', 0)
  if ARGV[7] ~= '' then redis.call('HSET', state, 'owner', ARGV[7]) end
end
if ARGV[9] == '1' then redis.call('HSET', state, 'system', ARGV[8]) end
add_message(messages, ARGV[6], max)
redis.call('HINCRBY', state, 'turn', 1)
redis.call('HSET', state, 'generating', '1', 'updated', now)
redis.call('SET', lease, ARGV[5], 'PX', lease_ms)
keep(state, messages, ttl)
return {1, snapshot(state, messages, lease)}
`;

/**
 * ARGV: turn, assistant message (JSON, '' = none), holder ('' = end a lost turn), now,
 * ttl ms, max messages. Returns 1 when this call ended the turn, else 0.
 *
 * The holder may end its turn while its lease is held by it or has lapsed unnoticed; a lost
 * turn may be ended only while nobody holds the lease. Either way the turn is ended once.
 */
export const END_TURN_SCRIPT = `${SNAPSHOT}
local state, messages, lease = KEYS[1], KEYS[2], KEYS[3]
local turn, reply, holder = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HGET', state, 'generating') ~= '1' or redis.call('HGET', state, 'turn') ~= turn then
  return 0
end
local current = redis.call('GET', lease)
if (holder == '' and current) or (holder ~= '' and current and current ~= holder) then
  return 0
end
if reply ~= '' then add_message(messages, reply, tonumber(ARGV[6])) end
redis.call('HSET', state, 'generating', '0', 'updated', ARGV[4])
redis.call('DEL', lease)
keep(state, messages, tonumber(ARGV[5]))
return 1
`;

/**
 * KEYS: state, messages, lease, cancel. ARGV: holder, turn, lease ms, ttl ms.
 * Returns -1 if the turn is no longer the holder's, 1 if a cancel was requested, else 0.
 * A lease that lapsed while the turn is still open is taken back: nobody ended it yet.
 */
export const RENEW_TURN_SCRIPT = `${SNAPSHOT}
local state, messages, lease, cancel = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local holder, turn = ARGV[1], ARGV[2]
if redis.call('HGET', state, 'generating') ~= '1' or redis.call('HGET', state, 'turn') ~= turn then
  return -1
end
local current = redis.call('GET', lease)
if current and current ~= holder then return -1 end
redis.call('SET', lease, holder, 'PX', ARGV[3])
keep(state, messages, tonumber(ARGV[4]))
if redis.call('GET', cancel) == turn then return 1 end
return 0
`;
