/**
 * The file Journal's reads: `read(stream)` and `replayFrom(seq)` page through the record index and
 * read the bytes they need with as few reads as the layout allows, checking every frame's CRC again.
 * Each read gets a buffer of its own and the records' payloads are views of it (no copy per record):
 * a record kept pins the bytes of the read it came from (at most about a megabyte).
 * Only visible records are returned (DESIGN §2): those at or below `visibleSeq()`, which the writer
 * moves forward once an append could be acknowledged.
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { JournalError, type JournalRecord, type StreamRef } from "../../Journal.ts"
import { formatStream } from "../../internal/validate.ts"
import { message, Unrecoverable } from "./errors.ts"
import { readFully } from "./fileIo.ts"
import type { RecordIndex } from "./recordIndex.ts"
import type { SegmentSet } from "./segments.ts"
import { type FrameCodec, view } from "./segmentFormat.ts"

/** Records per page of `read` and most records per page of `replayFrom`. */
const PAGE_RECORDS = 4096
/** Most bytes one page of `replayFrom` reads. */
const PAGE_BYTES = 1 << 20
/** Two records of one stream this close in a segment are read with one read. */
const READ_GAP = 4096

/** Reads of one open journal. @internal */
export class Reader {
  private readonly segments: SegmentSet
  private readonly index: RecordIndex
  private readonly codec: FrameCodec
  private readonly visibleSeq: () => number
  private readonly catchUp: <A>(read: () => A) => A

  /**
   * `catchUp` runs each read (a page, a position): at once in the writer's own journal; a read-only
   * journal first takes in what the writer added since (and runs the read again should a
   * truncation remove a segment under it).
   */
  constructor(
    segments: SegmentSet,
    index: RecordIndex,
    codec: FrameCodec,
    visibleSeq: () => number,
    catchUp: <A>(read: () => A) => A = (read) => read()
  ) {
    this.segments = segments
    this.index = index
    this.codec = codec
    this.visibleSeq = visibleSeq
    this.catchUp = catchUp
  }

  /** Runs `read` on the journal as it is on disk now (see the constructor); throws what `read` or catching up throws. */
  current<A>(read: () => A): A {
    return this.catchUp(read)
  }

  /**
   * The version of the stream's last visible record (or the version truncation kept; 0 for an unknown
   * stream). Records still in flight are at the end of the stream's list, so this looks at few.
   */
  visibleVersion(stream: StreamRef): number {
    const index = this.index
    const s = index.stream(stream.namespace, stream.id)
    if (s < 0) return 0
    const visible = this.visibleSeq()
    const live = index.liveCount(s)
    let i = live - 1
    while (i >= 0 && index.seq(index.recordOf(s, i)) > visible) i--
    return i === live - 1 ? index.version(s) : index.firstVersion(s) + i
  }

  /** The stream's visible records with versions `from..to`, at most `max`. */
  readStream(stream: StreamRef, from: number, to: number, max: number): Stream.Stream<JournalRecord, JournalError> {
    return Stream.paginate({ version: from, left: max }, (state) =>
      Effect.try({
        try: () => this.current(() => {
          const index = this.index
          const s = index.stream(stream.namespace, stream.id)
          if (s < 0 || state.left <= 0) return [[], Option.none()] as const
          const firstVersion = index.firstVersion(s)
          const live = index.liveCount(s)
          const start = Math.max(0, state.version - firstVersion)
          const visible = this.visibleSeq()
          const numbers: Array<number> = []
          for (let i = start; i < live && numbers.length < Math.min(PAGE_RECORDS, state.left); i++) {
            const n = index.recordOf(s, i)
            if (firstVersion + i > to || index.seq(n) > visible) break
            numbers.push(n)
          }
          const records = this.readRecords(numbers, stream)
          const done = numbers.length < PAGE_RECORDS || numbers.length === state.left
          const last = records[records.length - 1]
          return [
            records,
            done || last === undefined ? Option.none() : Option.some({ version: last.version + 1, left: state.left - records.length })
          ] as const
        }),
        catch: (cause) => this.readError("read", cause, stream)
      }))
  }

  /**
   * The visible records with `seq ≥ fromSeq`, in seq order, a page at a time. Only the first page,
   * and a page that finds nothing more, catch up first (a read-only journal lists its directory to
   * do so): the pages between read what is known, or catch up should a segment be gone.
   */
  replay(method: string, fromSeq: number): Stream.Stream<JournalRecord, JournalError> {
    return Stream.paginate({ seq: fromSeq, first: true }, ({ first, seq }) =>
      Effect.try({
        try: () => {
          let records = first ? [] : this.knownPage(seq, PAGE_RECORDS)
          if (records.length === 0) records = this.current(() => this.page(seq, PAGE_RECORDS))
          const last = records[records.length - 1]
          return [records, last === undefined ? Option.none() : Option.some({ seq: last.seq + 1, first: false })] as const
        },
        catch: (cause) => this.readError(method, cause)
      }))
  }

  /**
   * `page` over what is known, without catching up: empty when that holds nothing from `fromSeq`, or
   * when reading it fails (a segment a truncation deleted): the caller then catches up and reads again.
   */
  knownPage(fromSeq: number, maxRecords: number): Array<JournalRecord> {
    try {
      return this.page(fromSeq, maxRecords)
    } catch {
      return []
    }
  }

  /**
   * One page of visible records with `seq ≥ fromSeq` in seq order (at most `maxRecords`, one segment,
   * about a megabyte); empty at the end of what is visible. Throws on a read failure.
   */
  page(fromSeq: number, maxRecords: number): Array<JournalRecord> {
    const index = this.index
    const visible = this.visibleSeq()
    const first = index.firstAtOrAfter(fromSeq)
    const numbers: Array<number> = []
    const segment = first < index.end ? index.segment(first) : -1
    let bytes = 0
    for (let n = first; n < index.end && numbers.length < maxRecords; n++) {
      if (index.seq(n) > visible || index.segment(n) !== segment) break
      bytes += index.size(n)
      if (bytes > PAGE_BYTES && numbers.length > 0) break
      numbers.push(n)
    }
    return this.readRecords(numbers)
  }

  /**
   * Reads and decodes the given live records (in seq order) with as few reads as their layout allows;
   * `stream` when they are all of that stream (their names are then not decoded again).
   */
  private readRecords(numbers: ReadonlyArray<number>, stream?: StreamRef): Array<JournalRecord> {
    const out: Array<JournalRecord> = []
    // Sealed segments are opened once per call, not once per read.
    const opened = new Map<number, number>()
    try {
      this.readInto(numbers, opened, out, stream)
    } finally {
      for (const fd of opened.values()) this.segments.io.closeSync(fd)
    }
    return out
  }

  /** `readRecords` with the descriptors of sealed segments it opened kept in `opened`. */
  private readInto(
    numbers: ReadonlyArray<number>,
    opened: Map<number, number>,
    out: Array<JournalRecord>,
    stream: StreamRef | undefined
  ): void {
    const index = this.index
    const io = this.segments.io
    let i = 0
    while (i < numbers.length) {
      const segment = index.segment(numbers[i]!)
      const start = index.offset(numbers[i]!)
      let j = i + 1
      let end = start + index.size(numbers[i]!)
      while (
        j < numbers.length && index.segment(numbers[j]!) === segment && index.offset(numbers[j]!) - end <= READ_GAP &&
        index.offset(numbers[j]!) + index.size(numbers[j]!) - start <= PAGE_BYTES
      ) {
        end = index.offset(numbers[j]!) + index.size(numbers[j]!)
        j++
      }
      const file = this.segments.get(segment)
      // The records' payloads are views of this buffer.
      const data = new Uint8Array(end - start)
      const dv = view(data)
      let fd = file === this.segments.active ? this.segments.activeFd : opened.get(segment)
      if (fd === undefined) {
        fd = io.openSync(file.path, "r")
        opened.set(segment, fd)
      }
      const got = readFully(io, fd, data, end - start, start)
      for (let k = i; k < j; k++) {
        const offset = index.offset(numbers[k]!)
        const record = this.codec.decodeFrame(data, dv, offset - start, Math.min(got, offset - start + index.size(numbers[k]!)), stream)
        if (record === undefined || record.seq !== index.seq(numbers[k]!)) {
          throw new Unrecoverable(`the record at byte offset ${offset} of ${file.path} is damaged`)
        }
        out.push(record)
      }
      i = j
    }
  }

  /** A read failure of `method` as a `JournalError` naming the directory (and the stream). */
  readError(method: string, cause: unknown, stream?: StreamRef): JournalError {
    const what = stream !== undefined
      ? `read stream ${formatStream(stream)}`
      : method === "lastSeq" || method === "checkpoint"
      ? `read the ${method}`
      : "replay"
    return new JournalError({
      method,
      message: `Could not ${what} from ${this.segments.directory}: ${message(cause)}`,
      cause,
      ...(stream !== undefined ? { stream: { namespace: stream.namespace, id: stream.id } } : {})
    })
  }
}
