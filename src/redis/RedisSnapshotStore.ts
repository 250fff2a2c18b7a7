/**
 * The SnapshotStore on Redis: each stream's snapshots in one sorted set scored by version (the
 * state as base64 in the member), and per namespace a set of the ids that have snapshots, all
 * under the store's hash tag `{prefix}` (one slot, so it also runs on Redis Cluster).
 *
 * `put` is one Lua script that upserts the snapshot and drops the oldest beyond `keep`, so puts of
 * one stream from many processes keep exactly `keep`. `get` selects on the server (the youngest
 * with version ≤ `maxVersion` and timestamp ≤ `maxTimestamp`, loading one snapshot at a time). `scan` lists the namespace's ids
 * with `SSCAN`, orders them as JavaScript compares strings (UTF-16 code units), as every layer
 * does, and reads their latest snapshots in pages. A failed command is a `SnapshotStoreError`
 * naming the operation, the stream and the server's or client's error; a damaged member one naming
 * its key; a state too large for one argument (the server's `proto-max-bulk-len`, read at open, or
 * this runtime's longest string) one naming its size and the limit, before anything is sent.
 *
 * Snapshots can always be rebuilt from the journal, so this store may live on a server that evicts
 * keys (a cache): an evicted snapshot only makes the next load replay more.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as EffectRedis from "effect/persistence/Redis"
import { layerFromConfig, merged, snapshotKeep } from "../internal/config.ts"
import { resolveKeep, scanProblem, snapshotProblem, streamArgsProblem } from "../internal/snapshotChecks.ts"
import { failIf, formatStream } from "../internal/validate.ts"
import { type Snapshot, SnapshotStore, SnapshotStoreError, type SnapshotStoreOptions } from "../SnapshotStore.ts"
import { redisPrefix } from "./internal/config.ts"
import { describeRedisFailure } from "./internal/errors.ts"
import { DEFAULT_PREFIX, prefixProblem, storeKeys } from "./internal/keys.ts"
import { serverLimits } from "./internal/limits.ts"
import { fromMember, toMember } from "./internal/snapshotEntries.ts"
import * as Scripts from "./internal/snapshotScripts.ts"
import * as Client from "./RedisClient.ts"

/**
 * Options of `make` / `layerClient`: `keep` (see `SnapshotStoreOptions`) and the key `prefix`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisSnapshotStoreOptions extends SnapshotStoreOptions {
  /** Isolates this store's keys (all under the hash tag `{prefix}`); default `"annals"`. */
  readonly prefix?: string | undefined
}

/** Ids whose latest snapshots one `scan` round trip reads. */
const SCAN_PAGE = 100

const byId = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

/**
 * Builds the SnapshotStore over the `Redis` service in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: RedisSnapshotStoreOptions = {}): Effect.Effect<SnapshotStore, SnapshotStoreError, EffectRedis.Redis> =>
  Effect.gen(function*() {
    const keep = resolveKeep(options)
    if (typeof keep === "string") return yield* new SnapshotStoreError({ method: "make", message: keep })
    const prefix = options.prefix ?? DEFAULT_PREFIX
    const badPrefix = prefixProblem(prefix)
    if (badPrefix !== undefined) return yield* new SnapshotStoreError({ method: "make", message: `RedisSnapshotStore: ${badPrefix}` })
    const redis = yield* EffectRedis.Redis
    const keys = storeKeys(prefix)
    const limits = yield* serverLimits(redis)
    const run = <A>(method: string, what: string, effect: Effect.Effect<A, EffectRedis.RedisError>) =>
      Effect.mapError(effect, (cause) =>
        new SnapshotStoreError({
          method,
          message: `SnapshotStore.${method}: cannot ${what} (Redis keys ${keys.tag}): ${describeRedisFailure(cause)}`,
          cause
        }))
    const error = (method: string) => (message: string) => new SnapshotStoreError({ method, message })
    const decode = (method: string, member: string, namespace: string, id: string): Effect.Effect<Snapshot, SnapshotStoreError> => {
      const decoded = fromMember(member, namespace, id, `${keys.snapshots(namespace, id)} (stream ${formatStream({ namespace, id })})`)
      return typeof decoded === "string" ? Effect.fail(error(method)(`SnapshotStore.${method}: ${decoded}`)) : Effect.succeed(decoded)
    }

    /** Every id of `namespace`'s set, by `SSCAN` pages. */
    const idsOf = (namespace: string) =>
      Effect.gen(function*() {
        const ids: Array<string> = []
        let cursor = "0"
        do {
          const [next, page] = yield* run(
            "scan",
            `list the snapshot ids of namespace ${JSON.stringify(namespace)}`,
            redis.send<readonly [string, ReadonlyArray<string>]>("SSCAN", keys.snapshotIds(namespace), cursor, "COUNT", "1000")
          )
          cursor = next
          ids.push(...page)
        } while (cursor !== "0")
        // SSCAN may return a member twice while the set is rehashed.
        return Array.from(new Set(ids)).sort(byId)
      })

    /** The latest snapshots of one page of ids (an id deleted meanwhile has none). */
    const latestOf = (namespace: string, ids: ReadonlyArray<string>) =>
      Effect.flatMap(
        run("scan", `read the snapshots of namespace ${JSON.stringify(namespace)}`, redis.eval(Scripts.latest)(ids.map((id) => keys.snapshots(namespace, id)))),
        (members) =>
          Effect.forEach(
            ids.flatMap((id, i) => (members[i] === null || members[i] === undefined ? [] : [[id, members[i]] as const])),
            ([id, member]) => decode("scan", member, namespace, id)
          )
      )

    return SnapshotStore.of({
      get: (namespace, id, criteria) =>
        Effect.andThen(
          failIf(streamArgsProblem("get", namespace, id, criteria), error("get")),
          Effect.flatMap(
            Effect.suspend(() => run(
              "get",
              `read a snapshot of stream ${formatStream({ namespace, id })}`,
              redis.eval(Scripts.get)(
                keys.snapshots(namespace, id),
                criteria?.maxVersion ?? Number.MAX_SAFE_INTEGER,
                criteria?.maxTimestamp ?? Number.MAX_SAFE_INTEGER
              )
            )),
            (member) => member === null ? Effect.succeed(Option.none()) : Effect.map(decode("get", member, namespace, id), Option.some)
          )
        ),
      put: (snapshot) =>
        Effect.andThen(
          failIf(snapshotProblem(snapshot), error("put")),
          Effect.suspend(() => {
            const what = `store a snapshot of stream ${formatStream(snapshot)} at version ${snapshot.version}`
            const encoded = toMember(snapshot, limits)
            if ("problem" in encoded) return Effect.fail(error("put")(`SnapshotStore.put: cannot ${what}: ${encoded.problem}; nothing was stored`))
            return run(
              "put",
              what,
              redis.eval(Scripts.put)([keys.snapshots(snapshot.namespace, snapshot.id), keys.snapshotIds(snapshot.namespace)], snapshot.version, encoded.member, keep, snapshot.id)
            )
          })
        ).pipe(Effect.asVoid),
      delete: (namespace, id) =>
        Effect.andThen(
          failIf(streamArgsProblem("delete", namespace, id), error("delete")),
          Effect.suspend(() => run(
            "delete",
            `delete the snapshots of stream ${formatStream({ namespace, id })}`,
            redis.eval(Scripts.remove)([keys.snapshots(namespace, id), keys.snapshotIds(namespace)], id)
          ))
        ).pipe(Effect.asVoid),
      scan: (namespace) =>
        Stream.unwrap(Effect.andThen(
          failIf(scanProblem(namespace), error("scan")),
          Effect.map(Effect.suspend(() => idsOf(namespace)), (ids) =>
            Stream.fromIterable(Array.from({ length: Math.ceil(ids.length / SCAN_PAGE) }, (_, page) => ids.slice(page * SCAN_PAGE, (page + 1) * SCAN_PAGE))).pipe(
              Stream.mapEffect((page) => latestOf(namespace, page)),
              Stream.flatMap(Stream.fromIterable)
            ))
        ))
    })
  })

/**
 * The SnapshotStore over the `Redis` service in context (to share one connection with the other Redis layers).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (options: RedisSnapshotStoreOptions = {}): Layer.Layer<SnapshotStore, SnapshotStoreError, EffectRedis.Redis> =>
  Layer.effect(SnapshotStore, make(options))

/**
 * The SnapshotStore with a client of its own (see `RedisClient.layer`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Client.RedisClientOptions & RedisSnapshotStoreOptions = {}
): Layer.Layer<SnapshotStore, SnapshotStoreError | Client.RedisClientError> => layerClient(options).pipe(Layer.provide(Client.layer(options)))

/**
 * The options of `layer` from `Config`: the client's (`REDIS_URL`, see `RedisClient.config`),
 * `ANNALS_REDIS_PREFIX` (default `annals`) and `ANNALS_SNAPSHOT_KEEP` (≥ 1, default 1).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Client.RedisClientOptions & RedisSnapshotStoreOptions> = merged(
  Client.config,
  Config.all({ prefix: redisPrefix, keep: snapshotKeep })
)

/**
 * The SnapshotStore over a client of its own, with the options from `config` (the environment by
 * default); `overrides` replace what it read.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  overrides?: Partial<Client.RedisClientOptions & RedisSnapshotStoreOptions>
): Layer.Layer<SnapshotStore, SnapshotStoreError | Client.RedisClientError | Config.ConfigError> => layerFromConfig(config, layer, overrides)
