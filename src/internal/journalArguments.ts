/**
 * The argument checks of the server-backed journals as `JournalError`s, written once: each returns
 * the error naming what is wrong and where, or `undefined`.
 * @internal
 */
import * as Stream from "effect/Stream"
import type { EventData, ExpectedVersion, Journal, JournalRecord, ReadOptions, StreamRef } from "../Journal.ts"
import { JournalError } from "../Journal.ts"
import { appendProblem, readProblem } from "./journalChecks.ts"
import { formatStream, integerProblem, streamProblem } from "./validate.ts"

/** The `stream` field of an error, when the stream is a valid one. @internal */
export const validStream = (stream: { readonly namespace: string; readonly id: string }) =>
  streamProblem(stream) === undefined ? { stream: { namespace: stream.namespace, id: stream.id } } : {}

/** What is wrong with the arguments of `append`. @internal */
export const appendArgumentError = (stream: StreamRef, expectedVersion: ExpectedVersion, events: ReadonlyArray<EventData>): JournalError | undefined => {
  const problem = appendProblem(stream, expectedVersion, events)
  return problem === undefined
    ? undefined
    : new JournalError({ method: "append", message: `Cannot append to stream ${formatStream(stream)}: ${problem}`, ...validStream(stream) })
}

/** What is wrong with the arguments of `read`. @internal */
export const readArgumentError = (stream: StreamRef, options: ReadOptions | undefined): JournalError | undefined => {
  const problem = readProblem(stream, options)
  return problem === undefined
    ? undefined
    : new JournalError({ method: "read", message: `Cannot read stream ${formatStream(stream)}: ${problem}`, ...validStream(stream) })
}

/** What is wrong with the stream given to `version`. @internal */
export const versionArgumentError = (stream: StreamRef): JournalError | undefined => {
  const problem = streamProblem(stream)
  return problem === undefined
    ? undefined
    : new JournalError({ method: "version", message: `Cannot read the version of stream ${formatStream(stream)}: ${problem}`, ...validStream(stream) })
}

/** What is wrong with a seq argument (`name`, an integer ≥ 0) of `method`. @internal */
export const seqArgumentError = (method: string, name: string, value: number): JournalError | undefined => {
  const problem = integerProblem(name, value, 0)
  return problem === undefined ? undefined : new JournalError({ method, message: `Journal.${method}: ${problem}` })
}

/** What is wrong with the arguments of `replayUntil`. @internal */
export const replayUntilArgumentError = (fromSeq: number, untilMs: number): JournalError | undefined =>
  seqArgumentError("replayUntil", "fromSeq", fromSeq) ??
    (Number.isFinite(untilMs) ? undefined : new JournalError({ method: "replayUntil", message: `Journal.replayUntil: untilMs must be finite, got ${untilMs}` }))

/**
 * `replayFrom` and `replayUntil` over `replay(method, fromSeq)` (the log from `fromSeq` in seq
 * order), their arguments checked first. `replayUntil` filters rather than stops at the first later
 * record: timestamps come from each writer's clock, and restored history keeps its own order.
 * @internal
 */
export const replayMethods = (
  replay: (method: string, fromSeq: number) => Stream.Stream<JournalRecord, JournalError>
): Pick<Journal, "replayFrom" | "replayUntil"> => ({
  replayFrom: (fromSeq) => {
    const bad = seqArgumentError("replayFrom", "fromSeq", fromSeq)
    return bad !== undefined ? Stream.fail(bad) : replay("replayFrom", fromSeq)
  },
  replayUntil: (fromSeq, untilMs) => {
    const bad = replayUntilArgumentError(fromSeq, untilMs)
    return bad !== undefined ? Stream.fail(bad) : Stream.filter(replay("replayUntil", fromSeq), (record) => record.timestamp <= untilMs)
  }
})
