/**
 * The Projection runtime over every storage combination (DESIGN §6): a fold equals the plain fold
 * of the log while appends are in flight, and after restarts from its saved state (never a record
 * folded twice into what is kept, never one missed); a record that does not decode stops it naming
 * stream, version and seq; a new version rebuilds beside the old one (through the Archive after the
 * Checkpointer truncated) and equals a from-scratch fold; `reset` rebuilds in place; replicas fold
 * independently; an effectful handler gets decoded events with their metadata, seq and timestamp.
 */
import { Effect, Exit, Layer, Option, Schema, Scope } from "effect"
import assert from "node:assert/strict"
import { Archiver, Checkpointer, Codec, CursorStore, Journal, Projection, Repository, SnapshotStore } from "../../src/index.ts"
import { expectError } from "../conformance/harness.ts"
import { append, evolve, initial, type LedgerEvent, LedgerState, ledger } from "../support/ledger.ts"
import { type Case, register, replayAll } from "./harness.ts"
import type { Storage } from "./layers.ts"

const credit = (amount: number): LedgerEvent => ({ _tag: "Credited", amount })
const debit = (amount: number): LedgerEvent => ({ _tag: "Debited", amount, note: `d${amount}` })
const Ledger = ledger()
const Balances = Schema.Record(Schema.String, LedgerState)
type Balances = typeof Balances.Type

/** A fold of every ledger stream's state by id; `calls` counts evolve calls. */
const balances = (options: { readonly version?: number; readonly everyRecords?: number; readonly archive?: boolean } = {}) => {
  const counter = { calls: 0 }
  const projection = Projection.fold({
    name: "balances",
    version: options.version,
    aggregates: [Ledger],
    state: Balances,
    initial: {} as Balances,
    archive: options.archive,
    snapshot: { everyRecords: options.everyRecords ?? 5 },
    evolve: (state, event, record) => {
      counter.calls++
      return { ...state, [record.stream.id]: evolve(state[record.stream.id] ?? initial, event) }
    }
  })
  return { projection, counter }
}

/** The reference: the plain fold of every ledger record the journal holds (or `records`), by stream id. */
const reference = (records: ReadonlyArray<Journal.JournalRecord>): Balances => {
  const out: Record<string, LedgerState> = {}
  for (const record of records) {
    if (record.namespace !== "ledger") continue
    const event = Codec.decodeRecord(Ledger.eventCodec, record)
    if (event._tag === "Failure") throw event.failure
    out[record.id] = evolve(out[record.id] ?? initial, event.success)
  }
  return out
}

/** Appends `count` ledger events from `fibers` fibers to streams acct-0…acct-4, and a foreign record now and then. */
const appendConcurrently = (journal: Journal.Journal, fibers: number, count: number, from = 0) =>
  Effect.forEach(
    Array.from({ length: fibers }, (_, f) => f),
    (f) =>
      Effect.gen(function*() {
        for (let i = from + f; i < from + count; i += fibers) {
          const event = i % 3 === 0 ? debit(i) : credit(i)
          yield* journal.append({ namespace: "ledger", id: `acct-${i % 5}` }, "any", [{ type: event._tag, payload: Ledger.eventCodec.encode(event).pipe((r) => r._tag === "Success" ? r.success : new Uint8Array()) }])
          if (i % 7 === 0) yield* journal.append({ namespace: "other", id: "x" }, "any", [{ type: "Noise", payload: new Uint8Array([1]) }])
        }
      }),
    { concurrency: "unbounded", discard: true }
  )

const archiverLayer = (segmentSize?: number) => Archiver.layer({ segmentSize, pollInterval: "1 hour" })
const everything = (storage: Storage) => storage.all

export const projectionCases: ReadonlyArray<Case> = [
  {
    name: "a fold equals the plain fold of the log while appends are in flight; its saved state is at its cursor",
    live: true,
    run: (storage) =>
      Effect.gen(function*() {
        const journal = yield* Journal.Journal
        yield* appendConcurrently(journal, 3, 30)
        const { counter, projection } = balances()
        const running = yield* Projection.run(projection)
        yield* appendConcurrently(journal, 8, 200, 30)
        const status = yield* running.awaitCaughtUp
        const all = yield* replayAll(journal)
        assert.deepEqual(yield* running.get, reference(all))
        assert.equal(counter.calls, all.filter((r) => r.namespace === "ledger").length, "each ledger record folded once")
        assert.equal(status.cursor, all[all.length - 1]!.seq)
        const saved = Option.getOrThrow(yield* (yield* SnapshotStore.SnapshotStore).get("annals.projection", "balances@1"))
        assert.ok(saved.seq <= status.cursor && saved.seq >= all.filter((r) => r.namespace === "ledger").at(-1)!.seq, `saved at ${saved.seq}, cursor ${status.cursor}`)
        assert.deepEqual(Projection.subscriptionName(projection), "balances@1")
      }).pipe(Effect.provide(everything(storage)))
  },

  {
    name: "restarted (scope closed mid-stream, storage reopened), it resumes from its saved state: nothing missed, nothing folded twice",
    live: true,
    run: (storage) =>
      Effect.gen(function*() {
        const journal = yield* Journal.Journal
        yield* appendConcurrently(journal, 2, 40)
        let total = 0
        for (let round = 0; round < 3; round++) {
          const { counter, projection } = balances({ everyRecords: 7 })
          const scope = yield* Scope.make()
          const running = yield* Projection.run(projection).pipe(Scope.provide(scope))
          yield* appendConcurrently(journal, 4, 50, 40 + round * 50)
          yield* running.awaitCaughtUp
          assert.deepEqual(yield* running.get, reference(yield* replayAll(journal)), `round ${round}`)
          yield* appendConcurrently(journal, 2, 3, 1000 + round * 3)
          yield* Scope.close(scope, Exit.void)
          total += counter.calls
        }
        const { counter, projection } = balances({ everyRecords: 7 })
        const last = yield* Projection.run(projection)
        yield* last.awaitCaughtUp
        total += counter.calls
        const all = yield* replayAll(journal)
        assert.deepEqual(yield* last.get, reference(all))
        // Each run folds from its saved state on: the unsaved tail of the run before at most again.
        const ledgerRecords = all.filter((r) => r.namespace === "ledger").length
        assert.ok(total >= ledgerRecords && total <= ledgerRecords + 3 * 7, `${total} evolve calls for ${ledgerRecords} records`)
      }).pipe(Effect.provide(everything(storage)))
  },

  {
    name: "a record that does not decode stops the fold naming stream, version and seq; its cursor stays before it",
    live: true,
    run: (storage) =>
      Effect.gen(function*() {
        const journal = yield* Journal.Journal
        yield* appendConcurrently(journal, 1, 6)
        const bad = yield* journal.append({ namespace: "ledger", id: "acct-9" }, "any", [{ type: "Credited", payload: new Uint8Array([0xc1]) }])
        yield* appendConcurrently(journal, 1, 3, 6)
        const fold = Projection.fold({
          name: "strict",
          aggregates: [Ledger],
          state: Balances,
          initial: {} as Balances,
          retry: { times: 0 },
          evolve: (state, event, record) => ({ ...state, [record.stream.id]: evolve(state[record.stream.id] ?? initial, event) })
        })
        const running = yield* Projection.run(fold)
        yield* expectError(running.await, "SubscriptionError", "strict@1", `seq ${bad.firstSeq}`, "ledger/acct-9", "version 1")
        const cursor = Option.getOrThrow(yield* (yield* CursorStore.CursorStore).get("strict@1"))
        assert.ok(cursor.seq < bad.firstSeq, `cursor ${cursor.seq} before ${bad.firstSeq}`)
        const before = (yield* replayAll(journal)).filter((r) => r.seq < bad.firstSeq)
        assert.deepEqual((yield* running.point).state, reference(before))
      }).pipe(Effect.provide(everything(storage)))
  },

  {
    name: "blue/green: a new version rebuilds through the Archive after truncation, beside the old one, and equals a from-scratch fold; reset rebuilds in place",
    live: true,
    run: (storage) =>
      Effect.gen(function*() {
        const aggregate = ledger({ every: 3, schemaVersion: 1 })
        const repo = yield* Repository.make(aggregate)
        const journal = yield* Journal.Journal
        const blue = balances({ archive: true })
        const running = yield* Projection.run(blue.projection)
        for (let i = 0; i < 40; i++) yield* repo.execute(`acct-${i % 4}`, append([i % 5 === 0 ? debit(i) : credit(i)]))
        yield* running.awaitCaughtUp
        const everyRecord = yield* replayAll(journal)
        const result = yield* (yield* Checkpointer.make([aggregate], { history: "archive", cursors: true })).run
        assert.equal(result.checkpoint, 41)
        assert.deepEqual(yield* replayAll(journal), [])
        // Green: version 2, whose evolve is the same; it reads the truncated history from the Archive.
        const green = balances({ version: 2, archive: true })
        const next = yield* Projection.run(green.projection)
        for (let i = 40; i < 45; i++) yield* repo.execute(`acct-${i % 4}`, append([credit(i)]))
        const [greenStatus] = yield* Effect.all([next.awaitCaughtUp, running.awaitCaughtUp])
        assert.equal(greenStatus.cursor, 45)
        const all = [...everyRecord, ...(yield* replayAll(journal))]
        assert.deepEqual(yield* next.get, reference(all))
        assert.deepEqual(yield* running.get, reference(all), "blue kept serving")
        // Reset refuses while blue runs (its lease), then clears it for a rebuild in place.
        yield* expectError(Projection.reset(blue.projection), "ProjectionError", "balances@1", "held by")
      }).pipe(Effect.provide(Layer.provideMerge(archiverLayer(8), everything(storage))))
  },

  {
    name: "reset clears a stopped fold's cursor and saved state: the next run refolds everything",
    live: true,
    run: (storage) =>
      Effect.gen(function*() {
        const journal = yield* Journal.Journal
        yield* appendConcurrently(journal, 2, 30)
        const first = balances()
        yield* Effect.scoped(Effect.flatMap(Projection.run(first.projection), (running) => running.awaitCaughtUp))
        yield* Projection.reset(first.projection)
        assert.deepEqual(yield* (yield* CursorStore.CursorStore).get("balances@1"), Option.none())
        assert.deepEqual(yield* (yield* SnapshotStore.SnapshotStore).get("annals.projection", "balances@1"), Option.none())
        const again = balances()
        const running = yield* Projection.run(again.projection)
        yield* running.awaitCaughtUp
        assert.equal(again.counter.calls, 30)
        assert.deepEqual(yield* running.get, reference(yield* replayAll(journal)))
      }).pipe(Effect.provide(everything(storage)))
  },

  {
    name: "replicas fold the log side by side, each with its own cursor and saved state",
    live: true,
    run: (storage) =>
      Effect.gen(function*() {
        const journal = yield* Journal.Journal
        const { projection } = balances()
        const a = yield* Projection.run(projection, { replica: "a" })
        yield* appendConcurrently(journal, 4, 60)
        const b = yield* Projection.run(projection, { replica: "b" })
        yield* appendConcurrently(journal, 4, 60, 60)
        yield* Effect.all([a.awaitCaughtUp, b.awaitCaughtUp])
        const expected = reference(yield* replayAll(journal))
        assert.deepEqual(yield* a.get, expected)
        assert.deepEqual(yield* b.get, expected)
        assert.deepEqual((yield* (yield* CursorStore.CursorStore).list).map((c) => c.name), ["balances@1#a", "balances@1#b"])
      }).pipe(Effect.provide(everything(storage)))
  },

  {
    name: "an effectful projection gets each event of its aggregates decoded, with stream, version, seq, timestamp and metadata",
    live: true,
    run: (storage) =>
      Effect.gen(function*() {
        const journal = yield* Journal.Journal
        const seen: Array<string> = []
        const emails = Projection.make({
          name: "emails",
          aggregates: [Ledger],
          batch: { maxRecords: 3 },
          handle: (event, record) =>
            Effect.sync(() => void seen.push(`${record.seq} ${record.stream.namespace}/${record.stream.id}@${record.version} ${event._tag}:${event.amount} ${record.metadata.who ?? "-"} ${record.timestamp >= 0}`))
        })
        yield* journal.append({ namespace: "ledger", id: "a" }, "any", [
          { type: "Credited", payload: Codec.make(Ledger.event).encode(credit(5)).pipe((r) => r._tag === "Success" ? r.success : new Uint8Array()), metadata: { who: "ann" } }
        ])
        const running = yield* Projection.run(emails)
        yield* appendConcurrently(journal, 2, 10)
        yield* running.awaitCaughtUp
        const all = yield* replayAll(journal)
        const expected = all.filter((r) => r.namespace === "ledger").map((r) => {
          const event = Codec.decodeRecord(Ledger.eventCodec, r)
          if (event._tag === "Failure") throw event.failure
          return `${r.seq} ledger/${r.id}@${r.version} ${event.success._tag}:${event.success.amount} ${r.metadata?.who ?? "-"} true`
        })
        assert.deepEqual(seen, expected)
        assert.ok(seen[0]!.includes("ann"))
      }).pipe(Effect.provide(everything(storage)))
  }
]

register("Projection", projectionCases)
