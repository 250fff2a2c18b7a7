/**
 * Rebuilding an aggregate's state for the Repository: the newest trustworthy snapshot (or the cached
 * state) caught up with the stream's later records, from the journal and, behind its truncation
 * point, from the archive.
 *
 * A snapshot or cached state is a starting point only when the journal agrees with it (DESIGN §6):
 * its version is not above the stream's, and the journal's record at its version carries its seq (a
 * record already truncated counts as a match). Anything else — a point-in-time restore, a tail lost
 * under `"interval"`/`"os"`, another timeline — is ignored with a logged warning.
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import type * as Aggregate from "../Aggregate.ts"
import type { Archive, ArchiveError } from "../Archive.ts"
import * as Codec from "../Codec.ts"
import type { Journal, JournalError, JournalRecord, StreamRef } from "../Journal.ts"
import type { SnapshotCriteria, SnapshotStore, SnapshotStoreError } from "../SnapshotStore.ts"

/** How often a rebuild starts again from a newer snapshot after its records were truncated under it. */
const MAX_TRUNCATION_RETRIES = 3

/** A state together with where it stands in the log. @internal */
export interface Folded<S> {
  readonly state: S
  readonly version: number
  readonly seq: number
  readonly timestamp: number
  /** Version of the newest snapshot saved of this stream (0: none known). */
  readonly snapshotVersion: number
}

/** Which events a rebuild folds: those with timestamp ≤ `asOf` and version ≤ `toVersion`. @internal */
export interface Bound {
  readonly asOf?: number | undefined
  readonly toVersion?: number | undefined
}

/** A starting point the journal disagrees with: why, and the highest version a replacement may have. */
interface Untrusted {
  readonly reason: string
  readonly maxVersion: number
}

/** Stops reading a stream once its first page shows that the starting point is not trustworthy. */
class Distrusted {
  readonly untrusted: Untrusted
  constructor(untrusted: Untrusted) {
    this.untrusted = untrusted
  }
}
const isDistrusted = (error: unknown): error is Distrusted => error instanceof Distrusted

/** A small LRU map: a `Map` keeps insertion order, so re-inserting on access moves an entry to the end. @internal */
export class Lru<V> {
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
 * The rebuild of one aggregate's states over these services. `truncated` builds the error for
 * versions that neither the journal nor the archive holds.
 * @internal
 */
export const makeRehydrator = <E extends { readonly _tag: string }, S, T>(options: {
  readonly aggregate: Aggregate.Aggregate<E, S>
  /** Counts the records folded (`Metrics.recordsReplayed` of the aggregate's namespace). */
  readonly replayed: Metric.Metric<number, unknown>
  readonly journal: Journal
  readonly snapshots: SnapshotStore
  readonly archive: Option.Option<Archive>
  readonly cache: Lru<Folded<S>>
  readonly truncated: (stream: StreamRef, fromVersion: number, toVersion: number, detail: string) => T
}) => {
  const { aggregate, archive, cache, journal, replayed, snapshots, truncated } = options
  const initial: Folded<S> = { state: aggregate.initial, version: 0, seq: 0, timestamp: 0, snapshotVersion: 0 }
  const where = (stream: StreamRef) => `${stream.namespace}/${stream.id}`

  /** The youngest snapshot matching `criteria` in this aggregate's schema version, or the initial state. */
  const fromSnapshot = (stream: StreamRef, criteria: SnapshotCriteria) =>
    Effect.gen(function*() {
      const found = yield* snapshots.get(stream.namespace, stream.id, criteria)
      if (Option.isNone(found) || found.value.schemaVersion !== aggregate.schemaVersion) return initial
      const snapshot = found.value
      const state = Codec.decodeSnapshot(aggregate.stateCodec, snapshot)
      if (Result.isFailure(state)) {
        yield* Effect.logWarning(`${state.failure.message}; rebuilding the state from the journal`)
        return initial
      }
      const folded: Folded<S> = {
        state: state.success,
        version: snapshot.version,
        seq: snapshot.seq,
        timestamp: snapshot.timestamp,
        snapshotVersion: snapshot.version
      }
      return folded
    })

  /** Versions `fromVersion..toVersion` of the stream, with seqs in `afterSeq+1..beforeSeq-1`, from the archive. */
  const fromArchive = (stream: StreamRef, fromVersion: number, toVersion: number, afterSeq: number, beforeSeq: number) =>
    Effect.gen(function*() {
      if (Option.isNone(archive)) {
        return yield* Effect.fail(truncated(stream, fromVersion, toVersion, "no Archive is configured to read them from"))
      }
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
      return yield* Effect.fail(truncated(
        stream,
        fromVersion,
        toVersion,
        `the Archive holds ${found.length} of the ${toVersion - fromVersion + 1} records`
      ))
    })

  /**
   * Folds onto `base` every later record of the stream within `bound`, filling gaps left by
   * truncation from the archive; or says why `base` cannot be trusted (with `checkSeq`, also when
   * the journal's record at its version is another one). `current` is the stream's version read
   * before, so that records truncated away at the end are noticed too. Records are folded a page at
   * a time as the journal reads them: a long stream is never all in memory.
   */
  const catchUp = (stream: StreamRef, base: Folded<S>, current: number, bound: Bound, checkSeq: boolean) =>
    Effect.gen(function*(): Effect.fn.Return<Folded<S> | Untrusted, JournalError | ArchiveError | Codec.CodecError | T> {
      if (base.version > current) {
        // A snapshot saved since `current` was read is above it legitimately: look again.
        current = yield* journal.version(stream)
        if (base.version > current) return { reason: `the journal's stream is only at version ${current}`, maxVersion: current }
      }
      // With checkSeq, read from the base's own version, to check that the journal's record there is the base's.
      const from = checkSeq ? Math.max(1, base.version) : base.version + 1
      const end = bound.toVersion === undefined ? current : Math.min(current, bound.toVersion)
      let folded = base
      let count = 0
      /** Whether the journal's record at the base's version was looked at (or is not read). */
      let checked = false
      /** The version and seq of the last record taken, folded or (after `asOf`) not. */
      let seen = base.version
      let seenSeq = base.seq
      /**
       * Folds `records[next..]` on. Versions missing before one of them — truncated before the read
       * began, or between two of its pages — are read from the archive (`HistoryTruncated` when it
       * cannot: the rebuild then looks for a newer snapshot); a `CodecError` fails.
       */
      const foldOn = (records: ReadonlyArray<JournalRecord>, next: number): Effect.Effect<void, ArchiveError | Codec.CodecError | T> => {
        let gap = next
        while (gap < records.length && records[gap]!.version === seen + 1 + gap - next) gap++
        if (gap > next) {
          const result = fold(folded, records, next, gap, bound.asOf)
          if (result instanceof Codec.CodecError) return Effect.fail(result)
          folded = result.folded
          count += result.count
          seen = records[gap - 1]!.version
          seenSeq = records[gap - 1]!.seq
        }
        if (gap === records.length) return Effect.void
        const after = records[gap]!
        return Effect.andThen(missing(after.version - 1, after.seq), Effect.suspend(() => foldOn(records, gap)))
      }
      /** Folds on versions `seen+1..toVersion` from the archive (their seqs lie before `beforeSeq`). */
      const missing = (toVersion: number, beforeSeq: number) =>
        Effect.flatMap(fromArchive(stream, seen + 1, toVersion, seenSeq, beforeSeq), (records) => foldOn(records, 0))
      /** A page: the first one checks the base against the journal's record at its version. */
      const page = (records: ReadonlyArray<JournalRecord>): Effect.Effect<void, ArchiveError | Codec.CodecError | T | Distrusted> => {
        if (checked) return foldOn(records, 0)
        checked = true
        if (from !== base.version || records[0]!.version !== base.version) return foldOn(records, 0)
        if (records[0]!.seq !== base.seq) {
          return Effect.fail(
            new Distrusted({
              reason: `the journal's record at version ${base.version} has seq ${records[0]!.seq}, not ${base.seq} (another timeline)`,
              maxVersion: base.version - 1
            })
          )
        }
        return foldOn(records, 1)
      }
      // After the pages, versions up to `end` that no page held (truncated at the end, before or during the read).
      const rest = Effect.suspend(() => seen < end ? missing(end, Number.MAX_SAFE_INTEGER) : Effect.void)
      const distrusted = yield* Effect.catchIf(
        Effect.as(Effect.andThen(Stream.runForEachArray(journal.read(stream, { from, to: bound.toVersion }), page), rest), undefined),
        isDistrusted,
        (error) => Effect.succeed(error.untrusted)
      )
      if (distrusted !== undefined) return distrusted
      if (count > 0) yield* Metric.update(replayed, count)
      return folded
    })

  /**
   * `base` with `records[start..end)` folded on (those with timestamp ≤ `asOf`), and how many; or the
   * first record's `CodecError`.
   */
  const fold = (base: Folded<S>, records: ReadonlyArray<JournalRecord>, start: number, end: number, asOf: number | undefined) => {
    let { seq, state, timestamp, version } = base
    let count = 0
    for (let i = start; i < end; i++) {
      const record = records[i]!
      if (asOf !== undefined && record.timestamp > asOf) continue
      count++
      const event = Codec.decodeRecord(aggregate.eventCodec, record)
      if (Result.isFailure(event)) return event.failure
      state = aggregate.evolve(state, event.success)
      version = record.version
      seq = record.seq
      timestamp = record.timestamp
    }
    const folded: Folded<S> = { state, version, seq, timestamp, snapshotVersion: base.snapshotVersion }
    return { folded, count }
  }

  const isUntrusted = (folded: Folded<S> | Untrusted): folded is Untrusted => "reason" in folded
  const isHistoryTruncated = (error: unknown) => (error as { readonly _tag?: unknown })._tag === "HistoryTruncated"

  /** The stream's state within `bound` (the cache serves and keeps only unbounded rebuilds). */
  const rebuild = (id: string, bound: Bound) =>
    Effect.gen(function*(): Effect.fn.Return<Folded<S>, JournalError | SnapshotStoreError | ArchiveError | Codec.CodecError | T> {
      const stream: StreamRef = { namespace: aggregate.namespace, id }
      const current = yield* journal.version(stream)
      const unbounded = bound.asOf === undefined && bound.toVersion === undefined
      const cached = unbounded ? cache.get(id) : undefined
      if (cached !== undefined) {
        // The cache is only a starting point, caught up like a snapshot. It was folded from this
        // journal in this process, whose records never change under it: only its version is checked.
        const result = yield* Effect.result(catchUp(stream, cached, current, bound, false))
        if (Result.isSuccess(result)) {
          if (!isUntrusted(result.success)) {
            cache.set(id, result.success)
            return result.success
          }
          yield* Effect.logWarning(`The cached state of ${where(stream)} at version ${cached.version} is ignored: ${result.success.reason}`)
        } else if (!isHistoryTruncated(result.failure)) {
          return yield* Effect.fail(result.failure)
        }
        cache.delete(id)
      }
      let criteria: SnapshotCriteria = {
        ...(bound.asOf === undefined ? {} : { maxTimestamp: bound.asOf }),
        ...(bound.toVersion === undefined ? {} : { maxVersion: bound.toVersion })
      }
      // A checkpoint may snapshot and truncate between reading the snapshot and reading the journal:
      // the records are gone then, but a newer snapshot covers them. Look again a few times.
      let truncations = 0
      for (;;) {
        const base = yield* fromSnapshot(stream, criteria)
        const attempt = yield* Effect.result(catchUp(stream, base, current, bound, true))
        if (Result.isFailure(attempt)) {
          if (isHistoryTruncated(attempt.failure) && truncations++ < MAX_TRUNCATION_RETRIES) {
            const now = yield* fromSnapshot(stream, criteria)
            if (now.version !== base.version || now.seq !== base.seq) continue
          }
          return yield* Effect.fail(attempt.failure)
        }
        const folded = attempt.success
        if (!isUntrusted(folded)) {
          if (unbounded) cache.set(id, folded)
          return folded
        }
        // The initial state is always trusted, so every turn lowers maxVersion and this ends.
        yield* Effect.logWarning(
          `The snapshot of ${where(stream)} at version ${base.version} (seq ${base.seq}) is ignored: ${folded.reason}; ` +
            `rebuilding the state from the journal${Option.isSome(archive) ? " and the archive" : ""}`
        )
        criteria = { ...criteria, maxVersion: folded.maxVersion }
      }
    })

  return { rebuild }
}
