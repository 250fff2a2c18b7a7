/**
 * The Checkpointer and the Archiver over every storage combination: compaction, the truncation
 * rule, held-back namespaces, archiving before truncating, restore into a fresh machine (whole and
 * point in time), and the background Checkpointer.
 */
import { Effect, Layer, Option } from "effect"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { Archive, Archiver, Checkpointer, Journal, Repository } from "../../src/index.ts"
import { expectError } from "../conformance/harness.ts"
import { append, fold, type LedgerEvent, ledger } from "../support/ledger.ts"
import { assertSameRecords, type Case, eventually, ledgerRecord, register, replayAll } from "./harness.ts"

const credit = (amount: number): LedgerEvent => ({ _tag: "Credited", amount })
const archiverLayer = (segmentSize?: number) => Archiver.layer({ segmentSize, pollInterval: "1 hour" })

export const checkpointerCases: ReadonlyArray<Case> = [
  {
    name: "snapshots every touched stream, then truncates; loads stay exact",
    run: (storage) =>
      Effect.gen(function*() {
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
          heldBack: [],
          lagging: []
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
        const s0 = [...events.get("s0")!, credit(7)]
        assert.deepEqual(yield* repo.load("s0"), { state: fold(s0), version: s0.length })
      }).pipe(Effect.provide(storage.stores))
  },

  {
    name: "records of an unregistered namespace hold the watermark back and are reported",
    run: (storage) =>
      Effect.gen(function*() {
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
      }).pipe(Effect.provide(storage.stores))
  },

  {
    name: "with an Archiver: archives before truncating; a fresh machine restores every record",
    run: (storage) =>
      Effect.gen(function*() {
        const aggregate = ledger({ every: 5, schemaVersion: 1 })
        const events: Array<LedgerEvent> = []
        const acknowledged = yield* Effect.gen(function*() {
          const repo = yield* Repository.make(aggregate)
          const journal = yield* Journal.Journal
          for (let i = 0; i < 23; i++) {
            events.push(credit(i))
            yield* repo.execute("acct", append([credit(i)]))
          }
          const records = yield* replayAll(journal)
          const result = yield* (yield* Checkpointer.make([aggregate], { history: "archive" })).run
          assert.equal(result.checkpoint, 24)
          assert.deepEqual(result.archivedThrough, Option.some(23))
          const refs = yield* (yield* Archive.Archive).list()
          assert.deepEqual(refs.map((r) => [r.startSeq, r.endSeq]), [[1, 10], [11, 20], [21, 23]])
          assert.deepEqual(yield* replayAll(journal), [])
          return records
        }).pipe(Effect.provide(Layer.provideMerge(archiverLayer(10), storage.all)))
        // a fresh machine: empty journal, no snapshots, the same archive
        const fresh = yield* storage.freshMachine
        yield* Effect.gen(function*() {
          const journal = yield* Journal.Journal
          assert.equal(yield* journal.lastSeq, 23)
          assertSameRecords(yield* replayAll(journal), acknowledged, "restored journal vs acknowledged records")
          const repo = yield* Repository.make(aggregate)
          assert.deepEqual(yield* repo.load("acct"), { state: fold(events), version: 23 })
          const status = yield* (yield* Archiver.Archiver).status
          assert.equal(status.archivedThrough, 23)
        }).pipe(Effect.provide(Layer.provideMerge(archiverLayer(10), fresh.all)))
      })
  },

  {
    name: "Archiver.restore({ until }) gives a fresh machine exactly the records with timestamp ≤ T",
    run: (storage) =>
      Effect.gen(function*() {
        const aggregate = ledger({ every: 3, schemaVersion: 1 })
        const timeline: Array<{ readonly id: string; readonly at: number; readonly event: LedgerEvent }> = []
        yield* Effect.gen(function*() {
          const repo = yield* Repository.make(aggregate)
          for (let i = 0; i < 30; i++) {
            const at = 1_000 + Math.floor(i / 2) * 100 // pairs of appends share a timestamp
            yield* TestClock.setTime(at)
            const id = `p${i % 3}`
            timeline.push({ id, at, event: credit(i) })
            yield* repo.execute(id, append([credit(i)]))
          }
          yield* (yield* Checkpointer.make([aggregate], { history: "archive" })).run
        }).pipe(Effect.provide(Layer.provideMerge(archiverLayer(4), storage.all)))
        for (const until of [999, 1_000, 1_450, 2_400]) {
          const fresh = yield* storage.freshMachine
          yield* Effect.gen(function*() {
            const restored = yield* Archiver.restore({ until })
            const kept = timeline.filter((e) => e.at <= until)
            assert.equal(restored.records, kept.length, `until ${until}: records restored`)
            const repo = yield* Repository.make(aggregate, { cacheSize: 0 })
            for (const id of ["p0", "p1", "p2"]) {
              const mine = kept.filter((e) => e.id === id).map((e) => e.event)
              assert.deepEqual(yield* repo.load(id), { state: fold(mine), version: mine.length }, `until ${until}: ${id}`)
            }
          }).pipe(Effect.provide(fresh.all))
        }
      })
  },

  {
    name: "Archiver.restore refuses a non-empty journal and archives whose segments do not chain",
    run: (storage) =>
      Effect.gen(function*() {
        const record = ledgerRecord
        const archive = yield* Archive.Archive
        yield* archive.put({ startSeq: 1, endSeq: 2, records: [record(1), record(2)] })
        yield* archive.put({ startSeq: 4, endSeq: 5, records: [record(4), record(5)] })
        yield* expectError(Archiver.restore(), "ArchiverError", "missing seqs 3..3")
        const journal = yield* Journal.Journal
        assert.equal(yield* journal.lastSeq, 0, "nothing restored")
        yield* journal.append({ namespace: "ledger", id: "y" }, 0, [{ type: "Credited", payload: new Uint8Array([1]) }])
        yield* expectError(Archiver.restore(), "ArchiverError", "not empty")
      }).pipe(Effect.provide(storage.all))
  },

  {
    name: "the Checkpointer layer runs a checkpoint every interval in the background",
    run: (storage) =>
      Effect.gen(function*() {
        const aggregate = ledger()
        const repo = yield* Repository.make(aggregate)
        const journal = yield* Journal.Journal
        yield* repo.execute("bg", append([credit(1), credit(2)]))
        yield* TestClock.adjust("59 seconds")
        assert.equal((yield* replayAll(journal)).length, 2, "not yet")
        yield* TestClock.adjust("1 second")
        // The checkpoint is set, then the journal truncated: a server-backed journal shows the two steps apart.
        yield* eventually(
          "the first checkpoint and its truncation",
          Effect.zipWith(journal.checkpoint, replayAll(journal), (c, records) => c === 3 && records.length === 0)
        )
        yield* repo.execute("bg", append([credit(3)]))
        // The first run may still be finishing its truncation (a server-backed journal shows the
        // truncation point before it purges): its next sleep may start after any one adjustment, so
        // the clock moves on each check until the second run is seen.
        yield* eventually("the second checkpoint", Effect.andThen(TestClock.adjust("1 minute"), Effect.map(journal.checkpoint, (c) => c === 4)))
        assert.deepEqual(yield* repo.load("bg"), { state: fold([credit(1), credit(2), credit(3)]), version: 3 })
      }).pipe(Effect.provide(Layer.provideMerge(
        Checkpointer.layer([ledger()], { history: "discard", interval: "1 minute" }),
        storage.stores
      )))
  }
]

register("Checkpointer", checkpointerCases)
