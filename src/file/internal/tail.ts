/**
 * The read-only file Journal's view of a directory that another process writes: the segment set,
 * the checkpoint, the truncated streams' versions and the record index, built from what is on disk
 * and brought up to date by `refresh` — without ever writing a byte, taking the lock or repairing
 * anything.
 *
 * A refresh lists the directory, re-reads the checkpoint (and, after a truncation, the streams
 * file), forgets the segments the truncation removed, and scans only what is new: the bytes the
 * writer appended to the segments that may still grow, and segments created since. An append counts
 * once all of its records are intact; a partial one at the tail of the last segment with records is
 * not written yet, and is scanned again next time. Damage — a bad record followed by intact ones,
 * anything incomplete in a sealed segment — is an `Unrecoverable` naming file and offset, as on the
 * writer's open, and every later refresh fails with it.
 *
 * The order of the reads matches the writer's truncation (streams file, then checkpoint, then the
 * deletion of segments): a segment missing from the listing was deleted after the checkpoint that
 * truncated it was stored, so the checkpoint read after the listing accounts for it.
 * @internal
 */
import { Settled } from "../../internal/follow.ts"
import type { CheckpointFile } from "./checkpointFile.ts"
import { Unrecoverable } from "./errors.ts"
import { isNotFound } from "./fs.ts"
import type { RecordIndex } from "./recordIndex.ts"
import type { Segment, SegmentSet } from "./segments.ts"
import { type FrameCodec, HEADER_BYTES, parseSegmentName, segmentName } from "./segmentFormat.ts"
import { checkHeader, SegmentScanner } from "./segmentScan.ts"
import { StreamsLog } from "./streamsLog.ts"

/** How often a read retries after a segment it was about to read was deleted by a truncation. */
const VANISHED_RETRIES = 8

/** The first seqs of the segment files among `names`, ascending. */
const segmentSeqs = (names: ReadonlyArray<string>): Array<number> =>
  names.map(parseSegmentName).filter((s): s is number => s !== undefined).sort((a, b) => a - b)

/** A segment file about to be scanned: open, with its size, and the segment if it is a known one. */
interface Opened {
  readonly firstSeq: number
  readonly fd: number
  readonly size: number
  readonly known: Segment | undefined
}

/** The read-only view of one journal directory. @internal */
export class Tail {
  /** The highest seq of a complete append seen, or truncated. */
  visibleSeq = 0
  /** Notified when `visibleSeq` rose or the journal closed (the poll timer notifies it too). */
  readonly settled = new Settled()
  closed = false
  /** The last seq the writer truncated (from the streams file). */
  private truncatedSeq = 0
  private loaded = false
  private failure: unknown = undefined
  /** The segments that may still grow — the last one with records and any empty ones after it — and where their scans stopped. */
  private readonly growing = new Map<number, number>()
  private readonly scanner: SegmentScanner
  private readonly segments: SegmentSet
  private readonly state: CheckpointFile
  private readonly index: RecordIndex

  constructor(segments: SegmentSet, state: CheckpointFile, index: RecordIndex, codec: FrameCodec) {
    this.segments = segments
    this.state = state
    this.index = index
    this.scanner = new SegmentScanner(segments, state, index, codec)
  }

  /** A follower from this seq on lost nothing to truncation (as `Writer.removedBefore`). */
  get removedBefore(): number {
    return Math.min(this.state.truncatedBefore, this.truncatedSeq + 1)
  }

  /** True once a follow page from `seq` may hold something new: records up to it, a truncation past it, a failure or the close. */
  ready(seq: number): boolean {
    try {
      this.refresh()
    } catch {
      return true
    }
    return this.visibleSeq >= seq || this.removedBefore > seq || this.closed
  }

  /**
   * Refreshes, then runs `read`; again (refreshed) when a segment it opens is gone — a truncation
   * deleted it after the refresh, and the next refresh forgets its records.
   */
  catchUp<A>(read: () => A): A {
    for (let attempt = 1; ; attempt++) {
      try {
        this.refresh()
        return read()
      } catch (cause) {
        if (!isNotFound(cause) || attempt === VANISHED_RETRIES) throw cause
      }
    }
  }

  /** Ends following: followers wake and fail. */
  close(): void {
    this.closed = true
    this.settled.notify()
  }

  /** Takes in what the writer stored since the last refresh; throws on damage (and from then on). */
  refresh(): void {
    if (this.failure !== undefined) throw this.failure
    try {
      this.takeIn()
    } catch (cause) {
      // A segment or file deleted under the listing is retried by `catchUp`; anything else may have
      // left a scan half done.
      if (!isNotFound(cause)) this.failure = cause
      throw cause
    }
  }

  private takeIn(): void {
    const { io, directory } = this.segments
    // A listing is not atomic: one made while the writer creates segments may miss a segment made
    // during it and yet show a later one. A second listing holds every segment that existed when the
    // first ended (but for those a truncation deleted), so the segments up to the highest one the
    // first shows are all in it; later ones wait for the next refresh.
    const shown = segmentSeqs(io.readdirSync(directory))
    const names = io.readdirSync(directory)
    const truncatedBefore = this.state.truncatedBefore
    this.state.read(names.includes("checkpoint"))
    if (!this.loaded || this.state.truncatedBefore > truncatedBefore) {
      this.index.dropBefore(this.state.truncatedBefore)
      const below = this.segments.wholeBelow(this.state.truncatedBefore)
      for (const number of below) this.growing.delete(number)
      this.segments.forget(below)
      const index = this.index
      const log = StreamsLog.read(io, directory, names.includes("streams"), (namespace, id, version) =>
        index.keepTruncated(index.streamOrCreate(namespace, id), version))
      this.truncatedSeq = log.lastSeq
      this.loaded = true
    }
    const highest = shown.length === 0 ? 0 : shown[shown.length - 1]!
    const listed = segmentSeqs(names).filter((seq) => seq <= highest)
    this.forgetVanished(new Set(listed))
    this.scanNew(listed)
    const visible = Math.max(this.scanner.lastSeq, this.truncatedSeq)
    if (visible > this.visibleSeq) {
      this.visibleSeq = visible
      this.settled.notify()
    }
  }

  /**
   * Forgets the last known segments while they are missing from the listing and hold no live record:
   * one the writer's truncation deleted (it started a new segment after it), or an empty one its
   * recovery removed after a crash. One that holds live records was deleted without a truncation.
   */
  private forgetVanished(listed: ReadonlySet<number>): void {
    const index = this.index
    for (let segment = this.segments.last(); segment !== undefined && !listed.has(segment.firstSeq); segment = this.segments.last()) {
      // The last segment's records are the last ones in the index.
      if (index.first < index.end && index.segment(index.end - 1) === segment.number) {
        throw new Unrecoverable(`${segment.path} was removed, though it holds records that were not truncated`)
      }
      this.growing.delete(segment.number)
      this.segments.forget([segment.number])
    }
  }

  /** Scans the segments that may have grown and the new ones (in seq order), each from where its last scan stopped. */
  private scanNew(listed: ReadonlyArray<number>): void {
    const io = this.segments.io
    const last = this.segments.last()
    const cut = this.state.truncatedBefore
    const growing = [...this.growing.keys()].map((number) => this.segments.get(number))
    const fresh = listed.filter((seq, i) =>
      (last === undefined || seq > last.firstSeq) &&
      // Wholly below the truncation point (the writer is about to delete it): nothing to read there.
      !(listed[i + 1] !== undefined && listed[i + 1]! <= cut)
    )
    const opened: Array<Opened> = []
    try {
      for (const [firstSeq, known] of [...growing.map((s) => [s.firstSeq, s] as const), ...fresh.map((seq) => [seq, undefined] as const)]) {
        const fd = io.openSync(this.segments.file(segmentName(firstSeq)), "r")
        opened.push({ firstSeq, fd, size: io.fstatSync(fd).size, known })
      }
      // A new last segment shorter than its header is one being created (or whose creation a crash
      // cut short): not there yet.
      while (opened.length > growing.length && opened[opened.length - 1]!.size < HEADER_BYTES) io.closeSync(opened.pop()!.fd)
      // Segments holding no record do not seal the one before them (as in recovery).
      let lastWithRecords = -1
      opened.forEach((file, i) => {
        if (file.size > HEADER_BYTES) lastWithRecords = i
      })
      opened.forEach((file, i) => this.scanSegment(file, listed[listed.indexOf(file.firstSeq) + 1], i < lastWithRecords))
    } finally {
      for (const file of opened) io.closeSync(file.fd)
    }
  }

  /** Scans one segment from where its last scan stopped (a new one after its header), and notes where this one stopped. */
  private scanSegment(file: Opened, nextFirstSeq: number | undefined, sealed: boolean): void {
    const path = this.segments.file(segmentName(file.firstSeq))
    let segment = file.known
    let from = HEADER_BYTES
    if (segment === undefined) {
      checkHeader(this.segments, file.fd, path, file.firstSeq)
      segment = this.segments.add(file.firstSeq)
    } else {
      from = this.growing.get(segment.number)!
      if (file.size < from) {
        throw new Unrecoverable(
          `${path} is shorter (${file.size} bytes) than the records this reader has read (${from} bytes): the writer cut back ` +
            "appends after a failed flush; open the journal again"
        )
      }
    }
    const scanned = this.scanner.scan(file.fd, segment, from, this.scanner.lastSeq, nextFirstSeq, sealed)
    if (sealed) this.growing.delete(segment.number)
    else this.growing.set(segment.number, scanned.end)
  }
}
