/**
 * The file Journal: the whole Journal conformance suite over a fresh directory per case (durable:
 * every build reopens the same directory), with default segments and with segments so small that
 * nearly every append rotates, so that rotation and whole-segment truncation run in every case.
 */
import { Effect, Exit, Layer, References, Stream } from "effect"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { test } from "node:test"
import { FileJournal } from "../src/file/index.ts"
import { Journal, type JournalRecord } from "../src/Journal.ts"
import { type FileIo, nodeFileIo } from "../src/file/internal/fileIo.ts"
import { open } from "../src/file/internal/fileJournal.ts"
import { expectError, register } from "./conformance/harness.ts"
import { type JournalStorage, journalCases } from "./conformance/Journal.ts"
import { journalFollowCases } from "./conformance/JournalFollow.ts"
import { readOnlyBesideWriter } from "./support/readOnlyBesideWriter.ts"
import { SimulatedFs } from "./support/simulatedFs.ts"
import { tempDirectory as makeTempDirectory } from "./support/tempDirectory.ts"

const tempDirectory = makeTempDirectory("journal")

/**
 * Registers the Journal and follow suites over a fresh directory per case, opened by `journalAt`
 * (durable: every build reopens the same directory).
 */
const fixture = (name: string, journalAt: (directory: string) => Layer.Layer<Journal, unknown>, followCases = journalFollowCases) => {
  const storage = {
    name,
    durable: true,
    storage: Effect.map(tempDirectory, (directory): JournalStorage => ({ layer: journalAt(directory) }))
  }
  register("Journal", storage, journalCases)
  register("Journal follow", storage, followCases)
}
const writable = (options: Omit<FileJournal.FileJournalOptions, "directory">) => (directory: string) =>
  FileJournal.layer({ ...options, directory })

fixture("file (always)", writable({}))
fixture("file (always, 256-byte segments)", writable({ segmentBytes: 256 }))
fixture("file (interval, 512-byte segments)", writable({ durability: "interval", syncIntervalMs: 5, segmentBytes: 512 }))
fixture("file (os)", writable({ durability: "os" }))

// Reads through a read-only journal opened beside the writer on the same directory (as the CLI or a
// second process reads): appends, truncation, the checkpoint and restore go to the writer; every read,
// follow, version, lastSeq and checkpoint comes from the reader, which must agree with the writer —
// except in what the README's "Read-only opens" says a reader beside a writer does otherwise:
const readOnlyDiffers = new Set([
  // it sees an append once it is in the file, which can be shortly before the writer's fdatasync returns;
  "never a record before its append returned: every delivered seq was acknowledged first",
  // its follow looks for new records every pollMs (100 ms), so a writer in a tight loop is far ahead;
  "a writer appending in a tight loop does not starve its follower: each record reaches it within a few appends",
  // records a truncation left on disk (in a segment it could not delete) read as before.
  "truncateBefore while followers wait: one behind the cut fails with JournalTruncated (never skips), ones at or past the cut go on"
])
const besideWriter = (options: Omit<FileJournal.FileJournalOptions, "directory">) => (directory: string) =>
  Layer.effect(Journal, readOnlyBesideWriter({ ...options, directory }))
const besideWriterFollowCases = journalFollowCases.filter((testCase) => !readOnlyDiffers.has(testCase.name))

fixture("file (read-only reader beside the writer)", besideWriter({}), besideWriterFollowCases)
fixture("file (read-only reader beside the writer, 256-byte segments)", besideWriter({ segmentBytes: 256 }), besideWriterFollowCases)

// A slow device: each fdatasync on the thread pool takes 2 ms, so that appends are reliably in flight
// (and share flushes) while the conformance cases read. Every build reopens the same simulated disk.
const slowDevice = {
  name: "file (always, simulated fs, 2 ms fdatasync)",
  durable: true,
  storage: Effect.sync((): JournalStorage => {
    const disk = new SimulatedFs({ fdatasyncDelayMs: 2 })
    return { layer: Layer.effect(Journal, open({ directory: "/journal" }, disk)) }
  })
}
register("Journal", slowDevice, journalCases)
register("Journal follow", slowDevice, journalFollowCases)

// ─── Failures poison writes until reopen ───────────────────────────────────────────────────────

const eio = (syscall: string) => Object.assign(new Error(`EIO: i/o error, ${syscall}`), { code: "EIO", syscall })

/**
 * `node:fs` with switchable write and fdatasync failures, counting flushes: `syncs` on the thread
 * pool (`fdatasync`), `callerSyncs` on the calling thread (`fdatasyncSync`). With `instantFlush`,
 * flushes report success without touching the disk, so they always count as fast.
 */
const faultyIo = (options?: { readonly instantFlush?: boolean }) => {
  const state = { failWrite: false, failSync: false, syncs: 0, callerSyncs: 0 }
  const instant = options?.instantFlush === true
  const io: FileIo = {
    ...nodeFileIo,
    writeSync: (fd, buffer, offset, length, position) => {
      if (state.failWrite) throw eio("write")
      return nodeFileIo.writeSync(fd, buffer, offset, length, position)
    },
    fdatasync: (fd, callback) => {
      state.syncs++
      if (state.failSync) setTimeout(() => callback(eio("fdatasync")), 1)
      else if (instant) queueMicrotask(() => callback(null))
      else nodeFileIo.fdatasync(fd, callback)
    },
    fdatasyncSync: (fd) => {
      state.callerSyncs++
      if (state.failSync) throw eio("fdatasync")
      if (!instant) nodeFileIo.fdatasyncSync(fd)
    }
  }
  return { io, state }
}

const stream = { namespace: "cart", id: "1" }
const event = (text: string) => ({ type: "Added", payload: new TextEncoder().encode(text) })
const texts = (records: ReadonlyArray<JournalRecord>) => records.map((r) => new TextDecoder().decode(r.payload))

test("FileJournal: a failed write fails that append and every later write until reopen; reads go on", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const directory = yield* tempDirectory
    const { io, state } = faultyIo()
    yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* open({ directory }, io)
      yield* journal.append(stream, 0, [event("kept")])
      state.failWrite = true
      yield* expectError(journal.append(stream, 1, [event("lost")]), "JournalError", "EIO", directory)
      state.failWrite = false
      yield* expectError(journal.append(stream, 1, [event("refused")]), "JournalError", "refuses writes", "reopen")
      yield* expectError(journal.setCheckpoint(5), "JournalError", "refuses writes")
      yield* expectError(journal.truncateBefore(5), "JournalError", "refuses writes")
      assert.deepEqual(texts(yield* Stream.runCollect(journal.read(stream))), ["kept"])
    }))
    const journal = yield* open({ directory }, io)
    assert.deepEqual(texts(yield* Stream.runCollect(journal.replayFrom(1))), ["kept"])
    yield* journal.append(stream, 1, [event("after reopen")])
    assert.deepEqual(texts(yield* Stream.runCollect(journal.read(stream))), ["kept", "after reopen"])
  }))))

test("FileJournal: a failed fdatasync fails the waiting appends, is never retried, and refuses later writes", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const directory = yield* tempDirectory
    const { io, state } = faultyIo()
    yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* open({ directory, durability: "always" }, io)
      yield* journal.append(stream, 0, [event("durable")])
      state.failSync = true
      const results = yield* Effect.all(
        Array.from({ length: 8 }, (_, i) => Effect.exit(journal.append({ namespace: "cart", id: `c${i}` }, 0, [event(`x${i}`)]))),
        { concurrency: "unbounded" }
      )
      assert.ok(results.every(Exit.isFailure), "no append may succeed on a failed fdatasync")
      const syncs = state.syncs + state.callerSyncs
      state.failSync = false
      yield* expectError(journal.append(stream, 1, [event("refused")]), "JournalError", "refuses writes")
      assert.equal(state.syncs + state.callerSyncs, syncs, "the failed fdatasync was retried")
      // Unacknowledged records are not visible to reads under "always".
      assert.deepEqual(texts(yield* Stream.runCollect(journal.replayFrom(1))), ["durable"])
    }))
    const journal = yield* open({ directory }, io)
    const records = yield* Stream.runCollect(journal.replayFrom(1))
    assert.equal(records[0]!.seq, 1)
    assert.equal(texts(records)[0], "durable")
    const appended = yield* journal.append(stream, 1, [event("after reopen")])
    assert.equal(appended.version, 2)
  }))))

test("FileJournal: a lone append is flushed on the calling thread, concurrent appends share one flush on the thread pool", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const directory = yield* tempDirectory
    const { io, state } = faultyIo({ instantFlush: true })
    const journal = yield* open({ directory, durability: "always" }, io)
    for (let i = 0; i < 5; i++) yield* journal.append(stream, i, [event(`lone ${i}`)])
    assert.equal(state.callerSyncs, 5, "lone appends are flushed on the calling thread")
    assert.equal(state.syncs, 0, "no lone append is flushed on the thread pool")
    // A large append is flushed on the thread pool even when flushes are fast.
    yield* journal.append(stream, 5, [{ type: "Added", payload: new Uint8Array(100_000) }])
    assert.equal(state.syncs, 1, "a 100 kB append is flushed on the thread pool")
    const before = state.syncs + state.callerSyncs
    const poolBefore = state.syncs
    yield* Effect.all(
      Array.from({ length: 16 }, (_, i) => journal.append({ namespace: "cart", id: `g${i}` }, 0, [event(`group ${i}`)])),
      { concurrency: "unbounded" }
    )
    const flushes = state.syncs + state.callerSyncs - before
    assert.ok(flushes >= 1 && flushes <= 2, `16 concurrent appends took ${flushes} flushes`)
    assert.ok(state.syncs > poolBefore, "the shared flush runs on the thread pool")
    assert.equal((yield* Stream.runCollect(journal.replayFrom(1))).length, 22)
  }))))

test("FileJournal: a failed flush of a lone append on the calling thread fails it and refuses later writes", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const directory = yield* tempDirectory
    const { io, state } = faultyIo({ instantFlush: true })
    yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* open({ directory, durability: "always" }, io)
      yield* journal.append(stream, 0, [event("durable")])
      state.failSync = true
      const callerSyncs = state.callerSyncs
      yield* expectError(journal.append(stream, 1, [event("lost")]), "JournalError", "EIO", directory)
      assert.equal(state.callerSyncs, callerSyncs + 1, "the failed flush ran on the calling thread")
      const syncs = state.syncs + state.callerSyncs
      state.failSync = false
      yield* expectError(journal.append(stream, 1, [event("refused")]), "JournalError", "refuses writes")
      assert.equal(state.syncs + state.callerSyncs, syncs, "the failed fdatasync was retried")
      assert.deepEqual(texts(yield* Stream.runCollect(journal.read(stream))), ["durable"])
    }))
    const journal = yield* open({ directory }, io)
    assert.deepEqual(texts(yield* Stream.runCollect(journal.read(stream))), ["durable"])
  }))))

test("FileJournal: appends from fibers that yield at every step are all acknowledged (none waits for a flush that already covered it)", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const directory = yield* tempDirectory
    const { io } = faultyIo({ instantFlush: true })
    const journal = yield* open({ directory, durability: "always" }, io)
    const results = yield* Effect.all(
      Array.from({ length: 64 }, (_, i) =>
        Effect.forEach([0, 1, 2], (v) => journal.append({ namespace: "cart", id: `y${i}` }, v, [event(`${i}.${v}`)]))),
      { concurrency: "unbounded" }
    ).pipe(
      // A fiber yields every third operation (1 and 2 livelock Effect itself): also between its write
      // and its wait for the flush.
      Effect.provideService(References.MaxOpsBeforeYield, 3),
      Effect.timeoutOrElse({ duration: "20 seconds", orElse: () => Effect.die(new Error("an append never completed")) })
    )
    assert.equal(results.flat().length, 192)
    assert.equal(yield* journal.lastSeq, 192)
  }))))

test("FileJournal: records a killed process wrote but never flushed are flushed by the next \"always\" open before reads see them", () =>
  Effect.gen(function*() {
    const directory = "/journal"
    const disk = new SimulatedFs()
    // An "os" writer: its records stay in the (simulated) page cache when it goes away.
    yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* open({ directory, durability: "os" }, disk)
      yield* journal.append(stream, 0, [event("one"), event("two")])
    }))
    assert.ok(disk.pendingCount > 0, "the writer left unflushed data")
    const seen = yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* open({ directory, durability: "always" }, disk)
      return texts(yield* Stream.runCollect(journal.read(stream)))
    }))
    assert.deepEqual(seen, ["one", "two"])
    // A power loss now must not take back what readers of an "always" journal saw.
    const after = disk.crash()
    const journal = yield* open({ directory, durability: "always" }, after)
    assert.deepEqual(texts(yield* Stream.runCollect(journal.read(stream))), seen)
  }).pipe(Effect.scoped, Effect.runPromise))

// ─── Time, across reopens ──────────────────────────────────────────────────────────────────────

test("FileJournal: timestamps never go backwards in seq order across reopens and truncation, even when the clock does", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const directory = yield* tempDirectory
    const reopen = <A, E>(body: (journal: Journal) => Effect.Effect<A, E>) =>
      Effect.scoped(Effect.flatMap(open({ directory }, nodeFileIo), body))
    yield* TestClock.setTime(5_000)
    yield* reopen((journal) => journal.append(stream, 0, [event("at 5000")]))
    yield* TestClock.setTime(1_000) // the clock steps back
    const second = yield* reopen((journal) => journal.append(stream, 1, [event("clock at 1000")]))
    assert.equal(second.timestamp, 5_000)
    yield* reopen((journal) => journal.truncateBefore(100)) // everything goes
    const third = yield* reopen((journal) => journal.append(stream, 2, [event("after truncation")]))
    assert.equal(third.timestamp, 5_000)
    assert.equal(third.firstSeq, 100)
    assert.equal(third.version, 3)
  })).pipe(Effect.provide(TestClock.layer()))))

test("FileJournal: bad options fail with a JournalError naming the option", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const directory = yield* tempDirectory
    yield* expectError(open({ directory, durability: "sometimes" as "os" }, nodeFileIo), "JournalError", "durability")
    yield* expectError(open({ directory, segmentBytes: 10 }, nodeFileIo), "JournalError", "segmentBytes")
    yield* expectError(open({ directory, syncIntervalMs: 0 }, nodeFileIo), "JournalError", "syncIntervalMs")
    yield* expectError(open({ directory: "" }, nodeFileIo), "JournalError", "directory")
  }))))
