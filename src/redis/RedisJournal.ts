/**
 * The Journal on Redis Streams: many processes append to and follow one log in one Redis.
 *
 * Every append is one Lua script (`internal/journalScripts.ts`): it checks the stream's version,
 * takes the next seqs and adds the records to the log (a Redis Stream whose entry ids are the
 * seqs), to the stream's own copy (entry ids are the versions, so a `read` is one `XRANGE`) and to
 * the version hash, atomically. Redis runs one script at a time, so seqs are handed out in commit
 * order and every record is settled the moment it is visible: `replayFrom`, `follow` and `lastSeq`
 * agree in every process.
 *
 * `follow` wakes on this process's own appends and, for other processes' appends, on an
 * `XREAD BLOCK` of the log on a reserved connection while a follow stream runs (re-issued every
 * `blockMs`, so a lost connection delays followers, never loses a record). Reads are plain `XRANGE`s
 * followed by a read of the position they are checked against.
 *
 * Each append carries an id, and the script keeps the append's outcome under it for `retryWindowMs`
 * (by the server's clock, whatever happens to the records meanwhile). When its reply is lost — the
 * connection dropped or timed out, so it may or may not have run — the append is sent again with
 * the same id: the script returns the first outcome if that one was stored, so a retry never
 * stores it twice, nor reports a stored append as a conflict. Only when no retry reaches the server
 * does the append fail, saying its outcome is unknown.
 *
 * What an acknowledged append survives is Redis' persistence (`appendonly`, `appendfsync`) and
 * replication; `wait` and `waitAof` make each append wait for replicas or an fsync (see the README).
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as EffectRedis from "effect/persistence/Redis"
import { integerAtLeast, layerFromConfig, merged } from "../internal/config.ts"
import { FOLLOW_PAGE_RECORDS, follow as followLog } from "../internal/follow.ts"
import { readArgumentError, replayMethods, seqArgumentError, versionArgumentError } from "../internal/journalArguments.ts"
import { observe } from "../internal/observedJournal.ts"
import { formatStream, integerProblem } from "../internal/validate.ts"
import type { JournalRecord } from "../Journal.ts"
import { Journal, JournalError, JournalTruncated } from "../Journal.ts"
import { redisPrefix } from "./internal/config.ts"
import { evictionProblem } from "./internal/eviction.ts"
import { Followers } from "./internal/followers.ts"
import { makeAppend } from "./internal/journalAppend.ts"
import { makeContext, numbers } from "./internal/journalContext.ts"
import { fromLogEntry, fromStreamEntry, trimOf } from "./internal/journalEntries.ts"
import { makeRestore } from "./internal/journalRestore.ts"
import * as Scripts from "./internal/journalScripts.ts"
import { DEFAULT_PREFIX, prefixProblem, storeKeys } from "./internal/keys.ts"
import { serverLimits } from "./internal/limits.ts"
import { liveClock } from "./internal/liveClock.ts"
import * as Client from "./RedisClient.ts"

/**
 * Options of `make` / `layerClient`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisJournalOptions {
  /** Isolates this journal's keys (all under the hash tag `{prefix}`); default `"annals"`. */
  readonly prefix?: string | undefined
  /**
   * How long one `XREAD BLOCK` of the follow watcher waits before it is sent again (default 1,000 ms).
   * Keep it well below the client's `commandTimeout` (RedisClient's default 10,000 ms): a blocking
   * read that outlasts it fails as timed out each time, and followers then learn of other
   * processes' appends only after each such failure (and its pause).
   */
  readonly blockMs?: number | undefined
  /**
   * After each append, `WAIT replicas timeoutMs` (`timeoutMs` ≥ 1: Redis' 0 would wait for ever): fails
   * the append (stored, not confirmed) when fewer replicas acknowledge. Each append then runs its
   * script and its wait on a reserved connection of the client's pool.
   */
  readonly wait?: { readonly replicas: number; readonly timeoutMs: number } | undefined
  /** After each append, `WAITAOF local replicas timeoutMs` (Redis 7.2+, `timeoutMs` ≥ 1, on a reserved connection as `wait`): the append is fsynced to the AOF locally (`local: 1`) and on replicas. */
  readonly waitAof?: { readonly local: 0 | 1; readonly replicas: number; readonly timeoutMs: number } | undefined
  /** How many times an append whose reply was lost is sent again with its id (default 3, 200 ms apart, doubling). */
  readonly retries?: number | undefined
  /**
   * How long each append's id and outcome are kept, so that a retry after a lost reply finds them
   * (default 600,000 ms: 10 minutes, far above `retries` × the client's `commandTimeout`).
   */
  readonly retryWindowMs?: number | undefined
}

const REPLAY_PAGE = 2_000
const TRUNCATE_BATCH = 1_000

/**
 * Builds the Journal over the `Redis` service in context; the watcher that wakes followers runs
 * until the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: RedisJournalOptions = {}): Effect.Effect<Journal, JournalError, EffectRedis.Redis | Scope.Scope> =>
  Effect.gen(function*() {
    const redis = yield* EffectRedis.Redis
    const prefix = options.prefix ?? DEFAULT_PREFIX
    const blockMs = options.blockMs ?? 1_000
    const retries = options.retries ?? 3
    const retryWindowMs = options.retryWindowMs ?? 600_000
    const badOption = prefixProblem(prefix) ?? integerProblem("blockMs", blockMs, 1) ?? integerProblem("retries", retries, 0) ??
      integerProblem("retryWindowMs", retryWindowMs, 1) ??
      (options.wait === undefined ? undefined : integerProblem("wait.replicas", options.wait.replicas, 0) ?? integerProblem("wait.timeoutMs", options.wait.timeoutMs, 1)) ??
      (options.waitAof === undefined ? undefined : integerProblem("waitAof.local", options.waitAof.local, 0) ?? integerProblem("waitAof.replicas", options.waitAof.replicas, 0) ??
        integerProblem("waitAof.timeoutMs", options.waitAof.timeoutMs, 1))
    if (badOption !== undefined) return yield* Effect.fail(new JournalError({ method: "open", message: `RedisJournal: ${badOption}` }))
    const keys = storeKeys(prefix)
    const context = makeContext(redis, keys, yield* serverLimits(redis))
    const { run, tracked } = context
    const head = context.positionFor("lastSeq")
    if (options.waitAof !== undefined) {
      const version = yield* run("open", "read the server's version", redis.send<string>("INFO", "server"))
      const [major = 0, minor = 0] = (/redis_version:(\d+)\.(\d+)/.exec(version) ?? []).slice(1).map(Number)
      if (major < 7 || (major === 7 && minor < 2)) {
        return yield* Effect.fail(new JournalError({ method: "open", message: `RedisJournal: waitAof needs Redis 7.2 or later (WAITAOF); this server is ${major}.${minor}` }))
      }
    }
    const evicting = yield* evictionProblem(redis, "the journal's keys and lose events")
    if (evicting !== undefined) return yield* Effect.fail(new JournalError({ method: "open", message: `RedisJournal: ${evicting}` }))
    yield* head

    // Other processes' appends: while a follow stream of this journal runs, an XREAD BLOCK of the log
    // past the last entry known, on a connection of its own; after each return (an entry, or the time
    // out) one read of the position. (Without followers, a lone writer's every append woke it: two
    // more commands per append.)
    const followers = new Followers()
    let watched = tracked.settledSeq
    const watch = Effect.scoped(Effect.gen(function*() {
      const connection = yield* redis.reserve
      while (!context.isClosed() && followers.any) {
        // Everything up to settledSeq is known already (this process's own appends).
        yield* connection.send("XREAD", "BLOCK", String(blockMs), "COUNT", "1", "STREAMS", keys.log, `${Math.max(watched, tracked.settledSeq)}-0`)
        const position = yield* head
        watched = Math.max(watched, position.lastSeq)
      }
    }))
    // A watcher that cannot block (the server gone, no reserved connection free) reads the position
    // after a pause instead: followers still learn of other processes' appends, later.
    const retryPause = Effect.andThen(Effect.sleep(Math.min(blockMs, 1_000)), Effect.ignore(head))
    yield* Effect.forkScoped(liveClock(Effect.forever(Effect.andThen(followers.started, Effect.catch(watch, () => retryPause)))))
    yield* Effect.addFinalizer(() => Effect.sync(context.close))
    const append = makeAppend(context, { wait: options.wait, waitAof: options.waitAof, retries, retryWindowMs })

    const decodeFailure = (method: string, cause: unknown) =>
      new JournalError({ method, message: `Journal.${method}: a stored record is damaged: ${cause instanceof Error ? cause.message : String(cause)}`, cause })
    const decode = <A>(method: string, f: () => A) =>
      Effect.try({ try: f, catch: (cause) => decodeFailure(method, cause) })

    /**
     * Up to `count` entries of `key` with ids `from..to` (one XRANGE), then the position read after
     * them. Trimming removes records below the truncation point only, so every record of the page at
     * or above the point it read was there, and nothing at or above `removedBefore` was gone when the
     * page was read. (A script could read both at once, but an XRANGE inside a script costs Redis
     * several times what the command does: every field becomes a Lua string and back.)
     */
    const pageOf = (method: string, what: string, key: string, from: number, to: number | "+", count: number) =>
      Effect.flatMap(
        run(method, what, redis.send<ReadonlyArray<Scripts.Entry>>("XRANGE", key, `${from}-0`, to === "+" ? "+" : `${to}-0`, "COUNT", String(count))),
        (entries) => Effect.map(context.positionFor(method), (position) => ({ entries, position }))
      )

    /** Pages of the log from `first` on, as settled. */
    const logPages = (method: string, first: number) =>
      Stream.paginate(first, (from: number) =>
        Effect.flatMap(pageOf(method, "read records", keys.log, from, "+", REPLAY_PAGE), ({ entries, position }) =>
          decode(method, () => {
            const all = entries.map((entry) => fromLogEntry(entry, keys.log))
            const last = all[all.length - 1]
            return [untruncated(all, position.truncatedBefore), all.length < REPLAY_PAGE || last === undefined ? Option.none() : Option.some(last.seq + 1)] as const
          })))


    const { replayFrom, replayUntil } = replayMethods(logPages)

    const read: Journal["read"] = (stream, options) => {
      const invalid = readArgumentError(stream, options)
      if (invalid !== undefined) return Stream.fail(invalid)
      const key = keys.stream(stream.namespace, stream.id)
      if (options?.max === 0) return Stream.empty
      const to = options?.to ?? Number.MAX_SAFE_INTEGER
      // The page state carries what is left of `max`, so every run of the stream starts afresh.
      const first = { from: options?.from ?? 1, left: options?.max ?? Number.MAX_SAFE_INTEGER }
      return Stream.paginate(first, ({ from, left }) =>
        Effect.flatMap(
          pageOf("read", `read stream ${formatStream(stream)}`, key, from, to, Math.min(REPLAY_PAGE, left)),
          ({ entries, position }) =>
            decode("read", () => {
              const all = entries.map((entry) => fromStreamEntry(entry, stream.namespace, stream.id, key))
              const records = untruncated(all, position.truncatedBefore)
              const rest = left - records.length
              const last = all[all.length - 1]
              return [
                records,
                rest <= 0 || last === undefined || all.length < Math.min(REPLAY_PAGE, left) ? Option.none() : Option.some({ from: last.version + 1, left: rest })
              ] as const
            })
        ))
    }

    const follow: Journal["follow"] = (fromSeq) => {
      const bad = seqArgumentError("follow", "fromSeq", fromSeq)
      if (bad !== undefined) return Stream.fail(bad)
      return followers.counted(followLog(fromSeq, {
        page: (seq) =>
          context.isClosed() ? Effect.fail(context.closedError("follow")) : Effect.flatMap(
            // A read that the close cut short (the client closing under it) fails as closed, too.
            Effect.mapError(pageOf("follow", "read records", keys.log, seq, tracked.settledSeq, FOLLOW_PAGE_RECORDS), (error) =>
              context.isClosed() ? context.closedError("follow") : error),
            ({ entries, position }): Effect.Effect<ReadonlyArray<JournalRecord>, JournalError | JournalTruncated> => {
              if (context.isClosed()) return Effect.fail(context.closedError("follow"))
              if (Math.max(seq, 1) < position.removedBefore) {
                return Effect.fail(new JournalTruncated({ method: "follow", fromSeq: seq, truncatedBefore: position.truncatedBefore }))
              }
              // From `removedBefore` on there is no record below the truncation point: appends after a
              // truncation take their seqs from the checkpoint, which is at least the point.
              return decode("follow", () => entries.map((entry) => fromLogEntry(entry, keys.log)))
            }
          ),
        ready: (seq) => context.isClosed() || tracked.settledSeq >= seq,
        settled: context.settled
      }))
    }

    const truncateBefore: Journal["truncateBefore"] = (seq) => {
      const problem = integerProblem("seq", seq, 0)
      if (problem !== undefined) return Effect.fail(new JournalError({ method: "truncateBefore", message: `Journal.truncateBefore: ${problem}` }))
      const what = `truncate before seq ${seq}`
      // One batch below the point: read, then trimmed by a script that names every key it touches (Redis Cluster).
      const trimBatch = (before: number) =>
        Effect.flatMap(
          run("truncateBefore", what, redis.send<ReadonlyArray<Scripts.Entry>>("XRANGE", keys.log, "-", `${before - 1}-0`, "COUNT", String(TRUNCATE_BATCH))),
          (entries) =>
            entries.length === 0 ? Effect.succeed(0) : Effect.flatMap(
              decode("truncateBefore", () => trimOf(entries, keys.log, keys.stream)),
              ({ copies, through }) => Effect.as(run("truncateBefore", what, redis.eval(Scripts.trim)([keys.meta, keys.log], through, copies)), entries.length)
            )
        )
      // First the truncation point moves (what every reader goes by); then the trimming, batch by batch.
      return Effect.flatMap(run("truncateBefore", what, redis.eval(Scripts.truncateStart)(keys.meta, seq)), (before) =>
        Number(before) <= 1 ? Effect.void : Effect.asVoid(Effect.repeat(trimBatch(Number(before)), { while: (trimmed) => trimmed >= TRUNCATE_BATCH })))
    }

    const setCheckpoint: Journal["setCheckpoint"] = (seq) => {
      const problem = integerProblem("seq", seq, 0)
      if (problem !== undefined) return Effect.fail(new JournalError({ method: "setCheckpoint", message: `Journal.setCheckpoint: ${problem}` }))
      return Effect.asVoid(run("setCheckpoint", `set the checkpoint to ${seq}`, redis.eval(Scripts.setCheckpoint)(keys.meta, seq)))
    }

    const version: Journal["version"] = (stream) => {
      const invalid = versionArgumentError(stream)
      if (invalid !== undefined) return Effect.fail(invalid)
      const field = keys.name(stream.namespace, stream.id)
      return run("version", `read the version of stream ${formatStream(stream)}`, redis.send<string | null>("HGET", keys.versions, field)).pipe(
        Effect.flatMap((value) => numbers("version", keys.versions, [field], [value])),
        Effect.map(([version]) => version!)
      )
    }

    return observe(Journal.of({
      append,
      read,
      replayFrom,
      replayUntil,
      follow,
      truncateBefore,
      checkpoint: Effect.map(head, (position) => position.checkpoint),
      setCheckpoint,
      lastSeq: Effect.map(head, (position) => position.lastSeq),
      version,
      restore: makeRestore(context)
    }), "redis")
  })

/** `records` without those below the truncation point: they may wait to be trimmed, but are gone already. */
const untruncated = (records: ReadonlyArray<JournalRecord>, truncatedBefore: number): ReadonlyArray<JournalRecord> =>
  records.length === 0 || records[0]!.seq >= truncatedBefore ? records : records.filter((record) => record.seq >= truncatedBefore)

/**
 * The Journal over the `Redis` service in context (to share one client with the other Redis layers).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (options: RedisJournalOptions = {}): Layer.Layer<Journal, JournalError, EffectRedis.Redis> => Layer.effect(Journal, make(options))

/**
 * The Journal over a client of its own (`url`, default `redis://127.0.0.1:6379`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Client.RedisClientOptions & RedisJournalOptions = {}): Layer.Layer<Journal, JournalError | Client.RedisClientError> =>
  layerClient(options).pipe(Layer.provide(Client.layer(options)))

/**
 * The options of `layer` from `Config`: the client's (`REDIS_URL`, see `RedisClient.config`),
 * `ANNALS_REDIS_PREFIX` (default `annals`) and `ANNALS_REDIS_BLOCK_MS` (≥ 1, default 1,000).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Client.RedisClientOptions & RedisJournalOptions> = merged(
  Client.config,
  Config.all({ prefix: redisPrefix, blockMs: integerAtLeast("ANNALS_REDIS_BLOCK_MS", 1) })
)

/**
 * The Journal over a client of its own, with the options from `config` (the environment by
 * default); `overrides` replace what it read.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  overrides?: Partial<Client.RedisClientOptions & RedisJournalOptions>
): Layer.Layer<Journal, JournalError | Client.RedisClientError | Config.ConfigError> => layerFromConfig(config, layer, overrides)
