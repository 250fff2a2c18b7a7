/**
 * The Checkpointer compacts the journal: it folds the records since the last checkpoint into a
 * snapshot of every stream they touch, has the Archiver upload everything below the new watermark
 * (when an Archiver is provided), then moves the checkpoint and truncates the journal before it.
 *
 * A record is truncated only when its stream's state is in a snapshot at or past it and, with an
 * Archiver, the archive holds it. Records of a namespace with no registered aggregate cannot be
 * snapshotted, so they hold the watermark back and are reported. Every step is idempotent, so a crash
 * between any two of them leaves a state from which the next run completes correctly.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Option, Stream } from "effect"
import type * as Aggregate from "./Aggregate.ts"
import type { ArchiveError } from "./Archive.ts"
import { Archiver } from "./Archiver.ts"
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
 * What one checkpoint did.
 *
 * @since 0.1.0
 * @category models
 */
export interface CheckpointResult {
  /** The checkpoint before the run. */
  readonly from: number
  /** The new checkpoint: every record below it was removed from the journal. */
  readonly checkpoint: number
  /** Streams touched since the checkpoint (each is now in a snapshot at or past its last record). */
  readonly streams: number
  /** Snapshots written (a stream already snapshotted at its last record needs none). */
  readonly snapshots: number
  /** With an Archiver: every record below this seq + 1 is archived. */
  readonly archivedThrough: Option.Option<number>
  /** Namespaces without a registered aggregate, holding the watermark back. */
  readonly heldBack: ReadonlyArray<HeldBack>
}

/**
 * The Checkpointer service.
 *
 * @since 0.1.0
 * @category services
 */
export interface Checkpointer {
  /** Runs one compaction cycle. */
  readonly run: Effect.Effect<CheckpointResult, Repository.LoadError | ArchiveError | JournalError>
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
 * Builds a Checkpointer for the registered aggregates (one per namespace).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  aggregates: ReadonlyArray<Aggregate.Any>
): Effect.Effect<Checkpointer, never, Journal | SnapshotStore> =>
  Effect.gen(function*() {
    const journal = yield* Journal
    const archiver = yield* Effect.serviceOption(Archiver)
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
      // 1. Which streams did the records since the checkpoint touch?
      const touched = new Map<string, Set<string>>()
      const heldBack = new Map<string, { firstSeq: number; records: number }>()
      yield* Stream.runForEach(
        journal.replayFrom(from).pipe(Stream.takeWhile((record) => record.seq <= lastSeq)),
        (record) =>
          Effect.sync(() => {
            if (repositories.has(record.namespace)) {
              let ids = touched.get(record.namespace)
              if (ids === undefined) touched.set(record.namespace, ids = new Set())
              ids.add(record.id)
            } else {
              const held = heldBack.get(record.namespace)
              if (held === undefined) heldBack.set(record.namespace, { firstSeq: record.seq, records: 1 })
              else held.records++
            }
          })
      )
      // 2. Snapshot each of them at (or past) its last record.
      let streams = 0
      let snapshots = 0
      for (const [namespace, ids] of touched) {
        const repository = repositories.get(namespace)!
        for (const id of ids) {
          streams++
          if ((yield* repository.snapshot(id)).saved) snapshots++
        }
      }
      let watermark = Math.max(from, lastSeq + 1)
      for (const held of heldBack.values()) watermark = Math.min(watermark, held.firstSeq)
      // 3. Archive everything below the watermark, 4. then move the checkpoint and truncate.
      const archivedThrough = Option.isSome(archiver)
        ? Option.some(yield* archiver.value.flush(watermark))
        : Option.none<number>()
      yield* journal.setCheckpoint(watermark)
      yield* journal.truncateBefore(watermark)
      const report = Array.from(heldBack, ([namespace, held]) => ({ namespace, ...held }))
      for (const held of report) {
        yield* Effect.logWarning(
          `Checkpoint held back at seq ${held.firstSeq}: ${held.records} records of namespace ${held.namespace}, ` +
            `which has no registered aggregate, cannot be snapshotted`
        )
      }
      return { from, checkpoint: watermark, streams, snapshots, archivedThrough, heldBack: report }
    })

    return Checkpointer.of({ run })
  })

/**
 * The Checkpointer as a layer that also runs a checkpoint every `interval` in a background fiber
 * (failures are logged; the next run starts over safely).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  aggregates: ReadonlyArray<Aggregate.Any>,
  options?: { readonly interval?: Duration.Input | undefined }
): Layer.Layer<Checkpointer, never, Journal | SnapshotStore> =>
  Layer.effect(
    Checkpointer,
    Effect.gen(function*() {
      const checkpointer = yield* make(aggregates)
      const interval = Duration.fromInputUnsafe(options?.interval ?? "1 minute")
      const cycle = checkpointer.run.pipe(
        Effect.catch((error) => Effect.logWarning(`Checkpoint failed, will run again: ${error.message}`))
      )
      yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(interval), cycle)))
      return checkpointer
    })
  )
