/**
 * The Redis Journal's Lua scripts. Each runs atomically on the server: an append (or a restore
 * chunk) checks the position and versions and writes the records to the log, to their stream's
 * copy and to the version hash in one step, so no reader ever sees part of it.
 *
 * Layout (keys from `storeKeys`):
 * - `log`: a Redis Stream, entry id `<seq>-0`, fields `n` namespace, `i` id, `v` version,
 *   `t` timestamp, `y` type, `p` payload (base64), `m` metadata (JSON, only when there is some).
 * - `stream(namespace, id)`: the same records of one stream, entry id `<version>-0`, fields `s` seq,
 *   `t`, `y`, `p`, `m` (a read of a stream is one `XRANGE`).
 * - `meta`: a hash of `lastSeq`, `checkpoint`, `truncatedBefore`, `removedBefore` (as in the other
 *   layers) and `lastTimestamp` (an append's timestamp is never below it, so timestamps do not go
 *   down in seq order).
 * - `versions`: a hash of each stream's version, by `name(namespace, id)`.
 * - `appendOutcomes`: a hash of each recent append's outcome by its id,
 *   `<firstSeq>:<version>:<timestamp>:<count>`; a retried append whose first try was stored returns
 *   that outcome instead of storing twice. `appendTimes`: a Redis Stream of the same ids in the
 *   order they were stored, entry ids from the server's clock (`XADD *`); each append forgets up to
 *   `OUTCOMES_TRIMMED` ids older than the retry window. Truncation never touches them: an outcome
 *   outlives its records.
 *
 * Numbers travel as decimal strings and are doubles in Lua: exact up to 2^53, which the scripts
 * check before assigning a seq or version.
 *
 * @internal
 */
import * as Redis from "effect/persistence/Redis"

const MAX_SAFE = "9007199254740991"

/** Shared Lua: reading a number field (checked), writing integers without exponent notation, and storing one record. */
const prelude = `
-- a stored seq, version or timestamp (0 when absent); a damaged one fails the script, naming its key and field
local function num(v, key, name)
  if not v then return 0 end
  if not string.match(v, '^%d+$') then
    error({err = 'annals: the field ' .. name .. ' of ' .. key .. ' is damaged: "' .. string.sub(v, 1, 40) .. '" is not a safe integer >= 0'})
  end
  return tonumber(v)
end
local function stored(key, name) return num(redis.call('HGET', key, name), key, name) end
local function int(n) return string.format('%.0f', n) end
local MAX = ${MAX_SAFE}
-- one record, to the log (entry id its seq) and to its stream's copy (entry id its version)
local function store(log, copy, seq, ns, id, version, t, y, p, m)
  if m == '' then
    redis.call('XADD', log, seq .. '-0', 'n', ns, 'i', id, 'v', version, 't', t, 'y', y, 'p', p)
    redis.call('XADD', copy, version .. '-0', 's', seq, 't', t, 'y', y, 'p', p)
  else
    redis.call('XADD', log, seq .. '-0', 'n', ns, 'i', id, 'v', version, 't', t, 'y', y, 'p', p, 'm', m)
    redis.call('XADD', copy, version .. '-0', 's', seq, 't', t, 'y', y, 'p', p, 'm', m)
  end
end
`

/** Expired append ids (older than the retry window) that one append forgets at most. */
export const OUTCOMES_TRIMMED = 16

/**
 * Appends one batch of events to one stream. KEYS: meta, versions, log, stream, appendOutcomes,
 * appendTimes. ARGV: stream field, expected version (`"any"` or a number), now, append id,
 * namespace, id, the retry window (ms), the events as one JSON argument (`[[type, payload (base64),
 * metadata (JSON or "")], …]`: the argument count stays the same however many events). Returns
 * `{0, firstSeq, version, timestamp, count}` (stored now, or by an earlier try with this id),
 * `{1, actual}` (a version conflict) or `{2, problem}` (no seq or version can be assigned).
 */
export const append = Redis.script(
  (keys: readonly [string, string, string, string, string, string], args: ReadonlyArray<string>) => [...keys, ...args],
  {
    numberOfKeys: 6,
    lua: `${prelude}
local meta, versions, log, stream, outcomes, times = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local field, expected, now, appendId, ns, id, window = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local events = cjson.decode(ARGV[8])
local count = #events
local done = redis.call('HGET', outcomes, appendId)
if done then
  -- Stored by an earlier try. Written again, so that a WAIT or WAITAOF after this call covers it.
  redis.call('HSET', outcomes, appendId, done)
  local firstSeq, version, t, n = string.match(done, '^(%d+):(%d+):(%d+):(%d+)$')
  return {0, firstSeq or '', version or '', t or '', n or ''}
end
local current = stored(versions, field)
if expected ~= 'any' and tonumber(expected) ~= current then return {1, int(current)} end
local position = redis.call('HMGET', meta, 'lastSeq', 'checkpoint', 'lastTimestamp')
local firstSeq = math.max(num(position[1], meta, 'lastSeq') + 1, num(position[2], meta, 'checkpoint'))
if count - 1 > MAX - firstSeq then
  return {2, 'its ' .. count .. ' record(s) would get seqs from ' .. int(firstSeq) .. ', beyond Number.MAX_SAFE_INTEGER (' .. int(MAX) .. ')'}
end
if count > MAX - current then
  return {2, 'the stream is at version ' .. int(current) .. '; ' .. count .. ' more would pass Number.MAX_SAFE_INTEGER (' .. int(MAX) .. ')'}
end
-- never a timestamp below the one before it in seq order (a writer's clock stepping back, or another writer's behind)
local t = int(math.max(now, num(position[3], meta, 'lastTimestamp')))
for k = 0, count - 1 do
  local seq, version = int(firstSeq + k), int(current + 1 + k)
  local e = events[k + 1]
  store(log, stream, seq, ns, id, version, t, e[1], e[2], e[3])
end
local lastSeq = int(firstSeq + count - 1)
redis.call('HSET', versions, field, int(current + count))
redis.call('HSET', meta, 'lastSeq', lastSeq, 'lastTimestamp', t)
-- The outcome under the append's id; then the oldest outcomes older than the window (by the server's clock, one for every writer) go.
redis.call('HSET', outcomes, appendId, int(firstSeq) .. ':' .. int(current + count) .. ':' .. t .. ':' .. count)
local added = redis.call('XADD', times, '*', 'i', appendId)
local expired = redis.call('XRANGE', times, '-', int(tonumber(string.match(added, '^(%d+)')) - window), 'COUNT', ${OUTCOMES_TRIMMED})
if #expired > 0 then
  local ids = {}
  for k, e in ipairs(expired) do ids[k] = e[2][2] end
  redis.call('HDEL', outcomes, unpack(ids))
  local ms, n = string.match(expired[#expired][1], '^(%d+)-(%d+)$')
  redis.call('XTRIM', times, 'MINID', ms .. '-' .. int(tonumber(n) + 1))
end
return {0, int(firstSeq), int(current + count), t, tostring(count)}
`
  }
).withReturnType<AppendReply>()

/** An append script's reply: stored (first seq, version, timestamp, count), a version conflict (the actual version), or refused (why). */
export type AppendReply = readonly [0, string, string, string, string] | readonly [1, string] | readonly [2, string]

/** A raw stream entry: its id and its fields as a flat list. */
export type Entry = readonly [id: string, fields: ReadonlyArray<string>]

/**
 * Moves the truncation point and the checkpoint forward: what readers go by, at once (the records
 * below it are trimmed by `trim`, batch by batch). KEYS: meta. ARGV: seq. Returns the truncation point.
 */
export const truncateStart = Redis.script(
  (meta: string, seq: number) => [meta, seq],
  {
    numberOfKeys: 1,
    lua: `${prelude}
local seq = tonumber(ARGV[1])
local p = redis.call('HMGET', KEYS[1], 'lastSeq', 'checkpoint', 'truncatedBefore', 'removedBefore')
local before = math.max(num(p[3], KEYS[1], 'truncatedBefore'), seq)
redis.call('HSET', KEYS[1], 'checkpoint', int(math.max(num(p[2], KEYS[1], 'checkpoint'), seq)), 'truncatedBefore', int(before),
  'removedBefore', int(math.max(num(p[4], KEYS[1], 'removedBefore'), math.min(seq, num(p[1], KEYS[1], 'lastSeq') + 1))))
return int(before)
`
  }
).withReturnType<string>()

/**
 * Trims one batch of records below the truncation point, read by the caller: the log through seq
 * `through`, and each stream's copy through the version of its last record in the batch (a copy's
 * later versions have higher seqs, so they stay). Refuses a batch that reaches the truncation point.
 * KEYS: meta, log, then the streams' copies. ARGV: through, then the copies' versions in KEYS order.
 */
export const trim = Redis.script(
  (keys: readonly [string, string], through: number, copies: ReadonlyArray<readonly [key: string, version: number]>) => [
    ...keys,
    ...copies.map(([key]) => key),
    through,
    ...copies.map(([, version]) => version)
  ],
  {
    numberOfKeys: (_keys, _through, copies) => 2 + copies.length,
    lua: `${prelude}
local through = tonumber(ARGV[1])
local before = stored(KEYS[1], 'truncatedBefore')
if through >= before then return redis.error_reply('annals: a trim through seq ' .. ARGV[1] .. ' reaches the truncation point ' .. int(before)) end
for k = 3, #KEYS do redis.call('XTRIM', KEYS[k], 'MINID', int(tonumber(ARGV[k - 1]) + 1) .. '-0') end
redis.call('XTRIM', KEYS[2], 'MINID', int(through + 1) .. '-0')
return 0
`
  }
).withReturnType<number>()

/**
 * One chunk of a restore, checked by the caller against the position it read (`restoreBatch`):
 * applies only if the journal is still there — its last seq and the versions of the chunk's streams
 * as expected — else changes nothing. KEYS: meta, versions, log, then the copy of each stream of the
 * chunk. ARGV: expected last seq; the streams as JSON, in KEYS order, each
 * `[field, expected version, new version, namespace, id]`; the records as JSON, each
 * `[seq, stream (1-based), version, timestamp, type, payload (base64), metadata (JSON or "")]`,
 * every value a string. Returns `{0, lastSeq}` or `{1, what changed}`.
 */
export const restoreChunk = Redis.script(
  (keys: readonly [string, string, string], copies: ReadonlyArray<string>, lastSeq: number, streams: string, records: string) => [
    ...keys,
    ...copies,
    lastSeq,
    streams,
    records
  ],
  {
    numberOfKeys: (_keys, copies) => 3 + copies.length,
    lua: `${prelude}
local meta, versions, log = KEYS[1], KEYS[2], KEYS[3]
local streams, records = cjson.decode(ARGV[2]), cjson.decode(ARGV[3])
local lastSeq = stored(meta, 'lastSeq')
if lastSeq ~= tonumber(ARGV[1]) then return {1, 'the journal\\'s last seq is ' .. int(lastSeq) .. ', not ' .. ARGV[1]} end
for _, s in ipairs(streams) do
  local current = stored(versions, s[1])
  if current ~= tonumber(s[2]) then return {1, 'a stream is at version ' .. int(current) .. ', not ' .. s[2]} end
end
local last = lastSeq
local latest = stored(meta, 'lastTimestamp')
for _, r in ipairs(records) do
  local k = tonumber(r[2])
  local s = streams[k]
  store(log, KEYS[3 + k], r[1], s[4], s[5], r[3], r[4], r[5], r[6], r[7])
  last = tonumber(r[1])
  latest = math.max(latest, tonumber(r[4]))
end
for _, s in ipairs(streams) do redis.call('HSET', versions, s[1], s[3]) end
redis.call('HSET', meta, 'lastSeq', int(last), 'lastTimestamp', int(latest))
return {0, int(last)}
`
  }
).withReturnType<RestoreReply>()

/** A restore chunk's reply: applied through a last seq, or refused saying why. */
export type RestoreReply = readonly [0, string] | readonly [1, string]

/** Moves the checkpoint forward. KEYS: meta. ARGV: seq. */
export const setCheckpoint = Redis.script((meta: string, seq: number) => [meta, seq], {
  numberOfKeys: 1,
  lua: `${prelude}
local c = stored(KEYS[1], 'checkpoint')
if tonumber(ARGV[1]) > c then redis.call('HSET', KEYS[1], 'checkpoint', ARGV[1]) end
return 0`
}).withReturnType<number>()
