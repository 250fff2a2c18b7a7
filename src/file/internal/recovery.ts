/**
 * Opening a file Journal: builds the segment set and the record index from what is on disk. Leftover
 * temp files and segments a crash left empty are removed; every frame's CRC is checked; an append
 * torn at the tail of the last segment is cut off (and logged); any other damage throws
 * `Unrecoverable` naming file and offset, with nothing changed on disk.
 * @internal
 */
import { fsyncDirectorySync, unlinkIfPresent } from "./fileIo.ts"
import type { CheckpointFile } from "./checkpointFile.ts"
import type { RecordIndex } from "./recordIndex.ts"
import type { SegmentSet } from "./segments.ts"
import { type FrameCodec, HEADER_BYTES, parseSegmentName, segmentName } from "./segmentFormat.ts"
import { checkHeader, type ScanEnd, SegmentScanner } from "./segmentScan.ts"
import { StreamsLog } from "./streamsLog.ts"

/** What recovery found: the highest seq and timestamp, the streams file, and what it repaired (to be logged). @internal */
export interface Recovered {
  readonly lastSeq: number
  readonly lastTimestamp: number
  readonly streamsLog: StreamsLog
  readonly warnings: ReadonlyArray<string>
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

/** One recovery: its scanner, what it has found and what it repaired. */
class Recovery {
  lastSeq = 0
  lastTimestamp = 0
  readonly warnings: Array<string> = []
  private readonly scanner: SegmentScanner
  private readonly segments: SegmentSet
  private readonly checkpoint: CheckpointFile
  private readonly index: RecordIndex

  constructor(segments: SegmentSet, checkpoint: CheckpointFile, index: RecordIndex, codec: FrameCodec) {
    this.segments = segments
    this.checkpoint = checkpoint
    this.index = index
    this.scanner = new SegmentScanner(segments, checkpoint, index, codec)
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
    this.lastSeq = Math.max(this.scanner.lastSeq, streamsLog.lastSeq)
    this.lastTimestamp = Math.max(this.scanner.lastTimestamp, streamsLog.lastTimestamp)

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
      checkHeader(this.segments, fd, file, firstSeq)
      const scanned = this.scanner.scan(fd, this.segments.add(firstSeq), HEADER_BYTES, previousSeq, nextFirstSeq, sealed)
      if (scanned.end === scanned.size) {
        // What a killed process wrote may still be only in the page cache: on the device before it counts as durable.
        if (this.segments.durability !== "os") io.fsyncSync(fd)
        return scanned.committed
      }
      io.ftruncateSync(fd, scanned.end)
      io.fsyncSync(fd)
      this.warnings.push(tornTail(file, scanned))
      return scanned.committed
    } finally {
      io.closeSync(fd)
    }
  }
}

/**
 * The warning for a cut tail. What is known: where the cut starts and what it held. A crash during
 * a write leaves exactly this, and such an append was never acknowledged; but the same bytes can be
 * damage to the last acknowledged append, which is then lost — the file cannot tell the two apart.
 */
const tornTail = (file: string, { size, position, end, committed, pending }: ScanEnd): string => {
  const found = pending !== undefined
    ? `the append of seqs ${pending.first}..${pending.last} is incomplete (${pending.intact} of its ${pending.last - pending.first + 1} ` +
      `records intact, ${position < size ? `then a bad record at byte offset ${position}` : "then the end of the file"})`
    : `the record at byte offset ${position} (after seq ${committed}) is bad and no intact record follows it`
  return `Cut ${size - end} bytes at byte offset ${end} of ${file}: ${found}. This is what a crash during a write ` +
    "leaves (such an append was never acknowledged); it can also be damage to the last acknowledged append, which is then lost"
}
