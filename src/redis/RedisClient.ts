/**
 * Effect's `Redis` service (`effect/persistence`) over an `ioredis` client: what the Redis layers
 * need in context. `RedisClient.layer({ url })` opens a connection (and at the end closes it) and
 * provides `Redis` (`RedisClient.layerCluster({ nodes })` over a Redis Cluster); the layers take it
 * from context, so an application that already provides `Redis` (from another client) uses that one.
 *
 * ioredis runs unchanged on Bun, Deno and Node, reconnects by itself, and pipelines the commands
 * of concurrent fibers on one connection. The defaults here suit a journal: a command sent on a
 * connection that drops fails at once, not re-sent behind the caller's back (the journal retries an
 * append by its id, so it is never stored twice; ioredis alone would leave it, and the pipelined
 * commands behind it, waiting for `commandTimeout`), a command that waits for a connection fails
 * after one reconnect attempt instead of twenty, and a reply that does not come within 10 s fails
 * its command (`commandTimeout`; the blocking reads of `follow` wait 1 s at a time).
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as EffectRedis from "effect/persistence/Redis"
import { Cluster, type ClusterNode, type ClusterOptions, Redis as IORedis, type RedisOptions } from "ioredis"
import type { TaggedErrorClass } from "../internal/errors.ts"
import { redactUrl } from "../internal/redact.ts"
import { integerProblem } from "../internal/validate.ts"
import { clusterSend, reservedOnCluster } from "./internal/cluster.ts"
import { type Commander, failInFlightOnClose, quit, sender } from "./internal/connection.ts"
import { prefixProblem } from "./internal/keys.ts"
import { liveClock } from "./internal/liveClock.ts"

/**
 * The fields of a `RedisClientError`.
 *
 * @since 0.1.0
 * @category errors
 */
export interface RedisClientErrorFields {
  readonly method: string
  readonly message: string
  readonly cause?: unknown
}

const RedisClientErrorBase: TaggedErrorClass<"RedisClientError", RedisClientErrorFields> = Data.TaggedError("RedisClientError")

/**
 * The server could not be reached when the client was opened (the message names the address,
 * without a password).
 *
 * @since 0.1.0
 * @category errors
 */
export class RedisClientError extends RedisClientErrorBase {}

/**
 * Options of `make` and `layer`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisClientOptions {
  /** `redis://[user:password@]host:port[/db]` (`rediss://` for TLS); default `redis://127.0.0.1:6379`. */
  readonly url?: string | undefined
  /** ioredis options, over this module's defaults (see the module's doc). */
  readonly options?: RedisOptions | undefined
  /**
   * The pool of connections behind `Redis.reserve`: each journal's follow watcher holds one while
   * the journal is followed, each append with `wait`/`waitAof` one while it runs, a restore of more
   * than 1,000 records one. `maxConnections` (default 10); a reservation that waits longer than
   * `acquireTimeoutMs` (default 10,000) for a free one fails, naming the pool's size.
   */
  readonly pool?: { readonly maxConnections?: number | undefined; readonly acquireTimeoutMs?: number | undefined } | undefined
}

/** The default address. */
export const DEFAULT_URL = "redis://127.0.0.1:6379"

/** `url` without its password, for messages. */
export { redactUrl }

const defaults: RedisOptions = {
  lazyConnect: true,
  maxRetriesPerRequest: 1,
  autoResendUnfulfilledCommands: false,
  enableAutoPipelining: true,
  connectTimeout: 5_000,
  commandTimeout: 10_000
}

/** Connects `client`, or stops it (no reconnecting in the background) and fails naming `where`. */
const connect = (client: Commander & { readonly connect: () => Promise<unknown> }, where: string, what: string) =>
  Effect.tryPromise({
    try: () =>
      client.connect().catch((cause) => {
        client.disconnect()
        throw cause
      }),
    catch: (cause) =>
      new RedisClientError({
        method: "make",
        message: `RedisClient: cannot connect ${what} to ${where}: ${cause instanceof Error ? cause.message : String(cause)}`,
        cause
      })
  })

/** A client's duplicate (same server or cluster, same options), connected; ioredis' error events muted. */
const duplicateOf = <C extends Commander & { readonly connect: () => Promise<unknown>; readonly on: (event: "error", f: () => void) => unknown }>(
  duplicate: () => C,
  where: string,
  what: string
): Effect.Effect<C, EffectRedis.RedisError> =>
  Effect.suspend(() => {
    const connection = duplicate()
    connection.on("error", () => {})
    return Effect.as(Effect.mapError(connect(connection, where, what), (error) => new EffectRedis.RedisError({ cause: error })), connection)
  })

/** A client that subscribes to channels: an ioredis `Redis` or `Cluster`. */
interface Subscriber extends Commander {
  readonly on: (event: "message", f: (from: string, message: string) => void) => unknown
  readonly subscribe: (channel: string) => Promise<unknown>
}

/** The settings of the pool of reserved connections. */
interface Pool {
  readonly maxConnections: number
  readonly acquireTimeoutMs: number
}

/** The pool's settings with their defaults, or a `RedisClientError` naming a bad one (checked before connecting). */
const poolOf = (pool: RedisClientOptions["pool"]): Effect.Effect<Pool, RedisClientError> => {
  const maxConnections = pool?.maxConnections ?? 10
  const acquireTimeoutMs = pool?.acquireTimeoutMs ?? 10_000
  const problem = integerProblem("pool.maxConnections", maxConnections, 1) ?? integerProblem("pool.acquireTimeoutMs", acquireTimeoutMs, 1)
  return problem === undefined ? Effect.succeed({ maxConnections, acquireTimeoutMs }) : Effect.fail(new RedisClientError({ method: "make", message: `RedisClient: ${problem}` }))
}

/** Effect's `Redis` over a shared `send`, subscribers from `subscriber`, and reserved connections from `connect`. */
const service = (parts: {
  readonly send: EffectRedis.Redis["Service"]["send"]
  readonly subscriber: Effect.Effect<Subscriber, EffectRedis.RedisError>
  readonly connect: Effect.Effect<{ readonly send: EffectRedis.Redis["Service"]["send"]; readonly close: Effect.Effect<void> }, EffectRedis.RedisError>
  readonly pool: Pool
}): Effect.Effect<EffectRedis.Redis["Service"], RedisClientError, Scope.Scope> =>
  Effect.gen(function*() {
    const { acquireTimeoutMs, maxConnections } = parts.pool
    const redis = yield* Effect.mapError(
      EffectRedis.make({
        send: parts.send,
        subscribe: (channel: string, onMessage: (message: EffectRedis.RedisMessage) => void) =>
          Effect.gen(function*() {
            const subscriber = yield* Effect.acquireRelease(parts.subscriber, quit)
            subscriber.on("message", (from: string, message: string) => {
              if (from === channel) onMessage({ channel: from, message })
            })
            yield* Effect.tryPromise({ try: () => subscriber.subscribe(channel), catch: (cause) => new EffectRedis.RedisError({ cause }) })
            // ioredis re-subscribes after a reconnect by itself; the listener ends with the scope.
            return Effect.never
          }),
        connect: parts.connect,
        pool: { maxConnections, acquireTimeout: acquireTimeoutMs }
      }).pipe(liveClock),
      (cause) => new RedisClientError({ method: "make", message: `RedisClient: ${String(cause)}`, cause })
    )
    const exhausted = new Error(
      `all ${maxConnections} reserved connections of the client are in use and none came free within ${acquireTimeoutMs} ms (raise the client's pool.maxConnections)`
    )
    return {
      ...redis,
      reserve: Effect.mapError(liveClock(redis.reserve), (error) => Cause.isTimeoutError(error.cause) ? new EffectRedis.RedisError({ cause: exhausted }) : error)
    }
  })

/**
 * Opens an ioredis connection (closed when the scope closes) and builds Effect's `Redis` service
 * over it: commands and scripts on the shared connection, `subscribe` and `reserve` on connections
 * of their own.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: RedisClientOptions = {}): Effect.Effect<EffectRedis.Redis["Service"], RedisClientError, Scope.Scope> =>
  Effect.gen(function*() {
    const pool = yield* poolOf(options.pool)
    const url = options.url ?? DEFAULT_URL
    const where = redactUrl(url)
    const client = yield* Effect.acquireRelease(Effect.sync(() => new IORedis(url, { ...defaults, ...options.options })), quit)
    // ioredis reports errors on the client as events too; each command's own error is what counts.
    client.on("error", () => {})
    failInFlightOnClose(client)
    yield* connect(client, where, "the client")
    const duplicate = duplicateOf(() => {
      const connection = client.duplicate()
      failInFlightOnClose(connection)
      return connection
    }, where, "a reserved connection")
    return yield* service({
      send: sender(client),
      subscriber: duplicate,
      connect: Effect.map(duplicate, (connection) => ({ send: sender(connection), close: Effect.sync(() => connection.disconnect()) })),
      pool
    })
  })

/**
 * Options of `makeCluster` and `layerCluster`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisClusterOptions {
  /** Some of the cluster's nodes (ioredis finds the others). */
  readonly nodes: ReadonlyArray<ClusterNode>
  /** ioredis cluster options; `redisOptions` (each node connection's) over this module's defaults. */
  readonly options?: ClusterOptions | undefined
  /** The pool of reserved connections (each one a connection per node it needs). */
  readonly pool?: RedisClientOptions["pool"]
}

/**
 * Opens an ioredis `Cluster` client (closed when the scope closes) and builds Effect's `Redis`
 * service over it. Commands with keys go to the node of their slot; `SCRIPT LOAD` to every master,
 * so that a script runs wherever its keys live; a reserved connection sends `WAIT`, `MULTI` …
 * `EXEC` to the node of the commands with keys it sends (see the README).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCluster = (options: RedisClusterOptions): Effect.Effect<EffectRedis.Redis["Service"], RedisClientError, Scope.Scope> =>
  Effect.gen(function*() {
    const pool = yield* poolOf(options.pool)
    const where = `the cluster at ${options.nodes.map((node) => typeof node === "object" ? `${node.host ?? "127.0.0.1"}:${node.port ?? 6379}` : String(node)).join(", ")}`
    const nodeOptions: RedisOptions = { ...defaults, ...options.options?.redisOptions }
    const clusterOptions: ClusterOptions = { lazyConnect: true, enableAutoPipelining: true, ...options.options, redisOptions: nodeOptions }
    const cluster = yield* Effect.acquireRelease(Effect.sync(() => new Cluster([...options.nodes], clusterOptions)), quit)
    cluster.on("error", () => {})
    cluster.on("+node", failInFlightOnClose)
    yield* connect(cluster, where, "the client")
    return yield* service({
      send: clusterSend(cluster),
      subscriber: duplicateOf(() => cluster.duplicate(), where, "a subscriber"),
      connect: Effect.sync(() => reservedOnCluster(cluster, nodeOptions)),
      pool
    })
  })

/**
 * Effect's `Redis` service over an ioredis connection to `url` (see `make`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: RedisClientOptions = {}): Layer.Layer<EffectRedis.Redis, RedisClientError> => Layer.effect(EffectRedis.Redis, make(options))

/**
 * Effect's `Redis` service over an ioredis `Cluster` (see `makeCluster`):
 * `RedisClient.layerCluster({ nodes: [{ host, port }, …] })`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCluster = (options: RedisClusterOptions): Layer.Layer<EffectRedis.Redis, RedisClientError> => Layer.effect(EffectRedis.Redis, makeCluster(options))

/**
 * The client's options from `Config`: `REDIS_URL` (default `redis://127.0.0.1:6379`).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<RedisClientOptions> = Config.option(Config.Redacted("REDIS_URL")).pipe(
  Config.map((url): RedisClientOptions => Option.isSome(url) ? { url: Redacted.value(url.value) } : {})
)

/**
 * `layer` with its options from `config` (the environment by default).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<EffectRedis.Redis, RedisClientError | Config.ConfigError> = Layer.effect(
  EffectRedis.Redis,
  Effect.flatMap(config, make)
)

/**
 * Removes every key of the annals store under `prefix` (the keys under the hash tag `{prefix}`:
 * journal, snapshots and cursors), by `SCAN` and `UNLINK`; returns how many it removed. For tests and
 * for retiring a store; on Redis Cluster, run it against the node that holds the tag's slot.
 *
 * @since 0.1.0
 * @category utils
 */
export const removeStore = (prefix: string): Effect.Effect<number, RedisClientError | EffectRedis.RedisError, EffectRedis.Redis> =>
  Effect.gen(function*() {
    // A valid prefix has no glob characters, so the pattern matches this store's keys only.
    const problem = prefixProblem(prefix)
    if (problem !== undefined) return yield* Effect.fail(new RedisClientError({ method: "removeStore", message: `RedisClient.removeStore: ${problem}` }))
    const redis = yield* EffectRedis.Redis
    let cursor = "0"
    let removed = 0
    do {
      const [next, keys] = yield* redis.send<readonly [string, ReadonlyArray<string>]>("SCAN", cursor, "MATCH", `{${prefix}}:*`, "COUNT", "1000")
      cursor = next
      if (keys.length > 0) removed += yield* redis.send<number>("UNLINK", ...keys)
    } while (cursor !== "0")
    return removed
  })
