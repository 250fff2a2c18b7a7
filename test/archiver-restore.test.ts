/**
 * Regression tests of `Archiver.restore` (issue 9), over the memory and the file layers: the archive
 * must start at the journal's beginning, and a restore that stopped half way is resumed — by
 * `restore` and by the layer's start — while a journal that is not the archive's prefix is refused.
 */
import { Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { test } from "node:test"
import { Archive, Archiver, Journal, Repository } from "../src/index.ts"
import { expectError } from "./conformance/harness.ts"
import { append, fold, type LedgerEvent, ledger } from "./support/ledger.ts"
import { eachStorage, type Location, replayAll } from "./support/storage.ts"

const credit = (amount: number): LedgerEvent => ({ _tag: "Credited", amount })
const events = Array.from({ length: 6 }, (_, i) => credit(i + 1))

/** Journal "main": six executes on stream x at times 1000, 1010, …, archived as segments 1-2, 3-4, 5-6. */
const archived = (location: Location) =>
  Effect.gen(function*() {
    const repo = yield* Repository.make(ledger())
    for (const [i, event] of events.entries()) {
      yield* TestClock.setTime(1_000 + 10 * i)
      yield* repo.execute("x", append([event]))
    }
    const archiver = yield* Archiver.make({ segmentSize: 2 })
    assert.equal(yield* archiver.uploadFullSegments, 6)
    return yield* replayAll(yield* Journal.Journal)
  }).pipe(Effect.provide(location.layers("main")))

const seqsOf = (records: ReadonlyArray<Journal.JournalRecord>) => records.map((r) => r.seq)

eachStorage("Archiver.restore refuses an archive whose first segment does not start at seq 1", (location) =>
  Effect.gen(function*() {
    const records = yield* archived(location)
    // Another archive of the same journal that lost its first segment.
    yield* Effect.gen(function*() {
      const holed = yield* Archive.Archive
      yield* holed.put({ startSeq: 3, endSeq: 4, records: records.slice(2, 4) })
      yield* holed.put({ startSeq: 5, endSeq: 6, records: records.slice(4, 6) })
    }).pipe(Effect.provide(location.layers("unused", { archive: "holed" })))
    yield* Effect.gen(function*() {
      yield* expectError(Archiver.restore(), "ArchiverError", "starts at seq 3", "1..2")
      assert.equal(yield* (yield* Journal.Journal).lastSeq, 0, "nothing restored")
      yield* expectError(Effect.scoped(Layer.build(Archiver.layer())), "ArchiverError", "starts at seq 3")
    }).pipe(Effect.provide(location.layers("fresh", { archive: "holed" })))
  }))

eachStorage("Archiver: a restore that stopped half way is resumed by the layer's next start", (location) =>
  Effect.gen(function*() {
    const records = yield* archived(location)
    // The first run restored seqs 1..3 (mid-segment) and crashed.
    yield* Effect.gen(function*() {
      yield* (yield* Journal.Journal).restore(records.slice(0, 3))
    }).pipe(Effect.provide(location.layers("fresh")))
    yield* Effect.gen(function*() {
      const journal = yield* Journal.Journal
      assert.deepEqual(seqsOf(yield* replayAll(journal)), [1, 2, 3, 4, 5, 6])
      assert.equal((yield* (yield* Archiver.Archiver).status).archivedThrough, 6)
      assert.deepEqual(yield* (yield* Repository.make(ledger())).load("x"), { state: fold(events), version: 6 })
    }).pipe(Effect.provide(Layer.provideMerge(Archiver.layer({ pollInterval: "1 hour" }), location.layers("fresh"))))
  }))

eachStorage("Archiver.restore resumes a point-in-time restore that stopped half way, up to the same until", (location) =>
  Effect.gen(function*() {
    const records = yield* archived(location)
    yield* Effect.gen(function*() {
      const journal = yield* Journal.Journal
      yield* journal.restore(records.slice(0, 2)) // the first segment, then a crash
      const result = yield* Archiver.restore({ until: 1_040 })
      assert.deepEqual(result, { segments: 2, records: 3, lastSeq: 5 })
      assert.deepEqual(seqsOf(yield* replayAll(journal)), [1, 2, 3, 4, 5])
      // Complete already: running it again restores nothing more.
      assert.deepEqual(yield* Archiver.restore({ until: 1_040 }), { segments: 1, records: 0, lastSeq: 5 })
    }).pipe(Effect.provide(location.layers("fresh")))
  }))

eachStorage("Archiver.restore refuses a journal that is not the archive's first records, and changes nothing", (location) =>
  Effect.gen(function*() {
    const records = yield* archived(location)
    yield* Effect.gen(function*() {
      const journal = yield* Journal.Journal
      const changed = { ...records[1]!, payload: new Uint8Array([...records[1]!.payload, 0]) }
      yield* journal.restore([records[0]!, changed])
      yield* expectError(Archiver.restore(), "ArchiverError", "not empty", "seq 2", "payload")
      assert.deepEqual(seqsOf(yield* replayAll(journal)), [1, 2])
      yield* expectError(
        Effect.scoped(Layer.build(Archiver.layer())),
        "ArchiverError",
        "not a restore of the archive"
      )
    }).pipe(Effect.provide(location.layers("other")))
    yield* Effect.gen(function*() {
      const journal = yield* Journal.Journal
      yield* journal.restore([records[0]!, records[1]!, { ...records[2]!, seq: 4 }]) // a record at another seq
      yield* expectError(Archiver.restore(), "ArchiverError", "not empty", "lacks the archive's record at seq 3")
    }).pipe(Effect.provide(location.layers("third")))
  }))

test("Archiver.restore downloads segments concurrently and applies them in seq order, the first download finishing last", () =>
  Effect.runPromise(Effect.gen(function*() {
    const objects = new Map<string, Uint8Array>()
    const memory = Archive.makeObjectStoreMemory(objects)
    let inFlight = 0
    let mostInFlight = 0
    // Each get waits longer the lower its segment's seqs: downloads complete in reverse order.
    const slowStore: Archive.ObjectStore = {
      ...memory,
      get: (key) =>
        Effect.gen(function*() {
          inFlight++
          mostInFlight = Math.max(mostInFlight, inFlight)
          yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 60 - Number(key.slice(0, 20)))))
          inFlight--
          return yield* memory.get(key)
        })
    }
    const archive = yield* Archive.make(slowStore)
    const records = Array.from({ length: 40 }, (_, i): Journal.JournalRecord => ({
      seq: i + 1, namespace: "n", id: `s${i % 3}`, version: Math.floor(i / 3) + 1, type: "E", timestamp: 1_000 + i, payload: new Uint8Array([i])
    }))
    for (let start = 1; start <= 40; start += 5) yield* archive.put({ startSeq: start, endSeq: start + 4, records: records.slice(start - 1, start + 4) })
    const restored = yield* Archiver.restore({ concurrency: 4 }).pipe(
      Effect.provideService(Archive.Archive, archive),
      Effect.provide(Journal.layerMemory)
    )
    assert.deepEqual(restored, { segments: 8, records: 40, lastSeq: 40 })
    assert.equal(mostInFlight, 4, "four downloads at a time")
    yield* expectError(Archiver.restore({ concurrency: 0 }).pipe(Effect.provideService(Archive.Archive, archive), Effect.provide(Journal.layerMemory)), "ArchiverError", "concurrency")
  })))

test("Archiver.restore verifies every segment before applying any: a damaged one fails naming its key with the journal unchanged, staged in memory or not", () =>
  Effect.runPromise(Effect.gen(function*() {
    const objects = new Map<string, Uint8Array>()
    const archive = yield* Archive.make(Archive.makeObjectStoreMemory(objects))
    const records = Array.from({ length: 30 }, (_, i): Journal.JournalRecord => ({
      seq: i + 1, namespace: "n", id: "s", version: i + 1, type: "E", timestamp: 1_000 + i, payload: new Uint8Array([i])
    }))
    for (let start = 1; start <= 30; start += 10) yield* archive.put({ startSeq: start, endSeq: start + 9, records: records.slice(start - 1, start + 9) })
    const damaged = [...objects.keys()].sort()[2]!
    const bytes = objects.get(damaged)!
    bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff
    for (const stagingBytes of [64 * 1024 * 1024, 0]) {
      yield* Effect.gen(function*() {
        yield* expectError(Archiver.restore({ stagingBytes }), "ArchiveError", damaged)
        assert.equal(yield* (yield* Journal.Journal).lastSeq, 0, `stagingBytes ${stagingBytes}: nothing applied`)
      }).pipe(Effect.provideService(Archive.Archive, archive), Effect.provide(Journal.layerMemory))
    }
  })))
