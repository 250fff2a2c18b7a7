/**
 * `annals import`: an export file (or standard input) into a journal, keeping every record's seq,
 * version, timestamp, metadata and payload bytes. Everything is checked before it is stored: each
 * line (fields, base64), seqs rising from line to line, versions continuing each stream (from the
 * target's version); a target that is not empty must hold exactly the file's first records (an
 * import that stopped half way: it resumes after them). Records are restored a batch at a time; a
 * failure names the line and says how far the import got.
 * @internal
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import process from "node:process"
import { Journal, type JournalRecord } from "../../Journal.ts"
import type { Progress } from "./progress.ts"
import { exportLine, parseExportLine } from "./records.ts"

/** An import file was unreadable, malformed, or did not fit the target. @internal */
export class ImportError extends Data.TaggedError("ImportError")<{ readonly message: string; readonly cause?: unknown }> {}

const sourceName = (path: string) => path === "-" ? "standard input" : path

/** Fails unless `path` is `-` or a readable file; its size (undefined for standard input). @internal */
export const checkSource = (path: string): Effect.Effect<number | undefined, ImportError> =>
  path === "-" ? Effect.succeed(undefined) : Effect.try({
    try: () => {
      fs.accessSync(path, fs.constants.R_OK)
      return fs.statSync(path).size
    },
    catch: (cause) => new ImportError({ message: `Cannot read ${path}: ${(cause as Error).message}`, cause })
  })

/** The lines of `path` (`-`: standard input), split at `\n` only (a U+2028 inside a string is no line end). */
const lines = (path: string): Stream.Stream<string, ImportError> =>
  Stream.fromAsyncIterable(
    path === "-" ? process.stdin : fs.createReadStream(path),
    (cause) => new ImportError({ message: `Cannot read ${sourceName(path)}: ${(cause as Error).message}`, cause })
  ).pipe(
    Stream.map((chunk: string | Uint8Array) => typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk),
    Stream.decodeText,
    Stream.splitLines
  )

const IMPORT_BATCH = 1_000

/** A parsed line and where it was. */
interface Line {
  readonly record: JournalRecord
  readonly where: string
}

/**
 * Imports the export file `path` (`-`: standard input) into the journal in context; returns how many
 * records it stored. @internal
 */
export const importFile = (path: string, progress: Progress): Effect.Effect<number, ImportError, Journal> =>
  Effect.gen(function*() {
    const journal = yield* Journal
    let imported = 0
    let importedThrough = 0
    // Every failure says how far the import got: the batches before it are stored.
    const fail = (message: string, cause?: unknown) =>
      new ImportError({
        message: message + (imported === 0
          ? "; nothing was imported"
          : `; ${imported.toLocaleString("en-US")} records (through seq ${importedThrough}) were imported before it, and importing the file again resumes after them`),
        ...(cause !== undefined ? { cause } : {})
      })
    const failed = (error: { readonly message: string }) => fail(error.message, error)
    const targetLastSeq = yield* Effect.mapError(journal.lastSeq, failed)
    importedThrough = targetLastSeq
    const size = yield* checkSource(path)
    if (size !== undefined) yield* progress.expect(Math.ceil(size / 160))
    let lineNumber = 0
    let previousSeq = 0
    /** The stream versions the records seen so far leave (keys: namespace NUL id). */
    const versions = new Map<string, number>()
    let held: Array<Line> = []
    let fresh: Array<Line> = []

    /** The file's lines with seq ≤ the target's last: they must be the target's records, exactly. */
    const compareHeld = Effect.gen(function*() {
      if (held.length === 0) return
      const lines = held
      held = []
      const target = yield* Effect.mapError(
        Stream.runCollect(journal.replayFrom(lines[0]!.record.seq).pipe(Stream.takeWhile((r) => r.seq <= lines[lines.length - 1]!.record.seq))),
        failed
      )
      for (let i = 0; i < lines.length; i++) {
        const { record, where } = lines[i]!
        if (target[i] === undefined || exportLine(target[i]!) !== exportLine(record)) {
          return yield* fail(
            `${where}: the target journal is not empty (last seq ${targetLastSeq}) and does not hold this file's record at seq ${record.seq}: ` +
              "it is not an import of this file that stopped half way"
          )
        }
      }
      if (target.length > lines.length) {
        return yield* fail(`${lines[lines.length - 1]!.where}: the target journal holds seq ${target[lines.length]!.seq}, which this file has not`)
      }
    })

    const flush = Effect.gen(function*() {
      if (fresh.length === 0) return
      const lines = fresh
      fresh = []
      const records = lines.map((line) => line.record)
      yield* journal.restore(records).pipe(
        Effect.mapError((error) => fail(`${lines[0]!.where} (a batch of ${records.length} records from seq ${records[0]!.seq}): ${error.message}`, error))
      )
      imported += records.length
      importedThrough = records[records.length - 1]!.seq
      yield* progress.advance(records.length)
    })

    yield* Stream.runForEach(lines(path), (text) =>
      Effect.gen(function*() {
        lineNumber++
        const line = lineNumber === 1 ? text.replace(/^\uFEFF/, "") : text
        if (line.trim() === "") return
        const where = `${sourceName(path)}, line ${lineNumber}`
        const record = parseExportLine(line)
        if (typeof record === "string") return yield* fail(`${where}: ${record}`)
        if (record.seq <= previousSeq) return yield* fail(`${where}: seq ${record.seq} does not follow seq ${previousSeq} of the line before`)
        previousSeq = record.seq
        const key = `${record.namespace}\u0000${record.id}`
        const known = versions.get(key) ?? (record.seq <= targetLastSeq ? record.version - 1 : yield* Effect.mapError(journal.version(record), failed))
        if (record.version !== known + 1 && !(record.seq <= targetLastSeq && !versions.has(key))) {
          return yield* fail(
            `${where}: ${record.namespace}/${record.id} version ${record.version} does not continue version ${known}` +
              (known === 0 ? ` (versions 1..${record.version - 1} are not in this file: an export of a truncated journal?)` : "")
          )
        }
        versions.set(key, record.version)
        if (record.seq <= targetLastSeq) {
          held.push({ record, where })
          if (held.length >= IMPORT_BATCH) yield* compareHeld
          return
        }
        yield* compareHeld
        fresh.push({ record, where })
        if (fresh.length >= IMPORT_BATCH) yield* flush
      }))
    yield* compareHeld
    if (previousSeq < targetLastSeq) {
      return yield* fail(
        `${sourceName(path)} ends at seq ${previousSeq}, but the target journal already holds records up to seq ${targetLastSeq}: ` +
          "it is not an import of this file that stopped half way"
      )
    }
    yield* flush
    yield* progress.done
    return imported
  })
