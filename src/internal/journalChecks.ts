/**
 * Argument checks every Journal layer shares, so that all of them reject the same inputs with the same words.
 * @internal
 */
import type { EventData, ExpectedVersion, JournalRecord, ReadOptions, StreamRef } from "../Journal.ts"
import {
  describeValue,
  formatStream,
  guarded,
  integerProblem,
  metadataProblem,
  streamKey,
  streamProblem,
  unpairedSurrogate
} from "./validate.ts"

/**
 * Checks an append's arguments; a sentence naming the problem, or `undefined`. Never throws: a
 * non-array, a sparse array, `null` events or values whose getters throw are problems like any other.
 *
 * @internal
 */
export const appendProblem = (
  stream: StreamRef,
  expectedVersion: ExpectedVersion,
  events: ReadonlyArray<EventData>
): string | undefined =>
  guarded(() => {
    const problem = streamProblem(stream) ??
      (expectedVersion === "any" ? undefined : integerProblem("expectedVersion", expectedVersion, 0))
    if (problem !== undefined) return problem
    if (!Array.isArray(events)) return `events must be a non-empty array, got ${describeValue(events)}`
    if (events.length === 0) return "events must be a non-empty array"
    for (let i = 0; i < events.length; i++) {
      const eventProblem = guarded(() => eventDataProblem(events, i))
      if (eventProblem !== undefined) return `event ${i}: ${eventProblem}`
    }
    return undefined
  })

const eventDataProblem = (events: ReadonlyArray<EventData>, i: number): string | undefined => {
  const event: unknown = events[i]
  if (event === null || typeof event !== "object") {
    return `an event must be an object { type, payload, metadata? }, got ${
      event === undefined && !(i in events) ? "a hole (the array is sparse)" : describeValue(event)
    }`
  }
  const { type, payload, metadata } = event as EventData
  return typeProblem(type) ?? (payload instanceof Uint8Array ? undefined : `payload must be a Uint8Array, got ${describeValue(payload)}`) ??
    metadataProblem(metadata)
}

const typeProblem = (type: unknown): string | undefined =>
  typeof type !== "string" || type.length === 0
    ? `type must be a non-empty string, got ${type === "" ? "an empty string" : describeValue(type)}`
    : unpairedSurrogate("type", type)

/**
 * Checks what an append would assign before anything is stored (DESIGN §1: nothing beyond
 * `Number.MAX_SAFE_INTEGER`): the Clock's time `now`, the seqs `firstSeq ..` of `count` records and
 * the versions after `current`. A sentence naming the problem, or `undefined`.
 *
 * @internal
 */
export const assignProblem = (now: number, firstSeq: number, count: number, current: number): string | undefined =>
  clockProblem(now) ?? (count - 1 > Number.MAX_SAFE_INTEGER - firstSeq // not `firstSeq + count - 1 > …`: that sum rounds down past 2^53
    ? `its ${count} record(s) would get seqs from ${firstSeq}, beyond Number.MAX_SAFE_INTEGER (${Number.MAX_SAFE_INTEGER})`
    : count > Number.MAX_SAFE_INTEGER - current
    ? `the stream is at version ${current}; ${count} more would pass Number.MAX_SAFE_INTEGER (${Number.MAX_SAFE_INTEGER})`
    : undefined)

/**
 * What is wrong with the Clock's time `now` as a record's timestamp, if anything (the first check of
 * `assignProblem`, for a journal that checks it before the rest).
 *
 * @internal
 */
export const clockProblem = (now: number): string | undefined =>
  !Number.isSafeInteger(now) || now < 0 ? `the Clock's time ${now} ms is not a safe integer ≥ 0, so it cannot be a record's timestamp` : undefined

/**
 * Where a journal stands, for checking a `restore` batch: its last seq, its truncation point (no
 * record may be restored below it) and each stream's version (0 if unknown).
 *
 * @internal
 */
export interface RestorePosition {
  readonly lastSeq: number
  readonly truncatedBefore: number
  readonly version: (namespace: string, id: string) => number
}

/**
 * Checks a `restore` batch against the journal's position: every record well-formed, in seq order
 * above `lastSeq` and at or above the truncation point, each continuing its stream's version (a
 * stream the journal does not know may start at any version, its earlier history may be gone). The
 * batch as an array and the seq it ends at, or a message naming the first bad record. Never throws.
 *
 * @internal
 */
export const restoreBatch = (
  records: Iterable<JournalRecord>,
  position: RestorePosition
): { readonly problem: string } | { readonly batch: ReadonlyArray<JournalRecord>; readonly lastSeq: number } => {
  let batch: Array<JournalRecord>
  try {
    if (typeof (records as Partial<Iterable<JournalRecord>> | null | undefined)?.[Symbol.iterator] !== "function") {
      throw new Error(`got ${describeValue(records)}`)
    }
    batch = Array.from(records)
  } catch (cause) {
    return { problem: `Cannot restore: records must be an iterable of records (${describeCause(cause)}); nothing was restored` }
  }
  const versions = new Map<string, number>()
  let seq = position.lastSeq
  for (let i = 0; i < batch.length; i++) {
    const record = batch[i]!
    const problem = guarded(() => {
      const shape = recordProblem(record)
      if (shape !== undefined) return shape
      if (record.seq <= seq) return `seq ${record.seq} is not above the journal's last seq ${seq}`
      if (record.seq < position.truncatedBefore) return `seq ${record.seq} is below the truncation point ${position.truncatedBefore}`
      const key = streamKey(record.namespace, record.id)
      const version = versions.get(key) ?? position.version(record.namespace, record.id)
      if (version > 0 && record.version !== version + 1) {
        return `version ${record.version} does not follow version ${version} of stream ${formatStream(record)}`
      }
      versions.set(key, record.version)
      return undefined
    })
    if (problem !== undefined) {
      return { problem: `Cannot restore record ${recordLabel(record, i)}: ${problem}; nothing was restored` }
    }
    seq = record.seq
  }
  return { batch, lastSeq: seq }
}

/** `seq N` when the record has a usable seq, else its place in the batch. */
const recordLabel = (record: JournalRecord, i: number): string => {
  try {
    return Number.isSafeInteger(record.seq) ? `seq ${record.seq}` : `${i} of the batch`
  } catch {
    return `${i} of the batch`
  }
}

const describeCause = (cause: unknown): string => cause instanceof Error ? cause.message : describeValue(cause)

/**
 * Checks that a value has the shape of a `JournalRecord` with storable numbers (safe integers) and
 * metadata of the one shape every layer accepts; a sentence naming the problem, or `undefined`.
 * Never throws.
 *
 * @internal
 */
export const recordProblem = (record: JournalRecord): string | undefined =>
  guarded(() => {
    if (record === null || typeof record !== "object") return `a record must be an object, got ${describeValue(record)}`
    return integerProblem("seq", record.seq, 1) ?? streamProblem(record) ??
      integerProblem("version", record.version, 1) ?? integerProblem("timestamp", record.timestamp, 0) ??
      typeProblem(record.type) ??
      (record.payload instanceof Uint8Array ? undefined : `payload must be a Uint8Array, got ${describeValue(record.payload)}`) ??
      metadataProblem(record.metadata)
  })

/**
 * Checks a read's bounds; a sentence naming the problem, or `undefined`. Never throws.
 *
 * @internal
 */
export const readProblem = (stream: StreamRef, options: ReadOptions | undefined): string | undefined =>
  guarded(() =>
    streamProblem(stream) ??
      (options === undefined ? undefined : options === null || typeof options !== "object"
        ? `options must be an object { from?, to?, max? }, got ${describeValue(options)}`
        : undefined) ??
      (options?.from === undefined ? undefined : integerProblem("from", options.from, 0)) ??
      (options?.to === undefined ? undefined : integerProblem("to", options.to, 0)) ??
      (options?.max === undefined ? undefined : integerProblem("max", options.max, 0))
  )

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
