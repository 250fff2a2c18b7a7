/**
 * The Projection runtime over every storage combination (DESIGN §6): a fold equals the plain fold
 * of the log while appends are in flight, and after restarts from its saved state (never a record
 * folded twice into what is kept, never one missed); a record that does not decode stops it naming
 * stream, version and seq; a new version rebuilds beside the old one (through the Archive after the
 * Checkpointer truncated) and equals a from-scratch fold; `reset` rebuilds in place; replicas fold
 * independently; an effectful handler gets decoded events with their metadata, seq and timestamp;
 * export → import into a new replica (from a copy of the artifact) → follow equals a replica that
 * replayed everything, and folds only what came after the artifact; replicas racing to export make
 * one artifact per round; a damaged artifact is an import error naming the file.
 */
import { Effect, Exit, Layer, Option, Scope } from "effect"
import assert from "node:assert/strict"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Archiver, Checkpointer, Codec, CursorStore, Journal, Projection, Repository, SnapshotStore } from "../../src/index.ts"
import { expectError } from "../conformance/harness.ts"
import { appendConcurrently, Balances, balances, credit, debit, Ledger, reference } from "../support/balances.ts"
import { append, evolve, initial, ledger } from "../support/ledger.ts"
import { tempDirectory } from "../support/tempDirectory.ts"
import { type Case, eventually, register, replayAll } from "./harness.ts"
import type { Storage } from "./layers.ts"

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
    name: "a record that does not decode is not retried (a retry cannot fix it): with the default retry policy the projection stops at once",
    run: (storage) =>
      Effect.gen(function*() {
        const journal = yield* Journal.Journal
        yield* appendConcurrently(journal, 1, 2)
        const bad = yield* journal.append({ namespace: "ledger", id: "acct-9" }, "any", [{ type: "Debited", payload: new Uint8Array([0x92, 1]) }])
        const handled: Array<number> = []
        const running = yield* Projection.run(Projection.make({
          name: "no-retry",
          aggregates: [Ledger],
          handle: (_event, record) => Effect.sync(() => void handled.push(record.seq))
        }))
        // Under the TestClock a retry's backoff would never end: the stop must come without one.
        yield* eventually("it has stopped", Effect.map(running.status, (status) => status.state === "stopped"))
        yield* expectError(running.status.pipe(Effect.flatMap((status) => Option.match(status.error, { onNone: () => Effect.void, onSome: Effect.fail }))), "SubscriptionError", `seq ${bad.firstSeq}`, "ledger/acct-9")
        // The batch once whole, then record by record up to the bad one: each good record at most twice.
        for (const seq of [1, 2]) assert.ok(handled.filter((s) => s === seq).length <= 2, `seq ${seq} handled ${handled.filter((s) => s === seq).length} times`)
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
  },

  {
    name: "export, then import into a new replica from a copy of the artifact: following from its cursor equals a replica that replayed everything",
    live: true,
    run: (storage) =>
      Effect.gen(function*() {
        const journal = yield* Journal.Journal
        const exported = yield* tempDirectory("export")
        const copy = yield* tempDirectory("import")
        const { projection } = balances()
        const a = yield* Projection.run(projection, { replica: "a" })
        yield* appendConcurrently(journal, 4, 120)
        yield* a.awaitCaughtUp
        const manifest = Option.getOrThrow(yield* a.exportState({ directory: exported, round: 1 }))
        assert.equal(manifest.cursor, (yield* a.point).seq)
        assert.equal(manifest.projection, "balances")
        assert.equal(manifest.writer, a.owner)
        yield* appendConcurrently(journal, 4, 40, 120)
        yield* Effect.promise(() => fs.cp(exported, copy, { recursive: true }))
        const imported = Option.getOrThrow(yield* Projection.importLatest(projection, { directory: copy, replica: "b" }))
        assert.deepEqual(imported, manifest)
        assert.deepEqual(yield* Projection.importLatest(projection, { directory: copy, replica: "b" }), Option.none(), "already there")
        const fresh = balances()
        const b = yield* Projection.run(fresh.projection, { replica: "b" })
        yield* appendConcurrently(journal, 2, 20, 160)
        yield* Effect.all([a.awaitCaughtUp, b.awaitCaughtUp])
        const all = yield* replayAll(journal)
        assert.deepEqual(yield* b.get, reference(all))
        assert.deepEqual(yield* b.get, yield* a.get)
        const after = all.filter((r) => r.namespace === "ledger" && r.seq > manifest.cursor).length
        assert.equal(fresh.counter.calls, after, "the new replica folded only what came after the artifact")
      }).pipe(Effect.provide(everything(storage)))
  },

  {
    name: "replicas racing to export make one artifact per round; a damaged artifact is an import error naming the file",
    live: true,
    run: (storage) =>
      Effect.gen(function*() {
        const journal = yield* Journal.Journal
        const directory = yield* tempDirectory("race")
        const { projection } = balances()
        const replicas = yield* Effect.forEach(["a", "b", "c"], (replica) => Projection.run(projection, { replica }))
        yield* appendConcurrently(journal, 3, 90)
        yield* Effect.forEach(replicas, (r) => r.awaitCaughtUp, { discard: true })
        for (const round of [3, 4]) {
          const results = yield* Effect.forEach(replicas, (r) => r.exportState({ directory, round }), { concurrency: "unbounded" })
          assert.equal(results.filter(Option.isSome).length, 1, `round ${round}: one export`)
          const again = yield* Effect.forEach(replicas, (r) => r.exportState({ directory, round }), { concurrency: "unbounded" })
          assert.equal(again.filter(Option.isSome).length, 0, `round ${round} is not exported twice`)
        }
        const projections = yield* Effect.promise(() => fs.readdir(directory))
        assert.equal(projections.length, 1)
        const home = path.join(directory, projections[0]!)
        const rounds = yield* Effect.promise(() => fs.readdir(home))
        assert.deepEqual(rounds.sort(), ["00000000000000000003", "00000000000000000004"])
        // Damage the newest: the import fails naming the file, and does not fall back to round 3.
        const state = path.join(home, "00000000000000000004", "state.msgpack")
        const bytes = yield* Effect.promise(() => fs.readFile(state))
        bytes[bytes.length - 1] ^= 0xff
        yield* Effect.promise(() => fs.writeFile(state, bytes))
        yield* expectError(Projection.importLatest(projection, { directory, replica: "d" }), "ProjectionError", "balances@1#d", state)
        assert.deepEqual(yield* (yield* CursorStore.CursorStore).get("balances@1#d"), Option.none())
      }).pipe(Effect.provide(everything(storage)))
  }
]

register("Projection", projectionCases)
