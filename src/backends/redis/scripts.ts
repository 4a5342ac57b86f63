/**
 * Lua scripts run atomically by Redis, so each append and each read sees and leaves one
 * consistent state of a topic's meta hash and stream without locks or transactions.
 *
 * Stream entries are `<seq>-0 time <ms> event <type> data <json>`: explicit ids equal to the
 * sequence number make "events after a position" a plain XRANGE, and `time` comes first so
 * the age check reads one field. Times come from Redis's clock, so processes with skewed
 * clocks still agree on what has expired.
 */

import { createHash } from 'node:crypto';
import { luaScript } from './lua-script.js';
import type { StreamEntry } from './wire.js';

/** Functions shared by the scripts of a topic. */
const HELPERS = `
-- Arithmetic converts the strings TIME answers once each; tonumber() would convert twice.
local function now_ms()
  local t = redis.call('TIME')
  return t[1] * 1000 + math.floor(t[2] / 1000)
end

-- Changes whenever a replica is promoted to master (a new replication history begins). A plain
-- find and an anchored match: a pattern search from the start would try every position of the
-- section's text, which costs about as much as INFO itself.
local function replication_id()
  local info = redis.call('INFO', 'replication')
  local at = string.find(info, 'master_replid:', 1, true)
  return string.match(info, '^%w+', at + 14)
end

-- The writer token: the log's epoch, last seq and fence (0 when never fenced), which its one
-- writer knows too as long as no one else changed the log.
local function writer_token(epoch, seq_text, fence)
  return epoch .. ':' .. seq_text .. ':' .. (fence or '0')
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
 * {epoch, seq, event type, outcome} of the last event appended: outcome 0 = appended, 1 =
 * duplicate (the original's seq and type), 2 = refused because the log has ended.
 */
export type AppendReply = [epoch: string, seq: number, event: string, outcome: 0 | 1 | 2];

/**
 * What the script answers: an append (outcome 0) as the text `epoch \n seq`, followed for an
 * append bound to its epoch by `\n time \n kept` (Redis's clock when it appended, and when it
 * last refreshed the keys' TTLs, for the writer's fast path), as Redis turns a
 * Lua table into a reply only after probing it for the fields of every special reply type (3 %
 * of an append's instructions); a duplicate or a refusal as its AppendReply.
 */
export type AppendAnswer = string | AppendReply;

/** What every append of a log shares: written into its append scripts as constants. */
export interface AppendSettings {
  readonly maxEvents: number;
  readonly ttlMs: number;
  readonly idempotencyTtlMs: number;
  /** `PUBLISH` or `SPUBLISH`. */
  readonly publishCommand: string;
  /**
   * On a cluster, whose masters fail over to replicas: start a new epoch when the topic's meta
   * was written by another replication history than the current master's.
   */
  readonly checkHistory: boolean;
}

/** The `flags` argument of an append: bits to add. */
export const APPEND_FLAGS = {
  /** Ends the log after the events. */
  final: 1,
  /** `epoch` is the one the topic must have: refused, as for an ended log, otherwise. */
  bound: 2,
} as const;

/**
 * Appends `events` (type, data, type, data…; one event or a batch) with consecutive seqs, all or
 * none. `epoch` is, with the `bound` flag, the epoch the topic must have, else a fresh one (Lua
 * has no good randomness) used only when the topic has no meta (never written, deleted, expired
 * or flushed). The events go out on `channel` as one live message (wire.ts); a `final` append
 * ends the log after them; `fence` (unless -1) refuses the append when the log was fenced with a
 * higher token (FENCE_SCRIPT), checked here, in the same step as the append, so a writer frozen
 * past its lease cannot slip one in. The `idempotent` variant takes `idemKey` and names the
 * whole call by it (the answer remembered is its last event's).
 *
 * Redis CPU per event is roughly its command count, so an append costs five commands (HMGET,
 * HSET, TIME, XADD, PUBLISH; one SET more with an idempotency key), whether it ends the log or
 * not, and a batch of N costs N + 4: one XADD per event, the rest once; a topic's first append,
 * and one per sixteenth of the TTL, add the DEL/trim and PEXPIREs.
 * test/backends/redis/redis-append-cost.test.ts counts them.
 *
 * What is the same for every append of a log (AppendSettings) is part of the script's text, and
 * the variant without idempotency takes no idempotency key: each KEYS or ARGV string costs about
 * 1,200 Redis instructions, and the 16 an append carried are 8, which took it from 108,000 to
 * 98,000 (callgrind, bench/append-instructions.ts).
 */
export function appendScripts(settings: AppendSettings) {
  const script = <const K extends string>(keys: readonly K[], idempotent: boolean) => {
    const body = appendBody(settings, idempotent);
    return luaScript<AppendAnswer>()({
      // A script per text: logs with other settings on one connection each define their own.
      command: `streamhubAppend${createHash('sha1').update(body).digest('hex').slice(0, 12)}`,
      keys,
      args: { epoch: 'string', flags: 'number', fence: 'number', channel: 'string' },
      rest: 'events',
      helpers: HELPERS,
      body,
    });
  };
  return {
    plain: script(['metaKey', 'logKey'], false),
    idempotent: script(['metaKey', 'logKey', 'idemKey'], true),
  };
}

export type AppendScripts = ReturnType<typeof appendScripts>;

/** Lua text of a constant: a number, or a word (a number as text, a command name) quoted. */
function lua(value: number | string): string {
  if (typeof value === 'number') return String(value);
  if (!/^\w+$/.test(value)) throw new TypeError(`not a word: ${JSON.stringify(value)}`);
  return `'${value}'`;
}

function appendBody(settings: AppendSettings, idempotent: boolean): string {
  const { checkHistory } = settings;
  return `
-- Only handed on to XADD and SET: as text, neither side converts them.
local max_events = ${lua(String(settings.maxEvents))}
local ttl_ms = ${lua(Math.ceil(settings.ttlMs))}
local idempotency_ttl_ms = ${lua(String(Math.ceil(settings.idempotencyTtlMs)))}
local final = flags % 2 == 1
local bound = flags >= 2
local count = (#ARGV - events_at + 1) / 2
local last_type = ARGV[#ARGV - 1]
local meta = redis.call('HMGET', meta_key, 'epoch', 'ended', 'kept', 'seq', 'fence'${checkHistory ? ", 'history'" : ''})
local meta_epoch = meta[1]
${
  checkHistory
    ? `-- Written by another replication history: this master is a promoted replica, which may lack
-- events its predecessor acknowledged and published, so their ids must never be handed out
-- again. The log starts over in a new epoch (an ended log stays ended: its end was replicated).
local history = replication_id()
if meta_epoch and meta[2] ~= '1' and meta[6] ~= history then
  redis.call('DEL', meta_key)
  meta = {}
  meta_epoch = nil
end`
    : ''
}
local seq = (meta[4] or 0) + 1
${
  idempotent
    ? `
-- One command both finds a retry and remembers this append for the next one: SET NX GET
-- stores the key only where there is none, and answers what was there.
local remembered = false
if meta_epoch then
  local seen = redis.call('SET', idem_key, meta_epoch .. '\\n' .. (seq + count - 1) .. '\\n' .. last_type,
    'NX', 'GET', 'PX', idempotency_ttl_ms)
  remembered = not seen
  if seen then
    local seen_epoch, seen_seq, seen_type = string.match(seen, '^([^\\n]*)\\n([^\\n]*)\\n(.*)$')
    -- A key remembered from an earlier epoch names an event that no longer exists.
    if seen_epoch == meta_epoch then return {meta_epoch, tonumber(seen_seq), seen_type, 1} end
  end
end`
    : ''
}
local refused = nil
if meta_epoch and meta[2] == '1' then refused = {meta_epoch, 0, last_type, 2} end
if bound and meta_epoch ~= epoch then refused = {epoch, 0, last_type, 2} end
if meta_epoch and fence >= 0 and fence < (meta[5] or 0) + 0 then refused = {meta_epoch, 0, last_type, 2} end
if refused then
${
  idempotent
    ? `  -- What was remembered above names an event that is not appended.
  if remembered then redis.call('DEL', idem_key) end`
    : ''
}
  return refused
end

local fresh = not meta_epoch
if fresh then
  seq = 1
  -- A stream that outlived its meta would refuse the new epoch's ids, which restart at 1.
  redis.call('DEL', log_key)
else
  -- The topic's own; a fresh one given is not used.
  epoch = meta_epoch
end
local last_seq = seq + count - 1
-- Numbers are turned into text here, as integers: Redis would format a number passed to a
-- command, and Lua one it concatenates, as a float, which costs several times more.
local last_seq_text = string.format('%d', last_seq)
local fields = {'seq', last_seq_text}
if fresh then
  table.insert(fields, 'epoch')
  table.insert(fields, epoch)
${
  checkHistory
    ? `  table.insert(fields, 'history')
  table.insert(fields, history)`
    : ''
}
end
if final then
  table.insert(fields, 'ended')
  table.insert(fields, '1')
end
-- What the log's one writer holds for its fast path (writerAppendScript), set by its own appends
-- (bound to the epoch). Other appends, the end included, leave it: the seqs they take make the
-- writer's next id collide, which sends the writer here.
if bound and not final then
  table.insert(fields, 'writer')
  table.insert(fields, writer_token(epoch, last_seq_text, meta[5]))
end
local now = now_ms()
local time = string.format('%d', now)
-- Age trimming and the keys' TTLs are seen to once per sixteenth of the TTL, not on every
-- append: reads trim before they answer, and the TTLs set here are a sixteenth longer, so the
-- keys outlive the last append by at least the TTL.
local keep = fresh or not meta[3] or now - meta[3] >= ttl_ms / 16
local kept = meta[3]
if keep then
  kept = time
  table.insert(fields, 'kept')
  table.insert(fields, time)
end
redis.call('HSET', meta_key, unpack(fields))
-- The live message: a header, then each event's type and data, data prefixed by its length.
local message = {epoch .. '\\n' .. string.format('%d', seq) .. '\\n' .. time .. '\\n'}
for i = events_at, #ARGV, 2 do
  local event_type, data = ARGV[i], ARGV[i + 1]
  -- Exact MAXLEN: '~' could retain more than max_events, and bounds must be exact.
  redis.call('XADD', log_key, 'MAXLEN', max_events, string.format('%d-0', seq),
    'time', time, 'event', event_type, 'data', data)
  seq = seq + 1
  message[#message + 1] = event_type .. '\\n' .. string.format('%d', #data) .. '\\n' .. data
end
if keep then
  -- A fresh stream holds only the entries just added: nothing to trim.
  if not fresh then expire(log_key, now - ttl_ms) end
  local keep_ms = math.floor(ttl_ms * 17 / 16)
  redis.call('PEXPIRE', meta_key, keep_ms)
  redis.call('PEXPIRE', log_key, keep_ms)
end
${
  idempotent
    ? `if not remembered then
  redis.call('SET', idem_key, epoch .. '\\n' .. last_seq_text .. '\\n' .. last_type, 'PX', idempotency_ttl_ms)
end`
    : ''
}
redis.call(${lua(settings.publishCommand)}, channel, table.concat(message))
if not bound then return epoch .. '\\n' .. last_seq_text end
return epoch .. '\\n' .. last_seq_text .. '\\n' .. time .. '\\n' .. kept
`;
}

/**
 * The fast path of a log's one writer (FiniteLogWriter): its plain appends while it still holds
 * the writer token, i.e. no fence, end, deletion or restart changed the log since the writer's
 * last append (the whole script and FENCE_SCRIPT keep the token), no other append took the next
 * id, and the keys' TTLs are not due for a refresh (the caller's clock tells). Whatever the whole
 * script would check then holds, so this one only stores and publishes: the caller formats the ids,
 * the time (Redis's clock, as last seen, plus the time since) and the live message. Answers 1
 * when it appended, 0 when the token no longer matches, for the whole script to decide.
 *
 * Per token: 4 commands (HGET, XADD, HSET, PUBLISH) instead of 6, 58,500 Redis instructions
 * instead of 97,500 (callgrind, bench/append-instructions.ts): the whole script's TIME, the
 * meta's several fields, and building the message and numbers in Lua were most of its cost.
 * With `checkHistory` (a cluster) also the replication history, as the whole script checks it:
 * 90,000 instead of 130,000.
 */
export function writerAppendScript(
  settings: Pick<AppendSettings, 'maxEvents' | 'publishCommand' | 'checkHistory'>,
) {
  const body = `
${
  settings.checkHistory
    ? `-- As the whole script checks: a promoted replica may lack another party's fence or end
-- while it still holds the writer's token.
local meta = redis.call('HMGET', meta_key, 'writer', 'history')
if meta[1] ~= writer or meta[2] ~= replication_id() then return 0 end`
    : "if redis.call('HGET', meta_key, 'writer') ~= writer then return 0 end"
}
for i = events_at, #ARGV, 3 do
  -- Refused only when another append took the id (the first, as ids go up): nothing written.
  local added = redis.pcall('XADD', log_key, 'MAXLEN', ${lua(String(settings.maxEvents))}, ARGV[i],
    'time', time, 'event', ARGV[i + 1], 'data', ARGV[i + 2])
  if type(added) == 'table' then return 0 end
end
redis.call('HSET', meta_key, 'seq', last_seq, 'writer', next_writer)
redis.call(${lua(settings.publishCommand)}, channel, message)
return 1
`;
  return luaScript<0 | 1>()({
    command: `streamhubWriterAppend${createHash('sha1').update(body).digest('hex').slice(0, 12)}`,
    keys: ['metaKey', 'logKey'],
    args: {
      writer: 'string',
      nextWriter: 'string',
      lastSeq: 'string',
      time: 'string',
      channel: 'string',
      message: 'string',
    },
    // Per event: its stream id, type and data.
    rest: 'events',
    helpers: settings.checkHistory ? HELPERS : '',
    body,
  });
}

export type WriterAppendScript = ReturnType<typeof writerAppendScript>;

/**
 * {epoch or nil, firstSeq, lastSeq, afterSeq, entries}: the bounds and the page of one
 * consistent view.
 */
export type ReadReply = [
  epoch: string | null,
  firstSeq: number,
  lastSeq: number,
  afterSeq: number,
  entries: StreamEntry[],
];

/**
 * Reads at most `limit` events after `fromEpoch` ('' = any) and `fromSeq` (-1 = from the
 * oldest) when planRead would resume there exactly, otherwise from the oldest retained event;
 * the caller re-checks the choice with planRead on the returned bounds, so planRead stays the
 * one authority on resets while a read still costs one round trip.
 */
export const READ_SCRIPT = luaScript<ReadReply>()({
  command: 'streamhubRead',
  keys: ['metaKey', 'logKey'],
  args: { fromEpoch: 'string', fromSeq: 'number', limit: 'number', ttlMs: 'number' },
  helpers: HELPERS,
  body: `
local state = redis.call('HMGET', meta_key, 'epoch', 'seq')
local epoch = state[1]
if not epoch then return {false, 1, 0, 0, {}} end
local last_seq = tonumber(state[2]) or 0

expire(log_key, now_ms() - ttl_ms)
local first = redis.call('XRANGE', log_key, '-', '+', 'COUNT', 1)
local first_seq = last_seq + 1
if #first > 0 then first_seq = seq_of(first[1][1]) end

local after = first_seq - 1
if from_seq >= 0 and (from_epoch == '' or from_epoch == epoch)
    and from_seq <= last_seq and from_seq >= first_seq - 1 then
  after = from_seq
end
local entries = {}
if limit > 0 and after < last_seq then
  entries = redis.call('XRANGE', log_key, string.format('%d-0', after + 1), '+', 'COUNT', limit)
end
return {epoch, first_seq, last_seq, after, entries}
`,
});

/** [] without meta, [epoch] when no event is retained, else [epoch, newest entry]. */
export type LastEventReply = [epoch?: string, newest?: StreamEntry];

/** The newest retained event, from the same view a read would have. */
export const LAST_EVENT_SCRIPT = luaScript<LastEventReply>()({
  command: 'streamhubLastEvent',
  keys: ['metaKey', 'logKey'],
  args: { ttlMs: 'number' },
  helpers: HELPERS,
  body: `
local epoch = redis.call('HGET', meta_key, 'epoch')
if not epoch then return {} end
expire(log_key, now_ms() - ttl_ms)
local newest = redis.call('XREVRANGE', log_key, '+', '-', 'COUNT', 1)
if #newest == 0 then return {epoch} end
return {epoch, newest[1]}
`,
});

/**
 * Fences the topic with `token`, or with the one after its fence if that is not lower, and
 * replies the token; a topic without meta is left alone (and `token` replied).
 */
export const FENCE_SCRIPT = luaScript<number>()({
  command: 'streamhubFence',
  keys: ['metaKey'],
  args: { token: 'number' },
  helpers: HELPERS,
  body: `
local meta = redis.call('HMGET', meta_key, 'epoch', 'seq', 'ended', 'fence')
if not meta[1] then return token end
local fence = tonumber(meta[4]) or 0
if fence >= token then token = fence + 1 end
local fields = {'fence', token}
-- A writer with a lower token no longer holds the log's writer token: its appends take the
-- whole script's path again, which refuses them.
if meta[3] ~= '1' then
  fields[3] = 'writer'
  fields[4] = writer_token(meta[1], meta[2] or '0', string.format('%d', token))
end
redis.call('HSET', meta_key, unpack(fields))
return token
`,
});

export const TOPIC_SCRIPTS = [READ_SCRIPT, LAST_EVENT_SCRIPT, FENCE_SCRIPT] as const;
