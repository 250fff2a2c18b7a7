/**
 * Opening a file Journal: builds the segment set and the record index from what is on disk. Leftover
 * temp files and segments a crash left empty are removed; every frame's CRC is checked; an append
 * torn at the tail of the last segment is cut off (and logged); any other damage throws
 * `Unrecoverable` naming file and offset, with nothing changed on disk.
 * @internal
 */
import { Unrecoverable } from "./errors.ts"
import { fsyncDirectorySync, readFully, unlinkIfPresent } from "./fileIo.ts"
import type { CheckpointFile } from "./checkpointFile.ts"
import type { RecordIndex } from "./recordIndex.ts"
import type { SegmentSet } from "./segments.ts"
import {
  FRAME_OVERHEAD,
  type FrameCodec,
  type FrameHead,
  HEADER_BYTES,
  headerProblem,
  makeFrameHead,
  parseSegmentName,
  segmentName,
  view
} from "./segmentFormat.ts"
import { StreamsLog } from "./streamsLog.ts"

/** Bytes recovery reads at a time. */
const SCAN_CHUNK_BYTES = 4 << 20

/** What recovery found: the highest seq and timestamp, the streams file, and what it repaired (to be logged). @internal */
export interface Recovered {
  readonly lastSeq: number
  readonly lastTimestamp: number
  readonly streamsLog: StreamsLog
  readonly warnings: ReadonlyArray<string>
}

/** The records of the append a recovery scan is inside, kept until its last record is read. */
class RecoveredAppend {
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

/**
 * Recovers the journal in `segments.directory` into `segments`, `checkpoint` and `index` (all empty),
 * reads its streams file, and opens (or creates) the active segment. @internal
 */
export const recover = (segments: SegmentSet, checkpoint: CheckpointFile, index: RecordIndex, codec: FrameCodec): Recovered => {
  const recovery = new Recovery(segments, checkpoint, index, codec)
  const streamsLog = recovery.run()
  return { lastSeq: recovery.lastSeq, lastTimestamp: recovery.lastTimestamp, streamsLog, warnings: recovery.warnings }
}

/** One recovery: the scan's reusable buffers and what it has found so far. */
class Recovery {
  lastSeq = 0
  lastTimestamp = 0
  readonly warnings: Array<string> = []
  private chunk = new Uint8Array(0)
  private readonly head = makeFrameHead()
  private readonly group = new RecoveredAppend()
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

  run(): StreamsLog {
    const { io, directory } = this.segments
    const names = io.readdirSync(directory)
    let removedTemp = false
    for (const name of names) {
      // A `LOCK.<nonce>.tmp` may be a live process's that is trying for the lock and removes it itself
      // meanwhile (directoryLock.ts).
      if (name.endsWith(".tmp") && unlinkIfPresent(io, this.segments.file(name))) removedTemp = true
    }
    if (removedTemp) fsyncDirectorySync(io, directory)
    this.checkpoint.read(names.includes("checkpoint"))
    const index = this.index
    const streamsLog = StreamsLog.read(
      io,
      directory,
      names.includes("streams"),
      (namespace, id, version) => index.keepTruncated(index.streamOrCreate(namespace, id), version)
    )

    const firstSeqs = names.map(parseSegmentName).filter((s): s is number => s !== undefined).sort((a, b) => a - b)
    // A last segment shorter than its header is one whose creation a crash interrupted.
    const last = firstSeqs[firstSeqs.length - 1]
    if (last !== undefined) {
      const file = this.segments.file(segmentName(last))
      const size = this.segments.fileSize(file)
      if (size < HEADER_BYTES) {
        io.unlinkSync(file)
        fsyncDirectorySync(io, directory)
        this.warnings.push(`Removed ${file}: ${size} bytes, shorter than a segment header (its creation was interrupted)`)
        firstSeqs.pop()
      }
    }
    // Segments holding no record (a crash right after a rotation) do not seal the one before them:
    // the last segment with records is where a torn append may be.
    let lastWithRecords = -1
    firstSeqs.forEach((seq, i) => {
      if (this.segments.fileSize(this.segments.file(segmentName(seq))) > HEADER_BYTES) lastWithRecords = i
    })
    // Empty segments after it go: they may be named above seqs that the crash took back (lost with
    // the records they followed), and the next append must not land below its segment's name.
    const empty = firstSeqs.splice(lastWithRecords + 1)
    for (const seq of empty) io.unlinkSync(this.segments.file(segmentName(seq)))
    if (empty.length > 0) fsyncDirectorySync(io, directory)
    let previousSeq = 0
    for (let i = 0; i < firstSeqs.length; i++) {
      previousSeq = this.scanSegment(firstSeqs[i]!, firstSeqs[i + 1], i < lastWithRecords, previousSeq)
    }
    // The segments' names too, should an "os" writer have created them (scanSegment flushed their data).
    if (this.segments.durability !== "os" && firstSeqs.length > 0) fsyncDirectorySync(io, directory)
    this.lastSeq = Math.max(this.lastSeq, streamsLog.lastSeq)
    this.lastTimestamp = Math.max(this.lastTimestamp, streamsLog.lastTimestamp)

    // Segments wholly below the truncation point: a crash came between the checkpoint and the deletion
    // (the streams file already holds their streams' versions).
    const below = this.segments.wholeBelow(this.checkpoint.truncatedBefore)
    if (below.length > 0) this.segments.delete(below)
    // A last segment the recovery cut empty may be named above the seqs the crash took back; the
    // next append must not land below its segment's name.
    const lastSegment = this.segments.last()
    if (
      lastSegment !== undefined && lastSegment.firstSeq > this.lastSeq + 1 && this.segments.fileSize(lastSegment.path) <= HEADER_BYTES
    ) {
      this.segments.delete([lastSegment.number])
    }
    if (this.segments.last() === undefined) this.segments.create(this.lastSeq + 1)
    else this.segments.openLast()
    return streamsLog
  }

  /**
   * Reads one segment into the index; returns the last seq in it. A torn append at the tail of the
   * last segment is cut off; any other damage throws `Unrecoverable` naming file and offset.
   */
  private scanSegment(firstSeq: number, nextFirstSeq: number | undefined, sealed: boolean, previousSeq: number): number {
    const io = this.segments.io
    const file = this.segments.file(segmentName(firstSeq))
    const fd = io.openSync(file, sealed ? "r" : "r+")
    try {
      const size = io.fstatSync(fd).size
      // Read in chunks, so that opening a large journal needs little memory beyond the index.
      let chunk = this.chunk
      if (chunk.length < Math.min(size, SCAN_CHUNK_BYTES)) chunk = this.chunk = new Uint8Array(Math.min(size, SCAN_CHUNK_BYTES))
      let chunkStart = 0
      let chunkLength = readFully(io, fd, chunk, Math.min(size, chunk.length), 0)
      const problem = headerProblem(chunk.subarray(0, Math.min(chunkLength, HEADER_BYTES)), firstSeq)
      if (problem !== undefined) throw new Unrecoverable(`${file} is not a segment: ${problem}`)
      const segment = this.segments.add(firstSeq)

      const frame = this.head
      const group = this.group
      group.clear()
      let position = HEADER_BYTES
      let seq = previousSeq
      let committed = previousSeq
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
          for (let i = 0; i < group.length; i++) this.indexRecovered(i, segment.number)
          committed = seq
          group.clear()
        }
      }
      if (position === size && group.length === 0) {
        // What a killed process wrote may still be only in the page cache: on the device before it counts as durable.
        if (this.segments.durability !== "os") io.fsyncSync(fd)
        return seq
      }

      const cut = group.length > 0 ? group.offsets[0]! : position
      if (sealed) {
        throw new Unrecoverable(
          position < size
            ? `bad record at byte offset ${position} of ${file} (a sealed segment)`
            : `the append starting at byte offset ${cut} of ${file} (a sealed segment) is incomplete`
        )
      }
      if (position < size) {
        const tail = new Uint8Array(size - position)
        readFully(io, fd, tail, tail.length, position)
        const valid = this.validAfter(tail, group.length > 0 ? group.first : undefined, committed, frame)
        if (valid !== undefined) {
          throw new Unrecoverable(
            `bad record at byte offset ${position} of ${file}, followed by intact records (the first at byte offset ${position + valid}); ` +
              "this is damage, not a torn write, and nothing was changed"
          )
        }
      }
      io.ftruncateSync(fd, cut)
      io.fsyncSync(fd)
      this.warnings.push(tornTail(file, size, cut, position, group, committed))
      return committed
    } finally {
      io.closeSync(fd)
    }
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

  /** Indexes record `i` of the recovered append. */
  private indexRecovered(i: number, segment: number): void {
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

/**
 * The warning for a cut tail. What is known: where the cut starts and what it held. A crash during
 * a write leaves exactly this, and such an append was never acknowledged; but the same bytes can be
 * damage to the last acknowledged append, which is then lost — the file cannot tell the two apart.
 */
const tornTail = (
  file: string,
  size: number,
  cut: number,
  position: number,
  group: RecoveredAppend,
  committed: number
): string => {
  const found = group.length > 0
    ? `the append of seqs ${group.first}..${group.last} is incomplete (${group.length} of its ${group.last - group.first + 1} ` +
      `records intact, ${position < size ? `then a bad record at byte offset ${position}` : "then the end of the file"})`
    : `the record at byte offset ${position} (after seq ${committed}) is bad and no intact record follows it`
  return `Cut ${size - cut} bytes at byte offset ${cut} of ${file}: ${found}. This is what a crash during a write ` +
    "leaves (such an append was never acknowledged); it can also be damage to the last acknowledged append, which is then lost"
}
