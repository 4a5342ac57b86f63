/**
 * Lua scripts of the Redis turn leases (RedisTurnLeases), for chat sessions and streamed
 * completions alike (a completion is a session of one turn, with no messages). Each changes
 * one session's keys in one atomic step, so that "is a reply generating, and who holds it"
 * has one answer for every process.
 *
 * The state hash holds `turn`, `generating` ('1'/'0'), `attempt` (which request of the turn
 * generates: 0 the first, n the nth continuation after its generator was lost), `request` (the
 * turn's model options, JSON, for a continuation), `created`, `updated` and, when set, `owner`
 * and `system`; the messages list holds JSON messages, oldest first; the lease holds
 * the generating process's token and expires unless that process renews it.
 */

import { luaScript } from './lua-script.js';

/** A session as the scripts return it: state hash (flat), messages, lease held (0/1). */
export type Snapshot = [fields: string[], messages: string[], leased: 0 | 1];

/** The keys every session script takes first. */
const SESSION_KEYS = ['stateKey', 'messagesKey', 'leaseKey'] as const;

const HELPERS = `
local function snapshot()
  return {redis.call('HGETALL', state_key), redis.call('LRANGE', messages_key, 0, -1),
    redis.call('EXISTS', lease_key)}
end

local function keep(ttl_ms)
  redis.call('PEXPIRE', state_key, ttl_ms)
  redis.call('PEXPIRE', messages_key, ttl_ms)
end

local function open_turn(turn)
  return redis.call('HGET', state_key, 'generating') == '1'
    and redis.call('HGET', state_key, 'turn') == turn
end

-- Sessions begun before attempts were counted have none: their first attempt.
local function same_attempt(attempt)
  return (redis.call('HGET', state_key, 'attempt') or '0') == attempt
end

local function add_message(message, max_messages)
  redis.call('RPUSH', messages_key, message)
  redis.call('LTRIM', messages_key, -max_messages, -1)
end
`;

export const GET_SESSION_SCRIPT = luaScript<Snapshot | null>()({
  command: 'sessionGet',
  keys: SESSION_KEYS,
  args: {},
  helpers: HELPERS,
  body: `
if redis.call('EXISTS', state_key) == 0 then return false end
return snapshot()
`,
});

/**
 * Begins a turn with `userMessage` (JSON, '' = none) under a lease held by `holder`. A new session gets
 * `owner` ('' = none); `system` replaces the system prompt when `setSystem`.
 * Replies {status, snapshot}: status 1 = begun, 0 = busy, -1 = busy but its generator is lost.
 */
export const BEGIN_TURN_SCRIPT = luaScript<[status: 1 | 0 | -1, Snapshot]>()({
  command: 'sessionBegin',
  keys: SESSION_KEYS,
  args: {
    now: 'number',
    ttlMs: 'number',
    maxMessages: 'number',
    leaseMs: 'number',
    holder: 'string',
    userMessage: 'string',
    owner: 'string',
    system: 'string',
    setSystem: 'flag',
    request: 'string',
  },
  helpers: HELPERS,
  body: `
if redis.call('HGET', state_key, 'generating') == '1' then
  local status = 0
  if redis.call('EXISTS', lease_key) == 0 then status = -1 end
  return {status, snapshot()}
end
if redis.call('EXISTS', state_key) == 0 then
  redis.call('DEL', messages_key)
  redis.call('HSET', state_key, 'created', now, 'turn', 0)
  if owner ~= '' then redis.call('HSET', state_key, 'owner', owner) end
end
if set_system then redis.call('HSET', state_key, 'system', system) end
if user_message ~= '' then add_message(user_message, max_messages) end
redis.call('HINCRBY', state_key, 'turn', 1)
redis.call('HSET', state_key, 'generating', '1', 'updated', now, 'attempt', 0, 'request', request)
redis.call('SET', lease_key, holder, 'PX', lease_ms)
keep(ttl_ms)
return {1, snapshot()}
`,
});

/**
 * Ends `turn`, adding `reply` (JSON, '' = none); `holder` '' ends a lost turn. Replies 1 when
 * this call ended the turn, else 0.
 *
 * The holder may end its turn while its lease is held by it or has lapsed unnoticed, and only
 * for the `attempt` it generates (a request it lost to a continuation cannot end the turn,
 * even when the same process took the turn back later); a lost turn may be ended only while
 * nobody holds the lease. Either way the turn is ended once.
 */
export const END_TURN_SCRIPT = luaScript<0 | 1>()({
  command: 'sessionEnd',
  keys: SESSION_KEYS,
  args: {
    turn: 'string',
    reply: 'string',
    holder: 'string',
    attempt: 'string',
    now: 'number',
    ttlMs: 'number',
    maxMessages: 'number',
  },
  helpers: HELPERS,
  body: `
if not open_turn(turn) then return 0 end
local current = redis.call('GET', lease_key)
if (holder == '' and current) or (holder ~= '' and current and current ~= holder)
    or (holder ~= '' and not same_attempt(attempt)) then
  return 0
end
if reply ~= '' then add_message(reply, max_messages) end
redis.call('HSET', state_key, 'generating', '0', 'updated', now)
redis.call('DEL', lease_key)
keep(ttl_ms)
return 1
`,
});

/**
 * Renews `holder`'s lease on `turn` for its `attempt`. Replies -1 if the turn is no longer the
 * holder's, 1 if a cancel of it was requested (`cancelKey`), else 0. A lease that lapsed while
 * the turn is still open is taken back, unless another attempt took the turn over meanwhile:
 * nobody ended it yet.
 */
export const RENEW_TURN_SCRIPT = luaScript<-1 | 0 | 1>()({
  command: 'sessionRenew',
  keys: [...SESSION_KEYS, 'cancelKey'],
  args: {
    holder: 'string',
    turn: 'string',
    attempt: 'string',
    leaseMs: 'number',
    ttlMs: 'number',
  },
  helpers: HELPERS,
  body: `
if not open_turn(turn) or not same_attempt(attempt) then return -1 end
local current = redis.call('GET', lease_key)
if current and current ~= holder then return -1 end
redis.call('SET', lease_key, holder, 'PX', lease_ms)
keep(ttl_ms)
if redis.call('GET', cancel_key) == turn then return 1 end
return 0
`,
});

/**
 * Takes over `turn`, whose generator was lost at `attempt`, for `holder`: exactly one caller
 * wins, as the lease is set and the attempt counted in one step. Replies the new attempt
 * (its fencing token), 0 if the turn is not lost at that attempt (ended, held, or already taken
 * over), -1 if `maxAttempts` continuations were made already (the caller ends it as lost).
 */
export const TAKE_OVER_TURN_SCRIPT = luaScript<number>()({
  command: 'sessionTakeOver',
  keys: SESSION_KEYS,
  args: {
    holder: 'string',
    turn: 'string',
    attempt: 'string',
    maxAttempts: 'number',
    leaseMs: 'number',
  },
  helpers: HELPERS,
  body: `
if not open_turn(turn) or not same_attempt(attempt)
    or redis.call('EXISTS', lease_key) == 1 then
  return 0
end
if tonumber(attempt) >= max_attempts then return -1 end
redis.call('SET', lease_key, holder, 'PX', lease_ms)
return redis.call('HINCRBY', state_key, 'attempt', 1)
`,
});

/** Drops `holder`'s lease on `turn` at `attempt`, leaving the turn open for a takeover. */
export const RELEASE_TURN_SCRIPT = luaScript<0 | 1>()({
  command: 'sessionRelease',
  keys: SESSION_KEYS,
  args: { holder: 'string', turn: 'string', attempt: 'string' },
  helpers: HELPERS,
  body: `
if not open_turn(turn) or not same_attempt(attempt)
    or redis.call('GET', lease_key) ~= holder then
  return 0
end
redis.call('DEL', lease_key)
return 1
`,
});

export const TURN_SCRIPTS = [
  TAKE_OVER_TURN_SCRIPT,
  RELEASE_TURN_SCRIPT,
  GET_SESSION_SCRIPT,
  BEGIN_TURN_SCRIPT,
  END_TURN_SCRIPT,
  RENEW_TURN_SCRIPT,
] as const;
