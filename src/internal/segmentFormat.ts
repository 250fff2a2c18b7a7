/**
 * The on-disk format of the file Journal's segments and state files.
 *
 * A segment is named by the lowest seq it may hold, zero-padded to 20 digits (`00000000000000000001.segment`)
 * and starts with a 24-byte header: the magic `ANNALSJL`, the format version (u32 LE), that first seq
 * (u64 LE) and a CRC-32 of those 20 bytes. Then come frames, one per record:
 *
 *     u32 LE body length | u32 LE CRC-32 of (the length bytes + body) | body
 *
 * The body is a msgpack array `[seq, namespace, id, version, type, timestamp, payload, metadata | null,
 * first, last]`, where `first` and `last` are the seqs of the first and last record of the append the
 * record belongs to: an append is written with one write, and recovery keeps it only when all of its
 * records are intact, so an append is all or nothing even when a crash tears it.
 *
 * State files (`checkpoint`, `streams`) are `ANNALSST`, a u32 LE CRC-32 of the body, then a msgpack body.
 * @internal
 */
import type { JournalRecord } from "../Journal.ts"
import { crc32 } from "./crc32.ts"
import { bytes, pack, unpack } from "./msgpack.ts"

/** The segment format version written and understood. @internal */
export const FORMAT_VERSION = 1

/** Bytes of a segment header. @internal */
export const HEADER_BYTES = 24

/** Bytes of a frame's length and checksum. @internal */
export const FRAME_OVERHEAD = 8

const SEGMENT_MAGIC = [0x41, 0x4e, 0x4e, 0x41, 0x4c, 0x53, 0x4a, 0x4c] // "ANNALSJL"
const STATE_MAGIC = [0x41, 0x4e, 0x4e, 0x41, 0x4c, 0x53, 0x53, 0x54] // "ANNALSST"
const SEGMENT_NAME = /^(\d{20})\.segment$/

/** The file name of the segment whose first seq is `seq`. @internal */
export const segmentName = (seq: number): string => `${String(seq).padStart(20, "0")}.segment`

/** The first seq a segment file name stands for, or `undefined` for any other name. @internal */
export const parseSegmentName = (name: string): number | undefined => {
  const match = SEGMENT_NAME.exec(name)
  return match === null ? undefined : Number(match[1])
}

const view = (data: Uint8Array) => new DataView(data.buffer, data.byteOffset, data.byteLength)

/** The header of a segment starting at `firstSeq`. @internal */
export const encodeHeader = (firstSeq: number): Uint8Array => {
  const header = new Uint8Array(HEADER_BYTES)
  header.set(SEGMENT_MAGIC, 0)
  const dv = view(header)
  dv.setUint32(8, FORMAT_VERSION, true)
  dv.setBigUint64(12, BigInt(firstSeq), true)
  dv.setUint32(20, crc32(header.subarray(0, 20)), true)
  return header
}

/** Checks a segment header against the seq its file name gives; a sentence naming the problem, or `undefined`. @internal */
export const headerProblem = (header: Uint8Array, firstSeq: number): string | undefined => {
  if (header.length < HEADER_BYTES) return `the header is cut short (${header.length} of ${HEADER_BYTES} bytes)`
  if (SEGMENT_MAGIC.some((b, i) => header[i] !== b)) return "it does not start with the segment magic ANNALSJL"
  const dv = view(header)
  if (dv.getUint32(20, true) !== crc32(header.subarray(0, 20))) return "the header checksum does not match"
  const version = dv.getUint32(8, true)
  if (version !== FORMAT_VERSION) return `it has format version ${version}; this annals reads version ${FORMAT_VERSION}`
  const seq = Number(dv.getBigUint64(12, true))
  if (seq !== firstSeq) return `its header says first seq ${seq}, its name ${firstSeq}`
  return undefined
}

/** One append's records, encoded as consecutive frames in one buffer. @internal */
export const encodeFrames = (records: ReadonlyArray<JournalRecord>): Uint8Array => {
  const first = records[0]!.seq
  const last = records[records.length - 1]!.seq
  const bodies = records.map((r) =>
    pack([r.seq, r.namespace, r.id, r.version, r.type, r.timestamp, r.payload, r.metadata ?? null, first, last])
  )
  let size = 0
  for (const body of bodies) size += FRAME_OVERHEAD + body.length
  const out = new Uint8Array(size)
  const dv = view(out)
  let at = 0
  for (const body of bodies) {
    dv.setUint32(at, body.length, true)
    out.set(body, at + FRAME_OVERHEAD)
    dv.setUint32(at + 4, crc32(body, crc32(out.subarray(at, at + 4))), true)
    at += FRAME_OVERHEAD + body.length
  }
  return out
}

/** A decoded frame: the record and the seqs of the first and last record of its append. @internal */
export interface Frame {
  readonly record: JournalRecord
  readonly first: number
  readonly last: number
  /** Bytes of the whole frame (length, checksum and body). */
  readonly size: number
}

const isName = (v: unknown): v is string => typeof v === "string" && v.length > 0
const isSeq = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0

/**
 * Decodes the frame at `offset` of `data`: `undefined` when the bytes up to `data.length` hold no
 * complete frame with a matching checksum and a well-formed record. @internal
 */
export const decodeFrame = (data: Uint8Array, offset: number): Frame | undefined => {
  if (offset + FRAME_OVERHEAD > data.length) return undefined
  const dv = view(data)
  const length = dv.getUint32(offset, true)
  const end = offset + FRAME_OVERHEAD + length
  if (length === 0 || end > data.length) return undefined
  const body = data.subarray(offset + FRAME_OVERHEAD, end)
  if (dv.getUint32(offset + 4, true) !== crc32(body, crc32(data.subarray(offset, offset + 4)))) return undefined
  let fields: unknown
  try {
    fields = unpack(body)
  } catch {
    return undefined
  }
  if (!Array.isArray(fields) || fields.length !== 10) return undefined
  const [seq, namespace, id, version, type, timestamp, payload, metadata, first, last] = fields
  if (
    !isSeq(seq) || !isName(namespace) || !isName(id) || !isSeq(version) || !isName(type) || !isSeq(timestamp) ||
    !(payload instanceof Uint8Array) || !isSeq(first) || !isSeq(last) || first > seq || seq > last ||
    (metadata !== null && (typeof metadata !== "object" || Array.isArray(metadata)))
  ) return undefined
  return {
    record: {
      seq,
      namespace,
      id,
      version,
      type,
      timestamp,
      // A copy, so that a record kept by the caller does not pin the whole read buffer.
      payload: bytes(payload).slice(),
      ...(metadata !== null ? { metadata: metadata as Record<string, string> } : {})
    },
    first,
    last,
    size: FRAME_OVERHEAD + length
  }
}

/** A state file holding `value`. @internal */
export const encodeState = (value: unknown): Uint8Array => {
  const body = pack(value)
  const out = new Uint8Array(12 + body.length)
  out.set(STATE_MAGIC, 0)
  out.set(body, 12)
  view(out).setUint32(8, crc32(body), true)
  return out
}

/** Decodes a state file; a sentence naming the problem when it is damaged. @internal */
export const decodeState = (data: Uint8Array): { readonly value: unknown } | { readonly problem: string } => {
  if (data.length < 12 || STATE_MAGIC.some((b, i) => data[i] !== b)) return { problem: "it does not start with ANNALSST" }
  const body = data.subarray(12)
  if (view(data).getUint32(8, true) !== crc32(body)) return { problem: "its checksum does not match" }
  try {
    return { value: unpack(body) }
  } catch (cause) {
    return { problem: `its body does not decode (${String(cause)})` }
  }
}
