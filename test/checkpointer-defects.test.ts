/**
 * Regression tests of the Checkpointer defects of issue 9, over the memory and the file layers: the
 * watermark is lowered to what the Archiver archived and never passes a record the replay did not
 * return; the history mode is explicit (`"archive"` needs the Archiver in `R`, `"discard"` never
 * archives, `"keep"` never truncates).
 */
import { Effect, Exit, Layer, Option, Stream } from "effect"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { Archive, Archiver, Checkpointer, Journal, Repository, SnapshotStore } from "../src/index.ts"
import { append, fold, type LedgerEvent, ledger } from "./support/ledger.ts"
import { eachStorage, replayAll } from "./support/storage.ts"

const credit = (amount: number): LedgerEvent => ({ _tag: "Credited", amount })

/** A view of `journal` whose replays stop before `seq`, as they do while that append is in flight. */
const replaysBefore = (journal: Journal.Journal, seq: number): Journal.Journal => ({
  ...journal,
  replayFrom: (fromSeq) => Stream.takeWhile(journal.replayFrom(fromSeq), (r) => r.seq < seq),
  read: (stream, options) => Stream.filter(journal.read(stream, options), (r) => r.seq < seq),
  version: (stream) =>
    Effect.map(Stream.runCollect(Stream.filter(journal.read(stream), (r) => r.seq < seq)), (records) =>
      records.length === 0 ? 0 : records[records.length - 1]!.version)
})

/** The seqs held by the journal or the archive. */
const heldSeqs = Effect.gen(function*() {
  const journal = yield* Journal.Journal
  const archive = yield* Archive.Archive
  const seqs = new Set((yield* replayAll(journal)).map((r) => r.seq))
  for (const ref of yield* archive.list()) for (const r of yield* archive.get(ref)) seqs.add(r.seq)
  return [...seqs].sort((a, b) => a - b)
})

/** Four appends to two streams: seqs 1..4 at times 1000, 1010, 1020, 1030; returns the events per stream. */
const fourAppends = Effect.gen(function*() {
  const repo = yield* Repository.make(ledger())
  for (const [i, id] of ["a", "b", "a", "b"].entries()) {
    yield* TestClock.setTime(1_000 + 10 * i)
    yield* repo.execute(id, append([credit(i + 1)]))
  }
  return { a: [credit(1), credit(3)], b: [credit(2), credit(4)] }
})

eachStorage("Checkpointer (archive): truncates only what the Archiver actually archived", (location) =>
  Effect.gen(function*() {
    const events = yield* fourAppends
    const journal = yield* Journal.Journal
    // The Archiver's replay misses seq 4 (an append it cannot see yet): it archives through seq 3 only.
    const archiver = yield* Archiver.make({ segmentSize: 100 }).pipe(
      Effect.provideService(Journal.Journal, replaysBefore(journal, 4))
    )
    const checkpointer = yield* Checkpointer.make([ledger()], { history: "archive" }).pipe(
      Effect.provideService(Archiver.Archiver, archiver)
    )
    const result = yield* checkpointer.run
    assert.deepEqual(result.archivedThrough, Option.some(3))
    assert.equal(result.checkpoint, 4, "the watermark is lowered to archivedThrough + 1")
    assert.deepEqual(yield* heldSeqs, [1, 2, 3, 4], "every record is in the journal or the archive")
    const repo = yield* Repository.make(ledger(), { cacheSize: 0 })
    for (const [id, list] of Object.entries(events)) {
      assert.deepEqual(yield* repo.load(id, { asOf: Number.MAX_SAFE_INTEGER }), { state: fold(list), version: list.length })
    }
  }).pipe(Effect.provide(location.layers())))

eachStorage("Checkpointer: the watermark never passes a record its replay did not return", (location) =>
  Effect.gen(function*() {
    const events = yield* fourAppends
    const journal = yield* Journal.Journal
    // lastSeq says 4, but the replay (and the stream's read) end at 3: seq 4 is not settled for them.
    const checkpointer = yield* Checkpointer.make([ledger()], { history: "discard" }).pipe(
      Effect.provideService(Journal.Journal, { ...replaysBefore(journal, 4), lastSeq: journal.lastSeq, truncateBefore: journal.truncateBefore })
    )
    const result = yield* checkpointer.run
    assert.equal(result.checkpoint, 4)
    assert.deepEqual((yield* replayAll(journal)).map((r) => r.seq), [4], "seq 4 is still in the journal")
    const repo = yield* Repository.make(ledger(), { cacheSize: 0 })
    assert.deepEqual(yield* repo.load("b"), { state: fold(events.b), version: 2 })
  }).pipe(Effect.provide(location.layers())))

eachStorage("Checkpointer (keep): snapshots and moves the checkpoint, never truncates", (location) =>
  Effect.gen(function*() {
    const events = yield* fourAppends
    const journal = yield* Journal.Journal
    const result = yield* (yield* Checkpointer.make([ledger()], { history: "keep" })).run
    assert.deepEqual([result.checkpoint, result.streams, result.snapshots], [5, 2, 2])
    assert.equal(yield* journal.checkpoint, 5)
    assert.deepEqual((yield* replayAll(journal)).map((r) => r.seq), [1, 2, 3, 4])
    const snapshots = yield* SnapshotStore.SnapshotStore
    assert.equal(Option.map(yield* snapshots.get("ledger", "a"), (s) => s.version).pipe(Option.getOrUndefined), 2)
    // the next run starts at the checkpoint: nothing new, nothing to do
    const second = yield* (yield* Checkpointer.make([ledger()], { history: "keep" })).run
    assert.deepEqual([second.from, second.streams], [5, 0])
    const repo = yield* Repository.make(ledger(), { cacheSize: 0 })
    assert.deepEqual(yield* repo.load("a", { asOf: 1_015 }), { state: fold(events.a.slice(0, 1)), version: 1 }, "time travel still reads the journal")
  }).pipe(Effect.provide(location.layers())))

eachStorage("Checkpointer (discard): truncates without archiving, even with an Archiver in context", (location) =>
  Effect.gen(function*() {
    const events = yield* fourAppends
    const journal = yield* Journal.Journal
    const archiver = yield* Archiver.make({ segmentSize: 100 })
    const result = yield* Effect.flatMap(Checkpointer.make([ledger()], { history: "discard" }), (c) => c.run).pipe(
      Effect.provideService(Archiver.Archiver, archiver)
    )
    assert.equal(result.checkpoint, 5)
    assert.ok(Option.isNone(result.archivedThrough))
    assert.deepEqual(yield* (yield* Archive.Archive).list(), [], "nothing was archived")
    assert.deepEqual(yield* replayAll(journal), [])
    const repo = yield* Repository.make(ledger(), { cacheSize: 0 })
    assert.deepEqual(yield* repo.load("a"), { state: fold(events.a), version: 2 })
    const gone = yield* Effect.flip(repo.load("a", { asOf: 1_015 }))
    assert.equal(gone._tag, "HistoryTruncated", "history before the checkpoint is gone for good")
  }).pipe(Effect.provide(location.layers())))

eachStorage("Checkpointer.layer (archive) merged with, not built over, the Archiver layer does not start: nothing is truncated unarchived", (location) =>
  Effect.gen(function*() {
    yield* fourAppends
    const journal = yield* Journal.Journal
    const merged = Layer.mergeAll(
      Archiver.layer({ segmentSize: 100, pollInterval: "1 hour" }),
      Checkpointer.layer([ledger()], { history: "archive", interval: "1 minute" })
    )
    // What the types refuse (the Archiver stays in R), run anyway as a JavaScript caller would.
    const exit = yield* Effect.exit(
      Effect.gen(function*() {
        yield* TestClock.adjust("2 minutes")
        for (let i = 0; i < 50; i++) yield* Effect.yieldNow
      }).pipe(Effect.provide(merged as unknown as Layer.Layer<Archiver.Archiver | Checkpointer.Checkpointer>))
    )
    assert.ok(Exit.isFailure(exit), "the Checkpointer cannot start without an Archiver below it")
    assert.deepEqual((yield* replayAll(journal)).map((r) => r.seq), [1, 2, 3, 4])
  }).pipe(Effect.provide(location.layers())))

// Type-level: with history "archive", the Archiver is in R, so a program that does not provide one
// does not type-check; with "discard" or "keep" it is not needed.
export const typeChecks = () => {
  const stores = Layer.mergeAll(Journal.layerMemory, SnapshotStore.layerMemory())
  // @ts-expect-error: history "archive" needs Archiver.Archiver
  const needsArchiver: Effect.Effect<unknown, unknown, never> = Effect.provide(Checkpointer.make([ledger()], { history: "archive" }), stores)
  // @ts-expect-error: merging does not provide the Archiver to the Checkpointer
  const merged: Layer.Layer<Checkpointer.Checkpointer, unknown, never> = Layer.mergeAll(Archiver.layer(), Checkpointer.layer([ledger()], { history: "archive" })).pipe(
      Layer.provide(Layer.merge(stores, Archive.layerMemory()))
    )
  const discard: Effect.Effect<unknown, unknown, never> = Effect.provide(Checkpointer.make([ledger()], { history: "discard" }), stores)
  const keep: Effect.Effect<unknown, unknown, never> = Effect.provide(Checkpointer.make([ledger()], { history: "keep" }), stores)
  return [needsArchiver, merged, discard, keep]
}
