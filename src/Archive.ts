/**
 * The Archive: cold storage for runs of journal records ("segments"), so that the journal can be
 * truncated without losing history, restored on a fresh machine, and read for time travel.
 *
 * A segment covers the seq range `startSeq..endSeq` and holds every journal record in it (seq gaps
 * are legal, so a segment may hold fewer than `endSeq − startSeq + 1` records). It is stored as one
 * object named `{prefix}{startSeq:020}-{endSeq:020}.msgpack` (`.msgpack.gz` when compressed), carrying
 * a format tag and version, the writer's id, its compression and a CRC-32 over its stored records. Putting an identical segment again is a no-op;
 * a different object under an existing key is an error, so a second writer never overwrites silently.
 *
 * The format lives here once; backends only store bytes under keys (`ObjectStore`): memory (this
 * module), a local directory (`annals/file`) and S3 (`annals/s3`).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SecureRandom from "effect/crypto/SecureRandom"
import type { JournalRecord } from "./Journal.ts"
import { type Compression, COMPRESSIONS, compressionOfSuffix, keySuffix } from "./internal/archiveCompression.ts"
import * as SegmentObject from "./internal/archiveObject.ts"
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
  /**
   * How new objects are compressed: `"none"` (default) or `"gzip"`, which Bun, Deno and Node all
   * read. Objects of either kind are read whatever this says, so it can change at any time.
   */
  readonly compression?: Compression | undefined
}

/**
 * The format tag stored in every segment object.
 *
 * @since 0.1.0
 * @category format
 */
export const FORMAT: string = SegmentObject.FORMAT

/**
 * The version of the segment object format this module writes and reads.
 *
 * @since 0.1.0
 * @category format
 */
export const FORMAT_VERSION: number = SegmentObject.FORMAT_VERSION

const KEY_PATTERN = /^(\d{20})-(\d{20})\.msgpack(\.[a-z0-9]+)?$/

/**
 * The key of the object holding `startSeq..endSeq`: `{prefix}{startSeq:020}-{endSeq:020}.msgpack`,
 * plus `.gz` when it is gzip-compressed.
 *
 * @since 0.1.0
 * @category format
 */
export const segmentKey = (prefix: string, startSeq: number, endSeq: number, compression: Compression = "none"): string =>
  `${prefix}${String(startSeq).padStart(20, "0")}-${String(endSeq).padStart(20, "0")}.msgpack${keySuffix(compression)}`

/**
 * Parses a key made by `segmentKey` with the same prefix; `undefined` for any other key.
 *
 * @since 0.1.0
 * @category format
 */
export const parseSegmentKey = (
  prefix: string,
  key: string
): { readonly startSeq: number; readonly endSeq: number; readonly compression: Compression } | undefined => {
  if (!key.startsWith(prefix)) return undefined
  const match = KEY_PATTERN.exec(key.slice(prefix.length))
  if (match === null) return undefined
  const startSeq = Number(match[1])
  const endSeq = Number(match[2])
  const compression = compressionOfSuffix(match[3] ?? "")
  return Number.isSafeInteger(startSeq) && Number.isSafeInteger(endSeq) && compression !== undefined
    ? { startSeq, endSeq, compression }
    : undefined
}

const prefixProblem = (prefix: unknown): string | undefined =>
  typeof prefix !== "string"
    ? "prefix must be a string"
    : prefix.startsWith("/") || prefix.split("/").some((part) => part === "." || part === "..") ||
        prefix.includes("\u0000")
    ? `prefix ${JSON.stringify(prefix)} must be relative, without "." or ".." segments or NUL`
    : undefined

const fail = (method: string, message: string, key?: string, cause?: unknown) =>
  Effect.fail(
    new ArchiveError({
      method,
      message,
      ...(key !== undefined ? { key } : {}),
      ...(cause !== undefined ? { cause } : {})
    })
  )

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
    const compression = options?.compression ?? "none"
    if (!COMPRESSIONS.includes(compression)) {
      return fail("make", `Archive option compression ${JSON.stringify(compression)} is not one of ${COMPRESSIONS.join(", ")}`)
    }

    const get = (method: string, ref: SegmentRef, keyCompression: Compression) =>
      Effect.flatMap(store.get(ref.key), (bytes) =>
        bytes === undefined
          ? fail(method, `Archive segment ${ref.key} (seqs ${ref.startSeq}..${ref.endSeq}) does not exist`, ref.key)
          : SegmentObject.decodeObject(bytes, ref.startSeq, ref.endSeq, keyCompression).pipe(
            Effect.map((decoded) => ({ ...decoded, size: bytes.length })),
            Effect.catch((cause) => fail(method, `Archive segment ${ref.key} is damaged: ${cause.message}`, ref.key, cause))
          ))

    return Effect.succeed(Archive.of({
      put: (segment) =>
        Effect.suspend(() => {
          const problem = SegmentObject.segmentProblem(segment)
          if (problem !== undefined) {
            return fail("put", `Cannot archive segment ${segment?.startSeq}..${segment?.endSeq}: ${problem}`)
          }
          const key = segmentKey(prefix, segment.startSeq, segment.endSeq, compression)
          return SegmentObject.encodeObject(segment, writerId, compression).pipe(
            Effect.catch((cause) => fail("put", `Cannot archive segment ${key}: ${cause.message}`, key, cause)),
            Effect.flatMap(({ bytes, plain }) => {
              const ref: SegmentRef = { startSeq: segment.startSeq, endSeq: segment.endSeq, key, size: bytes.length }
              return Effect.flatMap(store.putIfAbsent(key, bytes), (created) =>
                created ? Effect.succeed(ref) : Effect.flatMap(get("put", ref, compression), (existing) =>
                  SegmentObject.sameBytes(existing.plain, plain)
                    ? Effect.succeed({ ...ref, size: existing.size })
                    : fail(
                      "put",
                      `Archive segment ${key} already exists with different records (written by ${existing.object.writerId}; ` +
                        `this writer is ${writerId}); it was not overwritten`,
                      key
                    )))
            })
          )
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
              if (range !== undefined && range.endSeq >= from) refs.push({ startSeq: range.startSeq, endSeq: range.endSeq, key, size })
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
          return Effect.map(get("get", ref, range.compression), ({ records }) => records)
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
