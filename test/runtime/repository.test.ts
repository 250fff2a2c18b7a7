/**
 * Repository behaviour over every storage combination: load, execute, conflicts and retries,
 * snapshot policy, schema versions, undecodable records, history behind the truncation point, time
 * travel, and a reopen of durable storage.
 */
import { Effect, Option, Stream } from "effect"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { Archive, Journal, Repository, SnapshotStore } from "../../src/index.ts"
import { expectError } from "../conformance/harness.ts"
import { append, fold, initial, type LedgerEvent, ledger } from "../support/ledger.ts"
import { type Case, register } from "./harness.ts"
import type { Storage } from "./layers.ts"

const credit = (amount: number): LedgerEvent => ({ _tag: "Credited", amount })
const debit = (amount: number): LedgerEvent => ({ _tag: "Debited", amount })
const stream = (id: string) => ({ namespace: "ledger", id })

/** A case over the Journal and SnapshotStore (keep 3), without an Archive. */
const withStores = (
  name: string,
  body: Effect.Effect<void, unknown, Journal.Journal | SnapshotStore.SnapshotStore>
): Case => ({ name, storage: { keep: 3 }, run: (storage: Storage) => Effect.provide(body, storage.stores) })

export const repositoryCases: ReadonlyArray<Case> = [
  withStores("execute appends the command's events and load folds them", Effect.gen(function*() {
    const repo = yield* Repository.make(ledger())
    assert.deepEqual(yield* repo.load("a"), { state: initial, version: 0 })
    const first = yield* repo.execute("a", append([credit(10), debit(3)]))
    assert.deepEqual(first, { state: fold([credit(10), debit(3)]), version: 2, events: [credit(10), debit(3)] })
    const second = yield* repo.execute("a", (state) => Effect.succeed(state.balance > 5 ? [debit(5)] : []))
    assert.equal(second.version, 3)
    assert.deepEqual(yield* repo.load("a"), { state: fold([credit(10), debit(3), debit(5)]), version: 3 })
    const journal = yield* Journal.Journal
    assert.deepEqual((yield* Stream.runCollect(journal.read(stream("a")))).map((r) => r.type), ["Credited", "Debited", "Debited"])
  })),

  withStores("a command returning no events appends nothing", Effect.gen(function*() {
    const repo = yield* Repository.make(ledger())
    yield* repo.execute("n", append([credit(1)]))
    const result = yield* repo.execute("n", append([]))
    assert.deepEqual(result, { state: fold([credit(1)]), version: 1, events: [] })
    assert.equal(yield* (yield* Journal.Journal).lastSeq, 1)
  })),

  withStores("a failing command appends nothing and fails with its own error", Effect.gen(function*() {
    const repo = yield* Repository.make(ledger())
    const error = yield* Effect.flip(repo.execute("f", () => Effect.fail("insufficient funds" as const)))
    assert.equal(error, "insufficient funds")
    assert.equal(yield* (yield* Journal.Journal).lastSeq, 0)
  })),

  withStores("a conflict with another writer is retried on the reloaded state", Effect.gen(function*() {
    const mine = yield* Repository.make(ledger())
    const theirs = yield* Repository.make(ledger())
    yield* mine.execute("c", append([credit(100)]))
    yield* mine.load("c") // cached at version 1
    yield* theirs.execute("c", append([debit(40)])) // the stream moves to version 2 behind my back
    const seen: Array<number> = []
    const result = yield* mine.execute("c", (state) => {
      seen.push(state.balance)
      return Effect.succeed([debit(state.balance)]) // withdraw everything
    })
    assert.deepEqual(seen, [60], "the command ran on the exact state, caught up past the other writer")
    assert.equal(result.state.balance, 0)
    assert.deepEqual(yield* theirs.load("c"), { state: fold([credit(100), debit(40), debit(60)]), version: 3 })
  })),

  withStores("after maxRetries conflicts execute fails with the VersionConflict and stores nothing more", Effect.gen(function*() {
    const repo = yield* Repository.make(ledger(), { maxRetries: 2 })
    const journal = yield* Journal.Journal
    // {"_tag":"Credited","amount":1} in msgpack, as the ledger's codec writes it
    const encoded = new Uint8Array([0x82, 0xa4, 0x5f, 0x74, 0x61, 0x67, 0xa8, 0x43, 0x72, 0x65, 0x64, 0x69, 0x74, 0x65, 0x64, 0xa6, 0x61, 0x6d, 0x6f, 0x75, 0x6e, 0x74, 0x01])
    let runs = 0
    // Another writer appends while every attempt runs, so every attempt conflicts.
    const conflict = yield* expectError(
      repo.execute("r", () =>
        Effect.gen(function*() {
          runs++
          yield* Effect.orDie(journal.append(stream("r"), "any", [{ type: "Credited", payload: encoded }]))
          return [credit(5)]
        })),
      "VersionConflict",
      "ledger/r"
    )
    assert.equal(runs, 3, "one attempt and two retries")
    assert.equal(conflict.expected, 2)
    assert.equal(conflict.actual, 3)
    assert.equal(yield* journal.version(stream("r")), 3)
    assert.deepEqual(yield* repo.load("r"), { state: fold([credit(1), credit(1), credit(1)]), version: 3 })
  })),

  withStores("snapshots are saved every N versions and load starts from them", Effect.gen(function*() {
    const repo = yield* Repository.make(ledger({ every: 3, schemaVersion: 1 }), { cacheSize: 0 })
    const snapshots = yield* SnapshotStore.SnapshotStore
    const events: Array<LedgerEvent> = []
    for (let i = 1; i <= 7; i++) {
      events.push(credit(i))
      yield* repo.execute("s", append([credit(i)]))
    }
    const latest = Option.getOrThrow(yield* snapshots.get("ledger", "s"))
    assert.equal(latest.version, 6)
    assert.equal(latest.seq, 6)
    assert.equal(latest.schemaVersion, 1)
    const older = Option.getOrThrow(yield* snapshots.get("ledger", "s", { maxVersion: 5 }))
    assert.equal(older.version, 3)
    // Prove load uses the snapshot: truncate every record it covers, and load is still exact.
    yield* (yield* Journal.Journal).truncateBefore(7)
    assert.deepEqual(yield* repo.load("s"), { state: fold(events), version: 7 })
  })),

  withStores("snapshots of another schemaVersion are ignored and the state is rebuilt from events", Effect.gen(function*() {
    const v1 = yield* Repository.make(ledger({ every: 1, schemaVersion: 1 }), { cacheSize: 0 })
    yield* v1.execute("v", append([credit(5), credit(6)]))
    const snapshots = yield* SnapshotStore.SnapshotStore
    // Overwrite the snapshot's bytes with a state of another shape, as an old release would have.
    const snap = Option.getOrThrow(yield* snapshots.get("ledger", "v"))
    yield* snapshots.put({ ...snap, schemaVersion: 0, state: new Uint8Array([0xc0]) })
    const v2 = yield* Repository.make(ledger({ every: 100, schemaVersion: 2 }), { cacheSize: 0 })
    assert.deepEqual(yield* v2.load("v"), { state: fold([credit(5), credit(6)]), version: 2 })
  })),

  withStores("a corrupt snapshot is reported and the state is rebuilt from events", Effect.gen(function*() {
    const repo = yield* Repository.make(ledger({ every: 1, schemaVersion: 1 }), { cacheSize: 0 })
    yield* repo.execute("k", append([credit(5), debit(2)]))
    const snapshots = yield* SnapshotStore.SnapshotStore
    const snap = Option.getOrThrow(yield* snapshots.get("ledger", "k"))
    yield* snapshots.put({ ...snap, state: new Uint8Array([1, 2, 3]) })
    assert.deepEqual(yield* repo.load("k"), { state: fold([credit(5), debit(2)]), version: 2 })
  })),

  withStores("a record that does not decode fails load with its stream, version and seq; nothing is skipped", Effect.gen(function*() {
    const repo = yield* Repository.make(ledger(), { cacheSize: 0 })
    const journal = yield* Journal.Journal
    yield* repo.execute("bad", append([credit(1)]))
    yield* journal.append(stream("other"), 0, [{ type: "Credited", payload: new Uint8Array([0xc1]) }])
    yield* journal.append(stream("bad"), 1, [{ type: "Credited", payload: new Uint8Array([0x93, 1, 2, 3]) }])
    const error = yield* expectError(repo.load("bad"), "CodecError", "ledger/bad", "version 2", "seq 3")
    assert.equal(error.version, 2)
    assert.equal(error.seq, 3)
    yield* expectError(repo.execute("bad", append([credit(1)])), "CodecError", "seq 3")
    assert.equal(yield* journal.version(stream("bad")), 2, "the bad record is still there")
  })),

  withStores("loading behind the truncation point without an Archive fails with HistoryTruncated", Effect.gen(function*() {
    const repo = yield* Repository.make(ledger(), { cacheSize: 0 })
    yield* repo.execute("t", append([credit(1), credit(2), credit(3)]))
    yield* (yield* Journal.Journal).truncateBefore(3) // no snapshot covers versions 1-2
    yield* expectError(repo.load("t"), "HistoryTruncated", "ledger/t", "1..2", "no Archive")
    yield* (yield* Journal.Journal).truncateBefore(10) // now all of it, still no snapshot
    yield* expectError(repo.load("t"), "HistoryTruncated", "1..3")
  })),

  {
    name: "loading behind the truncation point reads the Archive",
    run: (storage) =>
      Effect.gen(function*() {
        const repo = yield* Repository.make(ledger(), { cacheSize: 0 })
        const journal = yield* Journal.Journal
        const archive = yield* Archive.Archive
        yield* repo.execute("t", append([credit(1), credit(2)]))
        yield* repo.execute("u", append([credit(7)]))
        yield* repo.execute("t", append([credit(3)]))
        const records = yield* Stream.runCollect(journal.replayFrom(1))
        yield* archive.put({ startSeq: 1, endSeq: 2, records: records.slice(0, 2) })
        yield* journal.truncateBefore(3)
        assert.deepEqual(yield* repo.load("t"), { state: fold([credit(1), credit(2), credit(3)]), version: 3 })
        yield* journal.truncateBefore(5)
        yield* expectError(repo.load("t"), "HistoryTruncated", "version", "holds 2 of the 3")
      }).pipe(Effect.provide(storage.all))
  },

  withStores("load asOf folds exactly the events up to that time, across snapshots", Effect.gen(function*() {
    const repo = yield* Repository.make(ledger({ every: 2, schemaVersion: 1 }))
    const events: Array<[number, LedgerEvent]> = []
    for (let i = 1; i <= 9; i++) {
      yield* TestClock.setTime(i * 1_000)
      events.push([i * 1_000, credit(i)])
      yield* repo.execute("h", append([credit(i)]))
    }
    for (const asOf of [0, 999, 1_000, 2_500, 4_000, 8_999, 9_000, 50_000]) {
      const expected = events.filter(([t]) => t <= asOf).map(([, e]) => e)
      assert.deepEqual(yield* repo.load("h", { asOf }), { state: fold(expected), version: expected.length }, `asOf ${asOf}`)
    }
  })),

  {
    name: "after a reopen, load and execute continue exactly where the acknowledged commands left off",
    storage: { keep: 2 },
    run: (storage) =>
      Effect.gen(function*() {
        const aggregate = ledger({ every: 2, schemaVersion: 1 })
        const events: Array<LedgerEvent> = []
        const session = (count: number) =>
          Effect.gen(function*() {
            const repo = yield* Repository.make(aggregate)
            for (let i = 0; i < count; i++) {
              const batch = [credit(events.length + 1), debit(i)]
              const result = yield* repo.execute("r", append(batch))
              events.push(...batch)
              assert.equal(result.version, events.length)
            }
            assert.deepEqual(yield* repo.load("r"), { state: fold(events), version: events.length })
          }).pipe(Effect.provide(storage.stores))
        yield* session(5)
        yield* session(0) // a reopen (durable layers) before anything else happens
        yield* session(3)
      })
  }
]

register("Repository", repositoryCases)
