/**
 * What a subscription reads, from a seq on: the Archive for any part the journal no longer holds,
 * then the journal's `follow`; when a truncation overtakes the follower, back to the Archive for the
 * part it removed. The position is tracked as records are handed on, so a restart after a failure
 * continues exactly after the last record handed on: nothing twice, nothing skipped.
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import type { Archive, ArchiveError, SegmentRef } from "../Archive.ts"
import type { Journal, JournalError, JournalRecord, JournalTruncated } from "../Journal.ts"
import { type Retry, retryDelay } from "./subscriptionBatches.ts"

/** Why the source cannot go on: the records at `seq` are neither in the journal nor in the Archive. @internal */
export class Unreachable {
  readonly _tag = "Unreachable"
  readonly seq: number
  readonly truncatedBefore: number
  readonly archived: boolean
  constructor(seq: number, truncatedBefore: number, archived: boolean) {
    this.seq = seq
    this.truncatedBefore = truncatedBefore
    this.archived = archived
  }
}

/** A reader of the log that remembers where it is. @internal */
export interface Source {
  /** The records from the current position on, for ever; a new run continues after the last record it handed on. */
  readonly records: Stream.Stream<JournalRecord, JournalError | ArchiveError | Unreachable>
  /** The seq of the next record to hand on. */
  readonly next: () => number
}

/** A source starting at `fromSeq` over `journal` (and `archive`, when given). @internal */
export const make = (journal: Journal, archive: Archive | undefined, fromSeq: number): Source => {
  let next = fromSeq
  const advance = <T extends ReadonlyArray<JournalRecord>>(records: T): T => {
    next = records[records.length - 1]!.seq + 1
    return records
  }

  const fromJournal = (): Stream.Stream<JournalRecord, JournalError | ArchiveError | Unreachable> =>
    journal.follow(next).pipe(
      Stream.mapArray(advance),
      Stream.catchTag("JournalTruncated", (truncated) => fromArchive(truncated))
    )

  // The journal removed records at or after `next`: read them from the Archive, then follow again.
  // Segments cover seq ranges (a range may end in a seq gap): each must start at or below `next`, or
  // the records in between are missing; after one, `next` is past its range, whatever it held.
  const fromArchive = (truncated: JournalTruncated): Stream.Stream<JournalRecord, JournalError | ArchiveError | Unreachable> =>
    Stream.unwrap(Effect.gen(function*() {
      if (archive === undefined) return Stream.fail(new Unreachable(next, truncated.truncatedBefore, false))
      const refs = yield* archive.list(next)
      const missing = () => new Unreachable(next, truncated.truncatedBefore, true)
      // Nothing in the Archive at or after `next` while the journal starts above it: those records are gone.
      if (refs.length === 0) return Stream.fail(missing())
      const archived = Stream.fromIterable(refs).pipe(
        Stream.mapEffect((ref): Effect.Effect<{ readonly ref: SegmentRef; readonly records: ReadonlyArray<JournalRecord> }, ArchiveError | Unreachable> =>
          ref.startSeq > next ? Effect.fail(missing()) : Effect.map(archive.get(ref), (records) => ({ ref, records }))
        ),
        Stream.flatMap(({ records, ref }) => {
          const fresh = records.filter((record) => record.seq >= next)
          return Stream.concat(
            fresh.length > 0 ? Stream.fromArray(advance(fresh)) : Stream.empty,
            Stream.fromEffectDrain(Effect.sync(() => {
              next = Math.max(next, ref.endSeq + 1)
            }))
          )
        })
      )
      // Each round moves `next` past at least one segment's range; the journal then decides.
      return Stream.concat(archived, Stream.suspend(fromJournal))
    }))

  return { records: Stream.suspend(fromJournal), next: () => next }
}

/**
 * Reads `source` into `queue` for ever (a few pages ahead at most: the queue is bounded), retrying a
 * failed read with backoff (`retry.times` failures in a row without progress at most). When it cannot
 * go on, fails the queue with `stop(reason)`, so the reader of the queue sees why. @internal
 */
export const pump = <E>(
  source: Source,
  queue: Queue.Queue<ReadonlyArray<JournalRecord>, E>,
  options: {
    readonly name: string
    readonly retry: Retry
    /** The error the queue fails with; `seq` is the next record that could not be read. */
    readonly stop: (reason: Unreachable | JournalError | ArchiveError, seq: number) => E
  }
): Effect.Effect<void> =>
  Effect.suspend(function loop(failures = 0): Effect.Effect<void> {
    const position = source.next()
    return Stream.runForEachArray(source.records, (records) => Queue.offer(queue, records)).pipe(
      Effect.catch((error): Effect.Effect<void> => {
        const again = source.next() > position ? 0 : failures
        if (error instanceof Unreachable || again >= options.retry.times) {
          return Effect.asVoid(Queue.fail(queue, options.stop(error, source.next())))
        }
        return Effect.logWarning(`Subscription ${JSON.stringify(options.name)}: reading the log failed, retrying: ${error.message}`).pipe(
          Effect.andThen(Effect.sleep(retryDelay(options.retry, again))),
          Effect.andThen(loop(again + 1))
        )
      })
    )
  })
