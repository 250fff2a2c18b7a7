/**
 * The file Journal: the whole Journal conformance suite over a fresh directory per case (durable:
 * every build reopens the same directory), with default segments and with segments so small that
 * nearly every append rotates, so that rotation and whole-segment truncation run in every case.
 */
import { Effect, Exit, Stream } from "effect"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { test } from "node:test"
import { FileJournal } from "../src/file/index.ts"
import type { Journal, JournalRecord } from "../src/Journal.ts"
import { type FileIo, nodeFileIo } from "../src/internal/fileIo.ts"
import { open } from "../src/internal/fileJournal.ts"
import { expectError, register } from "./conformance/harness.ts"
import { type JournalStorage, journalCases } from "./conformance/Journal.ts"
import { tempDirectory as makeTempDirectory } from "./support/tempDirectory.ts"

const tempDirectory = makeTempDirectory("journal")

const fixture = (name: string, options: Omit<FileJournal.FileJournalOptions, "directory">) =>
  register("Journal", {
    name,
    durable: true,
    storage: Effect.map(tempDirectory, (directory): JournalStorage => ({ layer: FileJournal.layer({ ...options, directory }) }))
  }, journalCases)

fixture("file (always)", {})
fixture("file (always, 256-byte segments)", { segmentBytes: 256 })
fixture("file (interval, 512-byte segments)", { durability: "interval", syncIntervalMs: 5, segmentBytes: 512 })
fixture("file (os)", { durability: "os" })

// ─── Failures poison writes until reopen ───────────────────────────────────────────────────────

const eio = (syscall: string) => Object.assign(new Error(`EIO: i/o error, ${syscall}`), { code: "EIO", syscall })

/**
 * `node:fs` with switchable write and fdatasync failures, counting flushes: `syncs` on the thread
 * pool (`fdatasync`), `callerSyncs` on the calling thread (`fdatasyncSync`).
 */
const faultyIo = () => {
  const state = { failWrite: false, failSync: false, syncs: 0, callerSyncs: 0 }
  const io: FileIo = {
    ...nodeFileIo,
    writeSync: (fd, buffer, offset, length, position) => {
      if (state.failWrite) throw eio("write")
      return nodeFileIo.writeSync(fd, buffer, offset, length, position)
    },
    fdatasync: (fd, callback) => {
      state.syncs++
      if (state.failSync) setTimeout(() => callback(eio("fdatasync")), 1)
      else nodeFileIo.fdatasync(fd, callback)
    },
    fdatasyncSync: (fd) => {
      state.callerSyncs++
      if (state.failSync) throw eio("fdatasync")
      nodeFileIo.fdatasyncSync(fd)
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
    const { io, state } = faultyIo()
    const journal = yield* open({ directory, durability: "always" }, io)
    for (let i = 0; i < 5; i++) yield* journal.append(stream, i, [event(`lone ${i}`)])
    // A slow device may send a lone flush to the thread pool; on any machine most stay on the caller.
    assert.ok(state.callerSyncs >= 3, `lone appends flushed on the calling thread: ${state.callerSyncs} of 5`)
    const before = state.syncs + state.callerSyncs
    const poolBefore = state.syncs
    yield* Effect.all(
      Array.from({ length: 16 }, (_, i) => journal.append({ namespace: "cart", id: `g${i}` }, 0, [event(`group ${i}`)])),
      { concurrency: "unbounded" }
    )
    const flushes = state.syncs + state.callerSyncs - before
    assert.ok(flushes >= 1 && flushes <= 2, `16 concurrent appends took ${flushes} flushes`)
    assert.ok(state.syncs > poolBefore, "the shared flush runs on the thread pool")
    assert.equal((yield* Stream.runCollect(journal.replayFrom(1))).length, 21)
  }))))

test("FileJournal: a failed flush of a lone append on the calling thread fails it and refuses later writes", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const directory = yield* tempDirectory
    const { io, state } = faultyIo()
    yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* open({ directory, durability: "always" }, io)
      yield* journal.append(stream, 0, [event("durable")])
      state.failSync = true
      yield* expectError(journal.append(stream, 1, [event("lost")]), "JournalError", "EIO", directory)
      const syncs = state.syncs + state.callerSyncs
      state.failSync = false
      yield* expectError(journal.append(stream, 1, [event("refused")]), "JournalError", "refuses writes")
      assert.equal(state.syncs + state.callerSyncs, syncs, "the failed fdatasync was retried")
      assert.deepEqual(texts(yield* Stream.runCollect(journal.read(stream))), ["durable"])
    }))
    const journal = yield* open({ directory }, io)
    assert.deepEqual(texts(yield* Stream.runCollect(journal.read(stream))), ["durable"])
  }))))

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
