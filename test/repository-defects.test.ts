/**
 * Regression tests of the Repository defects of issue 9, over the memory and the file layers: a
 * snapshot newer than the journal or from another timeline is not trusted; a conflict with an append
 * still in flight waits for it instead of burning the retries; a command whose append committed
 * although it failed (or was interrupted) is never applied twice; an invalid `asOf` is named. And a
 * load while checkpoints replace the (file) snapshot it listed finds the newer one, not a spurious
 * `HistoryTruncated`.
 */
import { Effect, Fiber, Option, Stream } from "effect"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { test } from "node:test"
import { nodeSnapshotReads, open, type SnapshotReads } from "../src/file/internal/snapshotDirectory.ts"
import { Checkpointer, Journal, Repository, SnapshotStore } from "../src/index.ts"
import { expectError } from "./conformance/harness.ts"
import { append, fold, type LedgerEvent, type LedgerState, ledger } from "./support/ledger.ts"
import { eachStorage, ledgerData, replayAll, withAppendInFlight } from "./support/storage.ts"
import { tempDirectory } from "./support/tempDirectory.ts"

const credit = (amount: number): LedgerEvent => ({ _tag: "Credited", amount })
const debit = (amount: number): LedgerEvent => ({ _tag: "Debited", amount })
const stream = (id: string) => ({ namespace: "ledger", id })

/** Appends `events` to stream `x` of the journal in context, one execute each, with a snapshot after every one. */
const history = (events: ReadonlyArray<LedgerEvent>) =>
  Effect.gen(function*() {
    const repo = yield* Repository.make(ledger({ every: 1, schemaVersion: 1 }))
    for (const event of events) yield* repo.execute("x", append([event]))
  })

/** The first `count` records of the journal in context (what a journal that lost its tail still holds). */
const firstRecords = (count: number) =>
  Effect.gen(function*() {
    return (yield* replayAll(yield* Journal.Journal)).slice(0, count)
  })

eachStorage("Repository: a snapshot newer than the journal (a lost tail) is ignored; load and execute work on what the journal holds", (location) =>
  Effect.gen(function*() {
    const events = [credit(1), credit(2), credit(3), credit(4), credit(5)]
    const kept = yield* history(events).pipe(Effect.andThen(firstRecords(3)), Effect.provide(location.layers("main")))
    // The journal lost its tail (versions 4 and 5); the snapshot at version 5 remains.
    yield* Effect.gen(function*() {
      const journal = yield* Journal.Journal
      yield* journal.restore(kept)
      const snapshot = yield* (yield* SnapshotStore.SnapshotStore).get("ledger", "x")
      assert.equal(Option.getOrUndefined(Option.map(snapshot, (s) => s.version)), 5, "the stale snapshot is there")
      const repo = yield* Repository.make(ledger({ every: 1, schemaVersion: 1 }))
      assert.deepEqual(yield* repo.load("x"), { state: fold(events.slice(0, 3)), version: 3 })
      const done = yield* repo.execute("x", append([debit(7)]))
      assert.deepEqual({ state: done.state, version: done.version }, { state: fold([...events.slice(0, 3), debit(7)]), version: 4 })
      const fresh = yield* Repository.make(ledger({ every: 1, schemaVersion: 1 }))
      assert.deepEqual(yield* fresh.load("x"), { state: fold([...events.slice(0, 3), debit(7)]), version: 4 })
    }).pipe(Effect.provide(location.layers("lost")))
  }))

eachStorage("Repository: a snapshot from another timeline at a version the journal also reached is ignored", (location) =>
  Effect.gen(function*() {
    const events = [credit(1), credit(2), credit(3), credit(4), credit(5)]
    const kept = yield* history(events).pipe(Effect.andThen(firstRecords(3)), Effect.provide(location.layers("main")))
    yield* Effect.gen(function*() {
      const journal = yield* Journal.Journal
      yield* journal.restore(kept) // a point-in-time restore to version 3 …
      yield* journal.append(stream("other"), 0, yield* ledgerData("other", [credit(9)])) // seq 4
      const mine = [debit(1), debit(2)]
      yield* journal.append(stream("x"), 3, yield* ledgerData("x", mine)) // … then a different v4, v5 (seqs 5, 6)
      const repo = yield* Repository.make(ledger({ every: 1, schemaVersion: 1 }))
      assert.deepEqual(yield* repo.load("x"), { state: fold([...events.slice(0, 3), ...mine]), version: 5 })
      assert.deepEqual(yield* repo.load("x", { asOf: Number.MAX_SAFE_INTEGER }), { state: fold([...events.slice(0, 3), ...mine]), version: 5 })
    }).pipe(Effect.provide(location.layers("restored")))
  }))

eachStorage("Checkpointer (discard) over a stale snapshot: the current state stays loadable after truncation", (location) =>
  Effect.gen(function*() {
    const events = [credit(1), credit(2), credit(3), credit(4), credit(5)]
    const kept = yield* history(events).pipe(Effect.andThen(firstRecords(3)), Effect.provide(location.layers("main")))
    yield* Effect.gen(function*() {
      yield* (yield* Journal.Journal).restore(kept)
      const result = yield* (yield* Checkpointer.make([ledger()], { history: "discard" })).run
      assert.equal(result.checkpoint, 4)
      const repo = yield* Repository.make(ledger(), { cacheSize: 0 })
      assert.deepEqual(yield* repo.load("x"), { state: fold(events.slice(0, 3)), version: 3 })
    }).pipe(Effect.provide(location.layers("lost")))
  }))

eachStorage("Repository: with a cached older version, a conflict with an append in flight waits for it, then succeeds", (location) =>
  Effect.gen(function*() {
    const journal = yield* Journal.Journal
    const { appendInFlight, view } = withAppendInFlight(journal)
    const repo = yield* Repository.make(ledger()).pipe(Effect.provideService(Journal.Journal, view))
    yield* repo.execute("c", append([credit(100)])) // cached at version 1
    // Another writer's version 2 is assigned (appends conflict with it) but not visible for 50 ms.
    yield* appendInFlight(stream("c"), 1, yield* ledgerData("c", [debit(40)]), 50)
    const seen: Array<number> = []
    const result = yield* repo.execute("c", (state: LedgerState) => {
      seen.push(state.balance)
      return Effect.succeed([debit(state.balance)])
    })
    assert.deepEqual(seen, [100, 60], "one conflict, then the command ran on the state with the other writer's event")
    assert.deepEqual({ state: result.state, version: result.version }, { state: fold([credit(100), debit(40), debit(60)]), version: 3 })
  }).pipe(Effect.provide(location.layers())))

eachStorage("Repository: an append that committed but reported a VersionConflict is not applied again", (location) =>
  Effect.gen(function*() {
    const journal = yield* Journal.Journal
    let lie = false
    // A layer that retried an append whose first try had committed: the retry conflicts with it.
    const retrying: Journal.Journal = {
      ...journal,
      append: (s, expected, events) =>
        Effect.flatMap(journal.append(s, expected, events), (result) =>
          lie && typeof expected === "number"
            ? Effect.fail(new Journal.VersionConflict({ stream: s, expected, actual: result.version }))
            : Effect.succeed(result))
    }
    const repo = yield* Repository.make(ledger()).pipe(Effect.provideService(Journal.Journal, retrying))
    yield* repo.execute("d", append([credit(10)]))
    lie = true
    let runs = 0
    const result = yield* repo.execute("d", (state: LedgerState) => {
      runs++
      return Effect.succeed([debit(Math.ceil(state.balance / 2))])
    })
    lie = false
    assert.equal(runs, 1, "the command ran once")
    assert.deepEqual(result, { state: fold([credit(10), debit(5)]), version: 2, events: [debit(5)] })
    const records = yield* replayAll(journal)
    assert.deepEqual(records.map((r) => r.version), [1, 2])
    assert.ok(records.every((r) => typeof r.metadata?.[Repository.CommandIdKey] === "string"), "records carry their command id")
    assert.notEqual(records[0]!.metadata?.[Repository.CommandIdKey], records[1]!.metadata?.[Repository.CommandIdKey])
  }).pipe(Effect.provide(location.layers())))

eachStorage("Repository: a command retried with its commandId after an ambiguous failure or an interruption is not applied twice", (location) =>
  Effect.gen(function*() {
    const journal = yield* Journal.Journal
    let after: "fail" | "hang" | undefined
    // The append is written, then the caller never learns it: a failure after the write, or a hang it interrupts.
    const flaky: Journal.Journal = {
      ...journal,
      append: (s, expected, events) =>
        Effect.flatMap(journal.append(s, expected, events), (result) =>
          after === "fail"
            ? Effect.fail(new Journal.JournalError({ method: "append", message: "connection lost after the write" }))
            : after === "hang"
            ? Effect.never
            : Effect.succeed(result))
    }
    const repo = yield* Repository.make(ledger()).pipe(Effect.provideService(Journal.Journal, flaky))
    yield* repo.execute("e", append([credit(10)]))
    let runs = 0
    const pay = (amount: number) => (_: LedgerState) => Effect.sync(() => (runs++, [debit(amount)]))

    after = "fail"
    const failed = yield* Effect.flip(repo.execute("e", pay(3), { commandId: "pay-1" }))
    assert.equal(failed._tag, "JournalError", String(failed))
    after = undefined
    const retried = yield* repo.execute("e", pay(3), { commandId: "pay-1" })
    assert.deepEqual(retried, { state: fold([credit(10), debit(3)]), version: 2, events: [debit(3)] })

    after = "hang"
    const fiber = yield* Effect.forkChild(repo.execute("e", pay(4), { commandId: "pay-2" }))
    while ((yield* journal.version(stream("e"))) < 3) yield* Effect.yieldNow
    yield* Fiber.interrupt(fiber)
    after = undefined
    // Others write in between: the retry still finds its command among the newest records.
    yield* repo.execute("e", append([credit(1)]))
    const again = yield* (yield* Repository.make(ledger())).execute("e", pay(4), { commandId: "pay-2" })
    assert.deepEqual(again, { state: fold([credit(10), debit(3), debit(4)]), version: 3, events: [debit(4)] })

    assert.equal(runs, 2, "each command ran once")
    const records = yield* replayAll(journal)
    assert.deepEqual(records.map((r) => r.metadata?.[Repository.CommandIdKey]).slice(1, 3), ["pay-1", "pay-2"])
    assert.equal(records.length, 4)
    // A new command id is a new command.
    yield* repo.execute("e", pay(4), { commandId: "pay-3" })
    assert.equal(runs, 3)
  }).pipe(Effect.provide(location.layers())))

eachStorage("Repository: load with an invalid asOf fails with a RepositoryError naming asOf and the stream", (location) =>
  Effect.gen(function*() {
    const repo = yield* Repository.make(ledger())
    yield* repo.execute("t", append([credit(1)]))
    for (const asOf of [Number.NaN, Number.POSITIVE_INFINITY, -1, 1.5]) {
      yield* expectError(repo.load("t", { asOf }), "RepositoryError", "asOf", "ledger/t", String(asOf))
    }
    yield* expectError(repo.execute("t", append([credit(1)]), { commandId: "" }), "RepositoryError", "commandId", "ledger/t")
    yield* TestClock.setTime(5)
    assert.deepEqual(yield* repo.load("t", { asOf: 0 }), { state: fold([credit(1)]), version: 1 })
  }).pipe(Effect.provide(location.layers())))

test("Repository: a load while checkpoints replace the snapshot it listed (file snapshots) finds the newer one, not HistoryTruncated", () =>
  Effect.runPromise(Effect.gen(function*() {
    const directory = yield* tempDirectory("race")
    // Before a read of a snapshot file, the test may run something (its own reads pass straight):
    // a checkpoint between the store listing the stream's directory and reading the file it listed.
    const between: Array<Effect.Effect<void, unknown, Journal.Journal | SnapshotStore.SnapshotStore>> = []
    let running = false
    const reads: SnapshotReads = {
      ...nodeSnapshotReads,
      readFile: async (path) => {
        const run = running ? undefined : between.shift()
        if (run !== undefined) {
          running = true
          await Effect.runPromiseWith(context)(run).finally(() => running = false)
        }
        return nodeSnapshotReads.readFile(path)
      }
    }
    const snapshots = yield* open({ directory }, reads)
    const journal = yield* Journal.makeMemory
    const context = yield* Effect.provideService(
      Effect.provideService(Effect.context<Journal.Journal | SnapshotStore.SnapshotStore>(), Journal.Journal, journal),
      SnapshotStore.SnapshotStore,
      snapshots
    )
    const checkpoint = Effect.asVoid(Effect.flatMap(Checkpointer.make([ledger()], { history: "discard" }), (c) => c.run))
    const events = [credit(1), credit(2), credit(3), credit(4), credit(5), credit(6), debit(7)]
    yield* Effect.gen(function*() {
      const repo = yield* Repository.make(ledger())
      for (const event of events.slice(0, 4)) yield* repo.execute("x", append([event]))
      yield* checkpoint // snapshot at version 4; versions 1..4 truncated
      for (const event of events.slice(4, 6)) yield* repo.execute("x", append([event]))
      // The load lists the snapshot at version 4; before it reads it, a checkpoint replaces it with
      // one at version 6 (keep 1) and truncates versions 5 and 6. Looking again, it lists version 6;
      // before it reads that, a command appends version 7 and a checkpoint replaces it again.
      between.push(checkpoint, Effect.andThen(repo.execute("x", append([events[6]!])), checkpoint))
      const fresh = yield* Repository.make(ledger(), { cacheSize: 0 })
      assert.deepEqual(yield* fresh.load("x"), { state: fold(events), version: 7 })
      assert.equal(between.length, 0, "both checkpoints ran between a listing and a read")
      assert.deepEqual((yield* replayAll(journal)).map((r) => r.version), [], "versions 1..7 are truncated")
    }).pipe(Effect.provide(context))
  }).pipe(Effect.scoped, Effect.provide(TestClock.layer()))))

test("Repository: a journal read that skips versions between two pages (a truncation during the read), with no Archive to read them from, fails the load with HistoryTruncated naming them, never a state missing events", () =>
  Effect.runPromise(Effect.gen(function*() {
    const inner = yield* Journal.makeMemory
    const repo = yield* Repository.make(ledger()).pipe(Effect.provideService(Journal.Journal, inner))
    yield* repo.execute("x", append([credit(1), credit(2), credit(4), credit(8), credit(16), credit(32)]))
    // The stream read in two pages, versions 3 and 4 gone from between them.
    const skipping: Journal.Journal = {
      ...inner,
      read: (ref, options) =>
        Stream.unwrap(Effect.map(Stream.runCollect(inner.read(ref, options)), (records) =>
          Stream.fromArrays(records.filter((r) => r.version <= 2), records.filter((r) => r.version >= 5))))
    }
    const reading = yield* Repository.make(ledger()).pipe(Effect.provideService(Journal.Journal, skipping))
    const error = yield* expectError(reading.load("x"), "HistoryTruncated", "ledger/x", "versions 3..4", "no Archive is configured")
    assert.deepEqual([error.fromVersion, error.toVersion], [3, 4])
    // Read whole, the same records fold to the whole state.
    assert.equal((yield* repo.load("x")).state.balance, 63)
  }).pipe(Effect.provide(SnapshotStore.layerMemory()))))
