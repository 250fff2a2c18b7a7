/**
 * The Archiver ships the journal to the Archive: every `segmentSize` records become one segment,
 * uploaded by a background fiber; before the journal is truncated, `flush` uploads everything below
 * the truncation point; on start with an empty journal, `restore` brings the archived history back.
 *
 * Uploads never block or fail appends: a failed upload is logged as a warning and retried with
 * exponential backoff, and the records stay in the journal (which is never truncated past what is
 * archived) until it succeeds. Segments chain without holes: each starts at the seq after the
 * previous one's end, so `restore` can verify that nothing is missing.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Semaphore from "effect/Semaphore"
import * as Stream from "effect/Stream"
import { Archive, type ArchiveError, type SegmentRef } from "./Archive.ts"
import type { TaggedErrorClass } from "./internal/errors.ts"
import { chainBreak } from "./internal/archiveChain.ts"
import { applySegments } from "./internal/archiveRestore.ts"
import { spanOptions } from "./internal/observe.ts"
import { integerProblem } from "./internal/validate.ts"
import { Journal, type JournalError, type JournalRecord } from "./Journal.ts"
import * as Metrics from "./Metrics.ts"

/**
 * The fields of an `ArchiverError`.
 *
 * @since 0.1.0
 * @category errors
 */
export interface ArchiverErrorFields {
  readonly method: string
  readonly message: string
  readonly cause?: unknown
}

const ArchiverErrorBase: TaggedErrorClass<"ArchiverError", ArchiverErrorFields> = Data.TaggedError("ArchiverError")

/**
 * A restore found the archive unusable (segments that do not chain, a journal that is not empty)
 * or an option was invalid.
 *
 * @since 0.1.0
 * @category errors
 */
export class ArchiverError extends ArchiverErrorBase {}

/**
 * Options of the Archiver.
 *
 * @since 0.1.0
 * @category models
 */
export interface ArchiverOptions {
  /** Records per segment uploaded in the background (default 1,000). */
  readonly segmentSize?: number | undefined
  /** How often the background fiber looks for full segments (default 1 second). */
  readonly pollInterval?: Duration.Input | undefined
  /** First delay before retrying a failed upload; doubles up to `maxBackoff` (default 100 ms). */
  readonly backoff?: Duration.Input | undefined
  /** Longest delay between retries (default 30 seconds). */
  readonly maxBackoff?: Duration.Input | undefined
  /**
   * Restore the archived history when the layer starts on an empty journal, and resume a restore that
   * stopped half way when the journal is behind the archive (default true). After a point-in-time
   * restore, give the new timeline its own archive: on the old one, this would complete the restore
   * past its `until`.
   */
  readonly restoreOnStart?: boolean | undefined
}

/**
 * What the Archiver has done.
 *
 * @since 0.1.0
 * @category models
 */
export interface ArchiverStatus {
  /** Every seq ≤ this is in the archive (0: nothing archived). */
  readonly archivedThrough: number
  /** Seqs assigned by the journal and not archived yet: `lastSeq − archivedThrough`. */
  readonly pendingSeqs: number
  /** When the last upload succeeded (epoch ms). */
  readonly lastSuccess: Option.Option<number>
  /** The last upload failure's message, cleared by the next success. */
  readonly lastError: Option.Option<string>
}

/**
 * What a restore brought back.
 *
 * @since 0.1.0
 * @category models
 */
export interface RestoreResult {
  readonly segments: number
  readonly records: number
  /** The highest seq restored (0 if none). */
  readonly lastSeq: number
}

/**
 * Options of `restore`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RestoreOptions {
  /** Restore only the records with timestamp ≤ `until` (point-in-time recovery into a fresh journal). */
  readonly until?: number | undefined
  /** Segments downloaded at a time (default 4). */
  readonly concurrency?: number | undefined
  /** Most stored bytes kept in memory to download each segment only once (default 64 MiB). */
  readonly stagingBytes?: number | undefined
}

/**
 * The Archiver service.
 *
 * @since 0.1.0
 * @category services
 */
export interface Archiver {
  /** Uploads every record with seq < `beforeSeq` that is not archived yet; returns `archivedThrough`. */
  readonly flush: (beforeSeq: number) => Effect.Effect<number, ArchiveError | JournalError>
  /** Uploads every full segment available now (what the background fiber does each poll). */
  readonly uploadFullSegments: Effect.Effect<number, ArchiveError | JournalError>
  readonly status: Effect.Effect<ArchiverStatus, JournalError>
}

/**
 * The Archiver service key.
 *
 * @since 0.1.0
 * @category services
 */
export const Archiver: Context.Service<Archiver, Archiver> = Context.Service<Archiver>("annals/Archiver")

const optionProblem = (options: ArchiverOptions | undefined) =>
  integerProblem("segmentSize", options?.segmentSize ?? 1_000, 1)

/** Why two records differ, or `undefined` if they are the same record. */
const recordDifference = (journal: JournalRecord, archived: JournalRecord): string | undefined => {
  const fields = ["seq", "namespace", "id", "version", "type", "timestamp"] as const
  for (const field of fields) {
    if (journal[field] !== archived[field]) {
      return `its ${field} is ${JSON.stringify(journal[field])} in the journal and ${JSON.stringify(archived[field])} in the archive`
    }
  }
  const a = journal.payload
  const b = archived.payload
  if (a.length !== b.length || a.some((byte, i) => byte !== b[i])) return "its payload differs"
  const metadata = (record: JournalRecord) => JSON.stringify(Object.entries(record.metadata ?? {}).sort(([x], [y]) => x < y ? -1 : 1))
  return metadata(journal) === metadata(archived) ? undefined : "its metadata differs"
}

/**
 * Why the journal (last seq `lastSeq`) is not exactly the archive's first records (those with
 * timestamp ≤ `until`), or `undefined` if it is: what a restore that stopped half way leaves.
 */
const prefixProblem = (
  journal: Journal,
  archive: Archive,
  refs: ReadonlyArray<SegmentRef>,
  lastSeq: number,
  until: number | undefined
) =>
  Effect.gen(function*() {
    let comparedThrough = 0
    for (const ref of refs) {
      if (ref.startSeq > lastSeq) break
      const archived = (yield* archive.get(ref)).filter((r) => r.seq <= lastSeq && (until === undefined || r.timestamp <= until))
      const held = yield* Stream.runCollect(
        journal.replayFrom(ref.startSeq).pipe(Stream.takeWhile((r) => r.seq <= Math.min(ref.endSeq, lastSeq)))
      )
      for (let i = 0; i < Math.max(archived.length, held.length); i++) {
        const mine = held[i]
        const theirs = archived[i]
        if (mine === undefined || (theirs !== undefined && theirs.seq < mine.seq)) {
          return `the journal lacks the archive's record at seq ${theirs!.seq} (segment ${ref.key})`
        }
        if (theirs === undefined || mine.seq < theirs.seq) {
          return `the journal's record at seq ${mine.seq} is not in the archive (segment ${ref.key})`
        }
        const difference = recordDifference(mine, theirs)
        if (difference !== undefined) return `the record at seq ${mine.seq} is not the archive's: ${difference} (segment ${ref.key})`
      }
      comparedThrough = ref.endSeq
    }
    const beyond = yield* Stream.runCollect(journal.replayFrom(comparedThrough + 1).pipe(Stream.take(1)))
    return beyond.length === 0 ? undefined : `the journal's record at seq ${beyond[0]!.seq} is beyond the archive's last segment`
  })

/**
 * Restores the archived history into an empty journal: every segment in order, checksums verified
 * by the Archive, ranges verified to chain without holes from seq 1 (the Archiver's first segment
 * always starts there, also on a journal truncated before it was configured: that segment then holds
 * only the records the journal still had). With `until`, only the records with timestamp ≤ `until`
 * are restored (point-in-time recovery into a fresh journal).
 *
 * A restore that stopped half way (a crash) is resumed by running it again with the same `until`:
 * a journal whose records are exactly the archive's first ones (every field compared) gets the rest.
 * Any other non-empty journal is refused with an `ArchiverError`, and nothing is changed.
 *
 * Nothing is applied before every segment to restore was downloaded and verified (checksums,
 * ranges), so a damaged or unreadable object fails the restore naming its key with the journal
 * unchanged. When the segments' stored size is at most `stagingBytes` (default 64 MiB; the decoded
 * records take a few times that in memory) they are downloaded once and kept until applied;
 * beyond it they are verified in a first pass and downloaded again to be applied, so memory stays
 * bounded at the cost of a second download. Downloads run `concurrency` at a time (default 4: an
 * object store's latency, not its bandwidth, is what a one-at-a-time restore waits on); segments
 * are applied strictly in seq order.
 *
 * @since 0.1.0
 * @category restore
 */
export const restore = (
  options?: RestoreOptions
): Effect.Effect<RestoreResult, ArchiverError | ArchiveError | JournalError, Journal | Archive> =>
  Effect.gen(function*() {
    const journal = yield* Journal
    const archive = yield* Archive
    const until = options?.until
    const concurrency = options?.concurrency ?? 4
    const stagingBytes = options?.stagingBytes ?? 64 * 1024 * 1024
    const badOption = integerProblem("concurrency", concurrency, 1) ?? integerProblem("stagingBytes", stagingBytes, 0)
    if (badOption !== undefined) {
      return yield* new ArchiverError({ method: "restore", message: `Archiver.restore: ${badOption}` })
    }
    const refs = yield* archive.list()
    const lastSeq = yield* journal.lastSeq
    if (lastSeq > 0) {
      const problem = refs.length === 0
        ? "the archive is empty"
        : yield* prefixProblem(journal, archive, refs, lastSeq, until)
      if (problem !== undefined) {
        return yield* new ArchiverError({
          method: "restore",
          message: `Cannot restore from the archive: the journal is not empty (last seq ${lastSeq}) and is not a restore ` +
            `of the archive that stopped half way: ${problem}`
        })
      }
    }
    for (let i = 0; i < refs.length; i++) {
      const previous = refs[i - 1]
      const ref = refs[i]!
      const gap = chainBreak(previous, ref)
      if (gap === undefined) continue
      return yield* new ArchiverError({
        method: "restore",
        message: previous === undefined
          ? `The archive's first segment ${ref.key} starts at seq ${ref.startSeq}, not at the journal's ` +
            `beginning (seq 1): seqs 1..${ref.startSeq - 1} are missing; nothing was restored`
          : gap === "overlap"
          ? `Archive segments ${previous.key} and ${ref.key} overlap; nothing was restored`
          : `Archive segments are missing seqs ${gap.from}..${gap.to} between ${previous.key} and ${ref.key}; nothing was restored`
      })
    }
    const restored = yield* applySegments(journal, archive, refs.filter((ref) => ref.endSeq > lastSeq), {
      keep: (r) => r.seq > lastSeq && (until === undefined || r.timestamp <= until),
      lastSeq,
      concurrency,
      stagingBytes
    })
    yield* Effect.annotateCurrentSpan({ "annals.segments": restored.segments, "annals.records": restored.records, "annals.last_seq": restored.lastSeq })
    return restored
  }).pipe(Effect.withSpan("annals.Archiver.restore", spanOptions({ "annals.until": options?.until })))

/**
 * Builds an Archiver (without its background fiber; see `layer`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options?: ArchiverOptions
): Effect.Effect<Archiver, ArchiverError | ArchiveError | JournalError, Journal | Archive> =>
  Effect.gen(function*() {
    const problem = optionProblem(options)
    if (problem !== undefined) return yield* new ArchiverError({ method: "make", message: `Archiver option ${problem}` })
    const segmentSize = options?.segmentSize ?? 1_000
    const journal = yield* Journal
    const archive = yield* Archive
    const lock = yield* Semaphore.make(1)
    const existing = yield* archive.list()
    let archivedThrough = existing.length === 0 ? 0 : existing[existing.length - 1]!.endSeq
    const journalLastSeq = yield* journal.lastSeq
    if (archivedThrough > journalLastSeq) {
      return yield* new ArchiverError({
        method: "make",
        message: `The archive holds seqs up to ${archivedThrough} but the journal's last seq is ${journalLastSeq}: ` +
          `this journal is not the archive's timeline (restore it first — \`Archiver.restore\` also resumes a restore ` +
          `that stopped half way; after a point-in-time restore, give the new timeline its own archive prefix)`
      })
    }
    let lastSuccess: Option.Option<number> = Option.none()
    let lastError: Option.Option<string> = Option.none()
    // After a failed put the object may exist all the same (a timeout after the write): the next
    // upload first adopts whatever the archive holds from `archivedThrough + 1` on, so segments
    // never overlap.
    let uncertain = false
    const resync = Effect.gen(function*() {
      if (!uncertain) return
      for (const ref of yield* archive.list(archivedThrough + 1)) {
        if (ref.startSeq === archivedThrough + 1) archivedThrough = ref.endSeq
      }
      uncertain = false
    })

    /** Uploads the records as the segment `archivedThrough+1..endSeq`. */
    const uploadSegment = (records: ReadonlyArray<JournalRecord>, endSeq: number) => {
      const startSeq = archivedThrough + 1
      return Effect.gen(function*() {
        const ref: SegmentRef = yield* archive.put({ startSeq, endSeq, records }).pipe(
          Effect.tapError((error) =>
            Effect.sync(() => {
              lastError = Option.some(error.message)
              uncertain = true
            })
          )
        )
        yield* Effect.annotateCurrentSpan("annals.key", ref.key)
        archivedThrough = ref.endSeq
        lastSuccess = Option.some(yield* Clock.currentTimeMillis)
        lastError = Option.none()
      }).pipe(Effect.withSpan("annals.Archiver.upload", spanOptions({ "annals.start_seq": startSeq, "annals.end_seq": endSeq, "annals.records": records.length })))
    }

    /** Seqs not archived yet, also set as `Metrics.archiveLag`. */
    const lag = Effect.flatMap(journal.lastSeq, (lastSeq) => {
      const pending = Math.max(0, lastSeq - archivedThrough)
      return Effect.as(Metric.update(Metrics.archiveLag, pending), pending)
    })

    /** The next up to `segmentSize` records after `archivedThrough`, with seq < `beforeSeq`. */
    const nextRecords = (beforeSeq: number) =>
      Stream.runCollect(
        journal.replayFrom(archivedThrough + 1).pipe(
          Stream.takeWhile((r) => r.seq < beforeSeq),
          Stream.take(segmentSize)
        )
      )

    const flush: Archiver["flush"] = (beforeSeq) =>
      lock.withPermit(Effect.gen(function*() {
        yield* resync
        const lastSeq = yield* journal.lastSeq
        const limit = Math.min(beforeSeq, lastSeq + 1)
        // Each segment ends at its last record, so archivedThrough is always the seq of a record the
        // journal holds: a seq gap after it is covered by the next segment, whose start follows it.
        for (;;) {
          const records = yield* nextRecords(limit)
          if (records.length === 0) break
          yield* uploadSegment(records, records[records.length - 1]!.seq)
        }
        yield* lag
        return archivedThrough
      }))

    // The permit is taken per segment, not for the whole loop: under a steady stream of appends there
    // is always another full segment, and a `flush` waiting for the permit would never get it.
    const uploadNextFullSegment = lock.withPermit(Effect.gen(function*() {
      yield* resync
      const records = yield* nextRecords(Number.MAX_SAFE_INTEGER)
      if (records.length < segmentSize) return false
      yield* uploadSegment(records, records[records.length - 1]!.seq)
      return true
    }))
    const uploadFullSegments: Archiver["uploadFullSegments"] = Effect.gen(function*() {
      for (let uploaded = true; uploaded;) uploaded = yield* uploadNextFullSegment
      yield* lag
      return archivedThrough
    })

    return Archiver.of({
      flush,
      uploadFullSegments,
      status: Effect.map(lag, (pendingSeqs) => ({ archivedThrough, pendingSeqs, lastSuccess, lastError }))
    })
  })

/**
 * The Archiver as a layer: restores the archive into an empty journal first (before anything else
 * can use the journal) — or resumes a restore that stopped half way, when the journal is behind the
 * archive — then uploads full segments from a background fiber that lives as long as
 * the layer. Failed uploads are logged and retried with exponential backoff.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: ArchiverOptions
): Layer.Layer<Archiver, ArchiverError | ArchiveError | JournalError, Journal | Archive> =>
  Layer.effect(
    Archiver,
    Effect.gen(function*() {
      if (options?.restoreOnStart ?? true) {
        const journal = yield* Journal
        const refs = yield* (yield* Archive).list()
        const lastSeq = yield* journal.lastSeq
        // An empty journal, or one behind the archive: a restore that stopped half way is resumed.
        if (lastSeq === 0 || (refs.length > 0 && refs[refs.length - 1]!.endSeq > lastSeq)) {
          const restored = yield* restore()
          if (restored.segments > 0) {
            yield* Effect.logInfo(
              `Restored ${restored.records} records (through seq ${restored.lastSeq}) from ${restored.segments} archive segments`
            )
          }
        }
      }
      const archiver = yield* make(options)
      const pollInterval = Duration.fromInputUnsafe(options?.pollInterval ?? "1 second")
      const maxBackoff = Duration.fromInputUnsafe(options?.maxBackoff ?? "30 seconds")
      const retry = Schedule.exponential(options?.backoff ?? "100 millis").pipe(
        Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, maxBackoff)))
      )
      const cycle = archiver.uploadFullSegments.pipe(
        Effect.tapError((error) => Effect.logWarning(`Archive upload failed, will retry: ${error.message}`)),
        Effect.retry(retry),
        Effect.andThen(Effect.sleep(pollInterval))
      )
      yield* Effect.forkScoped(Effect.forever(cycle))
      return archiver
    })
  )
