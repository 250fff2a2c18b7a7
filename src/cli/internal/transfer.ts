/**
 * The commands that move records out: `dump` (readable JSON lines), `export` (exact JSON lines, for
 * `import` into any backend), `restore` (a point in time, from the archive and what the journal holds
 * after it, into a fresh store) and `tail` (follow).
 * @internal
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { Archive } from "../../Archive.ts"
import * as Archiver from "../../Archiver.ts"
import { Journal, type JournalError, type JournalRecord } from "../../Journal.ts"
import type { Output } from "./output.ts"
import type { Progress } from "./progress.ts"
import { exportLine, jsonLine, readable } from "./records.ts"

/** A restore would leave a hole between the archive and the journal. @internal */
export class RestoreError extends Data.TaggedError("RestoreError")<{ readonly message: string }> {}

/** A bound of `--from`/`--until`: a seq, or a time (epoch ms). @internal */
export type Bound = { readonly seq: number } | { readonly time: number }

/** ISO 8601 as the command line takes it: a date (midnight UTC), or a date and time with `Z` or an offset. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/

/**
 * Parses `--from`/`--until`: digits are a seq; otherwise an ISO 8601 date (`2026-11-30`, midnight
 * UTC) or time with its zone (`2026-11-30T03:12:00Z`, `…+01:00`) — a time without a zone is refused
 * rather than read in the machine's zone. @internal
 */
export const parseBound = (flag: string, text: string): Bound | string => {
  if (/^\d+$/.test(text)) {
    const seq = Number(text)
    return Number.isSafeInteger(seq) ? { seq } : `${flag} ${text}: seq too large`
  }
  const time = ISO_TIME.test(text) ? Date.parse(text) : Number.NaN
  return Number.isNaN(time)
    ? `${flag} ${JSON.stringify(text)}: neither a seq (digits) nor an ISO 8601 date or time with its zone (2026-11-30, 2026-11-30T03:12:00Z)`
    : { time }
}

/** The records between `from` and `until` (inclusive), in seq order. @internal */
export const between = (from: Bound | undefined, until: Bound | undefined): Stream.Stream<JournalRecord, JournalError, Journal> =>
  Stream.unwrap(Effect.map(Journal, (journal) => {
    const fromSeq = from !== undefined && "seq" in from ? Math.max(1, from.seq) : 1
    let records = until !== undefined && "time" in until ? journal.replayUntil(fromSeq, until.time) : journal.replayFrom(fromSeq)
    if (from !== undefined && "time" in from) records = Stream.filter(records, (r) => r.timestamp >= from.time)
    if (until !== undefined && "seq" in until) records = Stream.takeWhile(records, (r) => r.seq <= until.seq)
    return records
  }))

/** The number of records `between` may give at most, for progress (unknown for a time bound). */
const expected = (from: Bound | undefined, until: Bound | undefined) =>
  Effect.gen(function*() {
    if ((from !== undefined && "time" in from) || (until !== undefined && "time" in until)) return undefined
    const journal = yield* Journal
    const lastSeq = yield* journal.lastSeq
    const first = from !== undefined && "seq" in from ? from.seq : (yield* journal.checkpoint) || 1
    const last = until !== undefined && "seq" in until ? Math.min(until.seq, lastSeq) : lastSeq
    return Math.max(0, last - first + 1)
  })

/** Writes the records between the bounds as lines of `format` to `output`; returns how many. @internal */
export const write = (
  format: (record: JournalRecord) => string,
  output: Output,
  progress: Progress,
  from: Bound | undefined,
  until: Bound | undefined
) =>
  Effect.gen(function*() {
    const total = yield* expected(from, until)
    if (total !== undefined) yield* progress.expect(total)
    let count = 0
    yield* Stream.runForEachArray(between(from, until), (records) =>
      Effect.andThen(output.write(records.map((r) => format(r) + "\n").join("")), () => {
        count += records.length
        return progress.advance(records.length)
      }))
    yield* progress.done
    return count
  })

/** A readable line (`dump`, `read`, `tail`). @internal */
export const readableLine = (record: JournalRecord): string => jsonLine(readable(record))

/** An exact line (`export`). @internal */
export { exportLine }

/**
 * Restores the archive into the (fresh) journal in context up to `until` (all if undefined), then
 * the records of `source` after the archive's last, up to the same time. Returns the records
 * restored from each. @internal
 */
export const restore = (
  archive: Archive,
  source: Journal | undefined,
  until: number | undefined,
  progress: Progress
) =>
  Effect.gen(function*() {
    const target = yield* Journal
    const segments = yield* archive.list()
    const archivedThrough = segments.length === 0 ? 0 : segments[segments.length - 1]!.endSeq
    if (source !== undefined) {
      // Checked before anything is written: the journal must go on where the archive ends.
      const first = yield* Stream.runHead(source.replayFrom(1))
      if (first._tag === "Some" && first.value.seq > archivedThrough + 1) {
        return yield* new RestoreError({
          message: `Seqs ${archivedThrough + 1}..${first.value.seq - 1} are in neither the archive (through seq ${archivedThrough}) ` +
            `nor the journal (from seq ${first.value.seq}); nothing was restored (--archive-only restores the archive alone)`
        })
      }
    }
    yield* progress.expect(archivedThrough)
    // The target, counting what the Archiver restores into it.
    const counting: Journal = {
      ...target,
      restore: (records) => {
        const all = [...records]
        return Effect.andThen(target.restore(all), progress.advance(all.length))
      }
    }
    const fromArchive = yield* Archiver.restore(until === undefined ? {} : { until }).pipe(
      Effect.provideService(Journal, counting),
      Effect.provideService(Archive, archive)
    )
    let fromJournal = 0
    if (source !== undefined) {
      const after = (yield* target.lastSeq) + 1
      const tail = until === undefined ? source.replayFrom(after) : source.replayUntil(after, until)
      yield* Stream.runForEachArray(tail, (records) => {
        fromJournal += records.length
        return counting.restore(records)
      })
    }
    yield* progress.done
    return { fromArchive: fromArchive.records, segments: fromArchive.segments, fromJournal }
  })

/** Writes each record of `records` as a line of `format` to `output`. @internal */
export const lines = <E, R>(records: Stream.Stream<JournalRecord, E, R>, format: (record: JournalRecord) => string, output: Output) =>
  Stream.runForEachArray(records, (chunk) => output.write(chunk.map((r) => format(r) + "\n").join("")))
