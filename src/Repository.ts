/**
 * The Repository of one aggregate: loads its state (latest snapshot + the later records folded
 * through `evolve`), executes commands with optimistic concurrency, saves snapshots on the
 * aggregate's policy, and rebuilds the state as of a past timestamp.
 *
 * Snapshots and the in-process cache are speed-ups only: `load` always returns exactly the fold of
 * all the stream's events from `initial` (or of those with timestamp ≤ `asOf`). When the records a
 * fold needs are no longer in the journal and no snapshot covers them, they are read from the
 * Archive; without one, `load` fails with `HistoryTruncated` — never a partial state.
 *
 * @since 0.1.0
 */
import { Data, Effect, Option, Result, Stream } from "effect"
import type * as Aggregate from "./Aggregate.ts"
import { Archive, type ArchiveError } from "./Archive.ts"
import * as Codec from "./Codec.ts"
import type { TaggedErrorClass } from "./internal/errors.ts"
import { integerProblem } from "./internal/validate.ts"
import { Journal, type JournalError, type JournalRecord, type StreamRef, type VersionConflict } from "./Journal.ts"
import { SnapshotStore, type SnapshotStoreError } from "./SnapshotStore.ts"

/**
 * The fields of a `HistoryTruncated` error.
 *
 * @since 0.1.0
 * @category errors
 */
export interface HistoryTruncatedFields {
  readonly stream: StreamRef
  /** The first version that could not be found. */
  readonly fromVersion: number
  /** The last version that could not be found. */
  readonly toVersion: number
  /** Why: no archive configured, or the archive does not hold them. */
  readonly detail: string
}

const HistoryTruncatedBase: TaggedErrorClass<"HistoryTruncated", HistoryTruncatedFields> = Data.TaggedError(
  "HistoryTruncated"
)

/**
 * The records a load needs are gone from the journal, no snapshot covers them, and the archive
 * cannot supply them.
 *
 * @since 0.1.0
 * @category errors
 */
export class HistoryTruncated extends HistoryTruncatedBase {
  override get message(): string {
    return `The history of stream ${this.stream.namespace}/${this.stream.id} is truncated: versions ` +
      `${this.fromVersion}..${this.toVersion} are no longer in the journal and no snapshot covers them; ${this.detail}`
  }
}

/**
 * What `load` can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type LoadError = JournalError | SnapshotStoreError | ArchiveError | Codec.CodecError | HistoryTruncated

/**
 * A loaded state and the version of the newest event folded into it (0: no events).
 *
 * @since 0.1.0
 * @category models
 */
export interface Loaded<S> {
  readonly state: S
  readonly version: number
}

/**
 * The outcome of `execute`: the new state and version, and the events appended (none if the
 * command decided on none).
 *
 * @since 0.1.0
 * @category models
 */
export interface Executed<E, S> extends Loaded<S> {
  readonly events: ReadonlyArray<E>
}

/**
 * Options of `load`.
 *
 * @since 0.1.0
 * @category models
 */
export interface LoadOptions {
  /** Rebuild the state from exactly the events with timestamp ≤ `asOf` (epoch ms). */
  readonly asOf?: number | undefined
}

/**
 * Options of a Repository.
 *
 * @since 0.1.0
 * @category models
 */
export interface RepositoryOptions {
  /** Reloads and retries after a `VersionConflict` before failing with it (default 3). */
  readonly maxRetries?: number | undefined
  /** States kept in the in-process LRU cache (default 1,000; 0 disables it). */
  readonly cacheSize?: number | undefined
}

/**
 * The Repository of one aggregate.
 *
 * @since 0.1.0
 * @category models
 */
export interface Repository<E extends { readonly _tag: string }, S> {
  readonly aggregate: Aggregate.Aggregate<E, S>
  /** The current state, or the state as of `options.asOf`. */
  readonly load: (id: string, options?: LoadOptions) => Effect.Effect<Loaded<S>, LoadError>
  /**
   * Loads, runs the command and appends its events expecting the loaded version; on a conflict,
   * reloads and retries up to `maxRetries` times, then fails with the `VersionConflict`.
   */
  readonly execute: <Err, R>(
    id: string,
    command: Aggregate.Command<S, E, Err, R>
  ) => Effect.Effect<Executed<E, S>, LoadError | VersionConflict | Err, R>
  /**
   * Saves a snapshot of the stream's current state unless one at that version exists; returns the
   * version and seq of the newest record it covers, and whether it wrote one (used by the
   * Checkpointer before truncating).
   */
  readonly snapshot: (
    id: string
  ) => Effect.Effect<{ readonly version: number; readonly seq: number; readonly saved: boolean }, LoadError>
}

/** A state together with where it stands in the log. */
interface Folded<S> {
  readonly state: S
  readonly version: number
  readonly seq: number
  readonly timestamp: number
  /** Version of the newest snapshot saved of this stream (0: none known). */
  readonly snapshotVersion: number
}

/** A small LRU map: a `Map` keeps insertion order, so re-inserting on access moves an entry to the end. */
class Lru<V> {
  private readonly entries = new Map<string, V>()
  private readonly capacity: number
  constructor(capacity: number) {
    this.capacity = capacity
  }
  get(key: string): V | undefined {
    const value = this.entries.get(key)
    if (value !== undefined) {
      this.entries.delete(key)
      this.entries.set(key, value)
    }
    return value
  }
  set(key: string, value: V): void {
    if (this.capacity === 0) return
    this.entries.delete(key)
    this.entries.set(key, value)
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!)
  }
  delete(key: string): void {
    this.entries.delete(key)
  }
}

/**
 * Builds the Repository of `aggregate` over the Journal and SnapshotStore in context; an Archive,
 * when one is provided, serves loads that reach behind the journal's truncation point.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E extends { readonly _tag: string }, S>(
  aggregate: Aggregate.Aggregate<E, S>,
  options?: RepositoryOptions
): Effect.Effect<Repository<E, S>, never, Journal | SnapshotStore> =>
  Effect.gen(function*() {
    const maxRetries = options?.maxRetries ?? 3
    const cacheSize = options?.cacheSize ?? 1_000
    const problem = integerProblem("maxRetries", maxRetries, 0) ?? integerProblem("cacheSize", cacheSize, 0)
    if (problem !== undefined) return yield* Effect.die(new Error(`Repository.make(${aggregate.namespace}): ${problem}`))
    const journal = yield* Journal
    const snapshots = yield* SnapshotStore
    const archive = yield* Effect.serviceOption(Archive)
    const cache = new Lru<Folded<S>>(cacheSize)
    const streamOf = (id: string): StreamRef => ({ namespace: aggregate.namespace, id })

    /** The latest usable snapshot (youngest with timestamp ≤ asOf), or the initial state. */
    const fromSnapshot = (stream: StreamRef, asOf: number | undefined) =>
      Effect.gen(function*() {
        const found = yield* snapshots.get(
          stream.namespace,
          stream.id,
          asOf === undefined ? undefined : { maxTimestamp: asOf }
        )
        const initial: Folded<S> = { state: aggregate.initial, version: 0, seq: 0, timestamp: 0, snapshotVersion: 0 }
        if (Option.isNone(found) || found.value.schemaVersion !== aggregate.schemaVersion) return initial
        const snapshot = found.value
        const state = Codec.decodeSnapshot(aggregate.stateCodec, snapshot)
        if (Result.isFailure(state)) {
          yield* Effect.logWarning(`${state.failure.message}; rebuilding the state from the journal`)
          return initial
        }
        return {
          state: state.success,
          version: snapshot.version,
          seq: snapshot.seq,
          timestamp: snapshot.timestamp,
          snapshotVersion: snapshot.version
        }
      })

    /** Versions `fromVersion..toVersion` of the stream, with seqs in `afterSeq+1..beforeSeq-1`, from the archive. */
    const fromArchive = (stream: StreamRef, fromVersion: number, toVersion: number, afterSeq: number, beforeSeq: number) =>
      Effect.gen(function*() {
        const truncated = (detail: string) => new HistoryTruncated({ stream, fromVersion, toVersion, detail })
        if (Option.isNone(archive)) return yield* truncated("no Archive is configured to read them from")
        const refs = yield* archive.value.list(afterSeq + 1)
        const found: Array<JournalRecord> = []
        for (const ref of refs) {
          if (ref.startSeq >= beforeSeq) break
          for (const record of yield* archive.value.get(ref)) {
            if (
              record.namespace === stream.namespace && record.id === stream.id &&
              record.version >= fromVersion && record.version <= toVersion
            ) found.push(record)
          }
        }
        found.sort((a, b) => a.version - b.version)
        for (let i = 0; i < found.length; i++) {
          if (found[i]!.version !== fromVersion + i) break
          if (i === toVersion - fromVersion) return found
        }
        return yield* truncated(
          `the Archive holds ${found.length} of the ${toVersion - fromVersion + 1} records`
        )
      })

    /**
     * Folds onto `base` every later record of the stream (only those with timestamp ≤ asOf, if
     * given), filling gaps left by truncation from the archive. `current` is the stream's version
     * read before the records, so that records truncated away at the end are noticed too.
     */
    const catchUp = (stream: StreamRef, base: Folded<S>, current: number, asOf: number | undefined) =>
      Effect.gen(function*() {
        let records = yield* Stream.runCollect(journal.read(stream, { from: base.version + 1 }))
        const firstVersion = records.length > 0 ? records[0]!.version : current + 1
        if (firstVersion > base.version + 1) {
          const missing = yield* fromArchive(
            stream,
            base.version + 1,
            firstVersion - 1,
            base.seq,
            records.length > 0 ? records[0]!.seq : Number.MAX_SAFE_INTEGER
          )
          records = [...missing, ...records]
        }
        let { state, version, seq, timestamp } = base
        for (const record of records) {
          if (asOf !== undefined && record.timestamp > asOf) continue
          const event = Codec.decodeRecord(aggregate.eventCodec, record)
          if (Result.isFailure(event)) return yield* event.failure
          state = aggregate.evolve(state, event.success)
          version = record.version
          seq = record.seq
          timestamp = record.timestamp
        }
        return { state, version, seq, timestamp, snapshotVersion: base.snapshotVersion }
      })

    const rebuild = (id: string, asOf: number | undefined) =>
      Effect.gen(function*() {
        const stream = streamOf(id)
        const current = yield* journal.version(stream)
        const cached = asOf === undefined ? cache.get(id) : undefined
        if (cached !== undefined) {
          // The cache is only a starting point: catch up from its version, exactly as from a snapshot.
          const result = yield* Effect.result(catchUp(stream, cached, current, undefined))
          if (Result.isSuccess(result)) {
            cache.set(id, result.success)
            return result.success
          }
          if (result.failure._tag !== "HistoryTruncated") return yield* result.failure
          cache.delete(id)
        }
        const folded = yield* catchUp(stream, yield* fromSnapshot(stream, asOf), current, asOf)
        if (asOf === undefined) cache.set(id, folded)
        return folded
      })

    const saveSnapshot = (stream: StreamRef, folded: Folded<S>) =>
      Effect.gen(function*() {
        const state = Codec.encodeState(aggregate.stateCodec, stream, folded.version, folded.state)
        if (Result.isFailure(state)) return yield* state.failure
        yield* snapshots.put({
          namespace: stream.namespace,
          id: stream.id,
          version: folded.version,
          seq: folded.seq,
          timestamp: folded.timestamp,
          schemaVersion: aggregate.schemaVersion,
          state: state.success
        })
      })

    const execute: Repository<E, S>["execute"] = (id, command) =>
      Effect.gen(function*() {
        const stream = streamOf(id)
        for (let attempt = 0;; attempt++) {
          const base = yield* rebuild(id, undefined)
          const events = yield* command(base.state)
          if (events.length === 0) return { state: base.state, version: base.version, events: [] }
          const data = yield* Codec.encodeEvents(aggregate.eventCodec, stream, events)
          const appended = yield* Effect.result(journal.append(stream, base.version, data))
          if (Result.isFailure(appended)) {
            cache.delete(id)
            if (appended.failure._tag === "VersionConflict" && attempt < maxRetries) continue
            return yield* appended.failure
          }
          let state = base.state
          for (const event of events) state = aggregate.evolve(state, event)
          let folded: Folded<S> = {
            state,
            version: appended.success.version,
            seq: appended.success.lastSeq,
            timestamp: appended.success.timestamp,
            snapshotVersion: base.snapshotVersion
          }
          const policy = aggregate.snapshot
          if (policy !== undefined && folded.version - folded.snapshotVersion >= policy.every) {
            // A snapshot is a speed-up: failing to save one never fails the command.
            const saved = yield* Effect.result(saveSnapshot(stream, folded))
            if (Result.isSuccess(saved)) folded = { ...folded, snapshotVersion: folded.version }
            else yield* Effect.logWarning(`Snapshot of ${stream.namespace}/${id} at version ${folded.version} not saved: ${saved.failure.message}`)
          }
          cache.set(id, folded)
          return { state, version: folded.version, events }
        }
      })

    const snapshot: Repository<E, S>["snapshot"] = (id) =>
      Effect.gen(function*() {
        const folded = yield* rebuild(id, undefined)
        const saved = folded.version > folded.snapshotVersion
        if (saved) {
          yield* saveSnapshot(streamOf(id), folded)
          cache.set(id, { ...folded, snapshotVersion: folded.version })
        }
        return { version: folded.version, seq: folded.seq, saved }
      })

    return {
      aggregate,
      load: (id, loadOptions) =>
        Effect.map(rebuild(id, loadOptions?.asOf), ({ state, version }) => ({ state, version })),
      execute,
      snapshot
    }
  })
