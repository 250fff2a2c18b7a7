/**
 * The file Journal's in-memory index: where every live record is (segment, byte offset, frame size),
 * in seq order, and which records each stream has, so that `read(stream)` and `replayFrom(seq)` go
 * straight to the bytes they need; and each stream's version, kept after its records are truncated.
 *
 * Everything is in typed arrays: about 28 bytes a record, and per stream its name in `StreamKeys`
 * plus 28 bytes (version, first live version, first live record, list number) in pages. Only a stream with
 * more than one live record has a list of them, so a journal of millions of small streams opens
 * within a small heap.
 *
 * Records are numbered in the order they were added since open ("record numbers"); the numbers of
 * live records form one range, which `dropBefore` shortens from the front. Streams are numbered by
 * `StreamKeys`.
 * @internal
 */
import { lowerBound } from "../../internal/validate.ts"
import { STREAM_PAGE_BITS, StreamKeys } from "./streamKeys.ts"

/** The array of `size` elements or more holding `array`'s elements. */
const grown = <T extends Float64Array | Uint32Array>(array: T, size: number, make: (n: number) => T): T => {
  if (size <= array.length) return array
  const next = make(Math.max(size, array.length * 2))
  next.set(array)
  return next
}

const STREAM_PAGE = 1 << STREAM_PAGE_BITS
const STREAM_MASK = STREAM_PAGE - 1
/** The per-stream fields of `RecordIndex.streamPages`, each a run of `STREAM_PAGE` numbers in a page. */
const VERSION = 0
const FIRST_VERSION = 1
const FIRST_RECORD = 2

/** The live records of a stream that has more than one: `numbers[start…]`, in version order. */
interface RecordList {
  numbers: Array<number>
  start: number
}

/** The index. @internal */
export class RecordIndex {
  // Per record, at `record number - base`.
  private seqs = new Float64Array(1024)
  private offsets = new Float64Array(1024)
  private sizes = new Uint32Array(1024)
  private segments = new Uint32Array(1024)
  private owners = new Uint32Array(1024)
  /** Record number of `seqs[0]`. */
  private base = 0
  /** Record number of the first live record. */
  first = 0
  /** Record number the next added record gets. */
  end = 0

  // Per stream, by stream number, in pages of `STREAM_PAGE` streams (grown by a page, never copied).
  private readonly keys = new StreamKeys()
  /**
   * Three fields per stream: `VERSION`, the version of its last record (including records not yet
   * durable, and truncated ones); `FIRST_VERSION`, that of its first live record (`version + 1` when it
   * has none); `FIRST_RECORD`, the record number of its only live record, or -1 (unused while it has a list).
   */
  private readonly streamPages: Array<Float64Array> = []
  /** Per stream: 1 + the index in `lists` of its live records when it has more than one, else 0. */
  private readonly listPages: Array<Uint32Array> = []
  private readonly lists: Array<RecordList | undefined> = []
  /** Indexes of `lists` free for reuse. */
  private readonly freeLists: Array<number> = []
  /** How many streams have had records truncated (`firstVersion > 1`). */
  truncatedCount = 0

  /** The stream's number, or -1 if it never had a record (nor a truncated version). */
  stream(namespace: string, id: string): number {
    return this.keys.find(namespace, id)
  }

  /** The stream's number; a new stream is created at version 0. */
  streamOrCreate(namespace: string, id: string): number {
    const s = this.keys.findOrAdd(namespace, id)
    if (s >>> STREAM_PAGE_BITS === this.streamPages.length) {
      this.streamPages.push(new Float64Array(3 * STREAM_PAGE))
      this.listPages.push(new Uint32Array(STREAM_PAGE))
    }
    if (this.field(FIRST_VERSION, s) === 0) {
      this.setField(FIRST_VERSION, s, 1)
      this.setField(FIRST_RECORD, s, -1)
    }
    return s
  }

  /** The version of the stream's last record, truncated or not (0 for an unknown stream). */
  versionOf(namespace: string, id: string): number {
    const s = this.keys.find(namespace, id)
    return s < 0 ? 0 : this.field(VERSION, s)
  }

  /** Stream `s`'s version. */
  version(s: number): number {
    return this.field(VERSION, s)
  }

  /** The version of stream `s`'s first live record. */
  firstVersion(s: number): number {
    return this.field(FIRST_VERSION, s)
  }

  /** The version of stream `s`'s last truncated record (0 if none was). */
  truncatedVersion(s: number): number {
    return this.field(FIRST_VERSION, s) - 1
  }

  /** How many live records stream `s` has. */
  liveCount(s: number): number {
    const list = this.listNumber(s)
    if (list !== 0) return this.lists[list - 1]!.numbers.length - this.lists[list - 1]!.start
    return this.field(FIRST_RECORD, s) >= 0 ? 1 : 0
  }

  /** The record number of stream `s`'s `i`-th live record (version `firstVersion + i`; `i < liveCount`). */
  recordOf(s: number, i: number): number {
    const list = this.listNumber(s)
    if (list === 0) return this.field(FIRST_RECORD, s)
    const records = this.lists[list - 1]!
    return records.numbers[records.start + i]!
  }

  namespace(s: number): string {
    return this.keys.namespace(s)
  }

  id(s: number): string {
    return this.keys.id(s)
  }

  /** Every stream with truncated records, in stream number order. */
  *truncatedStreams(): Generator<number> {
    for (let s = 0; s < this.keys.size; s++) if (this.field(FIRST_VERSION, s) > 1) yield s
  }

  /**
   * Records that stream `s` had records up to `version` that are truncated (a version from the
   * streams file, or a record below the truncation point still on disk). Only raises what is known.
   */
  keepTruncated(s: number, version: number): void {
    if (version > this.field(VERSION, s)) this.setField(VERSION, s, version)
    if (this.liveCount(s) === 0 && version + 1 > this.field(FIRST_VERSION, s)) this.setFirstVersion(s, version + 1)
  }

  /** Adds a live record of stream `s` at version `version`, stored at `offset` of segment `segment`. */
  add(s: number, version: number, seq: number, segment: number, offset: number, size: number): void {
    const at = this.end - this.base
    if (at >= this.seqs.length) this.reserve(at + 1)
    this.seqs[at] = seq
    this.offsets[at] = offset
    this.sizes[at] = size
    this.segments[at] = segment
    this.owners[at] = s
    const live = this.liveCount(s)
    if (live === 0) {
      this.setFirstVersion(s, version)
      this.setField(FIRST_RECORD, s, this.end)
    } else if (live === 1) {
      const list = this.freeLists.pop() ?? this.lists.length
      this.lists[list] = { numbers: [this.field(FIRST_RECORD, s), this.end], start: 0 }
      this.setListNumber(s, list + 1)
    } else {
      this.lists[this.listNumber(s) - 1]!.numbers.push(this.end)
    }
    if (version > this.field(VERSION, s)) this.setField(VERSION, s, version)
    this.end++
  }

  seq(record: number): number {
    return this.seqs[record - this.base]!
  }
  offset(record: number): number {
    return this.offsets[record - this.base]!
  }
  size(record: number): number {
    return this.sizes[record - this.base]!
  }
  segment(record: number): number {
    return this.segments[record - this.base]!
  }

  /** The number of the first live record with a seq ≥ `seq` (`end` if none). */
  firstAtOrAfter(seq: number): number {
    const live = this.seqs.subarray(this.first - this.base, this.end - this.base)
    return this.first + lowerBound(live, seq, (s) => s)
  }

  /**
   * Drops the live records with a seq below `seq`; returns the streams that lost records (their
   * `truncatedVersion` is the last version dropped). Takes time in proportion to the records dropped.
   */
  dropBefore(seq: number): Array<number> {
    const cut = this.firstAtOrAfter(seq)
    const touched = new Set<number>()
    for (let n = this.first; n < cut; n++) touched.add(this.owners[n - this.base]!)
    for (const s of touched) this.dropRecords(s, cut)
    this.first = cut
    // Reclaim the dropped front once it is most of the table.
    const dead = this.first - this.base
    if (dead > 4096 && dead * 2 > this.end - this.base) {
      const live = this.end - this.first
      for (const column of [this.seqs, this.offsets, this.sizes, this.segments, this.owners]) column.copyWithin(0, dead, dead + live)
      this.base = this.first
    }
    return [...touched]
  }

  /** Drops stream `s`'s live records numbered below `cut`. */
  private dropRecords(s: number, cut: number): void {
    const list = this.listNumber(s)
    if (list === 0) {
      this.setField(FIRST_RECORD, s, -1)
      this.setFirstVersion(s, this.field(FIRST_VERSION, s) + 1)
      return
    }
    const records = this.lists[list - 1]!
    const numbers = records.numbers
    let start = records.start
    let end = numbers.length
    while (start < end) {
      const mid = (start + end) >>> 1
      if (numbers[mid]! < cut) start = mid + 1
      else end = mid
    }
    this.setFirstVersion(s, this.field(FIRST_VERSION, s) + start - records.start)
    const left = numbers.length - start
    if (left <= 1) {
      this.setField(FIRST_RECORD, s, left === 1 ? numbers[start]! : -1)
      this.lists[list - 1] = undefined
      this.freeLists.push(list - 1)
      this.setListNumber(s, 0)
    } else if (start * 2 > numbers.length) {
      records.numbers = numbers.slice(start)
      records.start = 0
    } else {
      records.start = start
    }
  }

  private setFirstVersion(s: number, version: number): void {
    if (this.field(FIRST_VERSION, s) === 1 && version > 1) this.truncatedCount++
    this.setField(FIRST_VERSION, s, version)
  }

  private field(field: number, s: number): number {
    return this.streamPages[s >>> STREAM_PAGE_BITS]![field * STREAM_PAGE + (s & STREAM_MASK)]!
  }

  private setField(field: number, s: number, value: number): void {
    this.streamPages[s >>> STREAM_PAGE_BITS]![field * STREAM_PAGE + (s & STREAM_MASK)] = value
  }

  private listNumber(s: number): number {
    return this.listPages[s >>> STREAM_PAGE_BITS]![s & STREAM_MASK]!
  }

  private setListNumber(s: number, list: number): void {
    this.listPages[s >>> STREAM_PAGE_BITS]![s & STREAM_MASK] = list
  }

  private reserve(size: number): void {
    this.seqs = grown(this.seqs, size, (n) => new Float64Array(n))
    this.offsets = grown(this.offsets, size, (n) => new Float64Array(n))
    this.sizes = grown(this.sizes, size, (n) => new Uint32Array(n))
    this.segments = grown(this.segments, size, (n) => new Uint32Array(n))
    this.owners = grown(this.owners, size, (n) => new Uint32Array(n))
  }
}
