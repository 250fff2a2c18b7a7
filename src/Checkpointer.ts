/**
 * The Checkpointer compacts the journal: it folds the settled records since the last checkpoint into
 * a snapshot of every stream they touch, has the Archiver upload everything below the new watermark
 * (with `history: "archive"`), then moves the checkpoint and truncates the journal before it.
 *
 * What happens to the history before the checkpoint is an explicit choice (`history`):
 * - `"archive"`: the Archiver (required in `R`) uploads it first, and only what it confirms archived is
 *   truncated; loads behind the checkpoint read it back from the Archive.
 * - `"discard"`: it is truncated without an archive and gone for good: time travel behind the
 *   checkpoint, and rebuilds after a `schemaVersion` bump, fail with `HistoryTruncated`.
 * - `"keep"`: snapshots are taken and the checkpoint moves, but nothing is ever truncated.
 *
 * A record is truncated only when its stream's state is in a snapshot at or past it and, with
 * `"archive"`, the archive holds it. Records of a namespace with no registered aggregate cannot be
 * snapshotted, so they hold the watermark back and are reported. With `cursors: true` (the
 * CursorStore in `R`), every subscription's cursor also counts: a record a subscription has not
 * applied yet is truncated only when the Archive holds it (it reads it from there); without an
 * Archive the cursor holds the watermark back. Lagging subscriptions are reported either way. Every
 * step is idempotent, so a crash between any two of them leaves a state from which the next run
 * completes correctly.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type * as Aggregate from "./Aggregate.ts"
import type { ArchiveError } from "./Archive.ts"
import { Archiver } from "./Archiver.ts"
import { CursorStore, type CursorStoreError } from "./CursorStore.ts"
import { spanOptions } from "./internal/observe.ts"
import { Journal, type JournalError } from "./Journal.ts"
import * as Repository from "./Repository.ts"
import { SnapshotStore } from "./SnapshotStore.ts"

/**
 * Records the Checkpointer could not compact because no aggregate is registered for their namespace.
 *
 * @since 0.1.0
 * @category models
 */
export interface HeldBack {
  readonly namespace: string
  /** The lowest seq of such a record: the watermark cannot pass it. */
  readonly firstSeq: number
  readonly records: number
}

/**
 * A subscription whose cursor is behind the new checkpoint's watermark.
 *
 * @since 0.1.0
 * @category models
 */
export interface Lagging {
  readonly name: string
  /** Its cursor: it has applied every record up to this seq. */
  readonly cursor: number
  /** True when it held the watermark back (no Archive holds what it has not applied yet). */
  readonly heldBack: boolean
}

/**
 * What one checkpoint did.
 *
 * @since 0.1.0
 * @category models
 */
export interface CheckpointResult {
  /** The checkpoint before the run. */
  readonly from: number
  /** The new checkpoint: every record below it was removed from the journal (none with `history: "keep"`). */
  readonly checkpoint: number
  /** Streams touched since the checkpoint (each is now in a snapshot at or past its last record). */
  readonly streams: number
  /** Snapshots written (a stream already snapshotted at its last record needs none). */
  readonly snapshots: number
  /** With `history: "archive"`: every record below this seq + 1 is archived. */
  readonly archivedThrough: Option.Option<number>
  /** Namespaces without a registered aggregate, holding the watermark back. */
  readonly heldBack: ReadonlyArray<HeldBack>
  /** With `cursors: true`: subscriptions behind the watermark. */
  readonly lagging: ReadonlyArray<Lagging>
}

/**
 * The Checkpointer service.
 *
 * @since 0.1.0
 * @category services
 */
export interface Checkpointer {
  /** Runs one compaction cycle. */
  readonly run: Effect.Effect<CheckpointResult, Repository.LoadError | ArchiveError | JournalError | CursorStoreError>
}

/**
 * The Checkpointer service key.
 *
 * @since 0.1.0
 * @category services
 */
export const Checkpointer: Context.Service<Checkpointer, Checkpointer> = Context.Service<Checkpointer>(
  "annals/Checkpointer"
)

/**
 * What the Checkpointer does with the history before the checkpoint: `"archive"` truncates only what
 * the Archiver confirms archived; `"discard"` truncates without an archive (that history is gone for
 * good); `"keep"` never truncates.
 *
 * @since 0.1.0
 * @category models
 */
export type History = "archive" | "discard" | "keep"

/**
 * Options of `make`.
 *
 * @since 0.1.0
 * @category models
 */
export interface CheckpointerOptions<H extends History = History, C extends boolean = false> {
  /** What happens to the history before the checkpoint (no default: the choice is the caller's). */
  readonly history: H
  /**
   * `true`: subscriptions' cursors (the CursorStore in `R`) hold truncation back, unless the
   * Archive holds the records they have not applied yet.
   */
  readonly cursors?: C | undefined
}

/**
 * What a Checkpointer with `history: H` needs: the Journal and SnapshotStore, the Archiver when
 * `H` is `"archive"`, and the CursorStore when `C` (`cursors`) is `true`.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Requirements<H extends History, C extends boolean = false> =
  | Journal
  | SnapshotStore
  | (H extends "archive" ? Archiver : never)
  | (C extends true ? CursorStore : never)

const HISTORIES: ReadonlyArray<History> = ["archive", "discard", "keep"]

/**
 * Builds a Checkpointer for the registered aggregates (one per namespace).
 *
 * ```ts
 * const checkpointer = yield* Checkpointer.make([Account], { history: "archive" }) // needs Archiver.Archiver
 * const result = yield* checkpointer.run
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <H extends History, C extends boolean = false>(
  aggregates: ReadonlyArray<Aggregate.Any>,
  options: CheckpointerOptions<H, C>
): Effect.Effect<Checkpointer, never, Requirements<H, C>> =>
  Effect.gen(function*() {
    const history: History = options?.history
    if (!HISTORIES.includes(history)) {
      return yield* Effect.die(
        new Error(`Checkpointer.make: options.history must be "archive", "discard" or "keep", got ${JSON.stringify(history)}`)
      )
    }
    const journal = yield* Journal
    const archiver = history === "archive" ? Option.some(yield* Archiver) : Option.none<Archiver>()
    const cursorStore = options.cursors === true ? Option.some(yield* CursorStore) : Option.none<CursorStore>()
    const repositories = new Map<string, Repository.Repository<{ readonly _tag: string }, unknown>>()
    for (const aggregate of aggregates) {
      if (repositories.has(aggregate.namespace)) {
        return yield* Effect.die(new Error(`Checkpointer: two aggregates are registered for namespace ${aggregate.namespace}`))
      }
      repositories.set(aggregate.namespace, yield* Repository.make(aggregate, { cacheSize: 0 }))
    }

    const run: Checkpointer["run"] = Effect.gen(function*() {
      const from = yield* journal.checkpoint
      const lastSeq = yield* journal.lastSeq
      // 1. Which streams did the settled records in [checkpoint, lastSeq] touch, and up to which seq?
      const touched = new Map<string, Map<string, number>>()
      const heldBack = new Map<string, { firstSeq: number; records: number }>()
      let replayedThrough = 0
      yield* Stream.runForEach(
        journal.replayFrom(from).pipe(Stream.takeWhile((record) => record.seq <= lastSeq)),
        (record) =>
          Effect.sync(() => {
            replayedThrough = record.seq
            if (repositories.has(record.namespace)) {
              let ids = touched.get(record.namespace)
              if (ids === undefined) touched.set(record.namespace, ids = new Map())
              ids.set(record.id, record.seq)
            } else {
              const held = heldBack.get(record.namespace)
              if (held === undefined) heldBack.set(record.namespace, { firstSeq: record.seq, records: 1 })
              else held.records++
            }
          })
      )
      // The watermark never passes a record the replay did not return: every seq below it was seen.
      let watermark = Math.max(from, replayedThrough + 1)
      for (const held of heldBack.values()) watermark = Math.min(watermark, held.firstSeq)
      // 2. Snapshot each of them at (or past) its last record; a snapshot that falls short of it
      // (a record the stream's read does not show) holds the watermark back to what it covers.
      let streams = 0
      let snapshots = 0
      for (const [namespace, ids] of touched) {
        const repository = repositories.get(namespace)!
        for (const [id, lastTouched] of ids) {
          streams++
          const snapshot = yield* repository.snapshot(id)
          if (snapshot.saved) snapshots++
          if (snapshot.seq < lastTouched) {
            watermark = Math.min(watermark, snapshot.seq + 1)
            yield* Effect.logWarning(
              `Checkpoint held back at seq ${snapshot.seq + 1}: the snapshot of ${namespace}/${id} covers seq ${snapshot.seq}, ` +
                `but the replay returned its record at seq ${lastTouched}`
            )
          }
        }
      }
      // 3. Archive everything below the watermark, and lower it to what the Archiver actually archived.
      let archivedThrough = Option.none<number>()
      if (Option.isSome(archiver)) {
        const archived = yield* archiver.value.flush(watermark)
        archivedThrough = Option.some(archived)
        // Seqs below the checkpoint are gone from the journal already: nothing there to hold back.
        watermark = Math.min(watermark, Math.max(from, archived + 1))
      }
      // 4. Subscriptions behind the watermark hold it back, unless the Archive holds what they have not applied.
      const lagging: Array<Lagging> = []
      if (Option.isSome(cursorStore)) {
        for (const cursor of yield* cursorStore.value.list) {
          if (cursor.seq + 1 >= watermark) continue
          const heldBack = Option.isNone(archiver) && history !== "keep"
          lagging.push({ name: cursor.name, cursor: cursor.seq, heldBack })
          if (heldBack) watermark = Math.min(watermark, Math.max(from, cursor.seq + 1))
        }
      }
      // 5. Move the checkpoint, then truncate (unless the history is kept).
      yield* journal.setCheckpoint(watermark)
      if (history !== "keep") yield* journal.truncateBefore(watermark)
      const report = Array.from(heldBack, ([namespace, held]) => ({ namespace, ...held }))
      for (const held of report) {
        yield* Effect.logWarning(
          `Checkpoint held back at seq ${held.firstSeq}: ${held.records} records of namespace ${held.namespace}, ` +
            `which has no registered aggregate, cannot be snapshotted`
        )
      }
      for (const subscription of lagging) {
        yield* Effect.logWarning(
          `Checkpoint ${subscription.heldBack ? "held back" : "passed"} at seq ${subscription.cursor + 1}: subscription ${
            JSON.stringify(subscription.name)
          } has applied up to seq ${subscription.cursor}${subscription.heldBack ? "" : " and reads the rest from the Archive"}`
        )
      }
      const checkpoint = Math.max(from, watermark)
      yield* Effect.annotateCurrentSpan({
        "annals.checkpoint.from": from,
        "annals.watermark": checkpoint,
        "annals.streams": streams,
        "annals.snapshots": snapshots,
        ...(history === "keep" ? {} : { "annals.truncated_before": checkpoint })
      })
      return { from, checkpoint, streams, snapshots, archivedThrough, heldBack: report, lagging }
    }).pipe(Effect.withSpan("annals.Checkpointer.run", spanOptions({ "annals.history": history })))

    return Checkpointer.of({ run })
  }) as Effect.Effect<Checkpointer, never, Requirements<H, C>>

/**
 * The Checkpointer as a layer that also runs a checkpoint every `interval` (default 1 minute) in a
 * background fiber (failures are logged; the next run starts over safely). Like `make`, it needs the
 * Archiver in `R` exactly when `history` is `"archive"`:
 *
 * ```ts
 * Checkpointer.layer([Account], { history: "archive" }).pipe(Layer.provideMerge(Archiver.layer()))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <H extends History, C extends boolean = false>(
  aggregates: ReadonlyArray<Aggregate.Any>,
  options: CheckpointerOptions<H, C> & { readonly interval?: Duration.Input | undefined }
): Layer.Layer<Checkpointer, never, Requirements<H, C>> =>
  Layer.effect(
    Checkpointer,
    Effect.gen(function*() {
      const checkpointer = yield* make(aggregates, options)
      const interval = Duration.fromInputUnsafe(options.interval ?? "1 minute")
      const cycle = checkpointer.run.pipe(
        Effect.catch((error) => Effect.logWarning(`Checkpoint failed, will run again: ${error.message}`))
      )
      yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(interval), cycle)))
      return checkpointer
    })
  )
