/**
 * The Redis CursorStore's layout and its compare-and-set script.
 *
 * Layout: `cursors` (from `storeKeys`), a hash of every subscription's entry by name, each value
 * the JSON of the entry's fields (`internal/cursorFields.ts`: `[seq, updatedAt, lease, token]`).
 *
 * @internal
 */
import * as Redis from "effect/persistence/Redis"

/**
 * Replaces the entry of a name if it is still the one read. KEYS: cursors. ARGV: name, the value
 * read (`""` when there was none), the value to store (`""` to remove it). A stored value is JSON,
 * never empty. Returns 1 when it was replaced, 0 when another update came first.
 */
export const compareAndSet = Redis.script(
  (key: string, name: string, expected: string, next: string) => [key, name, expected, next],
  {
    numberOfKeys: 1,
    lua: `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
return 1`
  }
).withReturnType<number>()
