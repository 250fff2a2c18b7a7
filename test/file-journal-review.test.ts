/**
 * Attacks on the file Journal's modules (the review of the split into segments, state files,
 * recovery, writer, reader and service; DESIGN §2 and §7): failures in the middle of rotation, group
 * commit and close, truncation and restore with appends in flight, and a reopen after each. The rule
 * every failure case checks: an append whose records are there after a reopen (a plain restart or a
 * power loss) was acknowledged, and an append that failed is not there; reads keep working on a
 * journal that refuses writes.
 */
import { Effect, Exit, Fiber, References, Stream } from "effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import type { FileJournalOptions } from "../src/file/FileJournal.ts"
import type { FileIo } from "../src/file/internal/fileIo.ts"
import { open } from "../src/file/internal/fileJournal.ts"
import type { AppendResult, JournalError, StreamRef, VersionConflict } from "../src/Journal.ts"
import { SimulatedFs } from "./support/simulatedFs.ts"

const directory = "/journal"
const ref = (id: string): StreamRef => ({ namespace: "review", id })
const event = (text: string) => ({ type: "Noted", payload: new TextEncoder().encode(text) })
const eio = (syscall: string) => Object.assign(new Error(`EIO: i/o error, ${syscall}`), { code: "EIO", syscall })

/**
 * A simulated disk whose flushes on the thread pool take `fdatasyncDelayMs`, with switches that make
 * the next writes, renames, fsyncs (on the calling thread) or thread-pool flushes fail with EIO and
 * no effect.
 */
const gatedDisk = (fdatasyncDelayMs?: number) => {
  const disk = new SimulatedFs({ fdatasyncDelayMs })
  const gate = { write: false, rename: false, fsync: false, fdatasync: false }
  const io: FileIo = {
    ...disk,
    writeSync: (fd, buffer, offset, length, position) => {
      if (gate.write) throw eio("write")
      return disk.writeSync(fd, buffer, offset, length, position)
    },
    renameSync: (from, to) => {
      if (gate.rename) throw eio("rename")
      disk.renameSync(from, to)
    },
    fsyncSync: (fd) => {
      if (gate.fsync) throw eio("fsync")
      disk.fsyncSync(fd)
    },
    fdatasync: (fd, callback) => {
      if (gate.fdatasync) setTimeout(() => callback(eio("fdatasync")), fdatasyncDelayMs ?? 0)
      else disk.fdatasync(fd, callback)
    }
  }
  return { disk, io, gate }
}

/** Every record in the journal on `io` as `id:payload`, in seq order (opened and closed again). */
const contents = (io: FileIo, options?: Omit<FileJournalOptions, "directory">) =>
  Effect.scoped(Effect.gen(function*() {
    const journal = yield* open({ ...options, directory }, io)
    const decoder = new TextDecoder()
    return (yield* Stream.runCollect(journal.replayFrom(0))).map((r) => `${r.id}:${decoder.decode(r.payload)}`)
  }))

type AppendExit = Exit.Exit<AppendResult, JournalError | VersionConflict>

/**
 * The rule for failures, after a plain restart (the same disk) and after a power loss (only what
 * was flushed): the records of the appends that succeeded are there, those of the appends that
 * failed are not. `appends` maps each append's `id:payload` to how it ended.
 */
const assertFailuresAbsent = (disk: SimulatedFs, appends: Record<string, AppendExit>) =>
  Effect.gen(function*() {
    for (const [what, io] of [["a power loss", disk.crash()], ["a restart", disk]] as const) {
      const found = yield* contents(io)
      for (const [record, exit] of Object.entries(appends)) {
        assert.equal(
          found.includes(record),
          Exit.isSuccess(exit),
          `after ${what}, ${record} is there only if its append succeeded (it ended ${String(exit)}; found ${JSON.stringify(found)})`
        )
      }
    }
  })

const quiet = Effect.provideService(References.MinimumLogLevel, "None")

// ─── A poisoned journal ────────────────────────────────────────────────────────────────────────

test("FileJournal review: after a segment's creation fails in a rotation, reads of the sealed segment keep working", () =>
  Effect.runPromise(Effect.gen(function*() {
    const { disk, io, gate } = gatedDisk()
    yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* open({ directory, segmentBytes: 256 }, io)
      yield* journal.append(ref("a"), 0, [event("a".repeat(100))])
      gate.rename = true
      const failed = yield* Effect.exit(journal.append(ref("a"), 1, [event("b".repeat(150))]))
      gate.rename = false
      assert.ok(Exit.isFailure(failed), "the append that needed the new segment failed")
      assert.ok(Exit.isFailure(yield* Effect.exit(journal.append(ref("b"), 0, [event("c")]))), "the journal refuses writes")
      // README: "Reads keep working".
      assert.deepEqual((yield* Stream.runCollect(journal.read(ref("a")))).map((r) => r.version), [1])
      assert.deepEqual((yield* Stream.runCollect(journal.replayFrom(0))).map((r) => r.seq), [1])
      assert.equal(yield* journal.lastSeq, 1)
    }))
    assert.deepEqual(yield* contents(disk), [`a:${"a".repeat(100)}`])
  }).pipe(quiet)))

// ─── Failures while appends are in flight ──────────────────────────────────────────────────────

test("FileJournal review: close's flush failing does not fail an append whose records a rotation already flushed", () =>
  Effect.runPromise(Effect.gen(function*() {
    const { disk, io, gate } = gatedDisk(20)
    const fibers = yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* open({ directory, segmentBytes: 256 }, io)
      yield* journal.append(ref("w"), 0, [event("w".repeat(100))])
      // Written in one step before their flush starts: "a" needs a new segment, and "b" another one,
      // whose rotation flushes (seals) the segment holding "a".
      const a = yield* Effect.forkDetach(journal.append(ref("a"), 0, [event("a".repeat(60))]))
      const b = yield* Effect.forkDetach(journal.append(ref("b"), 0, [event("b".repeat(60))]))
      yield* Effect.yieldNow
      assert.equal(disk.files().filter((f) => f.endsWith(".segment")).length, 3, "both appends rotated")
      gate.fsync = true // close's flush of the segment holding "b" fails
      return { a, b }
    }))
    gate.fsync = false
    const a = yield* Fiber.await(fibers.a)
    const b = yield* Fiber.await(fibers.b)
    assert.ok(Exit.isFailure(b), "the append close could not flush failed")
    yield* assertFailuresAbsent(disk, { [`a:${"a".repeat(60)}`]: a, [`b:${"b".repeat(60)}`]: b })
  }).pipe(quiet)))

test("FileJournal review: a write failing while a flush runs fails the appends that flush covers, and they are not there after a reopen", () =>
  Effect.runPromise(Effect.gen(function*() {
    const { disk, io, gate } = gatedDisk(20)
    const exits = yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* open({ directory }, io)
      // Two appends share a flush on the thread pool (20 ms); a third one's write fails meanwhile.
      const a = yield* Effect.forkDetach(journal.append(ref("a"), 0, [event("a")]))
      const b = yield* Effect.forkDetach(journal.append(ref("b"), 0, [event("b")]))
      yield* Effect.sleep("5 millis")
      assert.equal(a.pollUnsafe(), undefined, "the flush is still running")
      gate.write = true
      const c = yield* Effect.exit(journal.append(ref("c"), 0, [event("c")]))
      gate.write = false
      return { "a:a": yield* Fiber.await(a), "b:b": yield* Fiber.await(b), "c:c": c }
    }))
    assert.ok(Exit.isFailure(exits["c:c"]))
    yield* assertFailuresAbsent(disk, exits)
  }).pipe(quiet)))

test("FileJournal review: with \"interval\", a failed flush keeps the acknowledged records readable, and there after a restart", () =>
  Effect.runPromise(Effect.gen(function*() {
    const { disk, io, gate } = gatedDisk(5)
    const options = { durability: "interval", syncIntervalMs: 10 } as const
    yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* open({ ...options, directory }, io)
      yield* journal.append(ref("a"), 0, [event("1")])
      yield* Effect.sleep("40 millis") // flushed by the timer
      gate.fdatasync = true
      yield* journal.append(ref("a"), 1, [event("2")]) // acknowledged at once: "interval"
      yield* Effect.sleep("40 millis") // the timer's flush fails
      gate.fdatasync = false
      assert.ok(Exit.isFailure(yield* Effect.exit(journal.append(ref("a"), 2, [event("3")]))), "the failed flush poisoned writes")
      // README: "Reads keep working" — and they agree with lastSeq and version.
      assert.equal(yield* journal.lastSeq, 2)
      assert.equal(yield* journal.version(ref("a")), 2)
      assert.deepEqual((yield* Stream.runCollect(journal.read(ref("a")))).map((r) => r.version), [1, 2])
    }))
    // Only the process stopped: what the OS holds is still there, nothing acknowledged was thrown away.
    assert.deepEqual(yield* contents(disk, options), ["a:1", "a:2"])
  }).pipe(quiet)))
