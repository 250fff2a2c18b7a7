/**
 * Whether the server may evict a store's keys. The durable keys (journal, cursors) have no expiry,
 * so only the `allkeys-*` maxmemory policies touch them; a server that refuses `CONFIG` (some
 * managed ones) is not checked.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as EffectRedis from "effect/persistence/Redis"

/** The sentence refusing the server's eviction policy, or `undefined` when it keeps keys without expiry. */
export const evictionProblem = (redis: EffectRedis.Redis["Service"], what: string): Effect.Effect<string | undefined> =>
  Effect.map(Effect.option(redis.send<ReadonlyArray<string>>("CONFIG", "GET", "maxmemory-policy")), (reply) => {
    const policy = Option.getOrUndefined(reply)?.[1]
    return policy !== undefined && policy.startsWith("allkeys-")
      ? `the server's maxmemory-policy is ${policy}, which may evict ${what}; set it to noeviction (or a volatile-* policy)`
      : undefined
  })
