/**
 * The read half of the file Journal's service — argument checks, `read`, `replayFrom`,
 * `replayUntil`, `follow`, `version`, `lastSeq` and `checkpoint` — over a `Reader` and the positions
 * of an open journal, shared by the writer's journal (`fileJournal.ts`) and the read-only one
 * (`readOnlyJournal.ts`), which differ only in where those positions come from.
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { type Journal, JournalError, type JournalRecord, JournalTruncated, type StreamRef } from "../../Journal.ts"
import { follow as followLog, FOLLOW_PAGE_RECORDS, type Settled } from "../../internal/follow.ts"
import { readProblem } from "../../internal/journalChecks.ts"
import { formatStream, integerProblem, streamProblem } from "../../internal/validate.ts"
import type { CheckpointFile } from "./checkpointFile.ts"
import type { Reader } from "./reader.ts"

/** A failed argument check of `method`, naming the stream when it is a valid one. @internal */
export const invalid = (method: string, text: string, stream?: StreamRef): Effect.Effect<never, JournalError> =>
  Effect.fail(
    new JournalError({
      method,
      message: text,
      ...(stream !== undefined && streamProblem(stream) === undefined ? { stream: { namespace: stream.namespace, id: stream.id } } : {})
    })
  )

/** The failure for a seq argument `what` of `method` that is not an integer ≥ 0, or `undefined`. @internal */
export const seqArgument = (method: string, what: string, value: number): Effect.Effect<never, JournalError> | undefined => {
  const problem = integerProblem(what, value, 0)
  return problem === undefined ? undefined : invalid(method, `Journal.${method}: ${problem}`)
}

/** What the reads need of an open journal. @internal */
export interface ReadSide {
  readonly reader: Reader
  readonly state: CheckpointFile
  /** The highest visible (and so settled) seq. */
  readonly visibleSeq: () => number
  /** A follower from this seq on lost nothing to truncation. */
  readonly removedBefore: () => number
  /** The failure of `method` once the journal is closed (followers end with it); `undefined` while open. */
  readonly closed: (method: string) => JournalError | undefined
  /** Notified whenever `visibleSeq` may have risen or the journal closed: followers wait on it. */
  readonly settled: Settled
  /** True once a follow page from `seq` may hold something new. */
  readonly ready: (seq: number) => boolean
}

/** The Journal's read operations over `side`. @internal */
export const readOperations = (
  { closed, reader, ready, removedBefore, settled, state, visibleSeq }: ReadSide
): Pick<Journal, "read" | "replayFrom" | "replayUntil" | "follow" | "version" | "lastSeq" | "checkpoint"> => {
  /** `read` on the journal as it is now, failing with a `JournalError` of `method`. */
  const current = <A>(method: string, read: () => A, stream?: StreamRef): Effect.Effect<A, JournalError> =>
    Effect.try({ try: () => reader.current(read), catch: (cause) => reader.readError(method, cause, stream) })

  const read: Journal["read"] = (stream, options) => {
    const problem = readProblem(stream, options)
    if (problem !== undefined) {
      return Stream.fromEffect(invalid("read", `Cannot read stream ${formatStream(stream)}: ${problem}`, stream))
    }
    return reader.readStream(stream, options?.from ?? 1, options?.to ?? Number.MAX_SAFE_INTEGER, options?.max ?? Number.MAX_SAFE_INTEGER)
  }

  const replayFrom: Journal["replayFrom"] = (fromSeq) => {
    const bad = seqArgument("replayFrom", "fromSeq", fromSeq)
    return bad !== undefined ? Stream.fromEffect(bad) : reader.replay("replayFrom", fromSeq)
  }

  const replayUntil: Journal["replayUntil"] = (fromSeq, untilMs) => {
    const bad = seqArgument("replayUntil", "fromSeq", fromSeq) ??
      (Number.isFinite(untilMs) ? undefined : invalid("replayUntil", `Journal.replayUntil: untilMs must be finite, got ${untilMs}`))
    // Timestamps never decrease in seq order for appends, but restored history keeps its own.
    return bad !== undefined
      ? Stream.fromEffect(bad)
      : Stream.filter(reader.replay("replayUntil", fromSeq), (r) => r.timestamp <= untilMs)
  }

  const follow: Journal["follow"] = (fromSeq) => {
    const bad = seqArgument("follow", "fromSeq", fromSeq)
    if (bad !== undefined) return Stream.fromEffect(bad)
    return followLog(fromSeq, {
      // Checked and read in one synchronous step: a truncation cannot slip in between.
      page: (seq) =>
        Effect.suspend((): Effect.Effect<ReadonlyArray<JournalRecord>, JournalError | JournalTruncated> => {
          const refusal = closed("follow")
          if (refusal !== undefined) return Effect.fail(refusal)
          // What is known first; catching up (a read-only journal lists its directory) only once that runs out.
          const known = Math.max(seq, 1) < removedBefore() ? [] : reader.knownPage(seq, FOLLOW_PAGE_RECORDS)
          if (known.length > 0) return Effect.succeed(known)
          try {
            return reader.current(() =>
              Math.max(seq, 1) < removedBefore()
                ? Effect.fail(new JournalTruncated({ method: "follow", fromSeq: seq, truncatedBefore: state.truncatedBefore }))
                : Effect.succeed(reader.page(seq, FOLLOW_PAGE_RECORDS))
            )
          } catch (cause) {
            return Effect.fail(reader.readError("follow", cause))
          }
        }),
      ready,
      settled
    })
  }

  const version: Journal["version"] = (stream) => {
    const problem = streamProblem(stream)
    return problem !== undefined
      ? invalid("version", `Cannot read the version of stream ${formatStream(stream)}: ${problem}`, stream)
      : current("version", () => reader.visibleVersion(stream), stream)
  }

  return {
    read,
    replayFrom,
    replayUntil,
    follow,
    version,
    checkpoint: current("checkpoint", () => state.checkpoint),
    // The highest settled seq: a single writer makes records visible in seq order.
    lastSeq: current("lastSeq", visibleSeq)
  }
}
