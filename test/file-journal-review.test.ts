/**
 * Attacks on the file Journal's modules (the review of the split into segments, state files,
 * recovery, writer, reader and service; DESIGN §2 and §7): failures in the middle of rotation, group
 * commit and close, truncation and restore with appends in flight, and a reopen after each. The rule
 * every failure case checks: an append whose records are there after a reopen (a plain restart or a
 * power loss) was acknowledged, and an append that failed is not there; reads keep working on a
 * journal that refuses writes.
 */
import { Effect, Exit, Fiber, Layer, References, Stream } from "effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import type { FileJournalOptions } from "../src/file/FileJournal.ts"
import type { FileIo } from "../src/file/internal/fileIo.ts"
import { open } from "../src/file/internal/fileJournal.ts"
import { type AppendResult, Journal, type JournalError, type StreamRef, type VersionConflict } from "../src/Journal.ts"
import { register } from "./conformance/harness.ts"
import type { JournalStorage } from "./conformance/Journal.ts"
import { journalFollowCases } from "./conformance/JournalFollow.ts"
import { journalInFlightCases } from "./conformance/JournalInFlight.ts"
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

// ─── Truncation, restore and close with an append in flight ────────────────────────────────────

/** Two appends at once: their shared flush runs on the thread pool and is measured slow, so later ones stay there. */
const warm = (journal: Journal) =>
  Effect.all([journal.append(ref("w1"), "any", [event("w")]), journal.append(ref("w2"), "any", [event("w")])], {
    concurrency: "unbounded"
  })

test("FileJournal review: a stream truncated away and then appended to keeps its truncated version until the append is visible", () =>
  Effect.runPromise(Effect.gen(function*() {
    const { disk, io } = gatedDisk(20)
    const s = ref("s")
    yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* open({ directory, segmentBytes: 256 }, io)
      yield* warm(journal)
      yield* journal.append(s, 0, [event("1"), event("2")])
      yield* journal.truncateBefore((yield* journal.lastSeq) + 1)
      assert.equal(yield* journal.version(s), 2, "the version survives the truncation")
      const pending = yield* Effect.forkChild(journal.append(s, 2, [event("3")]))
      yield* Effect.sleep("5 millis")
      assert.equal(pending.pollUnsafe(), undefined, "the append waits for its flush")
      assert.equal(yield* journal.version(s), 2, "the truncated version, not the one in flight")
      assert.deepEqual(yield* Stream.runCollect(journal.read(s)), [])
      const conflict = yield* Effect.flip(journal.append(s, 2, [event("x")]))
      assert.equal(conflict._tag, "VersionConflict", "the check counts the append in flight")
      yield* Fiber.join(pending)
      assert.equal(yield* journal.version(s), 3)
      assert.deepEqual((yield* Stream.runCollect(journal.read(s))).map((r) => r.version), [3])
    }))
    assert.deepEqual(yield* contents(disk, { segmentBytes: 256 }), ["s:3"])
  }).pipe(quiet)))

test("FileJournal review: restore with an append in flight checks against the seqs and versions already assigned", () =>
  Effect.runPromise(Effect.gen(function*() {
    const { disk, io } = gatedDisk(20)
    const s = ref("s")
    yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* open({ directory }, io)
      yield* warm(journal)
      const pending = yield* Effect.forkChild(journal.append(s, 0, [event("1")]))
      yield* Effect.sleep("5 millis")
      assert.equal(yield* journal.lastSeq, 2, "the append in flight (seq 3) is not settled")
      const record = (seq: number, version: number) => ({
        ...s,
        seq,
        version,
        type: "Noted",
        payload: new TextEncoder().encode(String(version)),
        metadata: {},
        timestamp: 1
      })
      const taken = yield* Effect.flip(journal.restore([record(3, 1)]))
      assert.match(taken.message, /seq 3 is not above the journal's last seq 3/)
      const stale = yield* Effect.flip(journal.restore([record(4, 1)]))
      assert.match(stale.message, /version 1 does not follow version 1/)
      yield* journal.restore([record(4, 2)])
      yield* Fiber.join(pending)
      assert.deepEqual((yield* Stream.runCollect(journal.read(s))).map((r) => [r.seq, r.version]), [[3, 1], [4, 2]])
    }))
    assert.deepEqual(yield* contents(disk), ["w1:w", "w2:w", "s:1", "s:2"])
  }).pipe(quiet)))

test("FileJournal review: an append waiting to rotate when close starts fails as closed and is not there; the flush close waited for is acknowledged", () =>
  Effect.runPromise(Effect.gen(function*() {
    // A long fdatasync, so that the sleeps below land inside the flush of "a" even on a loaded machine
    // (with 20 ms, a 5 ms sleep that overslept let "b" rotate before close started).
    const { disk, io } = gatedDisk(200)
    const fibers = yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* open({ directory, segmentBytes: 256 }, io)
      yield* warm(journal)
      const a = yield* Effect.forkDetach(journal.append(ref("a"), 0, [event("a")]))
      yield* Effect.sleep("5 millis")
      // Needs a new segment, which waits until the flush running for "a" ends; close starts meanwhile.
      const b = yield* Effect.forkDetach(journal.append(ref("b"), 0, [event("b".repeat(200))]))
      yield* Effect.sleep("1 millis")
      assert.equal(b.pollUnsafe(), undefined)
      return { a, b }
    }))
    const a = yield* Fiber.await(fibers.a)
    const b = yield* Fiber.await(fibers.b)
    assert.ok(Exit.isSuccess(a), `the append whose flush close waited for succeeded: ${String(a)}`)
    assert.ok(Exit.isFailure(b) && /is closed/.test(String(b)), `the append after close started failed as closed: ${String(b)}`)
    yield* assertFailuresAbsent(disk, { "a:a": a, [`b:${"b".repeat(200)}`]: b })
  }).pipe(quiet)))

// ─── Appends in flight while segments rotate and the interval timer flushes ────────────────────

// The in-flight conformance cases (overlapping appends, readers, a truncator) on segments so small
// that nearly every append rotates, on a slow device: rotations wait for pending flushes, and
// truncation races rotation and, with "interval", the timer's flushes. Every build reopens the disk. The follow
// cases too: followers are woken by flushes that rotations and the timer complete.
const inFlightOnSmallSegments = (name: string, options: Omit<FileJournalOptions, "directory">) => {
  const fixture = {
    name,
    durable: true,
    storage: Effect.sync((): JournalStorage => {
      const disk = new SimulatedFs({ fdatasyncDelayMs: 2 })
      return { layer: Layer.effect(Journal, open({ ...options, directory }, disk)) }
    })
  }
  register("Journal", fixture, journalInFlightCases)
  register("Journal follow", fixture, journalFollowCases)
}

inFlightOnSmallSegments("file (always, 256-byte segments, simulated fs, 2 ms fdatasync)", { segmentBytes: 256 })
inFlightOnSmallSegments("file (interval 1 ms, 256-byte segments, simulated fs, 2 ms fdatasync)", {
  durability: "interval",
  syncIntervalMs: 1,
  segmentBytes: 256
})
