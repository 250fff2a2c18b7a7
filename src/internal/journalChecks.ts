/**
 * Argument checks every Journal layer shares, so that all of them reject the same inputs with the same words.
 * @internal
 */
import type { EventData, ExpectedVersion, JournalRecord, ReadOptions, StreamRef } from "../Journal.ts"
import { formatStream, integerProblem, metadataProblem, streamProblem, unpairedSurrogate } from "./validate.ts"

/**
 * Checks an append's arguments; a sentence naming the problem, or `undefined`.
 *
 * @internal
 */
export const appendProblem = (
  stream: StreamRef,
  expectedVersion: ExpectedVersion,
  events: ReadonlyArray<EventData>
): string | undefined => {
  const problem = streamProblem(stream) ??
    (expectedVersion === "any" ? undefined : integerProblem("expectedVersion", expectedVersion, 0))
  if (problem !== undefined) return problem
  if (!Array.isArray(events) || events.length === 0) return "events must be a non-empty array"
  for (let i = 0; i < events.length; i++) {
    const event = events[i]!
    const eventProblem = typeof event.type !== "string" || event.type.length === 0
      ? "type must be a non-empty string"
      : !(event.payload instanceof Uint8Array)
      ? "payload must be a Uint8Array"
      : unpairedSurrogate("type", event.type) ?? metadataProblem(event.metadata)
    if (eventProblem !== undefined) return `event ${i}: ${eventProblem}`
  }
  return undefined
}

/**
 * Checks one record handed to `restore` against the journal's position so far; a sentence naming the
 * problem, or `undefined`. `streamVersion` is the stream's version before this record (0 if unknown,
 * in which case its history may start at any version).
 *
 * @internal
 */
export const restoreProblem = (record: JournalRecord, lastSeq: number, streamVersion: number): string | undefined => {
  const problem = recordProblem(record)
  if (problem !== undefined) return problem
  if (record.seq <= lastSeq) return `seq ${record.seq} is not above the journal's last seq ${lastSeq}`
  if (streamVersion > 0 && record.version !== streamVersion + 1) {
    return `version ${record.version} does not follow version ${streamVersion} of stream ${formatStream(record)}`
  }
  return undefined
}

/**
 * Checks that a value has the shape of a `JournalRecord`; a sentence naming the problem, or `undefined`.
 *
 * @internal
 */
export const recordProblem = (record: JournalRecord): string | undefined => {
  if (record === null || typeof record !== "object") return "a record must be an object"
  return integerProblem("seq", record.seq, 1) ?? streamProblem(record) ??
    integerProblem("version", record.version, 1) ?? integerProblem("timestamp", record.timestamp, 0) ??
    (typeof record.type !== "string" || record.type.length === 0 ? "type must be a non-empty string" : unpairedSurrogate("type", record.type)) ??
    (record.payload instanceof Uint8Array ? undefined : "payload must be a Uint8Array") ??
    metadataProblem(record.metadata)
}

/**
 * Checks a read's bounds; a sentence naming the problem, or `undefined`.
 *
 * @internal
 */
export const readProblem = (stream: StreamRef, options: ReadOptions | undefined): string | undefined =>
  streamProblem(stream) ??
    (options?.from === undefined ? undefined : integerProblem("from", options.from, 0)) ??
    (options?.to === undefined ? undefined : integerProblem("to", options.to, 0)) ??
    (options?.max === undefined ? undefined : integerProblem("max", options.max, 0))

/**
 * The records an append of `events` to `stream` creates: seqs from `firstSeq`, versions after
 * `current`, all with `timestamp`. Buffers are the caller's; a layer copies or encodes them.
 *
 * @internal
 */
export const appendedRecords = (
  stream: StreamRef,
  events: ReadonlyArray<EventData>,
  firstSeq: number,
  current: number,
  timestamp: number
): Array<JournalRecord> =>
  events.map((event, i) => ({
    seq: firstSeq + i,
    namespace: stream.namespace,
    id: stream.id,
    version: current + i + 1,
    type: event.type,
    timestamp,
    payload: event.payload,
    metadata: event.metadata
  }))

/**
 * The seq the next appended record gets: above every seq assigned and at or above the checkpoint,
 * so records appended after a truncation past the end are never below the watermark.
 *
 * @internal
 */
export const nextSeq = (lastSeq: number, checkpoint: number): number => Math.max(lastSeq + 1, checkpoint)
