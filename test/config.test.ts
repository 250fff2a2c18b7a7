/**
 * The layers' `layerConfig`: each opens a working store with the settings a `ConfigProvider` gives
 * (file layers in a temporary directory; PostgreSQL, Redis and NATS on the servers of the run, each
 * with a schema or prefix of its own, removed afterwards), absent variables keep the defaults, a bad
 * value fails naming its variable, and no secret (the password of a URL, the AWS secret key) appears
 * in an error or its printed cause.
 */
import { Cause, type Config, ConfigProvider, Context, Effect, Exit, Layer, Option, Stream } from "effect"
import assert from "node:assert/strict"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { inspect } from "node:util"
import { test } from "node:test"
import postgres from "postgres"
import { Archive, CursorStore, Journal, SnapshotStore } from "../src/index.ts"
import { DirectoryArchive, FileCursorStore, FileJournal, FileSnapshotStore } from "../src/file/index.ts"
import { NatsClient, NatsCursorStore, NatsJournal, NatsSnapshotStore, NatsStores } from "../src/nats/index.ts"
import { PgClient, PgCursorStore, PgJournal, PgSnapshotStore } from "../src/postgres/index.ts"
import { RedisClient, RedisCursorStore, RedisJournal, RedisSnapshotStore, RedisStores } from "../src/redis/index.ts"
import { S3Archive } from "../src/s3/index.ts"
import { open } from "./conformance/harness.ts"
import { isolatedNatsPrefix, natsTarget } from "./support/nats.ts"
import { isolatedSchema, pgTargets } from "./support/postgres.ts"
import { isolatedPrefix, redisTarget } from "./support/redis.ts"
import { tempDirectory } from "./support/tempDirectory.ts"

/** `layer` reading its `Config` from `env` only. */
const withEnv = <A, E, R>(layer: Layer.Layer<A, E, R>, env: Record<string, string>): Layer.Layer<A, E, R> =>
  layer.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))

/** `config` read from `env` only. */
const parse = <A>(config: Config.Config<A>, env: Record<string, string>) => config.parse(ConfigProvider.fromEnv({ env }))

const SECRET = "hunter2-s3cr3t"
const stream = { namespace: "cart", id: "c1" }
const event = (n: number) => ({ type: "Added", payload: new Uint8Array([n]) })
const snapshot = (version: number): SnapshotStore.Snapshot => ({
  namespace: "cart",
  id: "c1",
  version,
  seq: version,
  timestamp: version,
  schemaVersion: 1,
  state: new Uint8Array([version])
})

/** Appends, puts two snapshots and commits a cursor; asserts the older snapshot is kept exactly when `keep` ≥ 2. */
const exercise = (services: {
  readonly journal: Journal.Journal
  readonly snapshots: SnapshotStore.SnapshotStore
  readonly cursors: CursorStore.CursorStore
}, keep: number) =>
  Effect.gen(function*() {
    yield* services.journal.append(stream, "any", [event(1), event(2)])
    assert.equal((yield* Stream.runCollect(services.journal.read(stream))).length, 2)
    yield* services.snapshots.put(snapshot(1))
    yield* services.snapshots.put(snapshot(2))
    assert.equal(Option.isSome(yield* services.snapshots.get("cart", "c1", { maxVersion: 1 })), keep >= 2, `keep ${keep}`)
    yield* services.cursors.commit("orders", 2)
    assert.equal(Option.getOrThrow(yield* services.cursors.get("orders")).seq, 2)
  })

/** The failure of building `layer` (a fresh build), with its printed cause. */
const buildFailure = <A, E>(layer: Layer.Layer<A, E>) =>
  Effect.gen(function*() {
    const exit = yield* Effect.exit(Effect.scoped(Layer.build(Layer.fresh(layer))))
    assert.ok(Exit.isFailure(exit), "the layer should fail to build")
    const error = Cause.squash(exit.cause)
    return { error, printed: `${String(error)}\n${Cause.pretty(exit.cause)}\n${inspect(exit.cause, { depth: 10 })}` }
  })

/** Asserts that building `layer` with `env` fails with a ConfigError whose message names `variable`. */
const failsNaming = <A, E>(layer: Layer.Layer<A, E>, env: Record<string, string>, variable: string) =>
  Effect.map(buildFailure(withEnv(layer, env)), ({ error }) => {
    assert.equal((error as { readonly _tag?: unknown })._tag, "ConfigError", String(error))
    assert.ok(String(error).includes(variable), `"${String(error)}" should name ${variable}`)
  })

/** Asserts that building `layer` with `env` fails, and that neither the error nor its printed cause shows `SECRET`. */
const secretKept = <A, E>(layer: Layer.Layer<A, E>, env: Record<string, string>) =>
  Effect.map(buildFailure(withEnv(layer, env)), ({ printed }) => assert.ok(!printed.includes(SECRET), `the secret is printed:\n${printed}`))

test("file layers: the defaults put journal/, snapshots/, cursors/ and archive/ below ANNALS_DATA_DIR (default data); absent variables keep the layers' defaults", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    assert.deepEqual(yield* parse(FileJournal.config, {}), {
      directory: path.join("data", "journal"),
      durability: undefined,
      syncIntervalMs: undefined,
      segmentBytes: undefined
    })
    assert.deepEqual(yield* parse(FileSnapshotStore.config, {}), { directory: path.join("data", "snapshots"), keep: undefined })
    assert.deepEqual(yield* parse(FileCursorStore.config, {}), { directory: path.join("data", "cursors") })
    assert.deepEqual(yield* parse(DirectoryArchive.config, {}), { directory: path.join("data", "archive"), prefix: undefined, compression: undefined })

    const root = yield* tempDirectory("config")
    const env = { ANNALS_DATA_DIR: root }
    const journal = yield* open(Journal.Journal, withEnv(FileJournal.layerConfig(), env))
    const snapshots = yield* open(SnapshotStore.SnapshotStore, withEnv(FileSnapshotStore.layerConfig(), env))
    const cursors = yield* open(CursorStore.CursorStore, withEnv(FileCursorStore.layerConfig(), env))
    const archive = yield* open(Archive.Archive, withEnv(DirectoryArchive.layerConfig(), env))
    yield* exercise({ journal, snapshots, cursors }, 1)
    const records = yield* Stream.runCollect(journal.replayFrom(1))
    yield* archive.put({ startSeq: 1, endSeq: 2, records })
    assert.deepEqual((yield* Effect.promise(() => fs.readdir(root))).sort(), ["archive", "cursors", "journal", "snapshots"])
    assert.deepEqual(yield* Effect.promise(() => fs.readdir(path.join(root, "archive"))), [Archive.segmentKey("", 1, 2, "none")])
  }))))

test("file layers: every directory and option has its own variable, and overrides replace what was read", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const root = yield* tempDirectory("config")
    const env = {
      ANNALS_DATA_DIR: path.join(root, "unused"),
      ANNALS_JOURNAL_DIR: path.join(root, "j"),
      ANNALS_JOURNAL_DURABILITY: "interval",
      ANNALS_JOURNAL_SYNC_INTERVAL_MS: "5",
      ANNALS_JOURNAL_SEGMENT_BYTES: "256",
      ANNALS_SNAPSHOT_DIR: path.join(root, "s"),
      ANNALS_SNAPSHOT_KEEP: "2",
      ANNALS_CURSOR_DIR: path.join(root, "c"),
      ANNALS_ARCHIVE_DIR: path.join(root, "a"),
      ANNALS_ARCHIVE_PREFIX: "shop/",
      ANNALS_ARCHIVE_COMPRESSION: "gzip"
    }
    assert.deepEqual(yield* parse(FileJournal.config, env), { directory: path.join(root, "j"), durability: "interval", syncIntervalMs: 5, segmentBytes: 256 })
    const journal = yield* open(Journal.Journal, withEnv(FileJournal.layerConfig(), env))
    const snapshots = yield* open(SnapshotStore.SnapshotStore, withEnv(FileSnapshotStore.layerConfig(), env))
    const cursors = yield* open(CursorStore.CursorStore, withEnv(FileCursorStore.layerConfig(), env))
    const archive = yield* open(Archive.Archive, withEnv(DirectoryArchive.layerConfig(), env))
    yield* exercise({ journal, snapshots, cursors }, 2)
    for (let i = 0; i < 8; i++) yield* journal.append(stream, "any", [{ type: "Added", payload: new Uint8Array(100) }])
    const segments = (yield* Effect.promise(() => fs.readdir(path.join(root, "j")))).filter((name) => name.endsWith(".segment"))
    assert.ok(segments.length > 1, `256-byte segments rotate: ${segments.join(", ")}`)
    yield* archive.put({ startSeq: 1, endSeq: 2, records: yield* Stream.runCollect(Stream.take(journal.replayFrom(1), 2)) })
    assert.deepEqual(yield* Effect.promise(() => fs.readdir(path.join(root, "a", "shop"))), [Archive.segmentKey("", 1, 2, "gzip")])
    assert.deepEqual(yield* Effect.promise(() => fs.readdir(root).then((names) => names.sort())), ["a", "c", "j", "s"])

    const overridden = path.join(root, "override")
    yield* open(CursorStore.CursorStore, withEnv(FileCursorStore.layerConfig({ directory: overridden }), env))
    assert.ok((yield* Effect.promise(() => fs.stat(overridden))).isDirectory())
  }))))

test("bad values fail with a ConfigError naming the variable", () =>
  Effect.runPromise(Effect.gen(function*() {
    const checks = [
      failsNaming(FileJournal.layerConfig(), { ANNALS_JOURNAL_DURABILITY: "sometimes" }, "ANNALS_JOURNAL_DURABILITY"),
      failsNaming(FileJournal.layerConfig(), { ANNALS_JOURNAL_SYNC_INTERVAL_MS: "-5" }, "ANNALS_JOURNAL_SYNC_INTERVAL_MS"),
      failsNaming(FileJournal.layerConfig(), { ANNALS_JOURNAL_SEGMENT_BYTES: "64MB" }, "ANNALS_JOURNAL_SEGMENT_BYTES"),
      failsNaming(FileJournal.layerConfig(), { ANNALS_JOURNAL_SEGMENT_BYTES: "100" }, "ANNALS_JOURNAL_SEGMENT_BYTES"),
      failsNaming(FileSnapshotStore.layerConfig(), { ANNALS_SNAPSHOT_KEEP: "0" }, "ANNALS_SNAPSHOT_KEEP"),
      failsNaming(DirectoryArchive.layerConfig(), { ANNALS_ARCHIVE_COMPRESSION: "zstd" }, "ANNALS_ARCHIVE_COMPRESSION"),
      failsNaming(PgClient.layerConfig, {}, "DATABASE_URL"),
      failsNaming(PgJournal.layerConfig(), { DATABASE_URL: "postgres://127.0.0.1:1/x", ANNALS_PG_MAX: "ten" }, "ANNALS_PG_MAX"),
      failsNaming(PgSnapshotStore.layerConfig(), { DATABASE_URL: "postgres://127.0.0.1:1/x", ANNALS_PG_SCHEMA: "drop table" }, "ANNALS_PG_SCHEMA"),
      failsNaming(PgCursorStore.layerConfig(), { DATABASE_URL: "postgres://127.0.0.1:1/x", ANNALS_PG_TABLE_PREFIX: "a-b" }, "ANNALS_PG_TABLE_PREFIX"),
      failsNaming(PgJournal.layerConfig(), { DATABASE_URL: "postgres://127.0.0.1:1/x", ANNALS_PG_POLL_INTERVAL_MS: "0" }, "ANNALS_PG_POLL_INTERVAL_MS"),
      failsNaming(RedisStores.layerConfig(), { ANNALS_REDIS_PREFIX: "a b" }, "ANNALS_REDIS_PREFIX"),
      failsNaming(RedisJournal.layerConfig(), { ANNALS_REDIS_BLOCK_MS: "1.5" }, "ANNALS_REDIS_BLOCK_MS"),
      failsNaming(NatsStores.layerConfig(), { ANNALS_NATS_REPLICAS: "7" }, "ANNALS_NATS_REPLICAS"),
      failsNaming(NatsCursorStore.layerConfig(), { ANNALS_NATS_STORAGE: "disk" }, "ANNALS_NATS_STORAGE"),
      failsNaming(NatsSnapshotStore.layerConfig(), { ANNALS_NATS_PREFIX: "a.b" }, "ANNALS_NATS_PREFIX")
    ]
    for (const check of checks) yield* check
  })))

test("secrets never appear in an error or its printed cause: DATABASE_URL, REDIS_URL, NATS_URL passwords and AWS_SECRET_ACCESS_KEY", () =>
  Effect.runPromise(Effect.gen(function*() {
    const failures = [
      // unreachable servers: the client errors name the address
      secretKept(PgJournal.layerConfig(), { DATABASE_URL: `postgres://annals:${SECRET}@127.0.0.1:1/db` }),
      secretKept(PgClient.layerConfig, { DATABASE_URL: `postgres://annals:${SECRET}@[::1/db` }),
      secretKept(RedisStores.layerConfig(), { REDIS_URL: `redis://annals:${SECRET}@127.0.0.1:1` }),
      secretKept(NatsStores.layerConfig(), { NATS_URL: `nats://annals:${SECRET}@127.0.0.1:1` }),
      // a bad value next to a secret
      secretKept(PgJournal.layerConfig(), { DATABASE_URL: `postgres://annals:${SECRET}@127.0.0.1:1/db`, ANNALS_PG_MAX: "-1" }),
      secretKept(S3Archive.layerConfig(), { S3_BUCKET: "bucket", AWS_ACCESS_KEY_ID: "id", AWS_SECRET_ACCESS_KEY: SECRET, S3_COMPRESSION: "zip" }),
      secretKept(S3Archive.layerConfig(), { S3_BUCKET: "Not A Bucket", AWS_ACCESS_KEY_ID: "id", AWS_SECRET_ACCESS_KEY: SECRET })
    ]
    for (const failure of failures) yield* failure
    const parsed = yield* parse(PgClient.config, { DATABASE_URL: `postgres://annals:${SECRET}@127.0.0.1:1/db` })
    assert.equal(parsed.url, `postgres://annals:${SECRET}@127.0.0.1:1/db`, "the layer gets the URL itself")
  })))

const [pg] = await pgTargets()
if (pg !== undefined) {
  test(`PostgreSQL layerConfig [${pg.name}]: DATABASE_URL, schema, table prefix, pool size, poll interval and keep`, () =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const schema = yield* isolatedSchema(pg)
      const env = {
        DATABASE_URL: pg.url,
        ANNALS_PG_SCHEMA: schema,
        ANNALS_PG_TABLE_PREFIX: "cfg_",
        ANNALS_PG_MAX: "2",
        ANNALS_PG_POLL_INTERVAL_MS: "50",
        ANNALS_SNAPSHOT_KEEP: "2"
      }
      assert.deepEqual(yield* parse(PgJournal.config, env), { url: pg.url, schema, tablePrefix: "cfg_", max: 2, pollIntervalMs: 50 })
      assert.deepEqual(yield* parse(PgClient.config, { DATABASE_URL: pg.url }), { url: pg.url, schema: undefined, tablePrefix: undefined, max: undefined })
      const journal = yield* open(Journal.Journal, withEnv(PgJournal.layerConfig(), env))
      const snapshots = yield* open(SnapshotStore.SnapshotStore, withEnv(PgSnapshotStore.layerConfig(), env))
      const cursors = yield* open(CursorStore.CursorStore, withEnv(PgCursorStore.layerConfig(), env))
      yield* exercise({ journal, snapshots, cursors }, 2)
      const client = yield* open(PgClient.PgClient, withEnv(PgClient.layerConfig, env))
      assert.equal(client.schema, schema)
      const tables = yield* Effect.promise(async () => {
        const sql = postgres(pg.url, { max: 1, onnotice: () => {} })
        try {
          return (await sql`SELECT table_name FROM information_schema.tables WHERE table_schema = ${schema}`).map((row) => String(row.table_name))
        } finally {
          await sql.end({ timeout: 5 })
        }
      })
      assert.ok(tables.length >= 3 && tables.every((name) => name.startsWith("cfg_")), tables.join(", "))
    }))))
}

/**
 * Exercises the three stores of a server backend's combined layer, then opens each store's own
 * layer with the same `env` and finds what the combined one wrote (the same prefix).
 */
const combinedThenEach = <E1, E2, E3, E4>(layers: {
  readonly stores: Layer.Layer<Journal.Journal | SnapshotStore.SnapshotStore | CursorStore.CursorStore, E1>
  readonly journal: Layer.Layer<Journal.Journal, E2>
  readonly snapshots: Layer.Layer<SnapshotStore.SnapshotStore, E3>
  readonly cursors: Layer.Layer<CursorStore.CursorStore, E4>
}, env: Record<string, string>) =>
  Effect.gen(function*() {
    const stores = yield* Layer.build(withEnv(layers.stores, env))
    yield* exercise({
      journal: Context.get(stores, Journal.Journal),
      snapshots: Context.get(stores, SnapshotStore.SnapshotStore),
      cursors: Context.get(stores, CursorStore.CursorStore)
    }, 2)
    const journal = yield* open(Journal.Journal, withEnv(layers.journal, env))
    assert.equal(yield* journal.lastSeq, 2, "the Journal's own layer reads the same prefix")
    const snapshots = yield* open(SnapshotStore.SnapshotStore, withEnv(layers.snapshots, env))
    assert.ok(Option.isSome(yield* snapshots.get("cart", "c1", { maxVersion: 1 })))
    const cursors = yield* open(CursorStore.CursorStore, withEnv(layers.cursors, env))
    assert.equal(Option.getOrThrow(yield* cursors.get("orders")).seq, 2)
  })

const redis = await redisTarget()
if (redis !== undefined) {
  test(`Redis layerConfig [${redis.name}]: REDIS_URL, ANNALS_REDIS_PREFIX, ANNALS_REDIS_BLOCK_MS and keep, for RedisStores and each store`, () =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const prefix = yield* isolatedPrefix(redis)
      const env = { REDIS_URL: redis.url, ANNALS_REDIS_PREFIX: prefix, ANNALS_REDIS_BLOCK_MS: "200", ANNALS_SNAPSHOT_KEEP: "2" }
      assert.deepEqual(yield* parse(RedisStores.config, env), { url: redis.url, prefix, blockMs: 200, keep: 2 })
      yield* combinedThenEach({
        stores: RedisStores.layerConfig(),
        journal: RedisJournal.layerConfig(),
        snapshots: RedisSnapshotStore.layerConfig(),
        cursors: RedisCursorStore.layerConfig()
      }, env)
      const removed = yield* Effect.scoped(Effect.provide(RedisClient.removeStore(prefix), withEnv(RedisClient.layerConfig, env)))
      assert.ok(removed >= 3, `the keys are under the prefix (${removed} removed)`)
    }))))
}

const nats = await natsTarget()
if (nats !== undefined) {
  test(`NATS layerConfig [${nats.name}]: NATS_URL, ANNALS_NATS_PREFIX, ANNALS_NATS_STORAGE and keep, for NatsStores and each store`, () =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const prefix = yield* isolatedNatsPrefix(nats)
      const env = { NATS_URL: nats.url, ANNALS_NATS_PREFIX: prefix, ANNALS_NATS_STORAGE: "memory", ANNALS_NATS_REPLICAS: "1", ANNALS_SNAPSHOT_KEEP: "2" }
      assert.deepEqual(yield* parse(NatsStores.config, env), { servers: [nats.url], prefix, storage: "memory", replicas: 1, keep: 2 })
      yield* combinedThenEach({
        stores: NatsStores.layerConfig(),
        journal: NatsJournal.layerConfig(),
        snapshots: NatsSnapshotStore.layerConfig(),
        cursors: NatsCursorStore.layerConfig()
      }, env)
      const { manager } = yield* open(NatsClient.NatsClient, withEnv(NatsClient.layerConfig, env))
      const info = yield* Effect.promise(() => manager.streams.info(`KV_${prefix}_cursors`))
      assert.equal(info.config.storage, "memory", "the buckets are created in memory")
    }))))
}
