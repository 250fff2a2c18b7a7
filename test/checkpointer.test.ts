/**
 * Checkpointer and Archiver over the memory layers: compaction, the truncation rule, held-back
 * namespaces, archiving before truncation, restore, and crashes between the steps.
 */
import { Effect, Layer, Option, Stream } from "effect"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { test } from "node:test"
import { Archive, Archiver, Checkpointer, Journal, Repository, SnapshotStore } from "../src/index.ts"
import { expectError } from "./conformance/harness.ts"
import { append, fold, type LedgerEvent, ledger } from "./support/ledger.ts"

const credit = (amount: number): LedgerEvent => ({ _tag: "Credited", amount })
const replayAll = (journal: Journal.Journal) => Stream.runCollect(journal.replayFrom(0))

const withArchive = (objects: Map<string, Uint8Array>) =>
  Layer.effect(Archive.Archive, Archive.make(Archive.makeObjectStoreMemory(objects)))

test("Checkpointer: snapshots every touched stream, then truncates; loads stay exact", () =>
  Effect.runPromise(Effect.gen(function*() {
    const aggregate = ledger()
    const repo = yield* Repository.make(aggregate, { cacheSize: 0 })
    const journal = yield* Journal.Journal
    const events = new Map<string, Array<LedgerEvent>>()
    for (let i = 0; i < 30; i++) {
      const id = `s${i % 4}`
      const batch = [credit(i), credit(i + 100)]
      events.set(id, [...(events.get(id) ?? []), ...batch])
      yield* repo.execute(id, append(batch))
    }
    const checkpointer = yield* Checkpointer.make([aggregate], { history: "discard" })
    const result = yield* checkpointer.run
    assert.deepEqual({ ...result, archivedThrough: Option.isNone(result.archivedThrough) }, {
      from: 0,
      checkpoint: 61,
      streams: 4,
      snapshots: 4,
      archivedThrough: true,
      heldBack: []
    })
    assert.deepEqual(yield* replayAll(journal), [])
    for (const [id, list] of events) assert.deepEqual(yield* repo.load(id), { state: fold(list), version: list.length })
    // appending continues; a second checkpoint only covers the new records
    yield* repo.execute("s0", append([credit(7)]))
    const second = yield* checkpointer.run
    assert.equal(second.from, 61)
    assert.equal(second.streams, 1)
    assert.equal(second.snapshots, 1)
    const third = yield* checkpointer.run // nothing new: nothing to snapshot
    assert.deepEqual([third.streams, third.snapshots, third.checkpoint], [0, 0, second.checkpoint])
    assert.deepEqual(yield* repo.load("s0"), { state: fold([...events.get("s0")!, credit(7)]), version: events.get("s0")!.length + 1 })
  }).pipe(Effect.provide(Layer.mergeAll(Journal.layerMemory, SnapshotStore.layerMemory())), Effect.provide(TestClock.layer()))))

test("Checkpointer: records of an unregistered namespace hold the watermark back and are reported", () =>
  Effect.runPromise(Effect.gen(function*() {
    const aggregate = ledger()
    const repo = yield* Repository.make(aggregate)
    const journal = yield* Journal.Journal
    yield* repo.execute("a", append([credit(1), credit(2)])) // seqs 1-2
    yield* journal.append({ namespace: "mystery", id: "x" }, 0, [{ type: "Unknown", payload: new Uint8Array([1]) }]) // seq 3
    yield* repo.execute("a", append([credit(3)])) // seq 4
    const result = yield* (yield* Checkpointer.make([aggregate], { history: "discard" })).run
    assert.equal(result.checkpoint, 3)
    assert.deepEqual(result.heldBack, [{ namespace: "mystery", firstSeq: 3, records: 1 }])
    assert.deepEqual((yield* replayAll(journal)).map((r) => r.seq), [3, 4])
    assert.deepEqual(yield* repo.load("a"), { state: fold([credit(1), credit(2), credit(3)]), version: 3 })
  }).pipe(Effect.provide(Layer.mergeAll(Journal.layerMemory, SnapshotStore.layerMemory())), Effect.provide(TestClock.layer()))))

test("Checkpointer with an Archiver: archives before truncating; restore on an empty journal gives every record back", async () => {
  const objects = new Map<string, Uint8Array>()
  const aggregate = ledger({ every: 5, schemaVersion: 1 })
  const events: Array<LedgerEvent> = []
  await Effect.runPromise(Effect.gen(function*() {
    const repo = yield* Repository.make(aggregate)
    for (let i = 0; i < 23; i++) {
      events.push(credit(i))
      yield* repo.execute("acct", append([credit(i)]))
    }
    const result = yield* (yield* Checkpointer.make([aggregate], { history: "archive" })).run
    assert.equal(result.checkpoint, 24)
    assert.deepEqual(result.archivedThrough, Option.some(23))
    const archive = yield* Archive.Archive
    const refs = yield* archive.list()
    assert.deepEqual(refs.map((r) => [r.startSeq, r.endSeq]), [[1, 10], [11, 20], [21, 23]])
  }).pipe(
    Effect.provide(Layer.provideMerge(Archiver.layer({ segmentSize: 10, pollInterval: "1 hour" }), Layer.mergeAll(Journal.layerMemory, SnapshotStore.layerMemory(), withArchive(objects)))),
    Effect.provide(TestClock.layer())
  ))
  // a fresh machine: empty journal, no snapshots, the same archive
  await Effect.runPromise(Effect.gen(function*() {
    const journal = yield* Journal.Journal
    assert.equal(yield* journal.lastSeq, 23)
    assert.deepEqual((yield* replayAll(journal)).map((r) => r.seq), Array.from({ length: 23 }, (_, i) => i + 1))
    const repo = yield* Repository.make(aggregate)
    assert.deepEqual(yield* repo.load("acct"), { state: fold(events), version: 23 })
    const status = yield* (yield* Archiver.Archiver).status
    assert.equal(status.archivedThrough, 23)
  }).pipe(
    Effect.provide(Layer.provideMerge(Archiver.layer({ segmentSize: 10, pollInterval: "1 hour" }), Layer.mergeAll(Journal.layerMemory, SnapshotStore.layerMemory(), withArchive(objects)))),
    Effect.provide(TestClock.layer())
  ))
})

test("Archiver.restore refuses a non-empty journal and archives whose segments do not chain", async () => {
  const objects = new Map<string, Uint8Array>()
  const record = (seq: number) => ({ seq, namespace: "ledger", id: "x", version: seq, type: "Credited", timestamp: seq, payload: new Uint8Array([seq]) })
  await Effect.runPromise(Effect.gen(function*() {
    const archive = yield* Archive.Archive
    yield* archive.put({ startSeq: 1, endSeq: 2, records: [record(1), record(2)] })
    yield* archive.put({ startSeq: 4, endSeq: 5, records: [record(4), record(5)] })
    yield* expectError(Archiver.restore(), "ArchiverError", "missing seqs 3..3")
    const journal = yield* Journal.Journal
    assert.equal(yield* journal.lastSeq, 0, "nothing restored")
    yield* journal.append({ namespace: "ledger", id: "y" }, 0, [{ type: "Credited", payload: new Uint8Array([1]) }])
    yield* expectError(Archiver.restore(), "ArchiverError", "not empty")
  }).pipe(Effect.provide(Layer.mergeAll(Journal.layerMemory, withArchive(objects)))))
})

test("Checkpointer.layer runs a checkpoint every interval in the background", () =>
  Effect.runPromise(Effect.gen(function*() {
    const aggregate = ledger()
    const repo = yield* Repository.make(aggregate)
    const journal = yield* Journal.Journal
    yield* repo.execute("bg", append([credit(1), credit(2)]))
    yield* TestClock.adjust("59 seconds")
    assert.equal((yield* replayAll(journal)).length, 2, "not yet")
    yield* TestClock.adjust("1 second")
    for (let i = 0; i < 20 && (yield* journal.checkpoint) === 0; i++) yield* Effect.yieldNow
    assert.equal(yield* journal.checkpoint, 3)
    assert.deepEqual(yield* replayAll(journal), [])
    yield* repo.execute("bg", append([credit(3)]))
    yield* TestClock.adjust("1 minute")
    for (let i = 0; i < 20 && (yield* journal.checkpoint) === 3; i++) yield* Effect.yieldNow
    assert.equal(yield* journal.checkpoint, 4)
    assert.deepEqual(yield* repo.load("bg"), { state: fold([credit(1), credit(2), credit(3)]), version: 3 })
  }).pipe(
    Effect.provide(Layer.provideMerge(
      Checkpointer.layer([ledger()], { history: "discard", interval: "1 minute" }),
      Layer.mergeAll(Journal.layerMemory, SnapshotStore.layerMemory())
    )),
    Effect.provide(TestClock.layer())
  )))
