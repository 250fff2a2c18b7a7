/**
 * The Journal: the append-only log every event of every aggregate is stored in.
 *
 * Records are ordered globally by `seq` (strictly increasing, gaps allowed) and inside their
 * stream by `version` (1, 2, 3 … dense). Appends are atomic and guarded by an expected version
 * (optimistic concurrency). Old records are removed by `truncateBefore` once they are folded into
 * snapshots (and archived); a stream's version and the journal's `lastSeq` never go down.
 *
 * This module holds the service, its data types and errors, and `layerMemory`. Durable layers live
 * in `annals/file` and `annals/postgres`; all of them pass the same conformance suite.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { appendedRecords, appendProblem, assignProblem, nextSeq, readProblem, restoreBatch } from "./internal/journalChecks.ts"
import { follow as followLog, FOLLOW_PAGE_RECORDS, Settled } from "./internal/follow.ts"
import { observe } from "./internal/observedJournal.ts"
import { formatStream, integerProblem, lowerBound, streamKey, streamProblem } from "./internal/validate.ts"
import type { TaggedErrorClass } from "./internal/errors.ts"

/**
 * Names one stream: `namespace` is the aggregate type (`"cart"`), `id` the aggregate id. Both are
 * non-empty, at most 256 characters and free of NUL; namespaces are matched exactly, never by prefix.
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamRef {
  readonly namespace: string
  readonly id: string
}

/**
 * One stored event.
 *
 * @since 0.1.0
 * @category models
 */
export interface JournalRecord {
  /** Global position: ≥ 1, strictly increasing in append order; gaps are legal. */
  readonly seq: number
  readonly namespace: string
  readonly id: string
  /** Position inside the stream: 1, 2, 3 … dense. */
  readonly version: number
  /** The event's tag. */
  readonly type: string
  /** Epoch milliseconds from Effect's `Clock` at append; never lower than the record before it in a single-writer layer. */
  readonly timestamp: number
  /** The encoded event. Treat as read-only. */
  readonly payload: Uint8Array
  /** As appended: a plain object with exactly the same own string entries (`"__proto__"` included). */
  readonly metadata?: Readonly<Record<string, string>> | undefined
}

/**
 * An event to append: what the caller supplies, before the journal assigns seq, version and timestamp.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventData {
  readonly type: string
  readonly payload: Uint8Array
  /**
   * A plain object (prototype `Object.prototype` or `null`) of own enumerable string properties with
   * string values; anything else (a `Map`, a `Date`, a class instance, symbol keys, getters) fails the
   * append with a `JournalError`, in every layer.
   */
  readonly metadata?: Readonly<Record<string, string>> | undefined
}

/**
 * The version a stream must be at for an append to proceed: a number (0 = the stream must not
 * exist yet) or `"any"` (no check).
 *
 * @since 0.1.0
 * @category models
 */
export type ExpectedVersion = number | "any"

/**
 * What a successful append assigned.
 *
 * @since 0.1.0
 * @category models
 */
export interface AppendResult {
  readonly firstSeq: number
  readonly lastSeq: number
  /** The stream's version after the append (the version of its last new record). */
  readonly version: number
  /** The timestamp the new records were given (all records of one append share it). */
  readonly timestamp: number
}

/**
 * Bounds for `read`, all inclusive and optional: versions `from..to`, at most `max` records.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReadOptions {
  readonly from?: number | undefined
  readonly to?: number | undefined
  readonly max?: number | undefined
}

/**
 * The fields of a `JournalError`.
 *
 * @since 0.1.0
 * @category errors
 */
export interface JournalErrorFields {
  /** The operation that failed, e.g. `"append"`. */
  readonly method: string
  /** What went wrong and where (stream, file, offset …). */
  readonly message: string
  readonly stream?: StreamRef | undefined
  readonly cause?: unknown
}

const JournalErrorBase: TaggedErrorClass<"JournalError", JournalErrorFields> = Data.TaggedError("JournalError")

/**
 * A journal operation failed: bad input (an invalid stream name, a malformed record), a storage
 * fault, or corrupt data. `message` names what and where.
 *
 * @since 0.1.0
 * @category errors
 */
export class JournalError extends JournalErrorBase {}

/**
 * The fields of a `VersionConflict`.
 *
 * @since 0.1.0
 * @category errors
 */
export interface VersionConflictFields {
  readonly stream: StreamRef
  readonly expected: number
  readonly actual: number
}

const VersionConflictBase: TaggedErrorClass<"VersionConflict", VersionConflictFields> = Data.TaggedError("VersionConflict")

/**
 * An append's expected version did not match the stream's version; nothing was stored.
 *
 * @since 0.1.0
 * @category errors
 */
export class VersionConflict extends VersionConflictBase {
  override get message(): string {
    return `Version conflict on stream ${formatStream(this.stream)}: expected version ${this.expected}, but it is at ${this.actual}`
  }
}

/**
 * The fields of a `JournalTruncated` error.
 *
 * @since 0.1.0
 * @category errors
 */
export interface JournalTruncatedFields {
  /** The operation that failed, e.g. `"follow"`. */
  readonly method: string
  /** The seq the reader asked for (or had reached). */
  readonly fromSeq: number
  /** The journal's truncation point: its records below this seq are gone (folded into snapshots, perhaps archived). */
  readonly truncatedBefore: number
}

const JournalTruncatedBase: TaggedErrorClass<"JournalTruncated", JournalTruncatedFields> = Data.TaggedError("JournalTruncated")

/**
 * A follower asked for records the journal no longer holds: `truncateBefore` removed the records
 * below `truncatedBefore`, and the reader is at `fromSeq` below it. Nothing was skipped silently; read
 * them from the Archive (the Subscription runtime does) or start at `truncatedBefore`.
 *
 * @since 0.1.0
 * @category errors
 */
export class JournalTruncated extends JournalTruncatedBase {
  override get message(): string {
    return `Cannot ${this.method} from seq ${this.fromSeq}: the journal's records below seq ${this.truncatedBefore} were truncated`
  }
}

/**
 * The Journal service.
 *
 * @since 0.1.0
 * @category services
 */
export interface Journal {
  /**
   * Appends `events` to `stream` atomically (all or none) if the stream is at `expectedVersion`.
   * Succeeds only once the records are as durable as the layer promises and visible to later reads.
   * Appends still in flight count for the expected-version check: a `VersionConflict` may name a
   * version that reads do not show yet.
   *
   * An append interrupted (or timed out by its caller) after the layer wrote its records may still
   * commit: interruption does not undo a write, so the caller cannot tell whether it happened; a
   * failure reported after the write (a lost connection) is just as ambiguous. Retry such an append
   * only when its records can be recognised: `Repository.execute` tags them with a command id
   * (metadata `"annals.commandId"`) and, called again with the same `commandId`, returns the earlier
   * outcome instead of appending twice.
   */
  readonly append: (
    stream: StreamRef,
    expectedVersion: ExpectedVersion,
    events: ReadonlyArray<EventData>
  ) => Effect.Effect<AppendResult, JournalError | VersionConflict>
  /** The stream's visible records ordered by version, within inclusive bounds; empty for an unknown stream. */
  readonly read: (stream: StreamRef, options?: ReadOptions) => Stream.Stream<JournalRecord, JournalError>
  /**
   * Every settled record with `seq ≥ fromSeq`, ordered by seq: visible, with no record of a lower seq
   * still able to appear (so a reader that remembers the last seq it saw never misses one).
   */
  readonly replayFrom: (fromSeq: number) => Stream.Stream<JournalRecord, JournalError>
  /** Every settled record with `seq ≥ fromSeq` and `timestamp ≤ untilMs`, ordered by seq. */
  readonly replayUntil: (fromSeq: number, untilMs: number) => Stream.Stream<JournalRecord, JournalError>
  /**
   * Like `replayFrom(fromSeq)`, then each new record as it settles, for ever (until interrupted):
   * every record once, in seq order, none skipped, none before its append could be acknowledged.
   * Woken by the append itself, not by polling; a slow follower reads from the log, nothing is
   * buffered for it. Fails with `JournalTruncated` when records at or after the seq it has reached
   * were truncated away (at the start or while it follows), and with a `JournalError` when the
   * journal closes.
   */
  readonly follow: (fromSeq: number) => Stream.Stream<JournalRecord, JournalError | JournalTruncated>
  /**
   * Removes every settled record with a lower seq and advances the checkpoint to at least `seq`; a
   * record not yet visible is never removed. `lastSeq` and stream versions never go down; later
   * appends get seqs ≥ the checkpoint.
   */
  readonly truncateBefore: (seq: number) => Effect.Effect<void, JournalError>
  /** The compaction watermark: records below it have been folded into snapshots (0 for a new journal). */
  readonly checkpoint: Effect.Effect<number, JournalError>
  /** Moves the checkpoint forward (a lower value is ignored); stored durably. */
  readonly setCheckpoint: (seq: number) => Effect.Effect<void, JournalError>
  /**
   * The highest settled seq (0 for a new journal): a replay up to it has seen every record that will
   * ever exist below it.
   */
  readonly lastSeq: Effect.Effect<number, JournalError>
  /**
   * The version of the stream's last visible record (0 if it has none), agreeing with `read`; survives
   * truncation.
   */
  readonly version: (stream: StreamRef) => Effect.Effect<number, JournalError>
  /**
   * Bulk import keeping each record's seq, version and timestamp (restore from an archive). Records
   * must come in seq order above `lastSeq`, with versions that continue their stream; all or none are stored.
   */
  readonly restore: (records: Iterable<JournalRecord>) => Effect.Effect<void, JournalError>
}

/**
 * The Journal service key.
 *
 * @since 0.1.0
 * @category services
 */
export const Journal: Context.Service<Journal, Journal> = Context.Service<Journal>("annals/Journal")

interface MemoryStream {
  version: number
  records: Array<JournalRecord>
}

/**
 * An in-memory Journal: exact, fast and gone when the process ends. For tests, scripts and as the
 * reference the durable layers are checked against.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<Journal> = Effect.sync(() => {
  let log: Array<JournalRecord> = []
  const streams = new Map<string, MemoryStream>()
  let lastSeq = 0
  let checkpoint = 0
  /** The highest seq `truncateBefore` was called with: no record may be restored below it. */
  let truncatedBefore = 0
  /**
   * A follower from this seq on lost nothing to truncation: `truncatedBefore`, or one past the log's
   * end when a truncation lay beyond it (the seqs in between are never assigned).
   */
  let removedBefore = 0
  let lastTimestamp = 0
  const settled = new Settled()

  const invalid = (method: string, message: string, stream?: StreamRef) =>
    Effect.fail(
      new JournalError({
        method,
        message,
        ...(stream !== undefined && streamProblem(stream) === undefined
          ? { stream: { namespace: stream.namespace, id: stream.id } }
          : {})
      })
    )
  const seqArgument = (method: string, what: string, value: number, min: number) => {
    const problem = integerProblem(what, value, min)
    return problem === undefined ? undefined : invalid(method, `Journal.${method}: ${problem}`)
  }
  const fromSeqIndex = (seq: number) => lowerBound(log, seq, (r) => r.seq)
  /** Stores a copy of `record` (the caller's buffers stay the caller's) in the log and its stream. */
  const store = (record: JournalRecord): void => {
    const key = streamKey(record.namespace, record.id)
    let state = streams.get(key)
    if (state === undefined) {
      state = { version: 0, records: [] }
      streams.set(key, state)
    }
    const copy: JournalRecord = {
      seq: record.seq,
      namespace: record.namespace,
      id: record.id,
      version: record.version,
      type: record.type,
      timestamp: record.timestamp,
      payload: new Uint8Array(record.payload),
      ...(record.metadata !== undefined ? { metadata: { ...record.metadata } } : {})
    }
    log.push(copy)
    state.records.push(copy)
    state.version = record.version
  }

  const append: Journal["append"] = (stream, expectedVersion, events) =>
    Effect.suspend(() => {
      const problem = appendProblem(stream, expectedVersion, events)
      if (problem !== undefined) {
        return invalid("append", `Cannot append to stream ${formatStream(stream)}: ${problem}`, stream)
      }
      // Followers woken by the last append run first (see `Settled.turn`).
      return Effect.flatMap(Effect.andThen(settled.turn, Clock.currentTimeMillis), (now) => appendNow(stream, expectedVersion, events, now))
    })

  const appendNow = (
    stream: StreamRef,
    expectedVersion: ExpectedVersion,
    events: ReadonlyArray<EventData>,
    now: number
  ): Effect.Effect<AppendResult, JournalError | VersionConflict> => {
    const key = streamKey(stream.namespace, stream.id)
    const current = streams.get(key)?.version ?? 0
    if (expectedVersion !== "any" && expectedVersion !== current) {
      return Effect.fail(
        new VersionConflict({
          stream: { namespace: stream.namespace, id: stream.id },
          expected: expectedVersion,
          actual: current
        })
      )
    }
    const firstSeq = nextSeq(lastSeq, checkpoint)
    const unassignable = assignProblem(now, firstSeq, events.length, current)
    if (unassignable !== undefined) {
      return invalid("append", `Cannot append to stream ${formatStream(stream)}: ${unassignable}; nothing was stored`, stream)
    }
    const timestamp = Math.max(now, lastTimestamp)
    for (const record of appendedRecords(stream, events, firstSeq, current, timestamp)) store(record)
    lastSeq = firstSeq + events.length - 1
    lastTimestamp = timestamp
    settled.notify()
    return Effect.succeed({ firstSeq, lastSeq, version: current + events.length, timestamp })
  }

  const read: Journal["read"] = (stream, options) => {
    const problem = readProblem(stream, options)
    if (problem !== undefined) {
      return Stream.fromEffect(
        invalid("read", `Cannot read stream ${formatStream(stream)}: ${problem}`, stream)
      )
    }
    return Stream.suspend(() => {
      const records = streams.get(streamKey(stream.namespace, stream.id))?.records ?? []
      const from = options?.from ?? 1
      const to = options?.to ?? Number.MAX_SAFE_INTEGER
      const max = options?.max ?? Number.MAX_SAFE_INTEGER
      const start = lowerBound(records, from, (r) => r.version)
      const end = Math.min(lowerBound(records, to + 1, (r) => r.version), start + max)
      return Stream.fromArray(start < end ? records.slice(start, end) : [])
    })
  }

  const replayFrom: Journal["replayFrom"] = (fromSeq) => {
    const bad = seqArgument("replayFrom", "fromSeq", fromSeq, 0)
    if (bad !== undefined) return Stream.fromEffect(bad)
    return Stream.suspend(() => Stream.fromArray(log.slice(fromSeqIndex(fromSeq))))
  }

  const replayUntil: Journal["replayUntil"] = (fromSeq, untilMs) => {
    const bad = seqArgument("replayUntil", "fromSeq", fromSeq, 0) ??
      (Number.isFinite(untilMs) ? undefined : invalid("replayUntil", `Journal.replayUntil: untilMs must be finite, got ${untilMs}`))
    if (bad !== undefined) return Stream.fromEffect(bad)
    return Stream.suspend(() => {
      // Timestamps never decrease in seq order here (appends use max(now, last); restore may import
      // another writer's order), so filter rather than stop at the first later record.
      const start = fromSeqIndex(fromSeq)
      const out: Array<JournalRecord> = []
      for (let i = start; i < log.length; i++) if (log[i]!.timestamp <= untilMs) out.push(log[i]!)
      return Stream.fromArray(out)
    })
  }

  const follow: Journal["follow"] = (fromSeq) => {
    const bad = seqArgument("follow", "fromSeq", fromSeq, 0)
    if (bad !== undefined) return Stream.fromEffect(bad)
    return followLog(fromSeq, {
      page: (seq) =>
        Effect.suspend(() => {
          if (Math.max(seq, 1) < removedBefore) {
            return Effect.fail(new JournalTruncated({ method: "follow", fromSeq: seq, truncatedBefore }))
          }
          const start = fromSeqIndex(seq)
          return Effect.succeed(log.slice(start, start + FOLLOW_PAGE_RECORDS))
        }),
      ready: (seq) => lastSeq >= seq,
      settled
    })
  }

  const truncateBefore: Journal["truncateBefore"] = (seq) =>
    seqArgument("truncateBefore", "seq", seq, 0) ?? Effect.sync(() => {
      const cut = fromSeqIndex(seq)
      if (cut > 0) {
        const touched = new Set<MemoryStream>()
        for (let i = 0; i < cut; i++) touched.add(streams.get(streamKey(log[i]!.namespace, log[i]!.id))!)
        for (const state of touched) state.records.splice(0, lowerBound(state.records, seq, (r) => r.seq))
        log = log.slice(cut)
      }
      checkpoint = Math.max(checkpoint, seq)
      truncatedBefore = Math.max(truncatedBefore, seq)
      removedBefore = Math.max(removedBefore, Math.min(seq, lastSeq + 1))
    })

  const setCheckpoint: Journal["setCheckpoint"] = (seq) =>
    seqArgument("setCheckpoint", "seq", seq, 0) ?? Effect.sync(() => {
      checkpoint = Math.max(checkpoint, seq)
    })

  const version: Journal["version"] = (stream) => {
    const problem = streamProblem(stream)
    return problem !== undefined
      ? invalid("version", `Cannot read the version of stream ${formatStream(stream)}: ${problem}`, stream)
      : Effect.sync(() => streams.get(streamKey(stream.namespace, stream.id))?.version ?? 0)
  }

  const restore: Journal["restore"] = (records) =>
    Effect.suspend(() => {
      const checked = restoreBatch(records, {
        lastSeq,
        truncatedBefore,
        version: (namespace, id) => streams.get(streamKey(namespace, id))?.version ?? 0
      })
      if ("problem" in checked) return invalid("restore", checked.problem)
      for (const record of checked.batch) {
        store(record)
        lastTimestamp = Math.max(lastTimestamp, record.timestamp)
      }
      lastSeq = checked.lastSeq
      settled.notify()
      return Effect.void
    })

  const journal = Journal.of({
    append,
    read,
    replayFrom,
    replayUntil,
    follow,
    truncateBefore,
    checkpoint: Effect.sync(() => checkpoint),
    setCheckpoint,
    lastSeq: Effect.sync(() => lastSeq),
    version,
    restore
  })
  return observe(journal, "memory")
})

/**
 * A fresh in-memory Journal per layer build.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Journal> = Layer.effect(Journal, makeMemory)
