/**
 * The file Journal's `streams` file: what it keeps about truncated history — the version of every
 * stream whose records were truncated, and the last seq and timestamp truncated — as an append-only
 * log, so that a truncation writes only the streams it touched.
 *
 * Format: a 12-byte header (`ANNALSSL`, format version u32 LE), then frames as in segments: u32 LE body
 * length, u32 LE CRC-32 of the length bytes and the body, the body. A body is lastSeq f64, lastTimestamp
 * f64, an entry count u32, and per entry: version f64, namespace and id byte lengths (u16 each), the
 * namespace and the id in UTF-8. Every value only grows, so reading keeps the highest of each: later
 * entries win.
 *
 * A truncation appends one frame with one write and fsyncs it before it deletes any segment. A crash
 * can tear only that last frame: reading ignores a bad frame at the tail, and the next truncation
 * rewrites the file. A bad frame followed by an intact one is damage, and fails the open. Once the file
 * holds `COMPACT_FACTOR` times as many entries as there are truncated streams, it is rewritten with one
 * entry per stream (temp file, fsync, rename, directory fsync), so appends cost their own entries plus
 * a bounded share of a rewrite.
 *
 * The state file written by earlier versions (`ANNALSST`: msgpack of lastSeq, lastTimestamp and every
 * version) is read as well; the first truncation replaces it by a log.
 * @internal
 */
import { frameCrc32 } from "../../internal/crc32.ts"
import { integerProblem, streamProblem } from "../../internal/validate.ts"
import { type FileIo, fsyncDirectorySync, readWholeFile, writeAll } from "./fileIo.ts"
import { decodeState, view } from "./segmentFormat.ts"
import { encodeUtf8Into } from "./utf8.ts"

const MAGIC = [0x41, 0x4e, 0x4e, 0x41, 0x4c, 0x53, 0x53, 0x4c] // "ANNALSSL"
const FORMAT_VERSION = 1
const HEADER_BYTES = 12
/** Length and checksum of a frame. */
const FRAME_OVERHEAD = 8
/** lastSeq, lastTimestamp, entry count. */
const BODY_FIXED = 20
/** Version and the two name lengths. */
const ENTRY_FIXED = 12
/** A rewrite writes frames of about this many bytes. */
const REWRITE_FRAME_BYTES = 1 << 20
/** A rewrite is due once the file holds more than this many times the entries there are streams… */
const COMPACT_FACTOR = 4
/** …counting at least this many streams (small logs are not rewritten over and over). */
const COMPACT_MIN_STREAMS = 1024

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

/** What the log stores, as the record index holds it: streams by number. @internal */
export interface TruncatedStreams {
  /** How many streams have truncated records. */
  readonly truncatedCount: number
  /** Every stream with truncated records. */
  truncatedStreams(): Iterable<number>
  /** The version of the stream's last truncated record. */
  truncatedVersion(stream: number): number
  namespace(stream: number): string
  id(stream: number): string
}

/** The end of the intact frame at `at`, or -1 if the bytes there hold none. */
const frameEnd = (data: Uint8Array, dv: DataView, at: number): number => {
  if (at + FRAME_OVERHEAD + BODY_FIXED > data.length) return -1
  const length = dv.getUint32(at, true)
  const end = at + FRAME_OVERHEAD + length
  return length >= BODY_FIXED && end <= data.length && dv.getUint32(at + 4, true) === frameCrc32(data, at, end) ? end : -1
}

/** Writes frames of entries into a buffer that grows as needed. */
class FrameWriter {
  data = new Uint8Array(4096)
  length = 0
  private frame = -1
  private count = 0

  /** Starts a frame carrying `lastSeq` and `lastTimestamp`. */
  begin(lastSeq: number, lastTimestamp: number): void {
    this.reserve(FRAME_OVERHEAD + BODY_FIXED)
    this.frame = this.length
    this.count = 0
    const dv = view(this.data)
    dv.setFloat64(this.frame + FRAME_OVERHEAD, lastSeq, true)
    dv.setFloat64(this.frame + FRAME_OVERHEAD + 8, lastTimestamp, true)
    this.length += FRAME_OVERHEAD + BODY_FIXED
  }

  entry(namespace: string, id: string, version: number): void {
    this.reserve(ENTRY_FIXED + 3 * (namespace.length + id.length))
    const at = this.length
    const namespaceBytes = encodeUtf8Into(namespace, this.data, at + ENTRY_FIXED)
    const idBytes = encodeUtf8Into(id, this.data, at + ENTRY_FIXED + namespaceBytes)
    const dv = view(this.data)
    dv.setFloat64(at, version, true)
    dv.setUint16(at + 8, namespaceBytes, true)
    dv.setUint16(at + 10, idBytes, true)
    this.length = at + ENTRY_FIXED + namespaceBytes + idBytes
    this.count++
  }

  /** Ends the frame begun last: its length, entry count and checksum. */
  end(): void {
    const dv = view(this.data)
    dv.setUint32(this.frame, this.length - this.frame - FRAME_OVERHEAD, true)
    dv.setUint32(this.frame + FRAME_OVERHEAD + 16, this.count, true)
    dv.setUint32(this.frame + 4, frameCrc32(this.data, this.frame, this.length), true)
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.data.length) return
    const next = new Uint8Array(Math.max(this.length + bytes, this.data.length * 2))
    next.set(this.data.subarray(0, this.length))
    this.data = next
  }
}

/** The `streams` file of one journal directory. @internal */
export class StreamsLog {
  /** The last seq truncated (0 if none). */
  lastSeq = 0
  /** The timestamp of the last record appended before the last truncation. */
  lastTimestamp = 0
  /** Bytes of the intact frames (0: there is no log to append to). */
  private size = 0
  /** Entries in those frames. */
  private entries = 0

  private readonly io: FileIo
  private readonly directory: string

  private constructor(io: FileIo, directory: string) {
    this.io = io
    this.directory = directory
  }

  private get path(): string {
    return `${this.directory}/streams`
  }

  /**
   * Reads the `streams` file of `directory` if there is one (`exists`), handing each stored version to
   * `keep`; throws an error naming the file (and offset) if it is damaged.
   */
  static read(
    io: FileIo,
    directory: string,
    exists: boolean,
    keep: (namespace: string, id: string, version: number) => void
  ): StreamsLog {
    const log = new StreamsLog(io, directory)
    if (!exists) return log
    const data = readWholeFile(io, log.path)
    if (MAGIC.every((b, i) => data[i] === b)) log.readLog(data, keep)
    else log.readStateFile(data, keep)
    return log
  }

  /**
   * Stores the versions of `touched` (from `streams`) and the current `lastSeq` and `lastTimestamp`
   * durably: one appended frame, or a rewrite of the whole file when one is due.
   */
  append(touched: ReadonlyArray<number>, streams: TruncatedStreams): void {
    const due = this.entries + touched.length > COMPACT_FACTOR * Math.max(streams.truncatedCount, COMPACT_MIN_STREAMS)
    if (this.size === 0 || due) return this.rewrite(streams)
    const writer = new FrameWriter()
    writer.begin(this.lastSeq, this.lastTimestamp)
    for (const s of touched) writer.entry(streams.namespace(s), streams.id(s), streams.truncatedVersion(s))
    writer.end()
    const fd = this.io.openSync(this.path, "r+")
    try {
      writeAll(this.io, fd, writer.data.subarray(0, writer.length), this.size)
      this.io.fsyncSync(fd)
    } finally {
      this.io.closeSync(fd)
    }
    this.size += writer.length
    this.entries += touched.length
  }

  /** Replaces the file, atomically and durably, by a log with one entry per stream of `streams`. */
  private rewrite(streams: TruncatedStreams): void {
    const io = this.io
    const temp = `${this.path}.tmp`
    const writer = new FrameWriter()
    writer.data.set(MAGIC, 0)
    view(writer.data).setUint32(8, FORMAT_VERSION, true)
    writer.length = HEADER_BYTES
    let written = 0
    let entries = 0
    const fd = io.openSync(temp, "w")
    try {
      writer.begin(this.lastSeq, this.lastTimestamp)
      for (const s of streams.truncatedStreams()) {
        writer.entry(streams.namespace(s), streams.id(s), streams.truncatedVersion(s))
        entries++
        if (writer.length >= REWRITE_FRAME_BYTES) {
          writer.end()
          writeAll(io, fd, writer.data.subarray(0, writer.length), written)
          written += writer.length
          writer.length = 0
          writer.begin(this.lastSeq, this.lastTimestamp)
        }
      }
      writer.end()
      writeAll(io, fd, writer.data.subarray(0, writer.length), written)
      written += writer.length
      io.fsyncSync(fd)
    } finally {
      io.closeSync(fd)
    }
    io.renameSync(temp, this.path)
    fsyncDirectorySync(io, this.directory)
    this.size = written
    this.entries = entries
  }

  /** Reads a log; a torn last frame is left for the next append to replace (by a rewrite). */
  private readLog(data: Uint8Array, keep: (namespace: string, id: string, version: number) => void): void {
    const dv = view(data)
    if (data.length < HEADER_BYTES) throw new Error(`${this.path} is damaged: it is shorter than its header`)
    const format = dv.getUint32(8, true)
    if (format !== FORMAT_VERSION) {
      throw new Error(`${this.path} has format version ${format}; this version of annals reads version ${FORMAT_VERSION}`)
    }
    let at = HEADER_BYTES
    for (let end = frameEnd(data, dv, at); end >= 0; at = end, end = frameEnd(data, dv, at)) {
      this.entries += this.readFrame(data, dv, at, end, keep)
    }
    if (at === data.length) {
      this.size = at
      return
    }
    for (let next = at + 1; next < data.length; next++) {
      if (frameEnd(data, dv, next) >= 0) {
        throw new Error(
          `${this.path} is damaged: bad entry at byte offset ${at}, followed by intact entries (the first at byte offset ${next})`
        )
      }
    }
    // The tail is a torn append: `size` stays 0, so that the next append rewrites the file.
  }

  /** Reads the frame `data[at, end)`; returns its entry count. */
  private readFrame(
    data: Uint8Array,
    dv: DataView,
    at: number,
    end: number,
    keep: (namespace: string, id: string, version: number) => void
  ): number {
    const malformed = () => new Error(`${this.path} holds a malformed entry in the frame at byte offset ${at}`)
    const body = at + FRAME_OVERHEAD
    this.keepBase(dv.getFloat64(body, true), dv.getFloat64(body + 8, true), malformed)
    const count = dv.getUint32(body + 16, true)
    let p = body + BODY_FIXED
    for (let i = 0; i < count; i++) {
      if (p + ENTRY_FIXED > end) throw malformed()
      const version = dv.getFloat64(p, true)
      const namespaceEnd = p + ENTRY_FIXED + dv.getUint16(p + 8, true)
      const idEnd = namespaceEnd + dv.getUint16(p + 10, true)
      if (idEnd > end) throw malformed()
      let namespace: string
      let id: string
      try {
        namespace = decoder.decode(data.subarray(p + ENTRY_FIXED, namespaceEnd))
        id = decoder.decode(data.subarray(namespaceEnd, idEnd))
      } catch {
        throw malformed()
      }
      if (streamProblem({ namespace, id }) ?? integerProblem("version", version, 1)) throw malformed()
      keep(namespace, id, version)
      p = idEnd
    }
    if (p !== end) throw malformed()
    return count
  }

  /** Reads the state file of earlier versions; the first append replaces it by a log. */
  private readStateFile(data: Uint8Array, keep: (namespace: string, id: string, version: number) => void): void {
    const decoded = decodeState(data)
    if ("problem" in decoded) throw new Error(`${this.path} is damaged: ${decoded.problem}`)
    const value = decoded.value as { lastSeq?: unknown; lastTimestamp?: unknown; versions?: unknown }
    const malformed = () => new Error(`${this.path} does not hold the truncated streams' versions`)
    if (!Array.isArray(value?.versions)) throw malformed()
    this.keepBase(value.lastSeq, value.lastTimestamp, malformed)
    for (const item of value.versions as Array<unknown>) {
      const [namespace, id, version] = Array.isArray(item) ? item : []
      if (streamProblem({ namespace, id }) ?? integerProblem("version", version, 0)) throw malformed()
      keep(namespace as string, id as string, version as number)
    }
  }

  private keepBase(lastSeq: unknown, lastTimestamp: unknown, malformed: () => Error): void {
    if (integerProblem("lastSeq", lastSeq, 0) ?? integerProblem("lastTimestamp", lastTimestamp, 0)) throw malformed()
    this.lastSeq = Math.max(this.lastSeq, lastSeq as number)
    this.lastTimestamp = Math.max(this.lastTimestamp, lastTimestamp as number)
  }
}
