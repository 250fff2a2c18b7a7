/**
 * The Subscription runtime over every storage combination (DESIGN §6): every record once and in
 * order while appends are in flight, resuming after the cursor across a reopen, `from: "end"`,
 * filters, a poison record stopping it at its seq with the cursor before it, transient handler
 * failures, competing instances (never two applying at once; a standby taking over a dead owner's
 * lease), catch-up through the Archive after truncation — at the start and while it follows —, and
 * the Checkpointer holding truncation back for lagging cursors.
 */
import { Deferred, Effect, Exit, Layer, Option, Scope } from "effect"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { Archiver, Checkpointer, CursorStore, Journal, Repository, Subscription } from "../../src/index.ts"
import { expectError } from "../conformance/harness.ts"
import { append, type LedgerEvent, ledger } from "../support/ledger.ts"
import { type Case, eventually, register, replayAll } from "./harness.ts"
import type { Storage } from "./layers.ts"

const credit = (amount: number): LedgerEvent => ({ _tag: "Credited", amount })
const event = (type: string) => ({ type, payload: new Uint8Array([1]) })
const archiverLayer = (segmentSize?: number) => Archiver.layer({ segmentSize, pollInterval: "1 hour" })

/** Journal, SnapshotStore, Archive and CursorStore of the case's storage (one build: one process). */
const everything = (storage: Storage) => storage.all

/** A handler that records every seq it is given, in order. */
const recorder = () => {
  const seqs: Array<number> = []
  const batches: Array<number> = []
  return {
    seqs,
    batches,
    handle: (records: ReadonlyArray<Journal.JournalRecord>) =>
      Effect.sync(() => {
        batches.push(records.length)
        for (const record of records) seqs.push(record.seq)
      })
  }
}

/** Appends `count` one-event appends to streams s0…s{streams-1} from `fibers` concurrent fibers. */
const appendConcurrently = (journal: Journal.Journal, fibers: number, count: number, type = "E") =>
  Effect.forEach(
    Array.from({ length: fibers }, (_, f) => f),
    (f) =>
      Effect.gen(function*() {
        for (let i = f; i < count; i += fibers) yield* journal.append({ namespace: "n", id: `s${i % 7}` }, "any", [event(type)])
      }),
    { concurrency: "unbounded", discard: true }
  )

/** The seqs 1..n. */
const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i)

export const subscriptionCases: ReadonlyArray<Case> = [
  {
    name: "delivers every record once, in seq order, in batches of at most maxRecords, while appends are in flight",
    live: true,
    run: (storage) =>
      Effect.gen(function*() {
        const journal = yield* Journal.Journal
        yield* appendConcurrently(journal, 4, 40)
        const seen = recorder()
        const subscription = yield* Subscription.make({ name: "all", batch: { maxRecords: 7 }, handle: seen.handle })
        yield* appendConcurrently(journal, 12, 300)
        const status = yield* subscription.awaitCaughtUp
        const all = (yield* replayAll(journal)).map((r) => r.seq)
        assert.equal(all.length, 340)
        assert.deepEqual(seen.seqs, all, "every record once, in seq order")
        assert.ok(seen.batches.every((n) => n >= 1 && n <= 7), `batch sizes ${seen.batches.join(",")}`)
        assert.equal(status.cursor, 340)
        assert.equal(status.caughtUp, true)
        assert.equal(status.lagRecords, 0)
        assert.equal(status.state, "active")
        const stored = yield* (yield* CursorStore.CursorStore).get("all")
        assert.equal(Option.getOrThrow(stored).seq, 340)
      }).pipe(Effect.provide(everything(storage)))
  },

  {
    name: "after a restart it resumes right after its committed cursor",
    live: true,
    run: (storage) =>
      Effect.gen(function*() {
        const first = recorder()
        yield* Effect.scoped(Effect.gen(function*() {
          const journal = yield* Journal.Journal
          yield* appendConcurrently(journal, 3, 25)
          const subscription = yield* Subscription.make({ name: "resume", handle: first.handle })
          yield* subscription.awaitCaughtUp
        })).pipe(Effect.provide(everything(storage)))
        assert.deepEqual(first.seqs, range(1, 25))
        const second = recorder()
        yield* Effect.scoped(Effect.gen(function*() {
          const journal = yield* Journal.Journal
          yield* appendConcurrently(journal, 3, 10)
          const subscription = yield* Subscription.make({ name: "resume", handle: second.handle })
          const status = yield* subscription.awaitCaughtUp
          assert.equal(status.cursor, 35)
        })).pipe(Effect.provide(everything(storage)))
        assert.deepEqual(second.seqs, range(26, 35), "only the records after the cursor, each once")
      })
  },

  {
    name: "from: \"end\" starts at the end of the log and keeps that position across a restart",
    live: true,
    run: (storage) =>
      Effect.gen(function*() {
        const seen = recorder()
        yield* Effect.scoped(Effect.gen(function*() {
          const journal = yield* Journal.Journal
          yield* appendConcurrently(journal, 2, 10)
          const subscription = yield* Subscription.make({ name: "tail", from: "end", handle: seen.handle })
          assert.equal((yield* subscription.awaitCaughtUp).cursor, 10)
        })).pipe(Effect.provide(everything(storage)))
        yield* Effect.scoped(Effect.gen(function*() {
          const journal = yield* Journal.Journal
          yield* appendConcurrently(journal, 2, 5) // seqs 11-15, appended while no instance runs
          const subscription = yield* Subscription.make({ name: "tail", from: "end", handle: seen.handle })
          yield* subscription.awaitCaughtUp
        })).pipe(Effect.provide(everything(storage)))
        assert.deepEqual(seen.seqs, range(11, 15))
      })
  },

  {
    name: "filters by namespace and type reach the handler; the cursor still moves past the records they skip",
    live: true,
    run: (storage) =>
      Effect.gen(function*() {
        const journal = yield* Journal.Journal
        for (let i = 0; i < 30; i++) {
          yield* journal.append({ namespace: i % 3 === 0 ? "order" : "cart", id: `x${i % 4}` }, "any", [
            event(i % 2 === 0 ? "Placed" : "Noted")
          ])
        }
        const seen = recorder()
        const subscription = yield* Subscription.make({
          name: "placed-orders",
          namespaces: ["order"],
          types: ["Placed"],
          handle: seen.handle
        })
        const status = yield* subscription.awaitCaughtUp
        const expected = (yield* replayAll(journal)).filter((r) => r.namespace === "order" && r.type === "Placed").map((r) => r.seq)
        assert.deepEqual(seen.seqs, expected)
        assert.equal(status.cursor, 30, "the cursor passed the skipped records too")
        // A tail of skipped records only: the cursor still reaches the end.
        yield* journal.append({ namespace: "cart", id: "y" }, "any", [event("Noted"), event("Noted")])
        assert.equal((yield* subscription.awaitCaughtUp).cursor, 32)
      }).pipe(Effect.provide(everything(storage)))
  },

  {
    name: "a poison record stops it with a SubscriptionError naming the subscription and the seq, the cursor just before it",
    live: true,
    run: (storage) =>
      Effect.gen(function*() {
        const journal = yield* Journal.Journal
        yield* appendConcurrently(journal, 1, 20)
        const applied: Array<number> = []
        let calls = 0
        const subscription = yield* Subscription.make({
          name: "poisoned",
          batch: { maxRecords: 8 },
          retry: { times: 2, baseDelayMs: 1 },
          handle: (records) =>
            Effect.suspend(() => {
              calls++
              if (records.some((r) => r.seq === 13)) return Effect.fail(new Error("cannot apply seq 13"))
              for (const r of records) applied.push(r.seq)
              return Effect.void
            })
        })
        const error = yield* expectError(subscription.await, "SubscriptionError", "poisoned", "seq 13", "cannot apply seq 13")
        assert.equal(error.seq, 13)
        const status = yield* subscription.status
        assert.equal(status.state, "stopped")
        assert.equal(status.cursor, 12)
        assert.deepEqual(Option.map(status.error, (e) => e.seq), Option.some(13))
        // 1-8, then 9-16 failing 3 times, then one by one: 9, 10, 11, 12 applied, 13 failing 3 times.
        assert.deepEqual(applied, [...range(1, 8), ...range(9, 12)])
        assert.equal(calls, 1 + 3 + 4 + 3)
        yield* eventually(
          "the cursor before the poison record is stored",
          Effect.map((yield* CursorStore.CursorStore).get("poisoned"), (c) => Option.isSome(c) && c.value.seq === 12)
        )
        yield* expectError(subscription.awaitCaughtUp, "SubscriptionError", "seq 13")
      }).pipe(Effect.provide(everything(storage)))
  },

  {
    name: "a handler that fails a few times is retried with backoff and the subscription goes on",
    live: true,
    run: (storage) =>
      Effect.gen(function*() {
        const journal = yield* Journal.Journal
        yield* appendConcurrently(journal, 2, 12)
        let failures = 0
        const seen = recorder()
        const subscription = yield* Subscription.make({
          name: "flaky",
          retry: { times: 3, baseDelayMs: 1 },
          handle: (records) =>
            failures < 2 ? Effect.sync(() => failures++).pipe(Effect.andThen(Effect.die("flaky defect"))) : seen.handle(records)
        })
        const status = yield* subscription.awaitCaughtUp
        assert.equal(failures, 2)
        assert.deepEqual(seen.seqs, range(1, 12))
        assert.equal(status.cursor, 12)
      }).pipe(Effect.provide(everything(storage)))
  },

  {
    name: "instances competing for one name never apply at once; a standby takes over a dead owner's lease",
    live: true,
    run: (storage) =>
      Effect.gen(function*() {
        const journal = yield* Journal.Journal
        const cursors = yield* CursorStore.CursorStore
        let inside = 0
        let overlaps = 0
        const byOwner = new Map<string, Array<number>>()
        const instance = (owner: string, store: CursorStore.CursorStore) =>
          Subscription.make({
            name: "single",
            batch: { maxRecords: 5 },
            // 1 s: with a shorter ttl a machine loaded by a full CI run delayed renewals and expiry
            // timers past it (an instance's handler still ran when another had taken the lease).
            lease: { ttlMs: 1_000, owner },
            handle: (records) =>
              Effect.gen(function*() {
                if (++inside > 1) overlaps++
                yield* Effect.sleep(1)
                const list = byOwner.get(owner) ?? []
                for (const r of records) list.push(r.seq)
                byOwner.set(owner, list)
                inside--
              })
          }).pipe(Effect.provideService(CursorStore.CursorStore, store))
        // A "dies" without giving its lease up: its store ignores the release.
        const dying: CursorStore.CursorStore = { ...cursors, release: () => Effect.void }
        const scopeA = yield* Scope.make()
        const a = yield* Scope.provide(scopeA)(instance("A", dying))
        yield* appendConcurrently(journal, 3, 30)
        yield* a.awaitCaughtUp
        const b = yield* instance("B", cursors)
        const c = yield* instance("C", cursors)
        yield* eventually("B and C stand by", Effect.map(Effect.all([b.status, c.status]), (s) => s.every((x) => x.state === "standby")))
        yield* appendConcurrently(journal, 3, 30)
        yield* a.awaitCaughtUp
        assert.deepEqual(byOwner.get("A"), range(1, 60), "the holder applied everything while the others stood by")
        yield* Scope.close(scopeA, Exit.void)
        const died = Date.now()
        yield* appendConcurrently(journal, 3, 30)
        yield* eventually(
          "B or C took over and applied the new records",
          Effect.map(Effect.all([b.status, c.status]), (s) => s.some((x) => x.state === "active" && x.cursor === 90))
        )
        const waited = Date.now() - died
        // The lease was renewed at most a third of its ttl before A died: no one may take it sooner.
        assert.ok(waited >= 600, `the lease was taken over ${waited} ms after its owner died, before it expired`)
        const taker = (yield* b.status).state === "active" ? "B" : "C"
        assert.deepEqual(byOwner.get(taker), range(61, 90), "the taker starts right after A's cursor")
        assert.equal(byOwner.get(taker === "B" ? "C" : "B"), undefined, "the other one still stands by")
        assert.equal(overlaps, 0, "two instances applied batches at the same time")
      }).pipe(Effect.provide(everything(storage)))
  },

  {
    name: "started after a checkpoint truncated the journal, it catches up from the Archive: every record exactly once",
    live: true,
    run: (storage) =>
      Effect.gen(function*() {
        const aggregate = ledger({ every: 3, schemaVersion: 1 })
        const repo = yield* Repository.make(aggregate)
        const journal = yield* Journal.Journal
        for (let i = 0; i < 45; i++) yield* repo.execute(`acct-${i % 4}`, append([credit(i)]))
        const result = yield* (yield* Checkpointer.make([aggregate], { history: "archive" })).run
        assert.equal(result.checkpoint, 46)
        assert.deepEqual(yield* replayAll(journal), [])
        for (let i = 45; i < 50; i++) yield* repo.execute(`acct-${i % 4}`, append([credit(i)]))
        const seen = recorder()
        const subscription = yield* Subscription.make({ name: "late", archive: true, batch: { maxRecords: 4 }, handle: seen.handle })
        for (let i = 50; i < 60; i++) yield* repo.execute(`acct-${i % 4}`, append([credit(i)]))
        yield* subscription.awaitCaughtUp
        assert.deepEqual(seen.seqs, range(1, 60))
        // Without the Archive the same start is a typed stop naming the seq it could not read.
        const blind = yield* Subscription.make({ name: "blind", handle: () => Effect.void })
        yield* expectError(blind.await, "SubscriptionError", "blind", "seq 1", "truncated", "no Archive")
      }).pipe(Effect.provide(Layer.provideMerge(archiverLayer(10), everything(storage))))
  },

  {
    name: "a truncation that overtakes a lagging follower is read back from the Archive: nothing skipped, nothing twice",
    live: true,
    run: (storage) =>
      Effect.gen(function*() {
        const aggregate = ledger({ every: 2, schemaVersion: 1 })
        const repo = yield* Repository.make(aggregate)
        for (let i = 0; i < 10; i++) yield* repo.execute(`acct-${i % 3}`, append([credit(i)]))
        const gate = yield* Deferred.make<void>()
        const seen = recorder()
        const subscription = yield* Subscription.make({
          name: "lagging",
          archive: true,
          batch: { maxRecords: 3 },
          // Held at its first batch while the journal is checkpointed and truncated far past it.
          handle: (records) => Effect.andThen(Deferred.await(gate), seen.handle(records))
        })
        yield* eventually("it is active", Effect.map(subscription.status, (s) => s.state === "active"))
        for (let i = 10; i < 40; i++) yield* repo.execute(`acct-${i % 3}`, append([credit(i)]))
        const result = yield* (yield* Checkpointer.make([aggregate], { history: "archive", cursors: true })).run
        assert.equal(result.checkpoint, 41)
        assert.deepEqual(result.lagging.map((l) => [l.name, l.heldBack]), [["lagging", false]])
        yield* Deferred.succeed(gate, undefined)
        for (let i = 40; i < 45; i++) yield* repo.execute(`acct-${i % 3}`, append([credit(i)]))
        yield* subscription.awaitCaughtUp
        assert.deepEqual(seen.seqs, range(1, 45))
      }).pipe(Effect.provide(Layer.provideMerge(archiverLayer(7), everything(storage))))
  },

  {
    name: "without an Archive a lagging cursor holds the Checkpointer's truncation back, and is reported",
    live: true,
    run: (storage) =>
      Effect.gen(function*() {
        const aggregate = ledger({ every: 2, schemaVersion: 1 })
        const repo = yield* Repository.make(aggregate)
        const journal = yield* Journal.Journal
        for (let i = 0; i < 6; i++) yield* repo.execute(`acct-${i % 2}`, append([credit(i)]))
        const seen = recorder()
        const first = yield* Effect.scoped(Effect.gen(function*() {
          const subscription = yield* Subscription.make({ name: "slow", handle: seen.handle })
          return yield* subscription.awaitCaughtUp
        }))
        assert.equal(first.cursor, 6)
        for (let i = 6; i < 20; i++) yield* repo.execute(`acct-${i % 2}`, append([credit(i)]))
        const result = yield* (yield* Checkpointer.make([aggregate], { history: "discard", cursors: true })).run
        assert.equal(result.checkpoint, 7, "held back at the cursor + 1")
        assert.deepEqual(result.lagging, [{ name: "slow", cursor: 6, heldBack: true }])
        assert.deepEqual((yield* replayAll(journal)).map((r) => r.seq), range(7, 20))
        const again = yield* Subscription.make({ name: "slow", handle: seen.handle })
        yield* again.awaitCaughtUp
        assert.deepEqual(seen.seqs, range(1, 20))
        const next = yield* (yield* Checkpointer.make([aggregate], { history: "discard", cursors: true })).run
        assert.equal(next.checkpoint, 21)
        assert.deepEqual(next.lagging, [])
      }).pipe(Effect.provide(everything(storage)))
  },

  {
    name: "a truncation past the end of the log removes no record it has not seen: a caught-up subscription goes on",
    live: true,
    run: (storage) =>
      Effect.gen(function*() {
        const journal = yield* Journal.Journal
        yield* appendConcurrently(journal, 1, 3)
        const seen = recorder()
        const subscription = yield* Subscription.make({ name: "past-the-end", handle: seen.handle })
        yield* subscription.awaitCaughtUp
        yield* journal.truncateBefore(100) // seqs 4-99 never existed; later appends start at 100
        yield* appendConcurrently(journal, 1, 2)
        const status = yield* subscription.awaitCaughtUp
        assert.deepEqual(seen.seqs, [1, 2, 3, 100, 101])
        assert.equal(status.cursor, 101)
      }).pipe(Effect.provide(everything(storage)))
  },

  {
    name: "status reports the lag in records and milliseconds; bad options are a SubscriptionError",
    run: (storage) =>
      Effect.gen(function*() {
        const journal = yield* Journal.Journal
        const gate = yield* Deferred.make<void>()
        yield* appendConcurrently(journal, 1, 5)
        const subscription = yield* Subscription.make({ name: "gated", handle: () => Deferred.await(gate) })
        yield* eventually("it is active", Effect.map(subscription.status, (s) => s.state === "active"))
        yield* TestClock.adjust(250)
        const status = yield* subscription.status
        assert.deepEqual([status.cursor, status.lastSeq, status.lagRecords, status.caughtUp, status.lagMs], [0, 5, 5, false, 250])
        yield* Deferred.succeed(gate, undefined)
        assert.deepEqual((yield* subscription.awaitCaughtUp).lagMs, 0)
        yield* expectError(Subscription.make({ name: "", handle: () => Effect.void }), "SubscriptionError", "name")
        yield* expectError(
          Subscription.make({ name: "x", batch: { maxRecords: 0 }, handle: () => Effect.void }),
          "SubscriptionError",
          "batch.maxRecords"
        )
        yield* expectError(
          Subscription.make({ name: "x", namespaces: ["a\u0000"], handle: () => Effect.void }),
          "SubscriptionError",
          "namespaces"
        )
      }).pipe(Effect.provide(everything(storage)))
  }
]

register("Subscription", subscriptionCases)
