/**
 * The CursorStore on Redis: one hash under the store's hash tag `{prefix}` holding every
 * subscription's entry (cursor, lease, last fencing token) by name, as JSON.
 *
 * The rules (forward-only cursors, leases, fencing tokens) are those of every layer
 * (`CursorStore.make`). Each change of a name reads its entry, decides, and stores the result with
 * a compare-and-set Lua script that replaces the entry only if it is still the one read (else,
 * after a short random pause, it reads again and decides again), so processes on many machines
 * sharing the server take and renew leases safely: no two owners hold a name at once, and a stale
 * owner's commit fails with `LeaseLost`. A compare-and-set whose reply is lost fails saying the
 * change may or may not have been applied (the same call again is safe: it decides on what it reads). Expiries are the acquirer's clock plus the ttl, so clocks need agree only within
 * the ttl. A failed command is a `CursorStoreError` naming the operation, the name and the server's
 * or client's error; a damaged entry one naming its key and name.
 *
 * A server whose `maxmemory-policy` may evict keys without expiry (`allkeys-*`) is refused: an
 * evicted cursor would deliver its records again, an evicted lease would let two instances run.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import * as EffectRedis from "effect/persistence/Redis"
import { type CursorEntry, CursorStore, CursorStoreError, type EntryStore, make as makeStore } from "../CursorStore.ts"
import { layerFromConfig, merged } from "../internal/config.ts"
import { type CursorFields, cursorEntryOf, cursorFields, cursorFieldsProblem } from "../internal/cursorFields.ts"
import { redisPrefix } from "./internal/config.ts"
import * as Scripts from "./internal/cursorScripts.ts"
import { describeRedisFailure, isReplyError } from "./internal/errors.ts"
import { evictionProblem } from "./internal/eviction.ts"
import { DEFAULT_PREFIX, prefixProblem, storeKeys } from "./internal/keys.ts"
import { liveClock } from "./internal/liveClock.ts"
import * as Client from "./RedisClient.ts"

/**
 * Options of `make` / `layerClient`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisCursorStoreOptions {
  /** Isolates this store's keys (all under the hash tag `{prefix}`); default `"annals"`. */
  readonly prefix?: string | undefined
}

/** Compare-and-set attempts of one update before it fails (each lost one means another update of the name landed). */
const ATTEMPTS = 100

/** The longest pause (ms) between two attempts: each pause is random, up to twice the one before, from 1 ms up to this. */
const MAX_PAUSE_MS = 50

/** The pause after `lost` lost attempts in a row: random ("full jitter"), so racing updaters spread out. */
const pause = (lost: number) =>
  liveClock(Effect.flatMap(Random.nextBetween(0, Math.min(MAX_PAUSE_MS, 2 ** lost)), (ms) => Effect.sleep(ms)))

/**
 * Builds the CursorStore over the `Redis` service in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: RedisCursorStoreOptions = {}): Effect.Effect<CursorStore, CursorStoreError, EffectRedis.Redis> =>
  Effect.gen(function*() {
    const prefix = options.prefix ?? DEFAULT_PREFIX
    const badPrefix = prefixProblem(prefix)
    if (badPrefix !== undefined) return yield* new CursorStoreError({ method: "open", message: `RedisCursorStore: ${badPrefix}` })
    const redis = yield* EffectRedis.Redis
    const key = storeKeys(prefix).cursors
    const evicting = yield* evictionProblem(redis, "cursors and leases")
    if (evicting !== undefined) return yield* new CursorStoreError({ method: "open", message: `RedisCursorStore: ${evicting}` })

    const run = <A>(method: string, what: string, effect: Effect.Effect<A, EffectRedis.RedisError>) =>
      Effect.mapError(effect, (cause) =>
        new CursorStoreError({ method, message: `CursorStore.${method}: cannot ${what} in ${key}: ${describeRedisFailure(cause)}`, cause }))
    const decode = (method: string, name: string, value: string | null): Effect.Effect<CursorEntry | undefined, CursorStoreError> => {
      if (value === null) return Effect.succeed(undefined)
      let fields: unknown
      try {
        fields = JSON.parse(value)
      } catch {
        fields = undefined
      }
      const problem = Array.isArray(fields) ? cursorFieldsProblem(fields) : "it is not a JSON array"
      return problem === undefined
        ? Effect.succeed(cursorEntryOf(fields as CursorFields))
        : Effect.fail(new CursorStoreError({ method, message: `CursorStore.${method}: the entry of ${JSON.stringify(name)} in ${key} is damaged: ${problem}` }))
    }
    const read = (method: string, name: string) => run(method, `read the cursor of ${JSON.stringify(name)}`, redis.send<string | null>("HGET", key, name))

    const entries: EntryStore = {
      read: (name) => Effect.flatMap(read("get", name), (value) => decode("get", name, value)),
      update: (method, name, change) =>
        Effect.gen(function*() {
          for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
            const value = yield* read(method, name)
            const { result, store } = change(yield* decode(method, name, value))
            if (store === undefined || (store === null && value === null)) return result
            const next = store === null ? "" : JSON.stringify(cursorFields(store))
            const replaced = yield* Effect.mapError(redis.eval(Scripts.compareAndSet)(key, name, value ?? "", next), (cause) =>
              new CursorStoreError({
                method,
                message: `CursorStore.${method}: cannot update the cursor of ${JSON.stringify(name)} in ${key}: ${describeRedisFailure(cause)}; ${
                  isReplyError(cause) ? "nothing was stored" : "the reply was lost, so the change may or may not have been applied"
                }`,
                cause
              }))
            if (replaced === 1) return result
            if (attempt < ATTEMPTS) yield* pause(attempt)
          }
          return yield* new CursorStoreError({
            method,
            message: `CursorStore.${method}: the cursor of ${JSON.stringify(name)} in ${key} changed under ${ATTEMPTS} attempts in a row; nothing was stored`
          })
        }),
      entries: Effect.gen(function*() {
        const all: Array<readonly [string, CursorEntry]> = []
        const seen = new Set<string>()
        let cursor = "0"
        do {
          const [next, flat] = yield* run("list", "read the cursors", redis.send<readonly [string, ReadonlyArray<string>]>("HSCAN", key, cursor, "COUNT", "1000"))
          cursor = next
          for (let k = 0; k + 1 < flat.length; k += 2) {
            const name = flat[k]!
            // HSCAN may return a field twice while the hash is rehashed.
            if (seen.has(name)) continue
            seen.add(name)
            const entry = yield* decode("list", name, flat[k + 1]!)
            if (entry !== undefined) all.push([name, entry])
          }
        } while (cursor !== "0")
        return all
      })
    }
    return makeStore(entries)
  })

/**
 * The CursorStore over the `Redis` service in context (to share one connection with the other Redis layers).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (options: RedisCursorStoreOptions = {}): Layer.Layer<CursorStore, CursorStoreError, EffectRedis.Redis> =>
  Layer.effect(CursorStore, make(options))

/**
 * The CursorStore with a client of its own (see `RedisClient.layer`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Client.RedisClientOptions & RedisCursorStoreOptions = {}
): Layer.Layer<CursorStore, CursorStoreError | Client.RedisClientError> => layerClient(options).pipe(Layer.provide(Client.layer(options)))

/**
 * The options of `layer` from `Config`: the client's (`REDIS_URL`, see `RedisClient.config`) and
 * `ANNALS_REDIS_PREFIX` (default `annals`).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Client.RedisClientOptions & RedisCursorStoreOptions> = merged(Client.config, Config.all({ prefix: redisPrefix }))

/**
 * The CursorStore over a client of its own, with the options from `config` (the environment by
 * default); `overrides` replace what it read.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  overrides?: Partial<Client.RedisClientOptions & RedisCursorStoreOptions>
): Layer.Layer<CursorStore, CursorStoreError | Client.RedisClientError | Config.ConfigError> => layerFromConfig(config, layer, overrides)
