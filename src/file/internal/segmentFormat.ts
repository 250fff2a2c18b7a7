/**
 * The on-disk format of the file Journal's segments and state files.
 *
 * A segment is named by the lowest seq it may hold, zero-padded to 20 digits (`00000000000000000001.segment`)
 * and starts with a 24-byte header: the magic `ANNALSJL`, the format version (u32 LE), that first seq
 * (u64 LE) and a CRC-32 of those 20 bytes. Then come frames, one per record:
 *
 *     u32 LE body length | u32 LE CRC-32 of (the length bytes + body) | body
 *
 * The body holds seq, version, timestamp, and `first` and `last` — the seqs of the first and last
 * record of the append the record belongs to — as f64 LE; the byte lengths of namespace, id, type and
 * metadata; then namespace, id and type in UTF-8, the metadata as a msgpack map of strings (if any;
 * see `metadataFormat.ts`) and the payload bytes (the event, which the Codec encoded as msgpack). The
 * f64 fields hold every safe integer exactly, and the journal never assigns or accepts anything
 * beyond `Number.MAX_SAFE_INTEGER`, so whatever it accepts reads back the same. An append is written with one write,
 * and recovery keeps it only when all of its records are intact, so an append is all or nothing even
 * when a crash tears it.
 *
 * State files (`checkpoint`, `streams`) are `ANNALSST`, a u32 LE CRC-32 of the body, then a msgpack body.
 *
 * Encoding and decoding frames reuse buffers and a name cache; they belong to one `FrameCodec` per
 * open journal, never to the module, and what it keeps between calls is bounded.
 * @internal
 */
import type { JournalRecord, StreamRef } from "../../Journal.ts"
import { crc32, frameCrc32 } from "../../internal/crc32.ts"
import { pack, unpack } from "../../internal/msgpack.ts"
import { decodeMetadata, encodeMetadataInto, metadataLength } from "./metadataFormat.ts"
import { encodeUtf8Into, NameDecoder, utf8Length } from "./utf8.ts"

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


/** A DataView of all of `data`, for the decoders (made once per buffer by their callers). @internal */
export const view = (data: Uint8Array): DataView => new DataView(data.buffer, data.byteOffset, data.byteLength)

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

/**
 * Bytes of a record body before its variable part: seq, version, timestamp, first, last (f64 LE), then
 * the UTF-8 lengths of namespace and id (u16 LE; names are at most 256 characters), of type and of the
 * metadata (u32 LE, 0 when there is none).
 */
const BODY_FIXED = 52

/**
 * What recovery needs of a frame, read without decoding its type, metadata and payload: the fields,
 * the stream, the seqs of the first and last record of its append, and where its parts end. One
 * object is filled in again for every frame (`readFrameHead`), so a scan allocates nothing per frame. @internal
 */
export interface FrameHead {
  seq: number
  version: number
  timestamp: number
  first: number
  last: number
  namespace: string
  id: string
  /** Bytes of the whole frame (length, checksum and body). */
  size: number
  idEnd: number
  typeEnd: number
  metadataEnd: number
  end: number
}

/** A frame head to fill in with `readFrameHead`. @internal */
export const makeFrameHead = (): FrameHead => ({
  seq: 0,
  version: 0,
  timestamp: 0,
  first: 0,
  last: 0,
  namespace: "",
  id: "",
  size: 0,
  idEnd: 0,
  typeEnd: 0,
  metadataEnd: 0,
  end: 0
})

const isSeq = (v: number): boolean => Number.isSafeInteger(v) && v >= 0

/** A record as `decodeFrame` builds it, before it is handed out read-only. */
type MutableRecord = { -readonly [K in keyof JournalRecord]: JournalRecord[K] }

/** Bytes of the encode buffer a codec starts with. */
const SCRATCH_INITIAL_BYTES = 64 * 1024
/** Most bytes of encode buffer a codec keeps between appends; a larger append gets a buffer of its own. */
const SCRATCH_MAX_BYTES = 1024 * 1024

/**
 * Encodes and decodes one journal's frames. It owns what they reuse — the encode buffer (at most
 * 1 MiB kept) and the name cache (4,096 short names) — so that journals share nothing and a closed
 * journal's memory goes with it. One per open journal. @internal
 */
export class FrameCodec {
  private scratch = new Uint8Array(SCRATCH_INITIAL_BYTES)
  private scratchView = view(this.scratch)
  /** Per record of the append being encoded: the UTF-8 lengths of namespace, id, type, metadata, then its metadata strings'. */
  private readonly lengths: Array<number> = []
  /** Decodes namespaces, ids and types; they repeat from record to record. */
  private readonly names = new NameDecoder()
  private readonly decoded = makeFrameHead()

  /**
   * One append's records, encoded as consecutive frames. The result may be a view of a buffer the
   * next call reuses: write it out before encoding again.
   */
  encodeFrames(records: ReadonlyArray<JournalRecord>): Uint8Array {
    const first = records[0]!.seq
    const last = records[records.length - 1]!.seq
    const lengths = this.lengths
    lengths.length = 0
    let size = 0
    for (const r of records) {
      const at = lengths.length
      lengths.push(utf8Length(r.namespace), utf8Length(r.id), utf8Length(r.type), 0)
      if (r.metadata !== undefined) lengths[at + 3] = metadataLength(r.metadata, lengths)
      size += FRAME_OVERHEAD + BODY_FIXED + lengths[at]! + lengths[at + 1]! + lengths[at + 2]! + lengths[at + 3]! + r.payload.length
    }
    let out = this.scratch
    let dv = this.scratchView
    if (size > SCRATCH_MAX_BYTES) {
      out = new Uint8Array(size)
      dv = view(out)
    } else if (size > out.length) {
      out = this.scratch = new Uint8Array(Math.min(SCRATCH_MAX_BYTES, Math.max(size, out.length * 2)))
      dv = this.scratchView = view(out)
    }
    let at = 0
    let l = 0
    for (const record of records) {
      const namespaceLength = lengths[l]!
      const idLength = lengths[l + 1]!
      const typeLength = lengths[l + 2]!
      const metadataBytes = lengths[l + 3]!
      l += 4
      const body = BODY_FIXED + namespaceLength + idLength + typeLength + metadataBytes + record.payload.length
      const b = at + FRAME_OVERHEAD
      dv.setUint32(at, body, true)
      dv.setFloat64(b, record.seq, true)
      dv.setFloat64(b + 8, record.version, true)
      dv.setFloat64(b + 16, record.timestamp, true)
      dv.setFloat64(b + 24, first, true)
      dv.setFloat64(b + 32, last, true)
      dv.setUint16(b + 40, namespaceLength, true)
      dv.setUint16(b + 42, idLength, true)
      dv.setUint32(b + 44, typeLength, true)
      dv.setUint32(b + 48, metadataBytes, true)
      let p = b + BODY_FIXED
      p += encodeUtf8Into(record.namespace, out, p)
      p += encodeUtf8Into(record.id, out, p)
      p += encodeUtf8Into(record.type, out, p)
      if (record.metadata !== undefined) {
        p += encodeMetadataInto(record.metadata, lengths, l, out, dv, p)
        l += 2 * Object.keys(record.metadata).length
      }
      out.set(record.payload, p)
      dv.setUint32(at + 4, frameCrc32(out, at, b + body), true)
      at = b + body
    }
    return out.subarray(0, size)
  }

  /**
   * Checks the frame at `offset` of `data` (`dv` is `view(data)`) and reads its head into `head`:
   * `false` (and `head` left in an unspecified state) when the bytes up to `limit` hold no complete
   * frame with a matching checksum and well-formed fields. A caller that knows the frame's stream
   * (a read of one stream, which checks the seq against its index) passes it as `stream`: its names
   * are then not decoded again.
   */
  readFrameHead(data: Uint8Array, dv: DataView, offset: number, limit: number, head: FrameHead, stream?: StreamRef): boolean {
    // Positions as integers (`>>> 0`: a frame's length is a uint32). The record index keeps offsets in
    // a Float64Array; once its doubles reached here, JavaScriptCore compiled this for doubles (DataView
    // and subarray calls off the fast path), and every later read of the process took ~3× as long.
    offset >>>= 0
    limit >>>= 0
    if (offset + FRAME_OVERHEAD > limit) return false
    const length = dv.getUint32(offset, true)
    const b = offset + FRAME_OVERHEAD
    const end = b + length
    if (length < BODY_FIXED || end > limit) return false
    if (dv.getUint32(offset + 4, true) !== frameCrc32(data, offset, end)) return false
    const seq = dv.getFloat64(b, true)
    const version = dv.getFloat64(b + 8, true)
    const timestamp = dv.getFloat64(b + 16, true)
    const first = dv.getFloat64(b + 24, true)
    const last = dv.getFloat64(b + 32, true)
    const namespaceEnd = b + BODY_FIXED + dv.getUint16(b + 40, true)
    const idEnd = namespaceEnd + dv.getUint16(b + 42, true)
    const typeEnd = idEnd + dv.getUint32(b + 44, true)
    const metadataEnd = typeEnd + dv.getUint32(b + 48, true)
    if (
      !isSeq(seq) || !isSeq(version) || !isSeq(timestamp) || !isSeq(first) || !isSeq(last) || first > seq || seq > last ||
      metadataEnd > end || namespaceEnd === b + BODY_FIXED || idEnd === namespaceEnd || typeEnd === idEnd
    ) return false
    if (stream !== undefined) {
      head.namespace = stream.namespace
      head.id = stream.id
    } else {
      try {
        head.namespace = this.names.decode(data, b + BODY_FIXED, namespaceEnd)
        head.id = this.names.decode(data, namespaceEnd, idEnd)
      } catch {
        return false
      }
    }
    head.seq = seq
    head.version = version
    head.timestamp = timestamp
    head.first = first
    head.last = last
    head.size = FRAME_OVERHEAD + length
    head.idEnd = idEnd
    head.typeEnd = typeEnd
    head.metadataEnd = metadataEnd
    head.end = end
    return true
  }

  /**
   * Decodes the whole frame at `offset` of `data` (`dv` is `view(data)`) into its record, or
   * `undefined` as `readFrameHead` (or when its type or metadata is malformed); `stream` as there.
   * The payload is a view of `data`: a reader gives each read a buffer of its own.
   */
  decodeFrame(data: Uint8Array, dv: DataView, offset: number, limit: number, stream?: StreamRef): JournalRecord | undefined {
    const head = this.decoded
    if (!this.readFrameHead(data, dv, offset, limit, head, stream)) return undefined
    let type: string
    try {
      type = this.names.decode(data, head.idEnd, head.typeEnd)
    } catch {
      return undefined
    }
    const metadata = head.metadataEnd > head.typeEnd ? decodeMetadata(data, dv, head.typeEnd, head.metadataEnd) : undefined
    if (metadata === undefined && head.metadataEnd > head.typeEnd) return undefined
    const record: MutableRecord = {
      seq: head.seq,
      namespace: head.namespace,
      id: head.id,
      version: head.version,
      type,
      timestamp: head.timestamp,
      payload: data.subarray(head.metadataEnd, head.end)
    }
    if (metadata !== undefined) record.metadata = metadata
    return record
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
