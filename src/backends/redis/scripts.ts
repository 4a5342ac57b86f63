/**
 * Lua scripts run atomically by Redis, so each append and each read sees and leaves one
 * consistent state of a topic's meta hash and stream without locks or transactions.
 *
 * Stream entries are `<seq>-0 time <ms> event <type> data <json>`: explicit ids equal to the
 * sequence number make "events after a position" a plain XRANGE, and `time` comes first so
 * the age check reads one field. Times come from Redis's clock, so processes with skewed
 * clocks still agree on what has expired.
 */

/** Shared helpers, prepended to each script. */
const HELPERS = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function seq_of(id)
  return tonumber(string.match(id, '^(%d+)'))
end

-- Entries are in time order, so the expired ones are a prefix of the stream. Checks the head
-- first (the usual, O(1) case), then trims whole batches; each entry is examined once before
-- it is deleted, so the work is bounded by what expires, never by the stream's length.
local function expire(log, cutoff)
  local head = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)
  if #head == 0 or tonumber(head[1][2][2]) >= cutoff then return end
  while true do
    local batch = redis.call('XRANGE', log, '-', '+', 'COUNT', 128)
    if #batch == 0 then return end
    for _, entry in ipairs(batch) do
      if tonumber(entry[2][2]) >= cutoff then
        redis.call('XTRIM', log, 'MINID', entry[1])
        return
      end
    end
    redis.call('XTRIM', log, 'MINID', string.format('%d-0', seq_of(batch[#batch][1]) + 1))
  end
end
`;

/**
 * KEYS: meta, log, idempotency key (ignored unless ARGV[6] is '1').
 * ARGV: candidate epoch, event type, data, max events, ttl ms, use idempotency, idempotency
 * ttl ms, channel, publish command (`PUBLISH` or `SPUBLISH`), final ('1' ends the log).
 * Returns {epoch, seq, event type, outcome}: outcome 0 = appended, 1 = duplicate (the
 * original's seq and type), 2 = refused because the log has ended.
 *
 * Lua has no good randomness, so the caller passes a fresh epoch every time; it is used only
 * when the topic has no meta (never written, deleted, expired or flushed).
 */
export const APPEND_SCRIPT = `${HELPERS}
local meta, log, idem = KEYS[1], KEYS[2], KEYS[3]
local event_type, data = ARGV[2], ARGV[3]
local max_events, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local use_idem = ARGV[6] == '1'
local epoch = redis.call('HGET', meta, 'epoch')

if epoch and use_idem then
  local seen = redis.call('GET', idem)
  if seen then
    local seen_epoch, seen_seq, seen_type = string.match(seen, '^([^\\n]*)\\n([^\\n]*)\\n(.*)$')
    -- A key remembered from an earlier epoch names an event that no longer exists.
    if seen_epoch == epoch then return {epoch, tonumber(seen_seq), seen_type, 1} end
  end
end

if epoch and redis.call('HGET', meta, 'ended') == '1' then return {epoch, 0, event_type, 2} end

if not epoch then
  epoch = ARGV[1]
  -- A stream that outlived its meta would refuse the new epoch's ids, which restart at 1.
  redis.call('DEL', log)
  redis.call('HSET', meta, 'epoch', epoch)
end
local seq = redis.call('HINCRBY', meta, 'seq', 1)
if ARGV[10] == '1' then redis.call('HSET', meta, 'ended', '1') end
local now = now_ms()
-- Exact MAXLEN: '~' could retain more than max_events, and bounds must be exact.
redis.call('XADD', log, 'MAXLEN', max_events, string.format('%d-0', seq),
  'time', string.format('%d', now), 'event', event_type, 'data', data)
expire(log, now - ttl)
redis.call('PEXPIRE', meta, ttl)
redis.call('PEXPIRE', log, ttl)
if use_idem then
  redis.call('SET', idem, epoch .. '\\n' .. seq .. '\\n' .. event_type, 'PX', ARGV[7])
end
redis.call(ARGV[9], ARGV[8],
  epoch .. '\\n' .. seq .. '\\n' .. string.format('%d', now) .. '\\n' .. event_type .. '\\n' .. data)
return {epoch, seq, event_type, 0}
`;

/**
 * KEYS: meta, log. ARGV: from epoch ('' = any), from seq (-1 = from the oldest), limit, ttl ms.
 * Returns {epoch or nil, firstSeq, lastSeq, afterSeq, entries}.
 *
 * Reads after `from` when planRead would resume there exactly, otherwise from the oldest
 * retained event; the caller re-checks the choice with planRead on the returned bounds, so
 * planRead stays the one authority on resets while a read still costs one round trip.
 */
export const READ_SCRIPT = `${HELPERS}
local meta, log = KEYS[1], KEYS[2]
local from_epoch, from_seq = ARGV[1], tonumber(ARGV[2])
local limit, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HMGET', meta, 'epoch', 'seq')
local epoch = state[1]
if not epoch then return {false, 1, 0, 0, {}} end
local last_seq = tonumber(state[2]) or 0

expire(log, now_ms() - ttl)
local first = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)
local first_seq = last_seq + 1
if #first > 0 then first_seq = seq_of(first[1][1]) end

local after = first_seq - 1
if from_seq >= 0 and (from_epoch == '' or from_epoch == epoch)
    and from_seq <= last_seq and from_seq >= first_seq - 1 then
  after = from_seq
end
local entries = {}
if limit > 0 and after < last_seq then
  entries = redis.call('XRANGE', log, string.format('%d-0', after + 1), '+', 'COUNT', limit)
end
return {epoch, first_seq, last_seq, after, entries}
`;
