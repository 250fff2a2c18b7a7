/**
 * The download-and-apply part of `Archiver.restore`: every segment to restore is downloaded and
 * verified before anything is applied, so a damaged object fails the restore with the journal
 * unchanged — in one pass when their stored size fits `stagingBytes` (kept in memory until applied),
 * else in two (verify all, then download again and apply), so memory stays bounded. Downloads run
 * `concurrency` at a time; segments are applied strictly in seq order.
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { Archive, ArchiveError, SegmentRef } from "../Archive.ts"
import type { Journal, JournalError, JournalRecord } from "../Journal.ts"

/** How to apply: which records to keep, where the journal stands, and the download limits. @internal */
export interface ApplyOptions {
  readonly keep: (record: JournalRecord) => boolean
  readonly lastSeq: number
  readonly concurrency: number
  readonly stagingBytes: number
}

/** Restores `refs` (in seq order) into `journal`; the segments applied, the records restored, the last seq. @internal */
export const applySegments = (
  journal: Journal,
  archive: Archive,
  refs: ReadonlyArray<SegmentRef>,
  options: ApplyOptions
): Effect.Effect<{ readonly segments: number; readonly records: number; readonly lastSeq: number }, ArchiveError | JournalError> =>
  Effect.gen(function*() {
    const { concurrency } = options
    let segments = 0
    let records = 0
    let lastSeq = options.lastSeq
    const apply = (segment: ReadonlyArray<JournalRecord>) =>
      Effect.gen(function*() {
        const batch = segment.filter(options.keep)
        yield* journal.restore(batch)
        segments++
        records += batch.length
        if (batch.length > 0) lastSeq = batch[batch.length - 1]!.seq
      })
    const staged = refs.every((ref) => ref.size !== undefined) && refs.reduce((sum, ref) => sum + ref.size!, 0) <= options.stagingBytes
    if (staged) {
      // forEach keeps the order of its input whatever the concurrency.
      for (const segment of yield* Effect.forEach(refs, (ref) => archive.get(ref), { concurrency })) yield* apply(segment)
    } else {
      yield* Effect.forEach(refs, (ref) => Effect.asVoid(archive.get(ref)), { concurrency, discard: true })
      yield* Stream.fromIterable(refs).pipe(
        Stream.mapEffect((ref) => archive.get(ref), { concurrency }),
        Stream.runForEach(apply)
      )
    }
    return { segments, records, lastSeq }
  })
