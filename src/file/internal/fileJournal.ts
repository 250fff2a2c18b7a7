/**
 * The file Journal's service: validates arguments and composes the parts — the lock, recovery, the
 * segment set, the state files, the record index, the writer and the reader — over a `FileIo`.
 * `annals/file`'s `FileJournal` runs it on `node:fs`; the crash tests run it on a simulated file system.
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as path from "node:path"
import type { FileJournalOptions } from "../FileJournal.ts"
import { type AppendResult, Journal, JournalError, VersionConflict } from "../../Journal.ts"
import { appendedRecords, appendProblem, assignProblem, nextSeq, restoreBatch } from "../../internal/journalChecks.ts"
import { boundRecorder } from "../../internal/observe.ts"
import { formatStream, integerProblem } from "../../internal/validate.ts"
import * as Metrics from "../../Metrics.ts"
import { CheckpointFile } from "./checkpointFile.ts"
import { lockDirectory } from "./directoryLock.ts"
import { message, Unrecoverable } from "./errors.ts"
import type { FileIo } from "./fileIo.ts"
import { Reader } from "./reader.ts"
import { RecordIndex } from "./recordIndex.ts"
import { recover } from "./recovery.ts"
import { SegmentSet } from "./segments.ts"
import { invalid, readOperations, seqArgument } from "./journalReads.ts"
import { FrameCodec } from "./segmentFormat.ts"
import { Writer } from "./writer.ts"

const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
const DEFAULT_SYNC_INTERVAL_MS = 100

/** The smallest `segmentBytes`. @internal */
export const MIN_SEGMENT_BYTES = 256

const optionsProblem = (options: FileJournalOptions): string | undefined => {
  if (typeof options.directory !== "string" || options.directory.length === 0) return "directory must be a non-empty path"
  if (options.durability !== undefined && !["always", "interval", "os"].includes(options.durability)) {
    return `durability must be "always", "interval" or "os", got ${JSON.stringify(options.durability)}`
  }
  return (options.segmentBytes === undefined ? undefined : integerProblem("segmentBytes", options.segmentBytes, MIN_SEGMENT_BYTES)) ??
    (options.syncIntervalMs === undefined ? undefined : integerProblem("syncIntervalMs", options.syncIntervalMs, 1))
}

/** The parts of one open journal. */
interface Parts {
  readonly index: RecordIndex
  readonly state: CheckpointFile
  readonly writer: Writer
  readonly reader: Reader
}

/**
 * Opens (recovering if needed) the journal in `options.directory` on `io`, holding its lock until the
 * scope closes. @internal
 */
export const open = (options: FileJournalOptions, io: FileIo): Effect.Effect<Journal, JournalError, Scope.Scope> =>
  Effect.gen(function*() {
    const problem = optionsProblem(options)
    if (problem !== undefined) {
      return yield* new JournalError({ method: "open", message: `Cannot open a file journal: ${problem}` })
    }
    const directory = path.resolve(options.directory)
    const fail = (cause: unknown) =>
      new JournalError({
        method: "open",
        message: cause instanceof Unrecoverable
          ? `Cannot open the journal in ${directory}: ${cause.message}`
          : `Cannot open the journal in ${directory}: ${message(cause)}`,
        cause
      })
    yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          io.mkdirSync(directory, { recursive: true })
          return lockDirectory(io, directory)
        },
        catch: fail
      }),
      (release) => Effect.sync(release)
    )
    const durability = options.durability ?? "always"
    const recordFsync = yield* boundRecorder(Metrics.fsyncDuration, { backend: "file" })
    const recordGroupCommit = yield* boundRecorder(Metrics.groupCommitSize, { backend: "file" })
    const observeFlush = (millis: number, appends: number) => {
      recordFsync(millis)
      if (appends > 0) recordGroupCommit(appends)
    }
    const parts = yield* Effect.try({
      try: (): Parts & { readonly warnings: ReadonlyArray<string> } => {
        const segments = new SegmentSet(directory, io, durability)
        const state = new CheckpointFile(directory, io)
        const index = new RecordIndex()
        // This journal's frame buffers and name cache, shared by its recovery, writer and reader.
        const codec = new FrameCodec()
        try {
          const recovered = recover(segments, state, index, codec)
          const writer = new Writer(segments, state, index, options.segmentBytes ?? DEFAULT_SEGMENT_BYTES, codec, recovered, observeFlush)
          const reader = new Reader(segments, index, codec, () => writer.visibleSeq)
          return { index, state, writer, reader, warnings: recovered.warnings }
        } catch (cause) {
          segments.closeActive()
          throw cause
        }
      },
      catch: fail
    })
    for (const warning of parts.warnings) yield* Effect.logWarning(warning)
    yield* Effect.addFinalizer(() => parts.writer.close())
    if (durability === "interval") {
      // A wall-clock timer, not Effect's Clock: the flush is about the device, not about logical
      // time (a TestClock that jumps years must not run millions of flushes).
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          const timer = setInterval(() => parts.writer.startSync(), options.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS)
          ;(timer as { unref?: () => void }).unref?.()
          return timer
        }),
        (timer) => Effect.sync(() => clearInterval(timer))
      )
    }
    return service(parts)
  })

/** The Journal service over the parts of an open journal. */
const service = ({ index, state, writer, reader }: Parts): Journal => {
  const append: Journal["append"] = (stream, expectedVersion, events) => {
    const problem = appendProblem(stream, expectedVersion, events)
    if (problem !== undefined) return invalid("append", `Cannot append to stream ${formatStream(stream)}: ${problem}`, stream)
    // Followers woken by the last append run first (see `Settled.turn`).
    return Effect.flatMap(Effect.andThen(writer.settled.turn, Clock.currentTimeMillis), (now): Effect.Effect<AppendResult, JournalError | VersionConflict> => {
      const refusal = writer.writeRefusal("append")
      if (refusal !== undefined) return Effect.fail(refusal)
      // Appends in flight count for the check (DESIGN §2): the version may be ahead of what reads show.
      const current = index.versionOf(stream.namespace, stream.id)
      if (expectedVersion !== "any" && expectedVersion !== current) {
        return Effect.fail(
          new VersionConflict({ stream: { namespace: stream.namespace, id: stream.id }, expected: expectedVersion, actual: current })
        )
      }
      const firstSeq = nextSeq(writer.assignedSeq, state.checkpoint)
      const unassignable = assignProblem(now, firstSeq, events.length, current)
      if (unassignable !== undefined) {
        return invalid("append", `Cannot append to stream ${formatStream(stream)}: ${unassignable}; nothing was stored`, stream)
      }
      const timestamp = Math.max(now, writer.lastTimestamp)
      try {
        if (!writer.write(appendedRecords(stream, events, firstSeq, current, timestamp))) {
          return writer.whenIdle(() => append(stream, expectedVersion, events))
        }
      } catch (cause) {
        return Effect.fail(writer.poison("append", `append to stream ${formatStream(stream)}`, cause))
      }
      const lastSeq = firstSeq + events.length - 1
      return writer.acknowledge("append", lastSeq, { firstSeq, lastSeq, version: current + events.length, timestamp })
    })
  }

  const truncateBefore: Journal["truncateBefore"] = (seq) =>
    seqArgument("truncateBefore", "seq", seq) ?? writer.whenIdle(() => {
      const refusal = writer.writeRefusal("truncateBefore")
      if (refusal !== undefined) return Effect.fail(refusal)
      try {
        writer.truncate(seq)
        return Effect.void
      } catch (cause) {
        return Effect.fail(writer.poison("truncateBefore", `truncate before seq ${seq}`, cause))
      }
    })

  const setCheckpoint: Journal["setCheckpoint"] = (seq) =>
    seqArgument("setCheckpoint", "seq", seq) ?? Effect.suspend(() => {
      const refusal = writer.writeRefusal("setCheckpoint")
      if (refusal !== undefined) return Effect.fail(refusal)
      if (seq <= state.checkpoint) return Effect.void
      try {
        state.write(seq, state.truncatedBefore)
        return Effect.void
      } catch (cause) {
        return Effect.fail(writer.poison("setCheckpoint", `store checkpoint ${seq}`, cause))
      }
    })

  const restore: Journal["restore"] = (records) =>
    Effect.suspend(() => {
      const refusal = writer.writeRefusal("restore")
      if (refusal !== undefined) return Effect.fail(refusal)
      const checked = restoreBatch(records, {
        lastSeq: writer.assignedSeq,
        truncatedBefore: state.truncatedBefore,
        version: (namespace, id) => index.versionOf(namespace, id)
      })
      if ("problem" in checked) return invalid("restore", checked.problem)
      const { batch, lastSeq: seq } = checked
      if (batch.length === 0) return Effect.void
      try {
        if (!writer.write(batch)) return writer.whenIdle(() => restore(batch))
      } catch (cause) {
        return Effect.fail(writer.poison("restore", "restore records", cause))
      }
      return writer.acknowledge("restore", seq, undefined)
    })

  return Journal.of({
    ...readOperations({
      reader,
      state,
      visibleSeq: () => writer.visibleSeq,
      removedBefore: () => writer.removedBefore,
      closed: (method) => (writer.closed ? writer.writeRefusal(method) : undefined),
      settled: writer.settled,
      ready: (seq) => writer.visibleSeq >= seq || writer.closed
    }),
    append,
    truncateBefore,
    setCheckpoint,
    restore
  })
}
