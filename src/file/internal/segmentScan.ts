/**
 * The scan of a segment's frames into the record index, shared by recovery (the writer's open) and
 * the read-only journal (which scans what the writer adds, a part at a time). It checks every
 * frame's CRC, keeps an append only when all of its records are intact, and tells a torn tail (an
 * append still being written, or cut by a crash) from damage: a bad record followed by intact ones,
 * or anything incomplete in a sealed segment, throws `Unrecoverable` naming file and offset. It never
 * changes the file: what to do about a torn tail is the caller's choice.
 * @internal
 */
import { Unrecoverable } from "./errors.ts"
import { readFully } from "./fileIo.ts"
import type { CheckpointFile } from "./checkpointFile.ts"
import type { RecordIndex } from "./recordIndex.ts"
import type { Segment, SegmentSet } from "./segments.ts"
import { FRAME_OVERHEAD, type FrameCodec, type FrameHead, HEADER_BYTES, headerProblem, makeFrameHead, view } from "./segmentFormat.ts"

/** Bytes a scan reads at a time. */
const SCAN_CHUNK_BYTES = 4 << 20

/** The records of the append a scan is inside, kept until its last record is read. */
class PendingAppend {
  /** Seqs of the append's first and last record. */
  first = 0
  last = 0
  length = 0
  readonly namespaces: Array<string> = []
  readonly ids: Array<string> = []
  readonly seqs: Array<number> = []
  readonly versions: Array<number> = []
  readonly timestamps: Array<number> = []
  readonly offsets: Array<number> = []
  readonly sizes: Array<number> = []

  add(frame: FrameHead, offset: number): void {
    const i = this.length++
    if (i === 0) {
      this.first = frame.first
      this.last = frame.last
    }
    this.namespaces[i] = frame.namespace
    this.ids[i] = frame.id
    this.seqs[i] = frame.seq
    this.versions[i] = frame.version
    this.timestamps[i] = frame.timestamp
    this.offsets[i] = offset
    this.sizes[i] = frame.size
  }

  clear(): void {
    this.length = 0
  }
}

/** Where the scan of a segment ended. @internal */
export interface ScanEnd {
  /** The file's size when scanned. */
  readonly size: number
  /** Where the scan stopped: `size` when every byte belonged to a complete append. */
  readonly position: number
  /** The end of the last complete append: where a torn tail starts (`size` when there is none). */
  readonly end: number
  /** The seq of the last record of that append (the scan's `previousSeq` if there was none). */
  readonly committed: number
  /** The incomplete append the tail starts with, if its first records are intact. */
  readonly pending: { readonly first: number; readonly last: number; readonly intact: number } | undefined
}

/** Checks the header of segment file `file` (open as `fd`) against the first seq its name gives; throws if bad. @internal */
export const checkHeader = (segments: SegmentSet, fd: number, file: string, firstSeq: number): void => {
  const header = new Uint8Array(HEADER_BYTES)
  const problem = headerProblem(header.subarray(0, readFully(segments.io, fd, header, HEADER_BYTES, 0)), firstSeq)
  if (problem !== undefined) throw new Unrecoverable(`${file} is not a segment: ${problem}`)
}

/**
 * Scans segments into one index: its reusable buffers, and the highest seq and timestamp it indexed. @internal
 */
export class SegmentScanner {
  lastSeq = 0
  lastTimestamp = 0
  private chunk = new Uint8Array(0)
  private readonly head = makeFrameHead()
  private readonly group = new PendingAppend()
  /** The stream of the record indexed last (-1 before the first), and its name. */
  private stream = -1
  private namespace = ""
  private id = ""
  private readonly segments: SegmentSet
  private readonly checkpoint: CheckpointFile
  private readonly index: RecordIndex
  private readonly codec: FrameCodec

  constructor(segments: SegmentSet, checkpoint: CheckpointFile, index: RecordIndex, codec: FrameCodec) {
    this.segments = segments
    this.checkpoint = checkpoint
    this.index = index
    this.codec = codec
  }

  /**
   * Indexes the complete appends of `segment` (open as `fd`, its header checked) from byte `from` on,
   * after seq `previousSeq`; records below the checkpoint's truncation point count for their
   * stream's version only. `nextFirstSeq` is the first seq of the segment after it. The tail after
   * the last complete append is returned (`ScanEnd`) when it may be torn — the segment is not
   * `sealed` and no intact record of another append follows a bad one; otherwise it throws
   * `Unrecoverable` naming file and offset.
   */
  scan(fd: number, segment: Segment, from: number, previousSeq: number, nextFirstSeq: number | undefined, sealed: boolean): ScanEnd {
    const io = this.segments.io
    const file = segment.path
    const firstSeq = segment.firstSeq
    const size = io.fstatSync(fd).size
    // Read in chunks, so that scanning a large segment needs little memory beyond the index.
    let chunk = this.chunk
    if (chunk.length < Math.min(size - from, SCAN_CHUNK_BYTES)) chunk = this.chunk = new Uint8Array(Math.min(size - from, SCAN_CHUNK_BYTES))
    let chunkStart = from
    let chunkLength = readFully(io, fd, chunk, Math.min(size - from, chunk.length), from)
    const frame = this.head
    const group = this.group
    group.clear()
    let position = from
    let seq = previousSeq
    let committed = previousSeq
    let end = from
    let dv = view(chunk)
    while (position < size) {
      // Load the next chunk when the frame at `position` does not lie wholly in this one.
      const at = position - chunkStart
      const needed = at + FRAME_OVERHEAD <= chunkLength ? FRAME_OVERHEAD + dv.getUint32(at, true) : FRAME_OVERHEAD
      if (at + needed > chunkLength && chunkStart + chunkLength < size) {
        const length = Math.min(size - position, Math.max(SCAN_CHUNK_BYTES, needed))
        if (length > chunk.length) {
          chunk = this.chunk = new Uint8Array(length)
          dv = view(chunk)
        }
        chunkStart = position
        chunkLength = readFully(io, fd, chunk, length, position)
        continue
      }
      if (!this.codec.readFrameHead(chunk, dv, at, chunkLength, frame)) break
      const fits = frame.seq > seq && frame.seq >= firstSeq && (nextFirstSeq === undefined || frame.seq < nextFirstSeq) &&
        (group.length === 0 ? frame.first === frame.seq : frame.first === group.first && frame.last === group.last)
      if (!fits) break
      group.add(frame, position)
      seq = frame.seq
      position += frame.size
      if (frame.seq === frame.last) {
        for (let i = 0; i < group.length; i++) this.indexScanned(i, segment.number)
        committed = seq
        end = position
        group.clear()
      }
    }
    const pending = group.length > 0 ? { first: group.first, last: group.last, intact: group.length } : undefined
    if (position === size && pending === undefined) return { size, position, end, committed, pending }
    if (sealed) {
      throw new Unrecoverable(
        position < size
          ? `bad record at byte offset ${position} of ${file} (a sealed segment)`
          : `the append starting at byte offset ${end} of ${file} (a sealed segment) is incomplete`
      )
    }
    if (position < size) {
      const tail = new Uint8Array(size - position)
      readFully(io, fd, tail, tail.length, position)
      const valid = this.validAfter(tail, pending?.first, committed, frame)
      if (valid !== undefined) {
        throw new Unrecoverable(
          `bad record at byte offset ${position} of ${file}, followed by intact records (the first at byte offset ${position + valid}); ` +
            "this is damage, not a torn write, and nothing was changed"
        )
      }
    }
    return { size, position, end, committed, pending }
  }

  /**
   * After a bad frame at the start of `tail` (the rest of the last segment): the offset in `tail` of the
   * first intact frame that is not part of the torn append in progress (`groupFirst`, or one starting
   * after seq `committed`), or `undefined` when everything after the bad frame belongs to that one append.
   */
  private validAfter(tail: Uint8Array, groupFirst: number | undefined, committed: number, frame: FrameHead): number | undefined {
    let first = groupFirst
    let position = 1
    const dv = view(tail)
    while (position < tail.length) {
      if (!this.codec.readFrameHead(tail, dv, position, tail.length, frame)) {
        position++
        continue
      }
      if (first === undefined && frame.first > committed && frame.first < frame.seq) first = frame.first
      if (frame.first !== first) return position
      position += frame.size
    }
    return undefined
  }

  /** Indexes record `i` of the complete append just scanned. */
  private indexScanned(i: number, segment: number): void {
    const group = this.group
    const namespace = group.namespaces[i]!
    const id = group.ids[i]!
    const seq = group.seqs[i]!
    const version = group.versions[i]!
    this.lastSeq = seq
    this.lastTimestamp = Math.max(this.lastTimestamp, group.timestamps[i]!)
    // Appends of one stream mostly come in runs: skip the key lookup while the stream stays the same.
    if (this.stream < 0 || this.namespace !== namespace || this.id !== id) {
      this.stream = this.index.streamOrCreate(namespace, id)
      this.namespace = namespace
      this.id = id
    }
    // Truncated but still on disk (its segment also holds later records): only its version counts.
    if (seq < this.checkpoint.truncatedBefore) this.index.keepTruncated(this.stream, version)
    else this.index.add(this.stream, version, seq, segment, group.offsets[i]!, group.sizes[i]!)
  }
}
