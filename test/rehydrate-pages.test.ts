/**
 * Loads fold the journal's read page by page (src/internal/rehydrate.ts): over journals whose `read`
 * returns the same records in other pages (empty ones, one record each, the base's record alone), the
 * state is the plain fold's — from the initial state, a snapshot, the cache, and as of a time; a
 * snapshot of another timeline is still distrusted, the archive still fills what was truncated before
 * the read, a CodecError in a later page fails the load. And truncations between two pages of a read
 * (which the file, PostgreSQL and Redis journals' pages allow): the missing versions come from the
 * archive, or the rebuild starts again from the newer snapshot — never a partial state (DESIGN §6).
 * Written by an adversarial review of that change; the last three cases failed before its fixes.
 */
import { Effect, Metric, Option, Stream } from "effect"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { test } from "node:test"
import { Archive, Checkpointer, Journal, Metrics, Repository, SnapshotStore } from "../src/index.ts"
import type { JournalRecord } from "../src/Journal.ts"
import { expectError } from "./conformance/harness.ts"
import { append, fold, type LedgerEvent, ledger } from "./support/ledger.ts"

const credit = (amount: number): LedgerEvent => ({ _tag: "Credited", amount })
const events = [credit(1), credit(2), credit(4), credit(8), credit(16), credit(32), credit(64)]
const x = { namespace: "ledger", id: "x" }

/** A memory journal holding `written` in stream x, appended by one execute of `aggregate`. */
const journalWith = (written: ReadonlyArray<LedgerEvent> = events, aggregate = ledger()) =>
  Effect.gen(function*() {
    const inner = yield* Journal.makeMemory
    const writer = yield* Repository.make(aggregate).pipe(Effect.provideService(Journal.Journal, inner))
    yield* writer.execute("x", append(written))
    return inner
  })

type Pages = (records: ReadonlyArray<JournalRecord>) => ReadonlyArray<ReadonlyArray<JournalRecord>>

/** `inner` whose `read` returns the same records in the pages `split` makes of them. */
const paged = (inner: Journal.Journal, split: Pages): Journal.Journal => ({
  ...inner,
  read: (ref, options) =>
    Stream.unwrap(Effect.map(Stream.runCollect(inner.read(ref, options)), (records) => Stream.fromArrays(...split(records))))
})

/** Pages of `size` records, with an empty page before each. */
const bySize = (size: number): Pages => (records) => {
  const pages: Array<ReadonlyArray<JournalRecord>> = []
  for (let i = 0; i < records.length; i += size) pages.push([], records.slice(i, i + size))
  pages.push([])
  return pages
}

/**
 * `inner` whose `read` pages like the file journal (a first page of `size` records, then the rest
 * read afresh from the version after it), running `between` once between the first two pages.
 */
const truncatingBetweenPages = (inner: Journal.Journal, size: number, between: Effect.Effect<void, unknown>): Journal.Journal => {
  let done = false
  return {
    ...inner,
    read: (ref, options) => {
      const from = options?.from ?? 1
      const to = options?.to ?? Number.MAX_SAFE_INTEGER
      const firstTo = Math.min(to, from + size - 1)
      return Stream.concat(
        inner.read(ref, { from, to: firstTo }),
        Stream.unwrap(Effect.suspend(() => {
          const run = done ? Effect.void : Effect.orDie(between)
          done = true
          return Effect.as(run, firstTo >= to ? Stream.empty : inner.read(ref, { from: firstTo + 1, to }))
        }))
      )
    }
  }
}

const splits: ReadonlyArray<[string, Pages]> = [
  ["one page", (r) => [r]],
  ["pages of 1 with empty pages between", bySize(1)],
  ["pages of 2", bySize(2)],
  ["the first record alone, then the rest", (r) => [r.slice(0, 1), [], r.slice(1)]],
  ["everything, then empty pages", (r) => [r, [], []]]
]

for (const [name, split] of splits) {
  test(`paged fold (${name}): from the initial state, from a snapshot, from the cache, and as of a time`, () =>
    Effect.runPromise(Effect.gen(function*() {
      const inner = yield* Journal.makeMemory
      const writer = yield* Repository.make(ledger({ every: 3, schemaVersion: 1 })).pipe(Effect.provideService(Journal.Journal, inner))
      const times: Array<number> = []
      for (const event of events) {
        yield* TestClock.adjust(1000)
        yield* writer.execute("x", append([event]))
        times.push((yield* Stream.runCollect(inner.read(x))).at(-1)!.timestamp)
      }
      const journal = paged(inner, split)
      // Snapshots at versions 3 and 6: the first page read from version 6 holds the snapshot's record only.
      const withSnapshot = yield* Repository.make(ledger({ every: 3, schemaVersion: 1 })).pipe(Effect.provideService(Journal.Journal, journal))
      assert.deepEqual(yield* withSnapshot.load("x"), { state: fold(events), version: 7 })
      // No snapshot usable: from the initial state.
      const fromInitial = yield* Repository.make(ledger({ every: 100, schemaVersion: 2 }), { cacheSize: 0 })
        .pipe(Effect.provideService(Journal.Journal, journal))
      assert.deepEqual(yield* fromInitial.load("x"), { state: fold(events), version: 7 })
      // The cache path: a later append, then a load from the cached state.
      yield* TestClock.adjust(1000)
      yield* writer.execute("x", append([credit(128)]))
      assert.deepEqual(yield* withSnapshot.load("x"), { state: fold([...events, credit(128)]), version: 8 })
      // asOf: every version's time, and one between.
      for (let v = 1; v <= 7; v++) {
        assert.deepEqual(yield* withSnapshot.load("x", { asOf: times[v - 1]! }), { state: fold(events.slice(0, v)), version: v }, `asOf v${v}`)
        assert.deepEqual(yield* fromInitial.load("x", { asOf: times[v - 1]! + 1 }), { state: fold(events.slice(0, v)), version: v }, `asOf v${v}+1`)
      }
    }).pipe(Effect.provide(SnapshotStore.layerMemory()), Effect.provide(TestClock.layer()))))
}

test("paged fold: a snapshot from another timeline is distrusted when the first page holds its record alone", () =>
  Effect.runPromise(Effect.gen(function*() {
    const inner = yield* journalWith()
    // A snapshot at version 4 with another seq, and a wrong state.
    const real = (yield* Stream.runCollect(inner.read(x))).find((r) => r.version === 4)!
    const snapshots = yield* SnapshotStore.SnapshotStore
    const snapshotOf4 = yield* Effect.gen(function*() {
      const sideStore = yield* SnapshotStore.makeMemory()
      const side = yield* Journal.makeMemory
      const r = yield* Repository.make(ledger({ every: 4, schemaVersion: 1 })).pipe(
        Effect.provideService(Journal.Journal, side),
        Effect.provideService(SnapshotStore.SnapshotStore, sideStore)
      )
      yield* r.execute("x", append([credit(1000), credit(2000), credit(3000), credit(4000)]))
      return Option.getOrThrow(yield* sideStore.get("ledger", "x"))
    })
    yield* snapshots.put({ ...snapshotOf4, seq: real.seq + 100 })
    for (const [name, split] of splits) {
      const reading = yield* Repository.make(ledger({ every: 100, schemaVersion: 1 }), { cacheSize: 0 })
        .pipe(Effect.provideService(Journal.Journal, paged(inner, (r) => split(r))))
      assert.deepEqual(yield* reading.load("x"), { state: fold(events), version: 7 }, name)
    }
  }).pipe(Effect.provide(SnapshotStore.layerMemory()))))

test("paged fold: the archive fills the versions truncated before the first page, whatever the pages", () =>
  Effect.runPromise(Effect.gen(function*() {
    const inner = yield* journalWith()
    const archive = yield* Archive.Archive
    const records = yield* Stream.runCollect(inner.read(x))
    yield* archive.put({ startSeq: 1, endSeq: 3, records: records.slice(0, 3) })
    yield* inner.truncateBefore(records[3]!.seq)
    for (const [name, split] of splits) {
      const reading = yield* Repository.make(ledger(), { cacheSize: 0 }).pipe(Effect.provideService(Journal.Journal, paged(inner, split)))
      assert.deepEqual(yield* reading.load("x"), { state: fold(events), version: 7 }, name)
    }
  }).pipe(Effect.provide(SnapshotStore.layerMemory()), Effect.provide(Archive.layerMemory()))))

test("paged fold: a CodecError in a later page fails the load; the records-replayed metric counts each fold once", () =>
  Effect.runPromise(Effect.gen(function*() {
    const inner = yield* journalWith()
    const replayed = Metric.withAttributes(Metrics.recordsReplayed, { namespace: "ledger" })
    const before = (yield* Metric.value(replayed)).count
    const reading = yield* Repository.make(ledger(), { cacheSize: 0 }).pipe(Effect.provideService(Journal.Journal, paged(inner, bySize(2))))
    yield* reading.load("x")
    assert.equal((yield* Metric.value(replayed)).count - before, 7)
    const broken = paged(inner, (records) => {
      const bad = records.map((r) => r.version === 6 ? { ...r, payload: new Uint8Array([0xc1]) } : r)
      return bySize(2)(bad)
    })
    const failing = yield* Repository.make(ledger(), { cacheSize: 0 }).pipe(Effect.provideService(Journal.Journal, broken))
    const mid = (yield* Metric.value(replayed)).count
    yield* expectError(failing.load("x"), "CodecError")
    assert.equal((yield* Metric.value(replayed)).count - mid, 0)
  }).pipe(Effect.provide(SnapshotStore.layerMemory()))))

// --- Truncations between two pages of the read (what the file journal's 4,096-record pages allow) ---

/**
 * A stream of 6 events whose snapshot (at version 6) is of another schemaVersion than the reader's,
 * so the reader rebuilds from the initial state "from events, or from the archive when truncated"
 * (DESIGN §6); the archive holds every record the truncation removes.
 */
const truncatedDuringRead = (truncateBeforeVersion: number) =>
  Effect.gen(function*() {
    const six = events.slice(0, 6)
    const inner = yield* journalWith(six, ledger({ every: 6, schemaVersion: 1 }))
    const archive = yield* Archive.Archive
    const records = yield* Stream.runCollect(inner.read(x))
    yield* archive.put({ startSeq: 1, endSeq: 6, records })
    const cut = truncateBeforeVersion > 6 ? records[5]!.seq + 1 : records[truncateBeforeVersion - 1]!.seq
    // A first page of versions 1..2; then the checkpoint truncates; then the rest is read.
    const journal = truncatingBetweenPages(inner, 2, inner.truncateBefore(cut))
    const reader = yield* Repository.make(ledger({ every: 100, schemaVersion: 2 }), { cacheSize: 0 })
      .pipe(Effect.provideService(Journal.Journal, journal))
    return { reader, six }
  })

test("a truncation between two pages that removes the rest of the stream: the load reads the rest from the archive, not a state at version 2", () =>
  Effect.runPromise(Effect.gen(function*() {
    const { reader, six } = yield* truncatedDuringRead(7)
    assert.deepEqual(yield* reader.load("x"), { state: fold(six), version: 6 })
  }).pipe(Effect.provide(SnapshotStore.layerMemory()), Effect.provide(Archive.layerMemory()))))

test("a truncation between two pages of versions 3..4 that the Archive holds: the load reads them from the archive (DESIGN §6)", () =>
  Effect.runPromise(Effect.gen(function*() {
    const { reader, six } = yield* truncatedDuringRead(5)
    const result = yield* Effect.result(reader.load("x"))
    assert.ok(result._tag === "Success", `load failed: ${result._tag === "Failure" ? result.failure.message : ""}`)
    assert.deepEqual(result.success, { state: fold(six), version: 6 })
  }).pipe(Effect.provide(SnapshotStore.layerMemory()), Effect.provide(Archive.layerMemory()))))

test("a Checkpointer run between two pages of a load's read (no snapshot before it): the load starts again from its snapshot, not a state at version 2", () =>
  Effect.runPromise(Effect.gen(function*() {
    const six = events.slice(0, 6)
    const inner = yield* journalWith(six)
    const snapshots = yield* SnapshotStore.SnapshotStore
    // The real Checkpointer: snapshots version 6, then truncates versions 1..6 (history: "discard").
    const checkpoint = Effect.asVoid(Effect.flatMap(Checkpointer.make([ledger()], { history: "discard" }), (c) => c.run)).pipe(
      Effect.provideService(Journal.Journal, inner),
      Effect.provideService(SnapshotStore.SnapshotStore, snapshots)
    )
    const reader = yield* Repository.make(ledger()).pipe(Effect.provideService(Journal.Journal, truncatingBetweenPages(inner, 2, checkpoint)))
    const loaded = yield* reader.load("x")
    assert.equal((yield* Stream.runCollect(inner.read(x))).length, 0, "the checkpoint truncated the stream")
    assert.deepEqual(loaded, { state: fold(six), version: 6 })
  }).pipe(Effect.provide(SnapshotStore.layerMemory()))))
