/**
 * The file Journal over a `FileIo`: recovery on open, the write path with its three durability
 * modes and group commit, rotation, truncation and reads. `annals/file`'s `FileJournal` runs it on
 * `node:fs`; the crash tests run it on a simulated file system.
 * @internal
 */
import { Clock, Effect, Option, Scope, Stream } from "effect"
import * as path from "node:path"
import type { FileJournalOptions } from "../FileJournal.ts"
import { type AppendResult, Journal, JournalError, type JournalRecord, type StreamRef, VersionConflict } from "../../Journal.ts"
import { lockDirectory } from "./directoryLock.ts"
import { type FileIo, fsyncDirectorySync, readFully, readWholeFile, replaceFileDurably, unlinkIfPresent, writeAll } from "./fileIo.ts"
import { appendedRecords, appendProblem, nextSeq, readProblem, restoreProblem } from "../../internal/journalChecks.ts"
import { RecordIndex } from "./recordIndex.ts"
import { StreamsLog } from "./streamsLog.ts"
import {
  decodeFrame,
  decodeState,
  encodeFrames,
  encodeHeader,
  encodeState,
  FRAME_OVERHEAD,
  type FrameHead,
  HEADER_BYTES,
  headerProblem,
  makeFrameHead,
  parseSegmentName,
  readFrameHead,
  segmentName,
  view
} from "./segmentFormat.ts"
import { formatStream, integerProblem, streamKey, streamProblem } from "../../internal/validate.ts"

/** Records per page of `read` and most records per page of `replayFrom`. */
const PAGE_RECORDS = 4096
/** Most bytes one page of `replayFrom` reads. */
const PAGE_BYTES = 1 << 20
/** Bytes recovery reads at a time. */
const SCAN_CHUNK_BYTES = 4 << 20
/** Two records of one stream this close in a segment are read with one read. */
const READ_GAP = 4096

/** A flush for a single waiting append runs on the calling thread while flushes take less than this. */
const SYNC_FLUSH_MAX_MS = 1
/** …and while it covers at most this many bytes. */
const SYNC_FLUSH_MAX_BYTES = 64 * 1024

const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
const DEFAULT_SYNC_INTERVAL_MS = 100

/** One segment file. The active (last) one is kept open for writing. */
interface Segment {
  readonly number: number
  readonly firstSeq: number
  readonly path: string
}

/** A recovery failure: the message names the file and offset. */
class Unrecoverable extends Error {}

const message = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

const optionsProblem = (options: FileJournalOptions): string | undefined => {
  if (typeof options.directory !== "string" || options.directory.length === 0) return "directory must be a non-empty path"
  if (options.durability !== undefined && !["always", "interval", "os"].includes(options.durability)) {
    return `durability must be "always", "interval" or "os", got ${JSON.stringify(options.durability)}`
  }
  return (options.segmentBytes === undefined ? undefined : integerProblem("segmentBytes", options.segmentBytes, 256)) ??
    (options.syncIntervalMs === undefined ? undefined : integerProblem("syncIntervalMs", options.syncIntervalMs, 1))
}

/**
 * Opens (recovering if needed) the journal in `options.directory` on `io`, holding its lock until the
 * scope closes. @internal
 */
export const open = (options: FileJournalOptions, io: FileIo): Effect.Effect<Journal, JournalError, Scope.Scope> =>
  Effect.gen(function*() {
    const problem = optionsProblem(options)
    if (problem !== undefined) {
      return yield* new JournalError({ method: "open", message: `Cannot open a file journal: ${problem}` })
    }
    const directory = path.resolve(options.directory)
    const fail = (cause: unknown) =>
      new JournalError({
        method: "open",
        message: cause instanceof Unrecoverable
          ? `Cannot open the journal in ${directory}: ${cause.message}`
          : `Cannot open the journal in ${directory}: ${message(cause)}`,
        cause
      })
    yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          io.mkdirSync(directory, { recursive: true })
          return lockDirectory(io, directory)
        },
        catch: fail
      }),
      (release) => Effect.sync(release)
    )
    const journal = yield* Effect.try({
      try: () => new FileJournal(directory, options, io),
      catch: fail
    })
    for (const warning of journal.warnings) yield* Effect.logWarning(warning)
    yield* Effect.addFinalizer(() => journal.close())
    if (journal.durability === "interval") {
      // A wall-clock timer, not Effect's Clock: the flush is about the device, not about logical
      // time (a TestClock that jumps years must not run millions of flushes).
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          const timer = setInterval(() => journal.startSync(), journal.syncIntervalMs)
          ;(timer as { unref?: () => void }).unref?.()
          return timer
        }),
        (timer) => Effect.sync(() => clearInterval(timer))
      )
    }
    return journal.service()
  })

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

/** What a recovery scan reuses from frame to frame and segment to segment. */
interface Scan {
  chunk: Uint8Array
  readonly head: FrameHead
  readonly group: RecoveredAppend
  /** The stream of the record indexed last (-1 before the first), and its name. */
  stream: number
  namespace: string
  id: string
}

interface Waiter {
  readonly seq: number
  readonly done: (error: JournalError | undefined) => void
}

/** The journal's state and operations; one instance per open. */
class FileJournal {
  readonly durability: "always" | "interval" | "os"
  readonly syncIntervalMs: number
  readonly segmentBytes: number
  readonly warnings: Array<string> = []
  private readonly index = new RecordIndex()
  private readonly segments = new Map<number, Segment>()
  /** Segment numbers in seq order. */
  private order: Array<number> = []
  private nextSegmentNumber = 0
  private active!: Segment
  private activeFd = -1
  private activeSize = 0
  /** Bytes of the active segment a flush round has made durable. */
  private durableBytes = 0
  private lastSeq = 0
  private lastTimestamp = 0
  private checkpoint = 0
  private truncatedBefore = 0
  /** The versions of truncated streams and the last seq and timestamp truncated, as stored. */
  private streamsLog!: StreamsLog
  /** Highest seq known to be on the device. */
  private durableSeq = 0
  /** Highest seq reads may return: durable in "always" mode, written otherwise. */
  private visibleSeq = 0
  private waiters: Array<Waiter> = []
  /** A microtask that starts a flush is queued. */
  private flushQueued = false
  /** Milliseconds the last flush took (0 before the first). */
  private lastFlushMs = 0
  /** Where reads of up to a page put the bytes they decode (records are copied out). */
  private readonly readBuffer = new Uint8Array(PAGE_BYTES)
  private readonly readView = view(this.readBuffer)
  private syncing: Promise<void> | undefined
  private failure: JournalError | undefined
  private closed = false

  readonly directory: string
  private readonly io: FileIo

  constructor(directory: string, options: FileJournalOptions, io: FileIo) {
    this.directory = directory
    this.io = io
    this.durability = options.durability ?? "always"
    this.syncIntervalMs = options.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS
    this.segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES
    try {
      this.recover()
    } catch (cause) {
      if (this.activeFd >= 0) io.closeSync(this.activeFd)
      throw cause
    }
  }

  // ─── Recovery ───────────────────────────────────────────────────────────────────────────────

  private recover(): void {
    const io = this.io
    const names = io.readdirSync(this.directory)
    let removedTemp = false
    for (const name of names) {
      // A `LOCK.<nonce>.tmp` may be a live process's that is trying for the lock and removes it itself
      // meanwhile (directoryLock.ts).
      if (name.endsWith(".tmp") && unlinkIfPresent(io, this.file(name))) removedTemp = true
    }
    if (removedTemp) fsyncDirectorySync(io, this.directory)
    this.readStateFiles(names)

    const firstSeqs = names.map(parseSegmentName).filter((s): s is number => s !== undefined).sort((a, b) => a - b)
    // A last segment shorter than its header is one whose creation a crash interrupted.
    const last = firstSeqs[firstSeqs.length - 1]
    if (last !== undefined) {
      const file = this.file(segmentName(last))
      const size = this.fileSize(file)
      if (size < HEADER_BYTES) {
        io.unlinkSync(file)
        fsyncDirectorySync(io, this.directory)
        this.warnings.push(`Removed ${file}: ${size} bytes, shorter than a segment header (its creation was interrupted)`)
        firstSeqs.pop()
      }
    }
    // Segments holding no record (a crash right after a rotation) do not seal the one before them:
    // the last segment with records is where a torn append may be.
    let lastWithRecords = -1
    firstSeqs.forEach((seq, i) => {
      if (this.fileSize(this.file(segmentName(seq))) > HEADER_BYTES) lastWithRecords = i
    })
    // Empty segments after it go: they may be named above seqs that the crash took back (lost with
    // the records they followed), and the next append must not land below its segment's name.
    const empty = firstSeqs.splice(lastWithRecords + 1)
    for (const seq of empty) io.unlinkSync(this.file(segmentName(seq)))
    if (empty.length > 0) fsyncDirectorySync(io, this.directory)
    let previousSeq = 0
    const scan: Scan = { chunk: new Uint8Array(0), head: makeFrameHead(), group: new RecoveredAppend(), stream: -1, namespace: "", id: "" }
    for (let i = 0; i < firstSeqs.length; i++) {
      previousSeq = this.scanSegment(firstSeqs[i]!, firstSeqs[i + 1], i < lastWithRecords, previousSeq, scan)
    }
    // The segments' names too, should an "os" writer have created them (scanSegment flushed their data).
    if (this.durability !== "os" && firstSeqs.length > 0) fsyncDirectorySync(io, this.directory)
    this.lastSeq = Math.max(this.lastSeq, this.streamsLog.lastSeq)
    this.lastTimestamp = Math.max(this.lastTimestamp, this.streamsLog.lastTimestamp)
    this.durableSeq = this.visibleSeq = this.lastSeq

    // Segments wholly below the truncation point: a crash came between the checkpoint and the deletion
    // (the streams file already holds their streams' versions).
    const below = this.order.slice(0, -1).filter((_, i) => this.segments.get(this.order[i + 1]!)!.firstSeq <= this.truncatedBefore)
    if (below.length > 0) this.deleteSegments(below)

    // A last segment the recovery cut empty may be named above the seqs the crash took back; the
    // next append must not land below its segment's name.
    const lastNumber = this.order[this.order.length - 1]
    if (lastNumber !== undefined) {
      const last = this.segments.get(lastNumber)!
      if (last.firstSeq > this.lastSeq + 1 && this.fileSize(last.path) <= HEADER_BYTES) this.deleteSegments([lastNumber])
    }
    const activeNumber = this.order[this.order.length - 1]
    if (activeNumber === undefined) {
      this.createSegment(this.lastSeq + 1)
    } else {
      this.active = this.segments.get(activeNumber)!
      this.activeFd = io.openSync(this.active.path, "r+")
      this.activeSize = this.durableBytes = io.fstatSync(this.activeFd).size
    }
  }

  private readStateFiles(names: ReadonlyArray<string>): void {
    if (names.includes("checkpoint")) {
      const value = this.readState("checkpoint") as { checkpoint?: unknown; truncatedBefore?: unknown }
      if (integerProblem("checkpoint", value?.checkpoint, 0) ?? integerProblem("truncatedBefore", value?.truncatedBefore, 0)) {
        throw new Unrecoverable(`${this.file("checkpoint")} does not hold a checkpoint and truncation point`)
      }
      this.checkpoint = value.checkpoint as number
      this.truncatedBefore = value.truncatedBefore as number
    }
    const index = this.index
    this.streamsLog = StreamsLog.read(
      this.io,
      this.directory,
      names.includes("streams"),
      (namespace, id, version) => index.keepTruncated(index.streamOrCreate(namespace, id), version)
    )
  }

  private readState(name: string): unknown {
    const decoded = decodeState(readWholeFile(this.io, this.file(name)))
    if ("problem" in decoded) throw new Unrecoverable(`${this.file(name)} is damaged: ${decoded.problem}`)
    return decoded.value
  }

  private fileSize(path: string): number {
    const fd = this.io.openSync(path, "r")
    try {
      return this.io.fstatSync(fd).size
    } finally {
      this.io.closeSync(fd)
    }
  }

  /**
   * Reads one segment into the index; returns the last seq in it. A torn append at the tail of the
   * last segment is cut off; any other damage throws `Unrecoverable` naming file and offset.
   */
  private scanSegment(
    firstSeq: number,
    nextFirstSeq: number | undefined,
    sealed: boolean,
    previousSeq: number,
    scan: Scan
  ): number {
    const io = this.io
    const file = this.file(segmentName(firstSeq))
    const fd = io.openSync(file, sealed ? "r" : "r+")
    try {
      const size = io.fstatSync(fd).size
      // Read in chunks, so that opening a large journal needs little memory beyond the index.
      let chunk = scan.chunk
      if (chunk.length < Math.min(size, SCAN_CHUNK_BYTES)) chunk = scan.chunk = new Uint8Array(Math.min(size, SCAN_CHUNK_BYTES))
      let chunkStart = 0
      let chunkLength = readFully(io, fd, chunk, Math.min(size, chunk.length), 0)
      const problem = headerProblem(chunk.subarray(0, Math.min(chunkLength, HEADER_BYTES)), firstSeq)
      if (problem !== undefined) throw new Unrecoverable(`${file} is not a segment: ${problem}`)
      const segment: Segment = { number: this.nextSegmentNumber++, firstSeq, path: file }
      this.segments.set(segment.number, segment)
      this.order.push(segment.number)

      const frame = scan.head
      const group = scan.group
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
            chunk = scan.chunk = new Uint8Array(length)
            dv = view(chunk)
          }
          chunkStart = position
          chunkLength = readFully(io, fd, chunk, length, position)
          continue
        }
        if (!readFrameHead(chunk, dv, at, chunkLength, frame)) break
        const fits = frame.seq > seq && frame.seq >= firstSeq && (nextFirstSeq === undefined || frame.seq < nextFirstSeq) &&
          (group.length === 0 ? frame.first === frame.seq : frame.first === group.first && frame.last === group.last)
        if (!fits) break
        group.add(frame, position)
        seq = frame.seq
        position += frame.size
        if (frame.seq === frame.last) {
          for (let i = 0; i < group.length; i++) this.indexRecovered(scan, i, segment.number)
          committed = seq
          group.clear()
        }
      }
      if (position === size && group.length === 0) {
        // What a killed process wrote may still be only in the page cache: on the device before it counts as durable.
        if (this.durability !== "os") io.fsyncSync(fd)
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
      this.warnings.push(
        `Cut ${size - cut} bytes of a torn append at byte offset ${cut} of ${file} (a crash interrupted its write; it was never acknowledged as durable)`
      )
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
      if (!readFrameHead(tail, dv, position, tail.length, frame)) {
        position++
        continue
      }
      if (first === undefined && frame.first > committed && frame.first < frame.seq) first = frame.first
      if (frame.first !== first) return position
      position += frame.size
    }
    return undefined
  }

  /** Indexes record `i` of the recovered append in `scan`. */
  private indexRecovered(scan: Scan, i: number, segment: number): void {
    const group = scan.group
    const namespace = group.namespaces[i]!
    const id = group.ids[i]!
    const seq = group.seqs[i]!
    const version = group.versions[i]!
    this.lastSeq = seq
    this.lastTimestamp = Math.max(this.lastTimestamp, group.timestamps[i]!)
    // Appends of one stream mostly come in runs: skip the key lookup while the stream stays the same.
    if (scan.stream < 0 || scan.namespace !== namespace || scan.id !== id) {
      scan.stream = this.index.streamOrCreate(namespace, id)
      scan.namespace = namespace
      scan.id = id
    }
    // Truncated but still on disk (its segment also holds later records): only its version counts.
    if (seq < this.truncatedBefore) this.index.keepTruncated(scan.stream, version)
    else this.index.add(scan.stream, version, seq, segment, group.offsets[i]!, group.sizes[i]!)
  }

  // ─── Files ─────────────────────────────────────────────────────────────────────────────────

  private file(name: string): string {
    return `${this.directory}/${name}`
  }

  /** Creates the segment for seqs from `firstSeq` on (temp file, rename) and makes it the active one. */
  private createSegment(firstSeq: number): void {
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
    const file = this.file(name)
    io.renameSync(temp, file)
    if (this.durability !== "os") fsyncDirectorySync(io, this.directory)
    this.activeFd = io.openSync(file, "r+")
    const segment: Segment = { number: this.nextSegmentNumber++, firstSeq, path: file }
    this.segments.set(segment.number, segment)
    this.order.push(segment.number)
    this.active = segment
    this.activeSize = this.durableBytes = HEADER_BYTES
  }

  /**
   * Seals the active segment (flushed first unless durability is "os") and starts a new one. Called
   * only while no flush round runs (see `whenIdle`); the next round acknowledges what was written.
   */
  private rotate(): void {
    const fd = this.activeFd
    if (this.durability !== "os") this.io.fsyncSync(fd)
    this.activeFd = -1
    this.io.closeSync(fd)
    this.createSegment(this.lastSeq + 1)
  }

  /** Deletes segments (the caller has stored what they held in the base) and fsyncs the directory. */
  private deleteSegments(numbers: ReadonlyArray<number>): void {
    for (const number of numbers) {
      this.io.unlinkSync(this.segments.get(number)!.path)
      this.segments.delete(number)
    }
    this.order = this.order.filter((n) => this.segments.has(n))
    fsyncDirectorySync(this.io, this.directory)
  }

  private writeCheckpoint(checkpoint: number, truncatedBefore: number): void {
    replaceFileDurably(this.io, this.directory, "checkpoint", encodeState({ checkpoint, truncatedBefore }))
    this.checkpoint = checkpoint
    this.truncatedBefore = truncatedBefore
  }

  // ─── Writing ───────────────────────────────────────────────────────────────────────────────

  /** Fails when the journal cannot take writes (closed, or poisoned by an earlier I/O failure). */
  private writeRefusal(method: string): JournalError | undefined {
    if (this.closed) return new JournalError({ method, message: `The journal in ${this.directory} is closed` })
    if (this.failure === undefined) return undefined
    return new JournalError({
      method,
      message: `The journal in ${this.directory} refuses writes after an earlier failure (${this.failure.message}); reopen it`,
      cause: this.failure
    })
  }

  /** Records an I/O failure: this write and every later one fail until the journal is reopened. */
  private poison(method: string, what: string, cause: unknown): JournalError {
    const error = new JournalError({ method, message: `Could not ${what} in ${this.directory}: ${message(cause)}`, cause })
    if (this.failure === undefined) this.failure = error
    const waiters = this.waiters
    this.waiters = []
    queueMicrotask(() => {
      for (const waiter of waiters) waiter.done(error)
    })
    return error
  }

  /**
   * Writes one append's (or restore's) records as one write to the active segment and indexes them;
   * `false` (nothing written) when the segment must be sealed first but a flush round runs.
   */
  private write(records: ReadonlyArray<JournalRecord>): boolean {
    const data = encodeFrames(records)
    if (this.activeSize > HEADER_BYTES && this.activeSize + data.length > this.segmentBytes) {
      if (this.syncing !== undefined) return false
      this.rotate()
    }
    const start = this.activeSize
    writeAll(this.io, this.activeFd, data, start)
    this.activeSize += data.length
    let offset = start
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
    for (const record of records) {
      const size = view.getUint32(offset - start, true) + 8
      this.index.add(this.index.streamOrCreate(record.namespace, record.id), record.version, record.seq, this.active.number, offset, size)
      offset += size
    }
    const last = records[records.length - 1]!
    this.lastSeq = last.seq
    this.lastTimestamp = Math.max(this.lastTimestamp, last.timestamp)
    if (this.durability !== "always") this.visibleSeq = this.lastSeq
    return true
  }

  /**
   * Runs `action` once no flush round runs, checking in the same synchronous step that starts it. A
   * segment is sealed (and fsynced) only then: had another fsync of the same file run alongside, a
   * write-back error could be reported to that one alone, and records written to the next segment
   * would outlive the ones lost before them.
   */
  private whenIdle<A, E>(action: () => Effect.Effect<A, E>): Effect.Effect<A, E> {
    return Effect.suspend(() =>
      this.syncing === undefined ? action() : Effect.andThen(Effect.promise(() => this.syncing!), this.whenIdle(action))
    )
  }

  /** Succeeds with `result` once every record up to `seq` is durable as the durability mode promises. */
  private acknowledge<A>(method: string, seq: number, result: A): Effect.Effect<A, JournalError> {
    if (this.durability !== "always" || this.durableSeq >= seq) return Effect.succeed(result)
    return Effect.callback<A, JournalError>((resume) => {
      // The fiber may have yielded since its write: a flush may have covered it, or a failure (or a
      // close) ended writing, and neither would ever resume a waiter registered now.
      if (this.durableSeq >= seq) return resume(Effect.succeed(result))
      const refusal = this.writeRefusal(method)
      if (refusal !== undefined) return resume(Effect.fail(refusal))
      this.waiters.push({ seq, done: (error) => resume(error === undefined ? Effect.succeed(result) : Effect.fail(error)) })
      // Started once the fibers that are ready have run, so that their appends share this flush.
      if (!this.flushQueued) {
        this.flushQueued = true
        queueMicrotask(() => {
          this.flushQueued = false
          this.startSync()
        })
      }
    })
  }

  /**
   * Starts an fdatasync of the active segment covering everything written so far, unless one is
   * running (its completion starts the next). Appends written meanwhile share the next one: group commit.
   *
   * A flush for one waiting append of at most `SYNC_FLUSH_MAX_BYTES` runs on this thread while
   * flushes are fast (the last one took under `SYNC_FLUSH_MAX_MS`): that saves the thread pool's round
   * trip, a large part of a fast device's flush, and blocks the event loop about as long as a fast
   * flush. Otherwise the flush runs on the thread pool, and appends keep being written meanwhile.
   */
  startSync(): void {
    if (this.syncing !== undefined || this.failure !== undefined || this.closed || this.durableSeq >= this.lastSeq) return
    const target = this.lastSeq
    const bytes = this.activeSize
    const fd = this.activeFd
    const path = this.active.path
    const started = performance.now()
    const flushed = (error: unknown): void => {
      this.lastFlushMs = performance.now() - started
      if (error !== null) {
        this.poison("append", `flush ${path} to disk`, error)
        this.cutToDurable()
        return
      }
      // Another flush (a rotation's) failed meanwhile: what this one covered may be lost after all.
      if (this.failure !== undefined) return
      this.durableBytes = Math.max(this.durableBytes, bytes)
      this.markDurable(target)
    }
    if (this.waiters.length === 1 && this.lastFlushMs < SYNC_FLUSH_MAX_MS && bytes - this.durableBytes <= SYNC_FLUSH_MAX_BYTES) {
      let error: unknown = null
      try {
        this.io.fdatasyncSync(fd)
      } catch (cause) {
        error = cause
      }
      flushed(error)
      return
    }
    this.syncing = new Promise<void>((resolve) => {
      const done = (error: unknown) => {
        this.syncing = undefined
        resolve()
        flushed(error)
        if (this.waiters.length > 0) this.startSync()
      }
      try {
        this.io.fdatasync(fd, done)
      } catch (cause) {
        queueMicrotask(() => done(cause))
      }
    })
  }

  /**
   * After a failed flush, best effort: cut the active segment back to its last flushed byte and flush
   * that. The failed flush may have dropped its data while later writes still reach the disk, which
   * would leave a hole before intact (never acknowledged) records — damage that recovery refuses.
   */
  private cutToDurable(): void {
    try {
      this.io.ftruncateSync(this.activeFd, this.durableBytes)
      this.io.fsyncSync(this.activeFd)
    } catch {
      // The journal is poisoned already; recovery names whatever damage remains.
    }
  }

  /** Records that everything up to `seq` is on the device, and acknowledges the appends waiting for it. */
  private markDurable(seq: number): void {
    this.durableSeq = Math.max(this.durableSeq, seq)
    if (this.durability === "always") this.visibleSeq = Math.max(this.visibleSeq, this.durableSeq)
    const done = this.waiters.filter((waiter) => waiter.seq <= this.durableSeq)
    if (done.length === 0) return
    this.waiters = this.waiters.filter((waiter) => waiter.seq > this.durableSeq)
    // Resumed after the current synchronous step (a rotation, a write) has finished, never inside it.
    queueMicrotask(() => {
      for (const waiter of done) waiter.done(undefined)
    })
  }

  /** Closes the journal: waits for a running flush, flushes the rest (unless "os"), closes the segment. */
  close(): Effect.Effect<void> {
    const self = this
    return Effect.gen(function*() {
      self.closed = true
      while (self.syncing !== undefined) yield* Effect.promise(() => self.syncing!)
      try {
        if (self.durability !== "os" && self.failure === undefined && self.durableSeq < self.lastSeq) self.io.fsyncSync(self.activeFd)
      } catch (cause) {
        yield* Effect.logWarning(`Could not flush ${self.active.path} on close: ${message(cause)}`)
      }
      try {
        self.io.closeSync(self.activeFd)
      } catch {
        // The descriptor is gone either way.
      }
      const waiters = self.waiters
      self.waiters = []
      const closing = self.writeRefusal("append")
      for (const waiter of waiters) waiter.done(closing)
    })
  }

  // ─── Reading ───────────────────────────────────────────────────────────────────────────────

  /** Reads and decodes the given live records (in seq order) with as few reads as their layout allows. */
  private readRecords(numbers: ReadonlyArray<number>): Array<JournalRecord> {
    const out: Array<JournalRecord> = []
    // Sealed segments are opened once per call, not once per read.
    const opened = new Map<number, number>()
    try {
      this.readInto(numbers, opened, out)
    } finally {
      for (const fd of opened.values()) this.io.closeSync(fd)
    }
    return out
  }

  /** `readRecords` with the descriptors of sealed segments it opened kept in `opened`. */
  private readInto(numbers: ReadonlyArray<number>, opened: Map<number, number>, out: Array<JournalRecord>): void {
    const index = this.index
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
      const file = this.segments.get(segment)!
      // Runs longer than a page (a single large record) get a buffer of their own, not kept.
      const data = end - start > PAGE_BYTES ? new Uint8Array(end - start) : this.readBuffer
      const dv = data === this.readBuffer ? this.readView : view(data)
      let fd = file === this.active ? this.activeFd : opened.get(segment)
      if (fd === undefined) {
        fd = this.io.openSync(file.path, "r")
        opened.set(segment, fd)
      }
      const got = readFully(this.io, fd, data, end - start, start)
      for (let k = i; k < j; k++) {
        const offset = index.offset(numbers[k]!)
        const record = decodeFrame(data, dv, offset - start, Math.min(got, offset - start + index.size(numbers[k]!)))
        if (record === undefined || record.seq !== index.seq(numbers[k]!)) {
          throw new Unrecoverable(`the record at byte offset ${offset} of ${file.path} is damaged`)
        }
        out.push(record)
      }
      i = j
    }
  }

  private readError(method: string, cause: unknown, stream?: StreamRef): JournalError {
    return new JournalError({
      method,
      message: `Could not ${stream !== undefined ? `read stream ${formatStream(stream)}` : "replay"} from ${this.directory}: ${message(cause)}`,
      cause,
      ...(stream !== undefined ? { stream: { namespace: stream.namespace, id: stream.id } } : {})
    })
  }

  private readStream(stream: StreamRef, from: number, to: number, max: number): Stream.Stream<JournalRecord, JournalError> {
    return Stream.paginate({ version: from, left: max }, (state) =>
      Effect.try({
        try: () => {
          const index = this.index
          const s = index.stream(stream.namespace, stream.id)
          if (s < 0 || state.left <= 0) return [[], Option.none()] as const
          const firstVersion = index.firstVersion(s)
          const live = index.liveCount(s)
          const start = Math.max(0, state.version - firstVersion)
          const numbers: Array<number> = []
          for (let i = start; i < live && numbers.length < Math.min(PAGE_RECORDS, state.left); i++) {
            const n = index.recordOf(s, i)
            if (firstVersion + i > to || index.seq(n) > this.visibleSeq) break
            numbers.push(n)
          }
          const records = this.readRecords(numbers)
          const done = numbers.length < PAGE_RECORDS || numbers.length === state.left
          const last = records[records.length - 1]
          return [
            records,
            done || last === undefined ? Option.none() : Option.some({ version: last.version + 1, left: state.left - records.length })
          ] as const
        },
        catch: (cause) => this.readError("read", cause, stream)
      }))
  }

  private replay(fromSeq: number): Stream.Stream<JournalRecord, JournalError> {
    return Stream.paginate(fromSeq, (seq) =>
      Effect.try({
        try: () => {
          const index = this.index
          const first = index.firstAtOrAfter(seq)
          const numbers: Array<number> = []
          const segment = first < index.end ? index.segment(first) : -1
          let bytes = 0
          for (let n = first; n < index.end && numbers.length < PAGE_RECORDS; n++) {
            if (index.seq(n) > this.visibleSeq || index.segment(n) !== segment) break
            bytes += index.size(n)
            if (bytes > PAGE_BYTES && numbers.length > 0) break
            numbers.push(n)
          }
          const records = this.readRecords(numbers)
          const last = records[records.length - 1]
          return [records, last === undefined ? Option.none() : Option.some(last.seq + 1)] as const
        },
        catch: (cause) => this.readError("replayFrom", cause)
      }))
  }

  // ─── The service ───────────────────────────────────────────────────────────────────────────

  service(): Journal {
    const invalid = (method: string, text: string, stream?: StreamRef) =>
      Effect.fail(
        new JournalError({
          method,
          message: text,
          ...(stream !== undefined && streamProblem(stream) === undefined ? { stream: { namespace: stream.namespace, id: stream.id } } : {})
        })
      )
    const seqArgument = (method: string, what: string, value: number) => {
      const problem = integerProblem(what, value, 0)
      return problem === undefined ? undefined : invalid(method, `Journal.${method}: ${problem}`)
    }

    const append: Journal["append"] = (stream, expectedVersion, events) => {
      const problem = appendProblem(stream, expectedVersion, events)
      if (problem !== undefined) return invalid("append", `Cannot append to stream ${formatStream(stream)}: ${problem}`, stream)
      return Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<AppendResult, JournalError | VersionConflict> => {
        const refusal = this.writeRefusal("append")
        if (refusal !== undefined) return Effect.fail(refusal)
        const current = this.index.versionOf(stream.namespace, stream.id)
        if (expectedVersion !== "any" && expectedVersion !== current) {
          return Effect.fail(
            new VersionConflict({ stream: { namespace: stream.namespace, id: stream.id }, expected: expectedVersion, actual: current })
          )
        }
        const timestamp = Math.max(now, this.lastTimestamp)
        const firstSeq = nextSeq(this.lastSeq, this.checkpoint)
        try {
          if (!this.write(appendedRecords(stream, events, firstSeq, current, timestamp))) {
            return this.whenIdle(() => append(stream, expectedVersion, events))
          }
        } catch (cause) {
          return Effect.fail(this.poison("append", `append to stream ${formatStream(stream)}`, cause))
        }
        const lastSeq = firstSeq + events.length - 1
        return this.acknowledge("append", lastSeq, { firstSeq, lastSeq, version: current + events.length, timestamp })
      })
    }

    const read: Journal["read"] = (stream, options) => {
      const problem = readProblem(stream, options)
      if (problem !== undefined) {
        return Stream.fromEffect(invalid("read", `Cannot read stream ${formatStream(stream)}: ${problem}`, stream))
      }
      return this.readStream(stream, options?.from ?? 1, options?.to ?? Number.MAX_SAFE_INTEGER, options?.max ?? Number.MAX_SAFE_INTEGER)
    }

    const replayFrom: Journal["replayFrom"] = (fromSeq) => {
      const bad = seqArgument("replayFrom", "fromSeq", fromSeq)
      return bad !== undefined ? Stream.fromEffect(bad) : this.replay(fromSeq)
    }

    const replayUntil: Journal["replayUntil"] = (fromSeq, untilMs) => {
      const bad = seqArgument("replayUntil", "fromSeq", fromSeq) ??
        (Number.isFinite(untilMs) ? undefined : invalid("replayUntil", `Journal.replayUntil: untilMs must be finite, got ${untilMs}`))
      // Timestamps never decrease in seq order for appends, but restored history keeps its own.
      return bad !== undefined ? Stream.fromEffect(bad) : Stream.filter(this.replay(fromSeq), (r) => r.timestamp <= untilMs)
    }

    const truncateBefore: Journal["truncateBefore"] = (seq) =>
      seqArgument("truncateBefore", "seq", seq) ?? this.whenIdle(() => {
        const refusal = this.writeRefusal("truncateBefore")
        if (refusal !== undefined) return Effect.fail(refusal)
        try {
          this.truncate(seq)
          return Effect.void
        } catch (cause) {
          return Effect.fail(this.poison("truncateBefore", `truncate before seq ${seq}`, cause))
        }
      })

    const setCheckpoint: Journal["setCheckpoint"] = (seq) =>
      seqArgument("setCheckpoint", "seq", seq) ?? Effect.suspend(() => {
        const refusal = this.writeRefusal("setCheckpoint")
        if (refusal !== undefined) return Effect.fail(refusal)
        if (seq <= this.checkpoint) return Effect.void
        try {
          this.writeCheckpoint(seq, this.truncatedBefore)
          return Effect.void
        } catch (cause) {
          return Effect.fail(this.poison("setCheckpoint", `store checkpoint ${seq}`, cause))
        }
      })

    const version: Journal["version"] = (stream) => {
      const problem = streamProblem(stream)
      return problem !== undefined
        ? invalid("version", `Cannot read the version of stream ${formatStream(stream)}: ${problem}`, stream)
        : Effect.sync(() => this.index.versionOf(stream.namespace, stream.id))
    }

    const restore: Journal["restore"] = (records) =>
      Effect.suspend(() => {
        const refusal = this.writeRefusal("restore")
        if (refusal !== undefined) return Effect.fail(refusal)
        const batch = Array.from(records)
        const versions = new Map<string, number>()
        let seq = this.lastSeq
        for (const record of batch) {
          const key = streamKey(record.namespace, record.id)
          const problem = restoreProblem(record, seq, versions.get(key) ?? this.index.versionOf(record.namespace, record.id)) ??
            (record.seq < this.truncatedBefore ? `seq ${record.seq} is below the truncation point ${this.truncatedBefore}` : undefined)
          if (problem !== undefined) return invalid("restore", `Cannot restore record seq ${record.seq}: ${problem}; nothing was restored`)
          seq = record.seq
          versions.set(key, record.version)
        }
        if (batch.length === 0) return Effect.void
        try {
          if (!this.write(batch)) return this.whenIdle(() => restore(batch))
        } catch (cause) {
          return Effect.fail(this.poison("restore", "restore records", cause))
        }
        return this.acknowledge("restore", seq, undefined)
      })

    return Journal.of({
      append,
      read,
      replayFrom,
      replayUntil,
      truncateBefore,
      checkpoint: Effect.sync(() => this.checkpoint),
      setCheckpoint,
      lastSeq: Effect.sync(() => this.lastSeq),
      version,
      restore
    })
  }

  /**
   * Removes every record below `seq`: drops them from the index, deletes the segments wholly below
   * (after storing the versions and last seq they held), and stores the new checkpoint and truncation
   * point. Segments that also hold later records stay; their early records are skipped on reading and
   * on reopening.
   */
  private truncate(seq: number): void {
    const checkpoint = Math.max(this.checkpoint, seq)
    if (seq <= this.truncatedBefore) {
      if (checkpoint > this.checkpoint) this.writeCheckpoint(checkpoint, this.truncatedBefore)
      return
    }
    // Raised first, so that an append resumed during the rotation below gets a seq at or above `seq`.
    this.checkpoint = checkpoint
    // The active segment lies wholly below: start a new one so that it can go.
    if (this.lastSeq < seq && this.activeSize > HEADER_BYTES) this.rotate()
    const touched = this.index.dropBefore(seq)
    const log = this.streamsLog
    log.lastSeq = Math.max(log.lastSeq, Math.min(this.lastSeq, seq - 1))
    log.lastTimestamp = this.lastTimestamp
    const below = this.order.slice(0, -1).filter((_, i) => this.segments.get(this.order[i + 1]!)!.firstSeq <= seq)
    // Before the checkpoint: a truncation point on disk implies that the versions below it are stored.
    if (touched.length > 0 || below.length > 0) log.append(touched, this.index)
    this.writeCheckpoint(checkpoint, seq)
    if (below.length > 0) this.deleteSegments(below)
  }
}
