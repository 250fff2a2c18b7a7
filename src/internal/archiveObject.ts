/**
 * The archive segment object: its msgpack layout, checksum and compression, encoded and decoded
 * here once for every Archive backend (`Archive.make` stores the bytes through an `ObjectStore`).
 *
 * An object is a msgpack map: `format`, `formatVersion`, `writerId`, `startSeq`, `endSeq`, `count`,
 * `compression` (`"none"` or `"gzip"`), `crc32` and `records` — the records as one msgpack array of
 * `[seq, namespace, id, version, type, timestamp, payload, metadata]`, compressed with `compression`.
 * The CRC-32 covers the stored (compressed) records and the header fields, so damage is found
 * before anything is decompressed; objects without compression are byte for byte what version 1
 * always wrote.
 * @internal
 */
import * as Effect from "effect/Effect"
import type { Segment } from "../Archive.ts"
import type { JournalRecord } from "../Journal.ts"
import { type Compression, COMPRESSIONS, compress, decompress } from "./archiveCompression.ts"
import { crc32 } from "./crc32.ts"
import { recordProblem } from "./journalChecks.ts"
import * as Msgpack from "./msgpack.ts"
import { integerProblem } from "./validate.ts"

/** The format tag stored in every segment object. @internal */
export const FORMAT = "annals.segment"

/** The version of the segment object format written and read. @internal */
export const FORMAT_VERSION = 1

/** A record as the object stores it; metadata is a msgpack map (decoded as a `Map`, see `decodeObject`). */
type EncodedRecord<Metadata = Record<string, string>> = [
  seq: number,
  namespace: string,
  id: string,
  version: number,
  type: string,
  timestamp: number,
  payload: Uint8Array,
  metadata: Metadata | null
]

/**
 * Metadata as a plain object from the `Map` it decodes to, keys exactly as stored (`Object.fromEntries`
 * defines `"__proto__"` as an own key). Throws when it is not a map with string keys; `segmentProblem`
 * then checks the values.
 */
const metadataFromMap = (seq: unknown, metadata: unknown): Record<string, string> => {
  if (!(metadata instanceof Map) || [...metadata.keys()].some((key) => typeof key !== "string")) {
    throw new Error(`record seq ${String(seq)}: its metadata is not a map with string keys`)
  }
  return Object.fromEntries(metadata) as Record<string, string>
}

/** A decoded object, `records` as stored. @internal */
export interface SegmentObject {
  readonly format: string
  readonly formatVersion: number
  readonly writerId: string
  readonly startSeq: number
  readonly endSeq: number
  readonly count: number
  readonly compression: Compression
  /** CRC-32 over the stored records, continued over the header fields (`headerBytes`). */
  readonly crc32: number
  readonly records: Uint8Array
}

/** What is wrong with `segment` as one to archive, if anything. @internal */
export const segmentProblem = (segment: Segment): string | undefined => {
  const problem = integerProblem("startSeq", segment.startSeq, 1) ?? integerProblem("endSeq", segment.endSeq, 1) ??
    (segment.endSeq < segment.startSeq ? `endSeq ${segment.endSeq} is below startSeq ${segment.startSeq}` : undefined) ??
    (Array.isArray(segment.records) ? undefined : "records must be an array")
  if (problem !== undefined) return problem
  let previous = segment.startSeq - 1
  for (const record of segment.records) {
    const recordIssue = recordProblem(record)
    if (recordIssue !== undefined) return `record seq ${record?.seq}: ${recordIssue}`
    if (record.seq <= previous) return `record seq ${record.seq} is out of order or below startSeq ${segment.startSeq}`
    if (record.seq > segment.endSeq) return `record seq ${record.seq} is above endSeq ${segment.endSeq}`
    previous = record.seq
  }
  return undefined
}

const encodeRecords = (records: ReadonlyArray<JournalRecord>): Uint8Array =>
  Msgpack.pack(records.map((r): EncodedRecord => [
    r.seq,
    r.namespace,
    r.id,
    r.version,
    r.type,
    r.timestamp,
    r.payload,
    r.metadata === undefined ? null : { ...r.metadata }
  ]))

/** The header fields the checksum covers besides the records, so a damaged header is detected too. */
const headerBytes = (object: Omit<SegmentObject, "crc32" | "records">): Uint8Array =>
  Msgpack.pack([object.format, object.formatVersion, object.writerId, object.startSeq, object.endSeq, object.count, object.compression])

const checksum = (object: Omit<SegmentObject, "crc32">): number => crc32(headerBytes(object), crc32(object.records))

/** Whether two byte arrays are equal. @internal */
export const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * Encodes `segment` as an object by `writerId` with `compression`: its bytes, and its records
 * encoded before compression (what a re-put compares with an existing object). @internal
 */
export const encodeObject = (
  segment: Segment,
  writerId: string,
  compression: Compression
): Effect.Effect<{ readonly bytes: Uint8Array; readonly plain: Uint8Array }, Error> => {
  const plain = encodeRecords(segment.records)
  return Effect.map(compress(compression, plain), (records) => {
    const header = {
      format: FORMAT,
      formatVersion: FORMAT_VERSION,
      writerId,
      startSeq: segment.startSeq,
      endSeq: segment.endSeq,
      count: segment.records.length,
      compression
    }
    const object: SegmentObject = { ...header, crc32: checksum({ ...header, records }), records }
    return { bytes: Msgpack.pack(object), plain }
  })
}

/**
 * Decodes and verifies a stored object against the range and codec its key names: the object, its
 * records encoded before compression, and the records. Fails with a message describing the damage.
 * @internal
 */
export const decodeObject = (bytes: Uint8Array, startSeq: number, endSeq: number, keyCompression: Compression): Effect.Effect<{
  readonly object: SegmentObject
  readonly plain: Uint8Array
  readonly records: ReadonlyArray<JournalRecord>
}, Error> =>
  Effect.gen(function*() {
    const object = yield* Effect.try({ try: () => Msgpack.unpack(bytes) as SegmentObject, catch: asError })
    if (object === null || typeof object !== "object" || object.format !== FORMAT) {
      return yield* Effect.fail(new Error(`it is not an annals segment object (format tag missing)`))
    }
    if (object.formatVersion !== FORMAT_VERSION) {
      return yield* Effect.fail(new Error(`its format version ${object.formatVersion} is not supported (expected ${FORMAT_VERSION})`))
    }
    if (!COMPRESSIONS.includes(object.compression)) {
      return yield* Effect.fail(new Error(`its compression ${String(object.compression)} is not supported (this version reads ${COMPRESSIONS.join(", ")})`))
    }
    if (object.compression !== keyCompression) {
      return yield* Effect.fail(new Error(`its header says compression ${object.compression}, but its key names ${keyCompression}`))
    }
    if (object.startSeq !== startSeq || object.endSeq !== endSeq) {
      return yield* Effect.fail(new Error(`it covers seqs ${object.startSeq}..${object.endSeq}, but its key names ${startSeq}..${endSeq}`))
    }
    if (!(object.records instanceof Uint8Array)) return yield* Effect.fail(new Error("its records are missing"))
    const actual = checksum(object)
    if (actual !== object.crc32) {
      return yield* Effect.fail(new Error(`its checksum does not match (stored ${object.crc32}, computed ${actual})`))
    }
    const plain = yield* Effect.mapError(decompress(object.compression, object.records), (cause) =>
      new Error(`its ${object.compression} records do not decompress: ${cause.message}`))
    const records = yield* Effect.try({ try: () => decodeRecords(plain, object.count, startSeq, endSeq), catch: asError })
    return { object, plain, records }
  })

const asError = (cause: unknown): Error => cause instanceof Error ? cause : new Error(String(cause))

/** The records of an object from their msgpack bytes; throws a message describing the damage. */
const decodeRecords = (plain: Uint8Array, count: number, startSeq: number, endSeq: number): ReadonlyArray<JournalRecord> => {
  // Maps stay Maps, so that every metadata key — "__proto__" too — comes back exactly.
  const encoded = Msgpack.unpackMaps(plain) as ReadonlyArray<EncodedRecord<unknown>>
  if (!Array.isArray(encoded) || encoded.length !== count) {
    throw new Error(`it should hold ${count} records`)
  }
  const records = encoded.map(([seq, namespace, id, version, type, timestamp, payload, metadata]): JournalRecord => ({
    seq,
    namespace,
    id,
    version,
    type,
    timestamp,
    payload: payload instanceof Uint8Array ? Msgpack.bytes(payload) : payload,
    ...(metadata === null ? {} : { metadata: metadataFromMap(seq, metadata) })
  }))
  const problem = segmentProblem({ startSeq, endSeq, records })
  if (problem !== undefined) throw new Error(problem)
  return records
}
