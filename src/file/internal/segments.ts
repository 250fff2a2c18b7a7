/**
 * The file Journal's segment files: which exist (in seq order), the active one kept open for
 * writing with its size and flushed size, and the operations that change the set — creation (temp
 * file, fsync, rename, directory fsync), sealing on rotation, and deletion after truncation.
 * @internal
 */
import { type FileIo, fsyncDirectorySync, writeAll } from "./fileIo.ts"
import { encodeHeader, HEADER_BYTES, segmentName } from "./segmentFormat.ts"

/** One segment file. @internal */
export interface Segment {
  readonly number: number
  readonly firstSeq: number
  readonly path: string
}

/** The durability modes; only `"os"` skips fsyncs. @internal */
export type Durability = "always" | "interval" | "os"

/** The journal's segments. @internal */
export class SegmentSet {
  readonly directory: string
  readonly io: FileIo
  readonly durability: Durability
  private readonly byNumber = new Map<number, Segment>()
  /** Segment numbers in seq order. */
  private order: Array<number> = []
  private nextNumber = 0
  /** The last segment, open for writing (set by `openLast` or `create`). */
  active!: Segment
  activeFd = -1
  /** Bytes written to the active segment. */
  activeSize = 0
  /** Bytes of the active segment a flush has made durable. */
  durableBytes = 0

  constructor(directory: string, io: FileIo, durability: Durability) {
    this.directory = directory
    this.io = io
    this.durability = durability
  }

  /** The path of `name` in the journal's directory. */
  file(name: string): string {
    return `${this.directory}/${name}`
  }

  /** The size of the file at `path`. */
  fileSize(path: string): number {
    const fd = this.io.openSync(path, "r")
    try {
      return this.io.fstatSync(fd).size
    } finally {
      this.io.closeSync(fd)
    }
  }

  /** Registers an existing segment file (recovery adds them in seq order). */
  add(firstSeq: number): Segment {
    const segment: Segment = { number: this.nextNumber++, firstSeq, path: this.file(segmentName(firstSeq)) }
    this.byNumber.set(segment.number, segment)
    this.order.push(segment.number)
    return segment
  }

  get(number: number): Segment {
    return this.byNumber.get(number)!
  }

  /** The last segment, if any. */
  last(): Segment | undefined {
    const number = this.order[this.order.length - 1]
    return number === undefined ? undefined : this.byNumber.get(number)
  }

  /** Makes the last segment the active one, opened for writing at its end. */
  openLast(): void {
    this.active = this.last()!
    this.activeFd = this.io.openSync(this.active.path, "r+")
    this.activeSize = this.durableBytes = this.io.fstatSync(this.activeFd).size
  }

  /** Creates the segment for seqs from `firstSeq` on (temp file, rename) and makes it the active one. */
  create(firstSeq: number): void {
    const io = this.io
    const name = segmentName(firstSeq)
    const temp = this.file(`${name}.tmp`)
    const fd = io.openSync(temp, "w")
    try {
      writeAll(io, fd, encodeHeader(firstSeq), 0)
      if (this.durability !== "os") io.fsyncSync(fd)
    } finally {
      io.closeSync(fd)
    }
    io.renameSync(temp, this.file(name))
    if (this.durability !== "os") fsyncDirectorySync(io, this.directory)
    this.activeFd = io.openSync(this.file(name), "r+")
    this.active = this.add(firstSeq)
    this.activeSize = this.durableBytes = HEADER_BYTES
  }

  /**
   * Seals the active segment (flushed first unless durability is `"os"`) and starts a new one at
   * `firstSeq`. The caller makes sure no other flush of the active segment runs meanwhile.
   */
  rotate(firstSeq: number): void {
    const sealed = this.activeFd
    if (this.durability !== "os") this.io.fsyncSync(sealed)
    // Closed only once the next segment is active: should creating it fail, reads of the sealed
    // segment's records (and the cut back after that failure) still have its descriptor.
    this.create(firstSeq)
    this.io.closeSync(sealed)
  }

  /** The numbers of the segments wholly below `seq` (the next segment starts at or below it); never the last. */
  wholeBelow(seq: number): Array<number> {
    return this.order.slice(0, -1).filter((_, i) => this.byNumber.get(this.order[i + 1]!)!.firstSeq <= seq)
  }

  /** Deletes segments (the caller has stored what they held) and fsyncs the directory. */
  delete(numbers: ReadonlyArray<number>): void {
    for (const number of numbers) this.io.unlinkSync(this.byNumber.get(number)!.path)
    this.forget(numbers)
    fsyncDirectorySync(this.io, this.directory)
  }

  /** Drops segments from the set, leaving their files alone (a read-only journal's view of another process's deletion). */
  forget(numbers: ReadonlyArray<number>): void {
    for (const number of numbers) this.byNumber.delete(number)
    this.order = this.order.filter((n) => this.byNumber.has(n))
  }

  /** Closes the active segment's descriptor (if open). */
  closeActive(): void {
    if (this.activeFd < 0) return
    const fd = this.activeFd
    this.activeFd = -1
    this.io.closeSync(fd)
  }
}
