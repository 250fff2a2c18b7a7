/**
 * The storage combinations every runtime suite runs over, written once: memory, the file layers,
 * the file layers with the S3 Archive (gzip; when an S3 server runs), the Redis layers (when the
 * machine's Redis answers), the NATS layers (when the machine's nats-server answers), and PostgreSQL
 * on every server of the run (`pgTargets`). A backend added later is one more entry in `combinations`:
 * every suite in `test/runtime/` then runs over it unchanged.
 *
 * A combination opens a `Storage` per case: four layers (Journal, SnapshotStore, Archive,
 * CursorStore) whose every build reaches the same data — a reopen for the durable layers, the same
 * instance for the memory ones — and a `freshMachine` with a new, empty journal, snapshot store and
 * cursor store of the same kinds over the same archive (a machine that lost its local data and
 * restores from the archive).
 */
import { type Context, Effect, Layer, type Scope } from "effect"
import * as crypto from "node:crypto"
import * as path from "node:path"
import { DirectoryArchive, FileCursorStore, FileJournal, FileSnapshotStore } from "../../src/file/index.ts"
import { Archive, CursorStore, Journal, SnapshotStore } from "../../src/index.ts"
import { PgCursorStore, PgJournal, PgSnapshotStore } from "../../src/postgres/index.ts"
import { NatsCursorStore, NatsJournal, NatsSnapshotStore } from "../../src/nats/index.ts"
import { RedisCursorStore, RedisJournal, RedisSnapshotStore } from "../../src/redis/index.ts"
import { S3Archive } from "../../src/s3/index.ts"
import { dropSchema, type PgTarget, pgTargets } from "../support/postgres.ts"
import { type NatsTarget, natsTarget, removeNatsPrefix } from "../support/nats.ts"
import { type RedisTarget, redisTarget, removePrefix } from "../support/redis.ts"
import { isolatedBucket, type S3Target, s3ClientConfig, s3Target } from "../support/s3.ts"
import { readOnlyBesideWriter } from "../support/readOnlyBesideWriter.ts"
import { tempDirectory } from "../support/tempDirectory.ts"

/** The four storage services of one combination. */
export type Stores = Journal.Journal | SnapshotStore.SnapshotStore | Archive.Archive | CursorStore.CursorStore

/** The layers of one case's storage; every build of a layer reaches the same data. */
export interface Storage {
  readonly journal: Layer.Layer<Journal.Journal, unknown>
  readonly snapshots: Layer.Layer<SnapshotStore.SnapshotStore, unknown>
  readonly archive: Layer.Layer<Archive.Archive, unknown>
  readonly cursors: Layer.Layer<CursorStore.CursorStore, unknown>
  /** Journal and SnapshotStore (no Archive: loads behind the truncation point fail). */
  readonly stores: Layer.Layer<Journal.Journal | SnapshotStore.SnapshotStore, unknown>
  /** Journal, SnapshotStore, Archive and CursorStore. */
  readonly all: Layer.Layer<Stores, unknown>
  /** A new, empty journal, snapshot store and cursor store of the same kinds, over the same archive. */
  readonly freshMachine: Effect.Effect<Storage, unknown, Scope.Scope>
}

/** Per-case options of the storage. */
export interface StorageOptions {
  /** Snapshots kept per stream (SnapshotStore `keep`, default 1). */
  readonly keep?: number | undefined
}

/** One storage combination. */
export interface Combination {
  readonly name: string
  /** True when every build of a layer reopens stored data (files, servers), so a reopen tests persistence. */
  readonly durable: boolean
  /**
   * The share of the property test's seeded runs made over this combination: all over memory, a
   * sixth over durable storage, a fifteenth over the S3 archive (each load as of a past time there
   * lists and downloads objects: 3-11 s a scenario).
   */
  readonly propertyShare: number
  readonly open: (options: StorageOptions) => Effect.Effect<Storage, unknown, Scope.Scope>
}

/** How one service of a combination is opened: a layer over a place (a directory), or a shared memory instance. */
type Opener<I> = (directory: string, options: StorageOptions) => Effect.Effect<Layer.Layer<I, unknown>, unknown, Scope.Scope>

interface Kinds {
  readonly journal: Opener<Journal.Journal>
  readonly snapshots: Opener<SnapshotStore.SnapshotStore>
  readonly archive: Opener<Archive.Archive>
  readonly cursors: Opener<CursorStore.CursorStore>
}

/** The same instance on every build: what "reopening" a memory layer means. */
const shared = <I, S>(tag: Context.Key<I, S>, make: Effect.Effect<S, unknown>) =>
  Effect.map(make, (service) => Layer.succeed(tag, service))

const memoryJournal: Opener<Journal.Journal> = () => shared(Journal.Journal, Journal.makeMemory)
const memorySnapshots: Opener<SnapshotStore.SnapshotStore> = (_, options) =>
  shared(SnapshotStore.SnapshotStore, SnapshotStore.makeMemory({ keep: options.keep }))
const memoryArchive: Opener<Archive.Archive> = () =>
  shared(Archive.Archive, Archive.make(Archive.makeObjectStoreMemory(new Map())))
const memoryCursors: Opener<CursorStore.CursorStore> = () => shared(CursorStore.CursorStore, CursorStore.makeMemory)

const fileJournal = (options: Omit<FileJournal.FileJournalOptions, "directory">): Opener<Journal.Journal> => (directory) =>
  Effect.succeed(FileJournal.layer({ ...options, directory: path.join(directory, "journal") }))
/** A file journal whose reads come from a read-only journal beside the writer (polling every 5 ms). */
const fileJournalReadBeside: Opener<Journal.Journal> = (directory) =>
  Effect.succeed(Layer.effect(Journal.Journal, readOnlyBesideWriter({ directory: path.join(directory, "journal") }, 5)))
const fileSnapshots: Opener<SnapshotStore.SnapshotStore> = (directory, options) =>
  Effect.succeed(FileSnapshotStore.layer({ directory: path.join(directory, "snapshots"), keep: options.keep }))
const directoryArchive: Opener<Archive.Archive> = (directory) =>
  Effect.succeed(DirectoryArchive.layer({ directory: path.join(directory, "archive") }))
const fileCursors: Opener<CursorStore.CursorStore> = (directory) =>
  Effect.succeed(FileCursorStore.layer({ directory: path.join(directory, "cursors") }))

/** The S3 Archive in a bucket of the case's own (removed when the case ends), gzip-compressed. */
const s3Archive = (target: S3Target): Opener<Archive.Archive> => () =>
  Effect.map(isolatedBucket(target), (bucket) => S3Archive.layer({ bucket, compression: "gzip", clientConfig: s3ClientConfig(target) }))

/**
 * The PostgreSQL layers of one machine share one schema, named after the machine's directory (so
 * every opener of that machine finds the same one); it is dropped when the case ends.
 */
const pgSchema = (target: PgTarget, directory: string) =>
  Effect.acquireRelease(
    Effect.sync(() => `annals_t_${crypto.createHash("sha256").update(directory).digest("hex").slice(0, 12)}`),
    (schema) => Effect.promise(() => dropSchema(target.url, schema))
  )
const pgJournal = (target: PgTarget): Opener<Journal.Journal> => (directory) =>
  Effect.map(pgSchema(target, directory), (schema) => PgJournal.layer({ url: target.url, schema, max: 4 }))
const pgSnapshots = (target: PgTarget): Opener<SnapshotStore.SnapshotStore> => (directory, options) =>
  Effect.map(pgSchema(target, directory), (schema) => PgSnapshotStore.layer({ url: target.url, schema, max: 2, keep: options.keep }))
const pgCursors = (target: PgTarget): Opener<CursorStore.CursorStore> => (directory) =>
  Effect.map(pgSchema(target, directory), (schema) => PgCursorStore.layer({ url: target.url, schema, max: 2 }))

/**
 * The Redis layers of one machine share one key prefix, named after the machine's directory (so
 * every opener of that machine finds the same keys); its keys are removed when the case ends.
 */
const redisPrefix = (target: RedisTarget, directory: string) =>
  Effect.acquireRelease(
    Effect.sync(() => `annals-t-${crypto.createHash("sha256").update(directory).digest("hex").slice(0, 12)}`),
    (prefix) => Effect.promise(() => removePrefix(target.url, prefix))
  )
const redisJournal = (target: RedisTarget): Opener<Journal.Journal> => (directory) =>
  Effect.map(redisPrefix(target, directory), (prefix) => RedisJournal.layer({ url: target.url, prefix }))
/** The NATS layers of one machine share one prefix, named after the machine's directory; its streams are removed when the case ends. */
const natsPrefix = (target: NatsTarget, directory: string) =>
  Effect.acquireRelease(
    Effect.sync(() => `t${crypto.createHash("sha256").update(directory).digest("hex").slice(0, 12)}`),
    (prefix) => Effect.promise(() => removeNatsPrefix(target.url, prefix))
  )
const natsJournal = (target: NatsTarget): Opener<Journal.Journal> => (directory) =>
  Effect.map(natsPrefix(target, directory), (prefix) => NatsJournal.layer({ servers: target.url, prefix }))
const natsSnapshots = (target: NatsTarget): Opener<SnapshotStore.SnapshotStore> => (directory, options) =>
  Effect.map(natsPrefix(target, directory), (prefix) => NatsSnapshotStore.layer({ servers: target.url, prefix, keep: options.keep }))
const natsCursors = (target: NatsTarget): Opener<CursorStore.CursorStore> => (directory) =>
  Effect.map(natsPrefix(target, directory), (prefix) => NatsCursorStore.layer({ servers: target.url, prefix }))
const redisSnapshots = (target: RedisTarget): Opener<SnapshotStore.SnapshotStore> => (directory, options) =>
  Effect.map(redisPrefix(target, directory), (prefix) => RedisSnapshotStore.layer({ url: target.url, prefix, keep: options.keep }))
const redisCursors = (target: RedisTarget): Opener<CursorStore.CursorStore> => (directory) =>
  Effect.map(redisPrefix(target, directory), (prefix) => RedisCursorStore.layer({ url: target.url, prefix }))

/** Builds a combination from the openers of its four services. */
const combination = (name: string, durable: boolean, kinds: Kinds, propertyShare = durable ? 1 / 6 : 1): Combination => ({
  name,
  durable,
  propertyShare,
  open: (options) =>
    Effect.gen(function*() {
      const root = yield* tempDirectory("runtime")
      const archive = yield* kinds.archive(path.join(root, "shared"), options)
      let machines = 0
      const machine: Effect.Effect<Storage, unknown, Scope.Scope> = Effect.gen(function*() {
        const directory = path.join(root, `machine-${++machines}`)
        const journal = yield* kinds.journal(directory, options)
        const snapshots = yield* kinds.snapshots(directory, options)
        const cursors = yield* kinds.cursors(directory, options)
        const stores = Layer.mergeAll(journal, snapshots)
        return { journal, snapshots, archive, cursors, stores, all: Layer.mergeAll(stores, archive, cursors), freshMachine: machine }
      })
      return yield* machine
    })
})

const s3 = await s3Target()
const redis = await redisTarget()
const nats = await natsTarget()

/** Every storage combination the runtime suites run over. Register a new backend here. */
export const combinations: ReadonlyArray<Combination> = [
  combination("memory", false, { journal: memoryJournal, snapshots: memorySnapshots, archive: memoryArchive, cursors: memoryCursors }),
  combination("file always", true, {
    journal: fileJournal({}),
    snapshots: fileSnapshots,
    archive: directoryArchive,
    cursors: fileCursors
  }),
  combination("file interval 4KiB segments", true, {
    journal: fileJournal({ durability: "interval", syncIntervalMs: 5, segmentBytes: 4096 }),
    snapshots: fileSnapshots,
    archive: directoryArchive,
    cursors: fileCursors
  }),
  combination("file os", true, {
    journal: fileJournal({ durability: "os" }),
    snapshots: fileSnapshots,
    archive: directoryArchive,
    cursors: fileCursors
  }),
  combination("file always, read through a read-only journal beside the writer", true, {
    journal: fileJournalReadBeside,
    snapshots: fileSnapshots,
    archive: directoryArchive,
    cursors: fileCursors
  }),
  combination("file always 4KiB segments + memory snapshots and archive", true, {
    journal: fileJournal({ segmentBytes: 4096 }),
    snapshots: memorySnapshots,
    archive: memoryArchive,
    cursors: fileCursors
  }),
  ...(s3 === undefined ? [] : [
    combination("file always + S3 archive (gzip)", true, {
      journal: fileJournal({}),
      snapshots: fileSnapshots,
      archive: s3Archive(s3),
      cursors: fileCursors
    }, 1 / 15)
  ]),
  ...(redis === undefined ? [] : [
    combination(redis.name, true, {
      journal: redisJournal(redis),
      snapshots: redisSnapshots(redis),
      archive: directoryArchive,
      cursors: redisCursors(redis)
    })
  ]),
  ...(nats === undefined ? [] : [
    combination(nats.name, true, {
      journal: natsJournal(nats),
      snapshots: natsSnapshots(nats),
      archive: directoryArchive,
      cursors: natsCursors(nats)
    })
  ]),
  ...(await pgTargets()).map((target) =>
    combination(target.name, true, {
      journal: pgJournal(target),
      snapshots: pgSnapshots(target),
      archive: directoryArchive,
      cursors: pgCursors(target)
    })
  )
]
