/**
 * The file Journal with appends in flight ("always" durability, a flush held open by the test): what
 * reads, `lastSeq`, `version` and `truncateBefore` see of records written but not yet durable
 * (DESIGN §2), what `close` does with them, and what recovery says when it cuts a tail.
 */
import { Effect, Exit, Fiber, Layer, Logger, Option, References, Stream } from "effect"
import assert from "node:assert/strict"
import * as fs from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import { Checkpointer, Codec, Journal, Repository, SnapshotStore } from "../src/index.ts"
import { type FileIo, nodeFileIo } from "../src/file/internal/fileIo.ts"
import { open } from "../src/file/internal/fileJournal.ts"
import { append, fold, type LedgerEvent, ledger } from "./support/ledger.ts"
import { tempDirectory as makeTempDirectory } from "./support/tempDirectory.ts"

const tempDirectory = makeTempDirectory("in-flight")
const stream = { namespace: "cart", id: "1" }
const other = { namespace: "cart", id: "2" }
const event = (text: string) => ({ type: "Added", payload: new TextEncoder().encode(text) })

/**
 * `node:fs` whose flushes can be held: while `hold` is set, every flush (on the thread pool or the
 * calling thread's, which is sent to the thread pool instead) waits until `release()`.
 */
const heldIo = () => {
  let held: Array<() => void> = []
  const gate = {
    hold: false,
    failSync: false,
    release: () => {
      gate.hold = false
      const waiting = held
      held = []
      for (const go of waiting) go()
    }
  }
  const io: FileIo = {
    ...nodeFileIo,
    fdatasync: (fd, callback) => {
      // Slow (2 ms) as well, so that the journal keeps flushing on the thread pool.
      const go = () => nodeFileIo.fdatasync(fd, (error) => setTimeout(() => callback(error), 2))
      if (gate.hold) held.push(go)
      else go()
    },
    // The calling-thread flush would end the window at once: make it look slow, so that the journal
    // uses the thread pool (the path group commit takes under load).
    fdatasyncSync: (fd) => {
      const until = performance.now() + 2
      while (performance.now() < until) { /* a slow device */ }
      nodeFileIo.fdatasyncSync(fd)
    },
    fsyncSync: (fd) => {
      if (gate.failSync) throw Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" })
      nodeFileIo.fsyncSync(fd)
    }
  }
  return { io, gate }
}

const collect = (journal: Journal.Journal, fromSeq = 0) => Effect.map(Stream.runCollect(journal.replayFrom(fromSeq)), (r) => r.map((x) => x.seq))

/** Appends once so that the next flush runs on the thread pool (the first flush measured slow). */
const warm = (journal: Journal.Journal) => journal.append(other, "any", [event("warm")])

test("FileJournal in flight: lastSeq, version, read and replay agree and exclude an append waiting for its flush", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const directory = yield* tempDirectory
    const { io, gate } = heldIo()
    const journal = yield* open({ directory }, io)
    yield* warm(journal)
    yield* journal.append(stream, 0, [event("a")])
    const before = yield* journal.lastSeq
    gate.hold = true
    const pending = yield* Effect.forkChild(journal.append(stream, 1, [event("b"), event("c")]))
    yield* Effect.yieldNow
    yield* Effect.sleep("5 millis")
    assert.equal(pending.pollUnsafe(), undefined, "the append waits for its flush")
    // Not visible: lastSeq, version, read and replay all leave it out.
    assert.equal(yield* journal.lastSeq, before, "lastSeq is the highest settled seq")
    assert.equal(yield* journal.version(stream), 1, "version is that of the last visible record")
    assert.equal((yield* Stream.runCollect(journal.read(stream))).length, 1)
    assert.deepEqual(yield* collect(journal), [1, 2])
    // The expected-version check counts it: a conflict names the version not yet visible.
    const conflict = yield* Effect.flip(journal.append(stream, 1, [event("x")]))
    assert.equal(conflict._tag, "VersionConflict")
    assert.equal((conflict as { actual: number }).actual, 3)
    gate.release()
    const done = yield* Fiber.join(pending)
    assert.deepEqual([done.firstSeq, done.lastSeq, done.version], [3, 4, 3])
    assert.equal(yield* journal.lastSeq, 4)
    assert.equal(yield* journal.version(stream), 3)
    assert.deepEqual(yield* collect(journal), [1, 2, 3, 4])
  }))))

test("FileJournal in flight: truncateBefore past an append in flight removes it only once it is visible", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const directory = yield* tempDirectory
    const { io, gate } = heldIo()
    yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* open({ directory, segmentBytes: 256 }, io)
      yield* warm(journal)
      yield* journal.append(stream, 0, [event("a")])
      gate.hold = true
      const order: Array<string> = []
      const pending = yield* Effect.forkChild(Effect.tap(journal.append(stream, 1, [event("b")]), () => Effect.sync(() => order.push("append"))))
      yield* Effect.sleep("5 millis")
      const truncation = yield* Effect.forkChild(Effect.tap(journal.truncateBefore(100), () => Effect.sync(() => order.push("truncate"))))
      yield* Effect.sleep("5 millis")
      assert.equal(yield* journal.version(stream), 1)
      assert.deepEqual(order, [], "the truncation waits while the record is in flight")
      gate.release()
      yield* Fiber.join(pending)
      yield* Fiber.join(truncation)
      assert.deepEqual(order.sort(), ["append", "truncate"])
      assert.ok((yield* journal.checkpoint) >= 100, "the checkpoint moved to the truncation point")
      assert.equal(yield* journal.version(stream), 2, "the version survives the truncation")
      const next = yield* journal.append(stream, 2, [event("c")])
      assert.ok(next.firstSeq >= 100, "later appends land at or above the checkpoint")
    }))
    const journal = yield* open({ directory, segmentBytes: 256 }, io)
    assert.equal(yield* journal.version(stream), 3)
    assert.deepEqual((yield* Stream.runCollect(journal.read(stream))).map((r) => r.version), [3])
  }))))

test("FileJournal in flight: close acknowledges the appends its final flush covers, and they survive a reopen", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const directory = yield* tempDirectory
    const { io, gate } = heldIo()
    const exits = yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* open({ directory }, io)
      yield* warm(journal)
      gate.hold = true
      const first = yield* Effect.forkDetach(journal.append(stream, 0, [event("a")]))
      yield* Effect.sleep("5 millis")
      // Written while the first flush is held: waits for the next one, which close must run.
      const second = yield* Effect.forkDetach(journal.append(stream, 1, [event("b")]))
      yield* Effect.sleep("5 millis")
      setTimeout(() => gate.release(), 10)
      return [first, second] as const
    })).pipe(Effect.flatMap((fibers) => Effect.all(fibers.map((f) => Fiber.await(f)))))
    assert.ok(exits.every(Exit.isSuccess), `both appends were acknowledged: ${exits.map(String).join(", ")}`)
    const journal = yield* open({ directory }, io)
    assert.equal((yield* Stream.runCollect(journal.read(stream))).length, 2)
  }))))

test("FileJournal in flight: when close's flush fails, the appends fail and are not there after a reopen", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const directory = yield* tempDirectory
    const { io, gate } = heldIo()
    const exit = yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* open({ directory }, io)
      yield* warm(journal)
      yield* journal.append(stream, 0, [event("kept")])
      gate.hold = true
      const first = yield* Effect.forkDetach(journal.append(stream, 1, [event("held")]))
      yield* Effect.sleep("5 millis")
      const second = yield* Effect.forkDetach(journal.append(stream, 2, [event("lost")]))
      yield* Effect.sleep("5 millis")
      setTimeout(() => {
        gate.failSync = true
        gate.release()
      }, 10)
      return [first, second] as const
    })).pipe(Effect.flatMap((fibers) => Effect.all(fibers.map((f) => Fiber.await(f)))))
    gate.failSync = false
    assert.ok(Exit.isSuccess(exit[0]), "the append the held flush covered was acknowledged")
    assert.ok(Exit.isFailure(exit[1]), `the append close could not flush failed: ${String(exit[1])}`)
    const journal = yield* open({ directory }, io)
    assert.deepEqual(
      (yield* Stream.runCollect(journal.read(stream))).map((r) => new TextDecoder().decode(r.payload)),
      ["kept", "held"],
      "the failed append is not there"
    )
  })).pipe(Effect.provideService(References.MinimumLogLevel, "None"))))

test("FileJournal recovery: a cut tail is reported as a torn write or damage, naming the seqs cut", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const directory = yield* tempDirectory
    yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* open({ directory }, nodeFileIo)
      yield* journal.append(stream, 0, [event("a")])
      yield* journal.append(stream, 1, [event("b"), event("c"), event("d")])
    }))
    const segment = path.join(directory, fs.readdirSync(directory).find((name) => name.endsWith(".segment"))!)
    fs.truncateSync(segment, fs.statSync(segment).size - 3)
    const warnings: Array<string> = []
    const logger = Logger.make<unknown, void>(({ message }) => {
      warnings.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
    })
    const journal = yield* open({ directory }, nodeFileIo).pipe(Effect.provide(Logger.layer([logger])))
    assert.deepEqual((yield* Stream.runCollect(journal.read(stream))).map((r) => r.version), [1])
    const cut = warnings.find((w) => w.startsWith("Cut "))
    assert.ok(cut !== undefined, `the cut is logged: ${JSON.stringify(warnings)}`)
    for (const part of [segment, "seqs 2..4", "2 of its 3 records intact", "crash", "damage"]) {
      assert.ok(cut.includes(part), `"${cut}" mentions "${part}"`)
    }
    assert.ok(!cut.includes("never acknowledged as durable"), "it does not claim what it cannot know")
  }))))

// ─── The runtime over an append in flight ──────────────────────────────────────────────────────

const credit = (amount: number): LedgerEvent => ({ _tag: "Credited", amount })

/** The file journal on `io` and memory snapshots, as the runtime's layers. */
const runtimeLayers = (directory: string, io: FileIo) =>
  Layer.mergeAll(Layer.effect(Journal.Journal, open({ directory }, io)), SnapshotStore.layerMemory())

test("Repository over an append in flight: load returns the visible state instead of HistoryTruncated", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const directory = yield* tempDirectory
    const { io, gate } = heldIo()
    yield* Effect.gen(function*() {
      const journal = yield* Journal.Journal
      // No cache: the state comes from the snapshot at version 1, and the journal's version 2 is in flight.
      const repo = yield* Repository.make(ledger({ every: 1, schemaVersion: 1 }), { cacheSize: 0 })
      yield* warm(journal)
      yield* repo.execute("a", append([credit(1)]))
      gate.hold = true
      const events = yield* Codec.encodeEvents(ledger().eventCodec, { namespace: "ledger", id: "a" }, [credit(2)])
      const pending = yield* Effect.forkChild(journal.append({ namespace: "ledger", id: "a" }, 1, events))
      yield* Effect.sleep("5 millis")
      const loaded = yield* repo.load("a")
      assert.deepEqual(loaded, { state: fold([credit(1)]), version: 1 })
      gate.release()
      yield* Fiber.join(pending)
      assert.deepEqual(yield* repo.load("a"), { state: fold([credit(1), credit(2)]), version: 2 })
    }).pipe(Effect.provide(runtimeLayers(directory, io)), Effect.ensuring(Effect.sync(() => gate.release())))
  }))))

test("Checkpointer over an append in flight: the record is neither lost nor truncated unsnapshotted", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const directory = yield* tempDirectory
    const { io, gate } = heldIo()
    yield* Effect.gen(function*() {
      const aggregate = ledger()
      const repo = yield* Repository.make(aggregate, { cacheSize: 0 })
      yield* repo.execute("w", append([credit(0)])) // the first flush, measured slow
      yield* repo.execute("a", append([credit(1)]))
      gate.hold = true
      const pending = yield* Effect.forkChild(repo.execute("b", append([credit(5)])))
      yield* Effect.sleep("5 millis")
      const checkpointer = yield* Checkpointer.make([aggregate], { history: "discard" })
      const run = yield* Effect.forkChild(checkpointer.run)
      yield* Effect.sleep("5 millis")
      gate.release()
      yield* Fiber.join(pending)
      const result = yield* Fiber.join(run)
      assert.ok(Option.isNone(result.archivedThrough))
      assert.deepEqual(result.heldBack, [])
      // Whatever the checkpoint took, "b" loads exactly: its record is in a snapshot or still in the journal.
      assert.deepEqual(yield* repo.load("b"), { state: fold([credit(5)]), version: 1 })
      assert.deepEqual(yield* repo.load("a"), { state: fold([credit(1)]), version: 1 })
    }).pipe(
      Effect.provide(runtimeLayers(directory, io)),
      Effect.ensuring(Effect.sync(() => gate.release())),
      Effect.provideService(References.MinimumLogLevel, "None")
    )
  }))))
