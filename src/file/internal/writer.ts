/**
 * The file Journal's write path: one write per append to the active segment, the three durability
 * modes with group commit, rotation, truncation, the checkpoint, and poisoning after an I/O failure.
 *
 * It owns the positions reads depend on (DESIGN §2): `assignedSeq` is the highest seq assigned (written,
 * perhaps still in flight); `visibleSeq` the highest a read may return — durable with `"always"`,
 * written otherwise. A single writer makes records visible in seq order, so visible records are
 * settled at once. With `"always"` records become visible in the step that resumes the appends
 * that wrote them, and followers wake after that: none delivers a record before its append returned.
 * @internal
 */
import * as Effect from "effect/Effect"
import { JournalError, type JournalRecord } from "../../Journal.ts"
import { Settled } from "../../internal/follow.ts"
import { message } from "./errors.ts"
import { writeAll } from "./fileIo.ts"
import type { CheckpointFile } from "./checkpointFile.ts"
import type { RecordIndex } from "./recordIndex.ts"
import type { SegmentSet } from "./segments.ts"
import { type FrameCodec, HEADER_BYTES } from "./segmentFormat.ts"
import type { StreamsLog } from "./streamsLog.ts"

/** A flush for a single waiting append runs on the calling thread while flushes take less than this. */
const SYNC_FLUSH_MAX_MS = 1
/** …and while it covers at most this many bytes. */
const SYNC_FLUSH_MAX_BYTES = 64 * 1024

interface Waiter {
  readonly seq: number
  readonly done: (error: JournalError | undefined) => void
}

/** Told about every flush: how long it took and how many waiting appends it was started for (group commit). @internal */
export type FlushObserver = (millis: number, appends: number) => void

/** The writer of one open journal. @internal */
export class Writer {
  /** The highest seq assigned. */
  assignedSeq: number
  lastTimestamp: number
  /** The highest seq reads may return (with `"always"`: raised when the appends that wrote them are resumed). */
  visibleSeq: number
  /** Notified whenever `visibleSeq` rises or the journal closes: followers wait on it. */
  readonly settled = new Settled()
  /** Highest seq known to be on the device. */
  private durableSeq: number
  private waiters: Array<Waiter> = []
  /** A microtask that starts a flush is queued. */
  private flushQueued = false
  /** Milliseconds the last flush took (0 before the first). */
  private lastFlushMs = 0
  private syncing: Promise<void> | undefined
  private failure: JournalError | undefined
  private closing = false
  private readonly segments: SegmentSet
  private readonly checkpoint: CheckpointFile
  private readonly streamsLog: StreamsLog
  private readonly index: RecordIndex
  private readonly segmentBytes: number
  private readonly codec: FrameCodec
  private readonly observeFlush: FlushObserver

  constructor(
    segments: SegmentSet,
    checkpoint: CheckpointFile,
    index: RecordIndex,
    segmentBytes: number,
    codec: FrameCodec,
    recovered: { readonly lastSeq: number; readonly lastTimestamp: number; readonly streamsLog: StreamsLog },
    observeFlush: FlushObserver
  ) {
    this.segments = segments
    this.checkpoint = checkpoint
    this.streamsLog = recovered.streamsLog
    this.index = index
    this.segmentBytes = segmentBytes
    this.codec = codec
    this.observeFlush = observeFlush
    this.assignedSeq = recovered.lastSeq
    this.lastTimestamp = recovered.lastTimestamp
    this.durableSeq = this.visibleSeq = recovered.lastSeq
  }

  /**
   * A follower from this seq on lost nothing to truncation: the truncation point, or one past the
   * highest seq that existed below it when it lay beyond the end of the log (the seqs in between are
   * never assigned: later appends and restores start at or above the truncation point).
   */
  get removedBefore(): number {
    return Math.min(this.checkpoint.truncatedBefore, this.streamsLog.lastSeq + 1)
  }

  /** True once `close` began: no write is taken, followers end. */
  get closed(): boolean {
    return this.closing
  }

  private get directory(): string {
    return this.segments.directory
  }

  /** Fails when the journal cannot take writes (closed, or poisoned by an earlier I/O failure). */
  writeRefusal(method: string): JournalError | undefined {
    if (this.closing) return new JournalError({ method, message: `The journal in ${this.directory} is closed` })
    if (this.failure === undefined) return undefined
    return new JournalError({
      method,
      message: `The journal in ${this.directory} refuses writes after an earlier failure (${this.failure.message}); reopen it`,
      cause: this.failure
    })
  }

  /**
   * Records an I/O failure: this write and every later one fail until the journal is reopened, and so
   * do the appends waiting for a flush. With `"always"` everything past the last flushed byte is
   * theirs, so it is cut off: a failed append must not be there after a reopen. (With `"interval"`
   * and `"os"` those records are acknowledged already and stay.)
   */
  poison(method: string, what: string, cause: unknown): JournalError {
    const error = new JournalError({ method, message: `Could not ${what} in ${this.directory}: ${message(cause)}`, cause })
    if (this.failure === undefined) this.failure = error
    this.release(error)
    if (this.segments.durability === "always") this.cutToDurable()
    return error
  }

  /**
   * Writes one append's (or restore's) records as one write to the active segment and indexes them;
   * `false` (nothing written) when the segment must be sealed first but a flush round runs.
   */
  write(records: ReadonlyArray<JournalRecord>): boolean {
    const segments = this.segments
    const data = this.codec.encodeFrames(records)
    if (segments.activeSize > HEADER_BYTES && segments.activeSize + data.length > this.segmentBytes) {
      if (this.syncing !== undefined) return false
      this.rotate()
    }
    const start = segments.activeSize
    writeAll(segments.io, segments.activeFd, data, start)
    segments.activeSize += data.length
    let offset = start
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
    let stream = -1
    let previous: JournalRecord | undefined
    for (const record of records) {
      const size = view.getUint32(offset - start, true) + 8
      if (previous === undefined || previous.namespace !== record.namespace || previous.id !== record.id) {
        stream = this.index.streamOrCreate(record.namespace, record.id)
        previous = record
      }
      this.index.add(stream, record.version, record.seq, segments.active.number, offset, size)
      offset += size
    }
    const last = records[records.length - 1]!
    this.assignedSeq = last.seq
    this.lastTimestamp = Math.max(this.lastTimestamp, last.timestamp)
    if (segments.durability !== "always") {
      this.visibleSeq = this.assignedSeq
      this.settled.notify()
    }
    return true
  }

  /**
   * Seals the active segment and starts the next. Sealing flushed every record written so far, so
   * the appends waiting for them are acknowledged now: a failure of a later flush (of the next
   * segment) must not fail appends whose records are on the device.
   */
  private rotate(): void {
    this.segments.rotate(this.assignedSeq + 1)
    if (this.segments.durability !== "os") this.markDurable(this.assignedSeq)
  }

  /**
   * Runs `action` once no flush round runs, checking in the same synchronous step that starts it. A
   * segment is sealed (and fsynced) only then: had another fsync of the same file run alongside, a
   * write-back error could be reported to that one alone, and records written to the next segment
   * would outlive the ones lost before them.
   */
  whenIdle<A, E>(action: () => Effect.Effect<A, E>): Effect.Effect<A, E> {
    return Effect.suspend(() =>
      this.syncing === undefined ? action() : Effect.andThen(Effect.promise(() => this.syncing!), this.whenIdle(action))
    )
  }

  /**
   * Succeeds with `result` once every record up to `seq` is durable as the durability mode promises
   * (and, with `"always"`, visible).
   */
  acknowledge<A>(method: string, seq: number, result: A): Effect.Effect<A, JournalError> {
    if (this.segments.durability !== "always" || this.visibleSeq >= seq) return Effect.succeed(result)
    return Effect.callback<A, JournalError>((resume) => {
      // The fiber may have yielded since its write: a flush may have covered it, or a failure (or a
      // close) ended writing, and neither would ever resume a waiter registered now.
      if (this.visibleSeq >= seq) return resume(Effect.succeed(result))
      // Durable, and visible on the microtask `markDurable` queued: resumed after it.
      if (this.durableSeq >= seq) return queueMicrotask(() => resume(Effect.succeed(result)))
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
    if (this.syncing !== undefined || this.failure !== undefined || this.closing || this.durableSeq >= this.assignedSeq) return
    const segments = this.segments
    const io = segments.io
    const target = this.assignedSeq
    const bytes = segments.activeSize
    const fd = segments.activeFd
    const path = segments.active.path
    const started = performance.now()
    const appends = this.waiters.length
    const flushed = (error: unknown): void => {
      this.lastFlushMs = performance.now() - started
      this.observeFlush(this.lastFlushMs, appends)
      if (error !== null) {
        this.poison("append", `flush ${path} to disk`, error)
        return
      }
      // Another flush (a rotation's) failed meanwhile: what this one covered may be lost after all.
      if (this.failure !== undefined) return
      segments.durableBytes = Math.max(segments.durableBytes, bytes)
      this.markDurable(target)
    }
    if (this.waiters.length === 1 && this.lastFlushMs < SYNC_FLUSH_MAX_MS && bytes - segments.durableBytes <= SYNC_FLUSH_MAX_BYTES) {
      let error: unknown = null
      try {
        io.fdatasyncSync(fd)
      } catch (cause) {
        error = cause
      }
      flushed(error)
      return
    }
    this.syncing = new Promise<void>((resolve) => {
      // Measured on Node 20 with fibers keeping the event loop busy (setImmediate turns, synchronous
      // reads): the completion of an fdatasync on the thread pool was taken up seconds late (median
      // 0.5 s, while strace showed the syscall itself take under 20 ms). A 1 ms timer while the flush
      // runs makes the loop look for it; unref'd, it never keeps a process alive.
      const wake = setInterval(() => {}, 1)
      ;(wake as { unref?: () => void }).unref?.()
      const done = (error: unknown) => {
        clearInterval(wake)
        this.syncing = undefined
        flushed(error)
        // After `flushed`: what waits for this round (a truncation) runs once the records it covered are visible.
        resolve()
        if (this.waiters.length > 0) this.startSync()
      }
      try {
        io.fdatasync(fd, done)
      } catch (cause) {
        queueMicrotask(() => done(cause))
      }
    })
  }

  /**
   * After a failure, best effort: cut the active segment back to its last flushed byte and flush that.
   * A failed flush may also have dropped its data while later writes still reach the disk, which
   * would leave a hole before intact (never acknowledged) records — damage that recovery refuses.
   */
  private cutToDurable(): void {
    try {
      this.segments.io.ftruncateSync(this.segments.activeFd, this.segments.durableBytes)
      this.segments.io.fsyncSync(this.segments.activeFd)
    } catch {
      // The journal is poisoned already; recovery names whatever damage remains.
    }
  }

  /**
   * Records that everything up to `seq` is on the device and, after the current synchronous step (a
   * rotation, a write) has finished, never inside it: makes it visible (with `"always"`) and
   * acknowledges the appends waiting for it, all in one step, so that a follower (woken on a later
   * microtask) never sees a record whose append has not returned.
   */
  private markDurable(seq: number): void {
    this.durableSeq = Math.max(this.durableSeq, seq)
    const visible = this.segments.durability === "always" ? this.durableSeq : this.visibleSeq
    const done = this.waiters.filter((waiter) => waiter.seq <= this.durableSeq)
    if (done.length === 0 && visible <= this.visibleSeq) return
    this.waiters = this.waiters.filter((waiter) => waiter.seq > this.durableSeq)
    queueMicrotask(() => {
      if (visible > this.visibleSeq) {
        this.visibleSeq = visible
        this.settled.notify()
      }
      for (const waiter of done) waiter.done(undefined)
    })
  }

  /** Fails every waiting append with `error` (after the current synchronous step). */
  private release(error: JournalError): void {
    const waiters = this.waiters
    this.waiters = []
    queueMicrotask(() => {
      for (const waiter of waiters) waiter.done(error)
    })
  }

  /**
   * Moves the checkpoint to at least `seq` and removes the visible records below `seq` — never one
   * still in flight (DESIGN §2): those stay, below the checkpoint, and a later truncation removes them.
   * Drops them from the index, appends the versions of the streams it touched to the streams file,
   * deletes the segments wholly below, and stores the new checkpoint and truncation point. Segments that also hold later
   * records stay; their early records are skipped on reading and on reopening. Call within `whenIdle`.
   */
  truncate(seq: number): void {
    const state = this.checkpoint
    const checkpoint = Math.max(state.checkpoint, seq)
    // Appends in flight hold seqs visibleSeq + 1 .. assignedSeq: the cut stops before the first of them.
    const cut = this.assignedSeq > this.visibleSeq ? Math.min(seq, this.visibleSeq + 1) : seq
    if (cut <= state.truncatedBefore) {
      if (checkpoint > state.checkpoint) state.write(checkpoint, state.truncatedBefore)
      return
    }
    // Raised first, so that an append resumed during the rotation below gets a seq at or above `seq`.
    state.checkpoint = checkpoint
    // The active segment lies wholly below (everything written is visible then): start a new one so that it can go.
    if (this.assignedSeq < cut && this.segments.activeSize > HEADER_BYTES) this.rotate()
    const touched = this.index.dropBefore(cut)
    const log = this.streamsLog
    log.lastSeq = Math.max(log.lastSeq, Math.min(this.assignedSeq, cut - 1))
    log.lastTimestamp = this.lastTimestamp
    const below = this.segments.wholeBelow(cut)
    // Before the checkpoint: a truncation point on disk implies that the versions below it are stored.
    if (touched.length > 0 || below.length > 0) log.append(touched, this.index)
    state.write(checkpoint, cut)
    if (below.length > 0) this.segments.delete(below)
  }

  /**
   * Closes the journal: waits for a running flush, then flushes what is written (unless `"os"`) and
   * acknowledges the appends that flush covered — an append whose records outlive the close has
   * succeeded. If that flush fails, the appends waiting for it fail and are cut back (see `poison`),
   * so that what failed is not there after a reopen.
   */
  close(): Effect.Effect<void> {
    const self = this
    return Effect.gen(function*() {
      self.closing = true
      while (self.syncing !== undefined) yield* Effect.promise(() => self.syncing!)
      const segments = self.segments
      if (self.segments.durability !== "os" && self.failure === undefined && self.durableSeq < self.assignedSeq) {
        try {
          segments.io.fsyncSync(segments.activeFd)
          segments.durableBytes = segments.activeSize
          self.markDurable(self.assignedSeq)
        } catch (cause) {
          const error = self.poison("append", `flush ${segments.active.path} to disk on close`, cause)
          yield* Effect.logWarning(error.message)
        }
      }
      try {
        segments.closeActive()
      } catch {
        // The descriptor is gone either way.
      }
      const refusal = self.writeRefusal("append")
      if (refusal !== undefined) self.release(refusal)
      self.settled.notify()
    })
  }
}
