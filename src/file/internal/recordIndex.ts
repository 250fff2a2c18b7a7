/**
 * The file Journal's in-memory index: where every live record is (segment, byte offset, frame size),
 * in seq order, and which records each stream has, so that `read(stream)` and `replayFrom(seq)` go
 * straight to the bytes they need. Columns are typed arrays (about 28 bytes per record) so that a
 * journal of millions of records opens within a small heap.
 *
 * Records are numbered in the order they were added since open ("record numbers"); the numbers of
 * live records form one range, which `dropBefore` shortens from the front.
 * @internal
 */
import { lowerBound, streamKey } from "../../internal/validate.ts"

/** A stream's entry: its version (survives truncation) and the numbers of its live records. @internal */
export interface StreamEntry {
  readonly namespace: string
  readonly id: string
  readonly key: string
  /** The version of the stream's last record (including records not yet durable). */
  version: number
  /** The version of `records[0]`; versions are dense, so record `v` is `records[v - firstVersion]`. */
  firstVersion: number
  /** Record numbers of the live records, in version order. */
  records: Array<number>
}

const grow = <T extends Float64Array | Uint32Array>(array: T, size: number, make: (n: number) => T): T => {
  if (size <= array.length) return array
  const next = make(Math.max(size, array.length * 2))
  next.set(array)
  return next
}

/** The index. @internal */
export class RecordIndex {
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
  private readonly byKey = new Map<string, StreamEntry>()
  private readonly entries: Array<StreamEntry> = []
  private readonly entryNumbers = new Map<StreamEntry, number>()

  /** The stream's entry, or `undefined` if it never had a record. */
  stream(namespace: string, id: string): StreamEntry | undefined {
    return this.byKey.get(streamKey(namespace, id))
  }

  /** The stream's entry, created at version 0 if new. */
  streamOrCreate(namespace: string, id: string): StreamEntry {
    const key = streamKey(namespace, id)
    let entry = this.byKey.get(key)
    if (entry === undefined) {
      entry = { namespace, id, key, version: 0, firstVersion: 1, records: [] }
      this.byKey.set(key, entry)
      this.entryNumbers.set(entry, this.entries.length)
      this.entries.push(entry)
    }
    return entry
  }

  /** Adds a live record of `entry` at version `version`, stored at `offset` of segment `segment`. */
  add(entry: StreamEntry, version: number, seq: number, segment: number, offset: number, size: number): void {
    const at = this.end - this.base
    if (at >= this.seqs.length) this.reserve(at + 1)
    this.seqs[at] = seq
    this.offsets[at] = offset
    this.sizes[at] = size
    this.segments[at] = segment
    this.owners[at] = this.entryNumbers.get(entry)!
    if (entry.records.length === 0) entry.firstVersion = version
    entry.records.push(this.end)
    if (version > entry.version) entry.version = version
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

  /** Every stream that ever had a record. */
  streams(): ReadonlyArray<StreamEntry> {
    return this.entries
  }

  /**
   * Drops the live records with a seq below `seq`; returns the entries of the streams that lost records
   * (their `firstVersion - 1` is the last version dropped).
   */
  dropBefore(seq: number): Array<StreamEntry> {
    const cut = this.firstAtOrAfter(seq)
    const touched = new Set<StreamEntry>()
    for (let n = this.first; n < cut; n++) touched.add(this.entries[this.owners[n - this.base]!]!)
    for (const entry of touched) {
      const keep = lowerBound(entry.records, cut, (n) => n)
      entry.firstVersion += keep
      entry.records = entry.records.slice(keep)
    }
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

  private reserve(size: number): void {
    this.seqs = grow(this.seqs, size, (n) => new Float64Array(n))
    this.offsets = grow(this.offsets, size, (n) => new Float64Array(n))
    this.sizes = grow(this.sizes, size, (n) => new Uint32Array(n))
    this.segments = grow(this.segments, size, (n) => new Uint32Array(n))
    this.owners = grow(this.owners, size, (n) => new Uint32Array(n))
  }
}
