/**
 * Concurrency really in use, over every storage combination: 32 fibers execute commands on six
 * aggregates through four repositories (separate caches) and interleave loads, while a background
 * Checkpointer runs every few milliseconds — with an Archiver uploading in the background
 * (`history: "archive"`), or truncating without an archive (`history: "discard"`). On the file
 * journal with `"always"` durability, group commit keeps appends in flight while the Checkpointer
 * reads `lastSeq`, replays, snapshots and truncates (DESIGN §2, "Consistency of reads").
 *
 * Afterwards, with the storage reopened: the acknowledged commands claim every version of their
 * stream exactly once; the journal (and the archive) hold exactly their events — no duplicates, no
 * holes; `load` equals the plain fold, and so did every load during the run; a fresh machine
 * restoring the archive agrees. Runs on the real clock (the background fibers must run by
 * themselves), bounded by a count of commands and a time limit.
 */
import { Effect, Layer, Result } from "effect"
import assert from "node:assert/strict"
import { Archive, Archiver, Checkpointer, Codec, Journal, Repository } from "../../src/index.ts"
import {
  append,
  fold,
  type LedgerEvent,
  type LedgerRepository,
  type LedgerState,
  ledger,
  prng
} from "../support/ledger.ts"
import {
  assertSameRecords,
  type Case,
  plain,
  readArchive,
  register,
  replayAll
} from "./harness.ts"
import type { Storage } from "./layers.ts"

const FIBERS = 16
/** Each fiber runs at least `MIN_OPS` operations, and goes on until the checkpoint moved twice, at most `MAX_OPS`. */
const MIN_OPS = 12
const MAX_OPS = 40
const IDS = Array.from({ length: 6 }, (_, i) => `agg-${i}`)
const aggregate = ledger({ every: 4, schemaVersion: 1 })

/** What the fibers saw: acknowledged commands, failed ones, and the states loads returned. */
interface Observed {
  readonly acks: Array<{ readonly id: string; readonly version: number; readonly events: ReadonlyArray<LedgerEvent> }>
  readonly failures: Array<{ readonly id: string; readonly tag: string; readonly message: string }>
  readonly loads: Array<{ readonly id: string; readonly version: number; readonly state: LedgerState }>
  /** Checkpoints seen by the fibers while they ran. */
  readonly checkpoints: Set<number>
}

/** One fiber's bounded run of commands and loads, with short real pauses. */
const fiber = (f: number, repo: LedgerRepository, journal: Journal.Journal, observed: Observed) =>
  Effect.gen(function*() {
    const random = prng(f + 1)
    for (let i = 0; i < MAX_OPS && (i < MIN_OPS || observed.checkpoints.size < 3); i++) {
      observed.checkpoints.add(yield* journal.checkpoint)
      const id = IDS[Math.floor(random() * IDS.length)]!
      if (random() < 0.3) {
        const loaded = yield* Effect.result(repo.load(id))
        if (Result.isSuccess(loaded)) observed.loads.push({ id, ...loaded.success })
        else observed.failures.push({ id, tag: loaded.failure._tag, message: `load: ${loaded.failure.message}` })
      } else {
        // Unique amounts, so that every stored event names the command that appended it.
        const events: Array<LedgerEvent> = Array.from({ length: 1 + Math.floor(random() * 2) }, (_, k) => {
          const amount = f * 10_000 + i * 10 + k + 1
          return random() < 0.7 ? { _tag: "Credited", amount } : { _tag: "Debited", amount }
        })
        const pause = random() < 0.3
        const executed = yield* Effect.result(repo.execute(id, (state) =>
          // Sometimes wait between load and append, so that other fibers' appends come in between.
          pause ? Effect.as(Effect.sleep(1), events) : append(events)(state)))
        if (Result.isSuccess(executed)) observed.acks.push({ id, version: executed.success.version, events })
        else observed.failures.push({ id, tag: executed.failure._tag, message: `execute: ${executed.failure.message}` })
      }
      if (random() < 0.5) yield* Effect.sleep(Math.floor(random() * 3))
    }
  })

/** The workload with the background Checkpointer (and Archiver) running; returns when every fiber is done. */
const workload = (observed: Observed) =>
  Effect.gen(function*() {
    const journal = yield* Journal.Journal
    const repos = yield* Effect.forEach([1_000, 0, 1_000, 1], (cacheSize) => Repository.make(aggregate, { cacheSize, maxRetries: 10 }))
    yield* Effect.forEach(
      Array.from({ length: FIBERS }, (_, f) => f),
      (f) => fiber(f, repos[f % repos.length]!, journal, observed),
      { concurrency: "unbounded", discard: true }
    ).pipe(Effect.timeoutOrElse({ duration: "60 seconds", orElse: () => Effect.die(new Error("the workload did not end within 60 s")) }))
  })

/** The first phase: the workload with a background Checkpointer (and Archiver); then the archive takes every record. */
const phase = (storage: Storage, history: Checkpointer.History, observed: Observed) =>
  history === "archive"
    ? Effect.gen(function*() {
      yield* workload(observed)
      const lastSeq = yield* (yield* Journal.Journal).lastSeq
      assert.equal(yield* (yield* Archiver.Archiver).flush(lastSeq + 1), lastSeq, "the archive takes every record")
    }).pipe(Effect.provide(Layer.provideMerge(
      Checkpointer.layer([aggregate], { history, interval: "3 millis" }),
      Layer.provideMerge(
        Archiver.layer({ segmentSize: 32, pollInterval: "5 millis", backoff: "1 millis", maxBackoff: "5 millis" }),
        storage.all
      )
    )))
    : workload(observed).pipe(Effect.provide(Layer.provideMerge(
      Checkpointer.layer([aggregate], { history, interval: "3 millis" }),
      storage.stores
    )))

/** Every record of the archive, checked to chain from seq 1. */
const archived = Effect.map(Effect.flatMap(Archive.Archive, readArchive), ({ records }) => records)

/** Each stream's events by version, from the acknowledgements; asserts each version is claimed exactly once. */
const expectedStreams = (observed: Observed) => {
  const streams = new Map<string, Array<LedgerEvent | undefined>>()
  for (const ack of observed.acks) {
    const list = streams.get(ack.id) ?? []
    streams.set(ack.id, list)
    ack.events.forEach((event, k) => {
      const version = ack.version - ack.events.length + 1 + k
      assert.equal(list[version - 1], undefined, `${ack.id}: version ${version} acknowledged to two commands`)
      list[version - 1] = event
    })
  }
  const complete = new Map<string, ReadonlyArray<LedgerEvent>>()
  for (const [id, list] of streams) {
    for (let v = 1; v <= list.length; v++) {
      assert.ok(list[v - 1] !== undefined, `${id}: version ${v} of ${list.length} was never acknowledged (a hole)`)
    }
    complete.set(id, list as ReadonlyArray<LedgerEvent>)
  }
  return complete
}

/** Asserts that `records` of one stream are versions `from..to` of `expected`, in order, event by event. */
const assertStreamRecords = (
  id: string,
  records: ReadonlyArray<Journal.JournalRecord>,
  expected: ReadonlyArray<LedgerEvent>,
  from: number,
  where: string
) => {
  assert.deepEqual(
    records.map((r) => r.version),
    Array.from({ length: expected.length - from + 1 }, (_, i) => from + i),
    `${where}: ${id} holds versions ${from}..${expected.length} once each`
  )
  records.forEach((record) => {
    const event = Result.getOrThrow(Codec.decodeRecord(aggregate.eventCodec, record))
    assert.deepEqual(event, expected[record.version - 1], `${where}: ${id} version ${record.version} is the acknowledged event`)
  })
}

/**
 * The verification after a reopen; returns every record still held (journal and `fromArchive`).
 * Without an archive (`history: "discard"`) the journal holds a suffix of each stream.
 */
const verify = <R>(
  observed: Observed,
  history: Checkpointer.History,
  fromArchive: Effect.Effect<ReadonlyArray<Journal.JournalRecord>, unknown, R>
) =>
  Effect.gen(function*() {
    const expected = expectedStreams(observed)
    const journal = yield* Journal.Journal
    const held = new Map<number, Journal.JournalRecord>()
    for (const record of yield* replayAll(journal)) held.set(record.seq, record)
    for (const record of yield* fromArchive) {
      const inJournal = held.get(record.seq)
      if (inJournal !== undefined) assert.deepEqual(plain(inJournal), plain(record), `seq ${record.seq}: journal and archive agree`)
      held.set(record.seq, record)
    }
    const all = Array.from(held.values()).sort((a, b) => a.seq - b.seq)
    const repo = yield* Repository.make(aggregate, { cacheSize: 0 })
    for (const id of IDS) {
      const events = expected.get(id) ?? []
      const records = all.filter((r) => r.id === id)
      assert.equal(yield* journal.version({ namespace: "ledger", id }), events.length, `${id}: the journal's version`)
      // With an archive every record is still held; without, the journal holds a suffix of each stream.
      const from = history === "archive" || records.length === 0 ? 1 : records[0]!.version
      if (history === "archive" || records.length > 0) assertStreamRecords(id, records, events, from, history)
      assert.deepEqual(yield* repo.load(id), { state: fold(events), version: events.length }, `${id}: load equals the fold`)
    }
    for (const load of observed.loads) {
      const events = (expected.get(load.id) ?? []).slice(0, load.version)
      assert.equal(events.length, load.version, `a load of ${load.id} returned version ${load.version}, never acknowledged`)
      assert.deepEqual(load.state, fold(events), `a load of ${load.id} during the run at version ${load.version} equals the fold`)
    }
    return all
  })

const stress = (history: Checkpointer.History): Case => ({
  name: `${FIBERS} fibers execute and load while a background Checkpointer runs (history: ${history}); nothing acknowledged is lost`,
  live: true,
  run: (storage) =>
    Effect.gen(function*() {
      const observed: Observed = { acks: [], failures: [], loads: [], checkpoints: new Set() }
      yield* phase(storage, history, observed)
      // The storage reopened (durable layers): what was acknowledged is there, exactly once.
      const held = yield* (history === "archive"
        ? Effect.provide(verify(observed, history, archived), storage.all)
        : Effect.provide(verify(observed, history, Effect.succeed([])), storage.stores))
      if (history === "archive") {
        // A fresh machine restores the archive, and agrees.
        const fresh = yield* storage.freshMachine
        yield* Effect.gen(function*() {
          assertSameRecords(yield* replayAll(yield* Journal.Journal), held, "restored journal vs journal and archive")
          yield* verify(observed, history, archived)
        }).pipe(Effect.provide(Layer.provideMerge(Archiver.layer({ segmentSize: 8 }), fresh.all)))
      }
      const unexpected = observed.failures.filter((f) => f.tag !== "VersionConflict")
      assert.equal(
        unexpected.length,
        0,
        `commands fail only with a VersionConflict after the retry bound, loads never; ${unexpected.length} of ` +
          `${observed.acks.length + observed.loads.length + observed.failures.length} operations failed otherwise, first: ` +
          unexpected.slice(0, 3).map((f) => `${f.id} ${f.tag}: ${f.message}`).join(" | ")
      )
      assert.ok(observed.acks.length >= FIBERS, `most commands were acknowledged (${observed.acks.length})`)
      assert.ok(
        observed.checkpoints.size >= 3,
        `the Checkpointer moved the checkpoint twice while the fibers ran (seen: ${[...observed.checkpoints].join(", ")})`
      )
    })
})

register("Stress", [stress("archive"), stress("discard")])
