/**
 * The Archive: cold storage for runs of journal records ("segments"), so that the journal can be
 * truncated without losing history, restored on a fresh machine, and read for time travel.
 *
 * A segment covers the seq range `startSeq..endSeq` and holds every journal record in it (seq gaps
 * are legal, so a segment may hold fewer than `endSeq − startSeq + 1` records). It is stored as one
 * object named `{prefix}{startSeq:020}-{endSeq:020}.msgpack`, carrying a format tag and version, the
 * writer's id and a CRC-32 over its encoded records. Putting an identical segment again is a no-op;
 * a different object under an existing key is an error, so a second writer never overwrites silently.
 *
 * The format lives here once; backends only store bytes under keys (`ObjectStore`): memory (this
 * module), a local directory (`annals/file`) and S3 (`annals/s3`).
 *
 * @since 0.1.0
 */
import { Context, Data, Effect, Layer } from "effect"
import { SecureRandom } from "effect/crypto"
import type { JournalRecord } from "./Journal.ts"
import { crc32 } from "./internal/crc32.ts"
import { recordProblem } from "./internal/journalChecks.ts"
import * as Msgpack from "./internal/msgpack.ts"
import { integerProblem } from "./internal/validate.ts"
import type { TaggedErrorClass } from "./internal/errors.ts"

/**
 * Where an archived segment is and which seqs it covers.
 *
 * @since 0.1.0
 * @category models
 */
export interface SegmentRef {
  readonly startSeq: number
  readonly endSeq: number
  readonly key: string
  /** Size of the stored object in bytes, when the backend reports it. */
  readonly size?: number | undefined
}

/**
 * A run of journal records to archive: every record with seq in `startSeq..endSeq`, in seq order.
 *
 * @since 0.1.0
 * @category models
 */
export interface Segment {
  readonly startSeq: number
  readonly endSeq: number
  readonly records: ReadonlyArray<JournalRecord>
}

/**
 * The fields of an `ArchiveError`.
 *
 * @since 0.1.0
 * @category errors
 */
export interface ArchiveErrorFields {
  /** The operation that failed, e.g. `"get"`. */
  readonly method: string
  /** What went wrong and where. */
  readonly message: string
  /** The object concerned, when there is one. */
  readonly key?: string | undefined
  readonly cause?: unknown
}

const ArchiveErrorBase: TaggedErrorClass<"ArchiveError", ArchiveErrorFields> = Data.TaggedError("ArchiveError")

/**
 * An archive operation failed: bad input, a backend fault, a damaged object, or an object under an
 * existing key that differs from the one being put. `key` names the object when there is one.
 *
 * @since 0.1.0
 * @category errors
 */
export class ArchiveError extends ArchiveErrorBase {}

/**
 * The Archive service.
 *
 * @since 0.1.0
 * @category services
 */
export interface Archive {
  /** Stores a segment under its key; identical again is a no-op, a different object under the key an error. */
  readonly put: (segment: Segment) => Effect.Effect<SegmentRef, ArchiveError>
  /** The segments that hold seqs ≥ `fromSeq` (default: all), ordered by `startSeq`. */
  readonly list: (fromSeq?: number) => Effect.Effect<ReadonlyArray<SegmentRef>, ArchiveError>
  /** The segment's records in seq order, checksum verified. */
  readonly get: (ref: SegmentRef) => Effect.Effect<ReadonlyArray<JournalRecord>, ArchiveError>
}

/**
 * The Archive service key.
 *
 * @since 0.1.0
 * @category services
 */
export const Archive: Context.Service<Archive, Archive> = Context.Service<Archive>("annals/Archive")

/**
 * Byte storage for archive objects: what an Archive backend provides. Keys are `/`-separated paths.
 *
 * @since 0.1.0
 * @category models
 */
export interface ObjectStore {
  /** The object's bytes, or `undefined` if there is no object under `key`. */
  readonly get: (key: string) => Effect.Effect<Uint8Array | undefined, ArchiveError>
  /** Stores the object only if `key` is free, atomically; `false` if an object was already there. */
  readonly putIfAbsent: (key: string, bytes: Uint8Array) => Effect.Effect<boolean, ArchiveError>
  /** Every object whose key starts with `prefix`, in any order. */
  readonly list: (prefix: string) => Effect.Effect<ReadonlyArray<{ readonly key: string; readonly size: number }>, ArchiveError>
}

/**
 * Options every Archive layer accepts.
 *
 * @since 0.1.0
 * @category models
 */
export interface ArchiveOptions {
  /** Prepended to every key, e.g. `"journal/"` (default `""`). No `..` segments, no leading `/`. */
  readonly prefix?: string | undefined
  /** Recorded in every object this process writes (default: a random UUID per layer). */
  readonly writerId?: string | undefined
}

/**
 * The format tag stored in every segment object.
 *
 * @since 0.1.0
 * @category format
 */
export const FORMAT = "annals.segment"

/**
 * The version of the segment object format this module writes and reads.
 *
 * @since 0.1.0
 * @category format
 */
export const FORMAT_VERSION = 1

const KEY_PATTERN = /^(\d{20})-(\d{20})\.msgpack$/

/**
 * The key of the object holding `startSeq..endSeq`: `{prefix}{startSeq:020}-{endSeq:020}.msgpack`.
 *
 * @since 0.1.0
 * @category format
 */
export const segmentKey = (prefix: string, startSeq: number, endSeq: number): string =>
  `${prefix}${String(startSeq).padStart(20, "0")}-${String(endSeq).padStart(20, "0")}.msgpack`

/**
 * Parses a key made by `segmentKey` with the same prefix; `undefined` for any other key.
 *
 * @since 0.1.0
 * @category format
 */
export const parseSegmentKey = (prefix: string, key: string): { startSeq: number; endSeq: number } | undefined => {
  if (!key.startsWith(prefix)) return undefined
  const match = KEY_PATTERN.exec(key.slice(prefix.length))
  if (match === null) return undefined
  const startSeq = Number(match[1])
  const endSeq = Number(match[2])
  return Number.isSafeInteger(startSeq) && Number.isSafeInteger(endSeq) ? { startSeq, endSeq } : undefined
}

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

interface SegmentObject {
  readonly format: string
  readonly formatVersion: number
  readonly writerId: string
  readonly startSeq: number
  readonly endSeq: number
  readonly count: number
  readonly compression: "none"
  /** CRC-32 over the encoded records, continued over the header fields (`headerBytes`). */
  readonly crc32: number
  readonly records: Uint8Array
}

const fail = (method: string, message: string, key?: string, cause?: unknown) =>
  Effect.fail(
    new ArchiveError({
      method,
      message,
      ...(key !== undefined ? { key } : {}),
      ...(cause !== undefined ? { cause } : {})
    })
  )

const segmentProblem = (segment: Segment): string | undefined => {
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

const prefixProblem = (prefix: unknown): string | undefined =>
  typeof prefix !== "string"
    ? "prefix must be a string"
    : prefix.startsWith("/") || prefix.split("/").some((part) => part === "." || part === "..") ||
        prefix.includes("\u0000")
    ? `prefix ${JSON.stringify(prefix)} must be relative, without "." or ".." segments or NUL`
    : undefined

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

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * Decodes and verifies a stored segment object against the range its key names. Throws a message
 * describing the damage.
 */
const decodeObject = (bytes: Uint8Array, startSeq: number, endSeq: number): {
  readonly object: SegmentObject
  readonly records: ReadonlyArray<JournalRecord>
} => {
  const object = Msgpack.unpack(bytes) as SegmentObject
  if (object === null || typeof object !== "object" || object.format !== FORMAT) {
    throw new Error(`it is not an annals segment object (format tag missing)`)
  }
  if (object.formatVersion !== FORMAT_VERSION) {
    throw new Error(`its format version ${object.formatVersion} is not supported (expected ${FORMAT_VERSION})`)
  }
  if (object.compression !== "none") throw new Error(`its compression ${String(object.compression)} is not supported`)
  if (object.startSeq !== startSeq || object.endSeq !== endSeq) {
    throw new Error(`it covers seqs ${object.startSeq}..${object.endSeq}, but its key names ${startSeq}..${endSeq}`)
  }
  if (!(object.records instanceof Uint8Array)) throw new Error("its records are missing")
  const actual = checksum(object)
  if (actual !== object.crc32) {
    throw new Error(`its checksum does not match (stored ${object.crc32}, computed ${actual})`)
  }
  // Maps stay Maps, so that every metadata key — "__proto__" too — comes back exactly.
  const encoded = Msgpack.unpackMaps(object.records) as ReadonlyArray<EncodedRecord<unknown>>
  if (!Array.isArray(encoded) || encoded.length !== object.count) {
    throw new Error(`it should hold ${object.count} records`)
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
  return { object, records }
}

const describeCause = (cause: unknown): string => cause instanceof Error ? cause.message : String(cause)

/**
 * Builds an Archive over an `ObjectStore`: the segment format, checksums and the no-overwrite rule
 * are implemented here, once, for every backend.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  store: ObjectStore,
  options?: ArchiveOptions
): Effect.Effect<Archive, ArchiveError> =>
  Effect.suspend(() => {
    const prefix = options?.prefix ?? ""
    const problem = prefixProblem(prefix)
    if (problem !== undefined) return fail("make", `Archive option ${problem}`)
    const writerId = options?.writerId ?? SecureRandom.uuidV4Unsafe()

    const get = (method: string, ref: SegmentRef) =>
      Effect.flatMap(store.get(ref.key), (bytes) => {
        if (bytes === undefined) {
          return fail(method, `Archive segment ${ref.key} (seqs ${ref.startSeq}..${ref.endSeq}) does not exist`, ref.key)
        }
        try {
          return Effect.succeed({ ...decodeObject(bytes, ref.startSeq, ref.endSeq), size: bytes.length })
        } catch (cause) {
          return fail(method, `Archive segment ${ref.key} is damaged: ${describeCause(cause)}`, ref.key, cause)
        }
      })

    return Effect.succeed(Archive.of({
      put: (segment) =>
        Effect.suspend(() => {
          const problem = segmentProblem(segment)
          if (problem !== undefined) {
            return fail("put", `Cannot archive segment ${segment?.startSeq}..${segment?.endSeq}: ${problem}`)
          }
          const key = segmentKey(prefix, segment.startSeq, segment.endSeq)
          const records = encodeRecords(segment.records)
          const header = {
            format: FORMAT,
            formatVersion: FORMAT_VERSION,
            writerId,
            startSeq: segment.startSeq,
            endSeq: segment.endSeq,
            count: segment.records.length,
            compression: "none" as const
          }
          const object: SegmentObject = { ...header, crc32: checksum({ ...header, records }), records }
          const bytes = Msgpack.pack(object)
          const ref: SegmentRef = { startSeq: segment.startSeq, endSeq: segment.endSeq, key, size: bytes.length }
          return Effect.flatMap(store.putIfAbsent(key, bytes), (created) =>
            created ? Effect.succeed(ref) : Effect.flatMap(get("put", ref), (existing) =>
              sameBytes(existing.object.records, records)
                ? Effect.succeed({ ...ref, size: existing.size })
                : fail(
                  "put",
                  `Archive segment ${key} already exists with different records (written by ${existing.object.writerId}); it was not overwritten`,
                  key
                )))
        }),
      list: (fromSeq) =>
        Effect.suspend(() => {
          const from = fromSeq ?? 0
          const problem = integerProblem("fromSeq", from, 0)
          if (problem !== undefined) return fail("list", `Archive.list: ${problem}`)
          return Effect.map(store.list(prefix), (objects) => {
            const refs: Array<SegmentRef> = []
            for (const { key, size } of objects) {
              const range = parseSegmentKey(prefix, key)
              if (range !== undefined && range.endSeq >= from) refs.push({ ...range, key, size })
            }
            return refs.sort((a, b) => a.startSeq - b.startSeq || a.endSeq - b.endSeq)
          })
        }),
      get: (ref) =>
        Effect.suspend(() => {
          const range = ref !== null && typeof ref === "object" ? parseSegmentKey(prefix, ref.key) : undefined
          if (range === undefined || range.startSeq !== ref.startSeq || range.endSeq !== ref.endSeq) {
            return fail("get", `Archive.get: ${JSON.stringify(ref?.key)} is not a segment key of this archive`, ref?.key)
          }
          return Effect.map(get("get", ref), ({ records }) => records)
        })
    }))
  })

/**
 * An `ObjectStore` in a `Map` (key → bytes). Pass your own map to inspect or damage objects in tests.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeObjectStoreMemory = (objects: Map<string, Uint8Array> = new Map()): ObjectStore => ({
  get: (key) => Effect.sync(() => {
    const bytes = objects.get(key)
    return bytes === undefined ? undefined : new Uint8Array(bytes)
  }),
  putIfAbsent: (key, bytes) =>
    Effect.sync(() => {
      if (objects.has(key)) return false
      objects.set(key, new Uint8Array(bytes))
      return true
    }),
  list: (prefix) =>
    Effect.sync(() =>
      Array.from(objects, ([key, bytes]) => ({ key, size: bytes.length })).filter(({ key }) => key.startsWith(prefix))
    )
})

/**
 * A fresh in-memory Archive per layer build.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options?: ArchiveOptions): Layer.Layer<Archive, ArchiveError> =>
  Layer.effect(Archive, Effect.suspend(() => make(makeObjectStoreMemory(), options)))
