/**
 * The Redis SnapshotStore's layout and Lua scripts. Each script runs atomically, so puts of one
 * stream from many processes keep exactly `keep` snapshots and a reader never sees half a put.
 *
 * Layout (keys from `storeKeys`):
 * - `snapshots(namespace, id)`: a sorted set of the stream's snapshots scored by version, each
 *   member `<version>:<seq>:<timestamp>:<schemaVersion>:<state as base64>` (`snapshotEntries.ts`).
 * - `snapshotIds(namespace)`: a set of the ids of the namespace's streams that have snapshots
 *   (what `scan` lists).
 *
 * @internal
 */
import * as Redis from "effect/persistence/Redis"

/**
 * Upserts a snapshot and drops the oldest beyond `keep`. KEYS: snapshots, snapshotIds. ARGV:
 * version, member, keep, id. Returns how many snapshots were dropped.
 */
export const put = Redis.script(
  (keys: readonly [string, string], version: number, member: string, keep: number, id: string) => [...keys, version, member, keep, id],
  {
    numberOfKeys: 2,
    lua: `
redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[4])
return redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[3]) + 1))`
  }
).withReturnType<number>()

/**
 * The member of the youngest snapshot with version ≤ maxVersion and timestamp ≤ maxTimestamp, or
 * nil. KEYS: snapshots. ARGV: maxVersion, maxTimestamp. Loads one member at a time, youngest first
 * (each step below the version before: versions are unique), so a get costs the snapshots it
 * passes over, not every one kept. A member whose timestamp does not parse is returned as it is,
 * for the reader to report.
 */
export const get = Redis.script(
  (key: string, maxVersion: number, maxTimestamp: number) => [key, maxVersion, maxTimestamp],
  {
    numberOfKeys: 1,
    lua: `
local maxTimestamp = tonumber(ARGV[2])
local below = ARGV[1]
while true do
  local page = redis.call('ZREVRANGEBYSCORE', KEYS[1], below, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if #page == 0 then return false end
  local timestamp = tonumber(string.match(page[1], '^%d+:%d+:(%d+):'))
  if timestamp == nil or timestamp <= maxTimestamp then return page[1] end
  below = '(' .. page[2]
end`
  }
).withReturnType<string | null>()

/** Removes a stream's snapshots and its id from the namespace's set. KEYS: snapshots, snapshotIds. ARGV: id. */
export const remove = Redis.script(
  (keys: readonly [string, string], id: string) => [...keys, id],
  {
    numberOfKeys: 2,
    lua: `
redis.call('DEL', KEYS[1])
return redis.call('SREM', KEYS[2], ARGV[1])`
  }
).withReturnType<number>()

/** The member of the latest snapshot of each key (false for a key with none), in KEYS order. */
export const latest = Redis.script(
  (keys: ReadonlyArray<string>) => keys,
  {
    numberOfKeys: (keys) => keys.length,
    lua: `
local out = {}
for k, key in ipairs(KEYS) do
  local top = redis.call('ZRANGE', key, -1, -1)
  out[k] = top[1] or false
end
return out`
  }
).withReturnType<ReadonlyArray<string | null>>()
