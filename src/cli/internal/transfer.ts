/**
 * The commands that move records: `dump` (readable JSON lines), `export` and `import` (exact JSON
 * lines between any two backends, seqs, versions and timestamps kept), `restore` (a point in time,
 * from the archive and what the journal holds after it, into a fresh store) and `tail` (follow).
 * @internal
 */
import { Data, Effect, Stream } from "effect"
import * as fs from "node:fs"
import process from "node:process"
import * as readline from "node:readline"
import { Archive } from "../../Archive.ts"
import * as Archiver from "../../Archiver.ts"
import { Journal, type JournalError, type JournalRecord } from "../../Journal.ts"
import type { Output } from "./output.ts"
import type { Progress } from "./progress.ts"
import { exportLine, parseExportLine, readable } from "./records.ts"

/** A bound of `--from`/`--until`: a seq, or a time (epoch ms). @internal */
export type Bound = { readonly seq: number } | { readonly time: number }

/** An import file was unreadable or did not fit the target. @internal */
export class TransferError extends Data.TaggedError("TransferError")<{ readonly message: string; readonly cause?: unknown }> {}

/** Parses `--from`/`--until`: an integer is a seq, anything else a date (ISO 8601). @internal */
export const parseBound = (flag: string, text: string): Bound | string => {
  if (/^\d+$/.test(text)) {
    const seq = Number(text)
    return Number.isSafeInteger(seq) ? { seq } : `${flag} ${text}: seq too large`
  }
  const time = Date.parse(text)
  return Number.isNaN(time) ? `${flag} ${text}: neither a seq (an integer) nor a time (ISO 8601, e.g. 2026-12-01T03:12:00Z)` : { time }
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
export const readableLine = (record: JournalRecord): string => JSON.stringify(readable(record))

/** An exact line (`export`). @internal */
export { exportLine }

const fileLines = (path: string): Stream.Stream<string, TransferError> =>
  Stream.fromAsyncIterable(
    readline.createInterface({
      input: path === "-" ? process.stdin : fs.createReadStream(path),
      crlfDelay: Infinity
    }),
    (cause) => new TransferError({ message: `Cannot read ${path === "-" ? "standard input" : path}: ${(cause as Error).message}`, cause })
  )

const sameRecord = (a: JournalRecord, b: JournalRecord) => exportLine(a) === exportLine(b)

const IMPORT_BATCH = 1_000

/**
 * Imports an export file (`-`: standard input) into the journal, in batches. The journal must be
 * empty, or hold exactly the file's first records (an import that stopped half way: it resumes
 * after them). Returns how many records were imported. @internal
 */
export const importFile = (path: string, progress: Progress) =>
  Effect.gen(function*() {
    const journal = yield* Journal
    const lastSeq = yield* journal.lastSeq
    if (path !== "-") {
      const size = yield* Effect.try({ try: () => fs.statSync(path).size, catch: (cause) => new TransferError({ message: `Cannot read ${path}: ${(cause as Error).message}`, cause }) })
      yield* progress.expect(Math.ceil(size / 160))
    }
    let lineNumber = 0
    let batch: Array<JournalRecord> = []
    let imported = 0
    let matched = lastSeq === 0
    const flush = Effect.suspend(() => {
      const records = batch
      batch = []
      imported += records.length
      return records.length === 0 ? Effect.void : Effect.andThen(journal.restore(records), progress.advance(records.length))
    })
    yield* Stream.runForEach(fileLines(path), (line) =>
      Effect.gen(function*() {
        lineNumber++
        if (line.trim() === "") return
        const record = parseExportLine(line)
        const where = `${path === "-" ? "standard input" : path}, line ${lineNumber}`
        if (typeof record === "string") return yield* new TransferError({ message: `${where}: ${record}` })
        if (record.seq <= lastSeq) {
          if (record.seq === lastSeq) {
            const held = yield* Stream.runHead(journal.replayFrom(lastSeq))
            if (held._tag === "None" || !sameRecord(held.value, record)) {
              return yield* new TransferError({
                message: `${where}: the target journal is not empty (last seq ${lastSeq}) and its record at seq ${lastSeq} differs from this file's; nothing was imported`
              })
            }
            matched = true
          }
          return
        }
        if (!matched) {
          return yield* new TransferError({
            message: `${where}: the target journal is not empty (last seq ${lastSeq}) and this file has no record at seq ${lastSeq}; nothing was imported`
          })
        }
        batch.push(record)
        if (batch.length >= IMPORT_BATCH) yield* flush
      }))
    yield* flush
    yield* progress.done
    return imported
  })

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
    yield* progress.expect(segments.length === 0 ? 0 : segments[segments.length - 1]!.endSeq)
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
