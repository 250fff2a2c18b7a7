/**
 * The Archiver and the Checkpointer when things go wrong: an archive that is down (or goes down in
 * the middle of a flush), the truncation rule under such an outage, restoring after the local data is
 * lost, point-in-time recovery, a crash between any two Checkpointer steps, and an archive that is not
 * the journal's timeline. Everything runs over the memory layers under a TestClock; the Archiver's
 * background fiber is driven with `TestClock.adjust`, never with real sleeps.
 */
import { type Duration, Effect, Layer, Option, References } from "effect"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { test } from "node:test"
import { Archive, Archiver, Checkpointer, Journal, Repository, SnapshotStore } from "../src/index.ts"
import { expectError } from "./conformance/harness.ts"
import { append, fold, type LedgerEvent, type LedgerState, ledger, prng } from "./support/ledger.ts"
import { assertSameRecords, ledgerRecord, plain, readArchive, replayAll } from "./runtime/harness.ts"

// ---------------------------------------------------------------------------------------------
// A switchable archive outage

/** A fault in front of an ObjectStore: every call fails while `down` is set. */
interface Fault {
  down: boolean
  /** When set, this many more `putIfAbsent` calls succeed, then the archive goes down (mid-flush). */
  putsLeft: number | undefined
  /** Calls refused so far. */
  failures: number
}

const newFault = (): Fault => ({ down: false, putsLeft: undefined, failures: 0 })

const OUTAGE = "simulated archive outage"

/** The memory ObjectStore over `objects`, behind `fault`. */
const faultyStore = (objects: Map<string, Uint8Array>, fault: Fault): Archive.ObjectStore => {
  const inner = Archive.makeObjectStoreMemory(objects)
  const guard = <A>(method: string, key: string, effect: Effect.Effect<A, Archive.ArchiveError>) =>
    Effect.suspend(() => {
      if (method === "putIfAbsent" && fault.putsLeft !== undefined) {
        if (fault.putsLeft <= 0) fault.down = true
        else fault.putsLeft--
      }
      if (!fault.down) return effect
      fault.failures++
      return Effect.fail(new Archive.ArchiveError({ method, key, message: `${OUTAGE}: ${method} ${key} refused` }))
    })
  return {
    get: (key) => guard("get", key, inner.get(key)),
    putIfAbsent: (key, bytes) => guard("putIfAbsent", key, inner.putIfAbsent(key, bytes)),
    list: (prefix) => guard("list", prefix, inner.list(prefix))
  }
}

const archiveLayer = (objects: Map<string, Uint8Array>, fault: Fault = newFault()) =>
  Layer.effect(Archive.Archive, Archive.make(faultyStore(objects, fault)))

/** Memory Journal and SnapshotStore, and an Archive over `objects` behind `fault`. */
const storesLayer = (objects: Map<string, Uint8Array>, fault?: Fault) =>
  Layer.mergeAll(Journal.layerMemory, SnapshotStore.layerMemory(), archiveLayer(objects, fault))

/** Runs under a TestClock (time starts at 0), with the retry warnings silenced. */
const run = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.runPromise(
    effect.pipe(Effect.provideService(References.MinimumLogLevel, "None"), Effect.provide(TestClock.layer()))
  )

/** Lets forked fibers (the Archiver's background fiber) run up to their next suspension. */
const settle = Effect.gen(function*() {
  for (let i = 0; i < 5; i++) yield* Effect.yieldNow
})

// ---------------------------------------------------------------------------------------------
// Workloads and the reference model

const credit = (amount: number): LedgerEvent => ({ _tag: "Credited", amount })
const debit = (amount: number): LedgerEvent => ({ _tag: "Debited", amount })

/** Every stream's events in version order, as the tests appended them. */
type Model = Map<string, Array<LedgerEvent>>

type LedgerRepository = Repository.Repository<LedgerEvent, LedgerState>

/**
 * `count` appends of 1–3 random events to random streams of `streams`, each acknowledged (its
 * version checked against the model); the clock moves `tick` after each one.
 */
const workload = (
  repo: LedgerRepository,
  model: Model,
  random: () => number,
  count: number,
  options?: { readonly streams?: number; readonly tick?: Duration.Input | undefined }
) =>
  Effect.gen(function*() {
    const streams = options?.streams ?? 5
    for (let i = 0; i < count; i++) {
      const id = `s${Math.floor(random() * streams)}`
      const batch = Array.from(
        { length: 1 + Math.floor(random() * 3) },
        () => random() < 0.7 ? credit(1 + Math.floor(random() * 1000)) : debit(1 + Math.floor(random() * 300))
      )
      const events = [...(model.get(id) ?? []), ...batch]
      const result = yield* repo.execute(id, append(batch))
      model.set(id, events)
      assert.equal(result.version, events.length, `append to ${id} acknowledged at the model's version`)
      if (options?.tick !== undefined) yield* TestClock.adjust(options.tick)
    }
  })

/** Adds every record the journal holds now to `acked` (seq → record): what was acknowledged. */
const capture = (journal: Journal.Journal, acked: Map<number, Journal.JournalRecord>) =>
  Effect.map(replayAll(journal), (records) => {
    for (const record of records) {
      const known = acked.get(record.seq)
      if (known !== undefined) assert.deepEqual(plain(record), plain(known), `record seq ${record.seq} never changes`)
      acked.set(record.seq, record)
    }
  })

const bySeq = (records: Iterable<Journal.JournalRecord>) => Array.from(records).sort((a, b) => a.seq - b.seq)

/**
 * Asserts that every stream of the model loads to the fold of its first `versions(id)` events
 * (default: all of them).
 */
const assertLoads = (repo: LedgerRepository, model: Model, versions?: (id: string) => number) =>
  Effect.gen(function*() {
    for (const [id, events] of model) {
      const n = versions === undefined ? events.length : versions(id)
      assert.deepEqual(yield* repo.load(id), { state: fold(events.slice(0, n)), version: n }, `stream ${id} loads exactly`)
    }
  })

/** How many of `records` belong to each stream, asserting they are the versions 1..n of it. */
const versionsIn = (records: ReadonlyArray<Journal.JournalRecord>) => {
  const byStream = new Map<string, Array<number>>()
  for (const record of records) {
    const list = byStream.get(record.id) ?? []
    list.push(record.version)
    byStream.set(record.id, list)
  }
  for (const [id, list] of byStream) {
    assert.deepEqual(list, Array.from({ length: list.length }, (_, i) => i + 1), `stream ${id}: versions 1..n`)
  }
  return (id: string) => byStream.get(id)?.length ?? 0
}

// ---------------------------------------------------------------------------------------------
// 1. The background fiber under an outage

test("Archiver layer: appends keep succeeding while uploads fail; after recovery every record is archived", async () => {
  const objects = new Map<string, Uint8Array>()
  const fault = newFault()
  const segmentSize = 4
  await run(Effect.gen(function*() {
    const repo = yield* Repository.make(ledger())
    const journal = yield* Journal.Journal
    const archive = yield* Archive.Archive
    const archiver = yield* Archiver.Archiver
    const model: Model = new Map()
    const random = prng(11)
    yield* settle

    // The archive is up: the background fiber uploads every full segment at each poll (hourly).
    yield* workload(repo, model, random, 6, { tick: "1 second" })
    yield* TestClock.adjust("1 hour")
    const up = yield* archiver.status
    const lastUp = yield* journal.lastSeq
    assert.ok(lastUp >= 2 * segmentSize, "the workload filled at least two segments")
    assert.equal(up.archivedThrough, lastUp - (lastUp % segmentSize), "every full segment was uploaded")
    assert.ok(Option.isSome(up.lastSuccess))
    assert.deepEqual(up.lastError, Option.none())

    // The archive goes down: the next poll fails and is retried with backoff (not at the next poll),
    // while appends go on and are acknowledged.
    fault.down = true
    yield* workload(repo, model, random, 4, { tick: "1 second" })
    yield* TestClock.adjust("1 hour")
    assert.ok(fault.failures > 0, "the poll tried to upload")
    yield* workload(repo, model, random, 6, { tick: "1 second" })
    while ((yield* journal.lastSeq) % segmentSize !== 0) {
      const events = [...(model.get("s0") ?? []), credit(1)]
      yield* repo.execute("s0", append([credit(1)]))
      model.set("s0", events)
    }
    const lastSeq = yield* journal.lastSeq
    assert.ok(lastSeq >= up.archivedThrough + 2 * segmentSize, "at least two full segments are pending")
    const down = yield* archiver.status
    assert.equal(down.archivedThrough, up.archivedThrough, "nothing was archived during the outage")
    assert.equal(down.pendingSeqs, lastSeq - up.archivedThrough)
    assert.ok(Option.isSome(down.lastError), "the failure is reported")
    assert.ok(down.lastError.value.includes(OUTAGE), `lastError "${down.lastError.value}" names the failure`)
    assert.ok(fault.failures > 0)
    const failuresBefore = fault.failures
    yield* TestClock.adjust("5 seconds")
    assert.ok(fault.failures > failuresBefore, "failed uploads are retried within seconds, before the next poll")
    assert.equal(yield* journal.lastSeq, lastSeq)
    yield* assertLoads(repo, model)

    // The archive comes back: the retries catch up, long before the next poll.
    fault.down = false
    yield* TestClock.adjust("10 seconds")
    const recovered = yield* archiver.status
    assert.equal(recovered.archivedThrough, lastSeq, "every record is archived")
    assert.equal(recovered.pendingSeqs, 0)
    assert.deepEqual(recovered.lastError, Option.none(), "the error is cleared by the next success")
    assert.ok(Option.isSome(recovered.lastSuccess))
    const archived = yield* readArchive(archive)
    assert.equal(archived.through, lastSeq)
    for (const ref of archived.refs) assert.equal(ref.endSeq - ref.startSeq + 1, segmentSize, `${ref.key} is a full segment`)
    assertSameRecords(archived.records, yield* replayAll(journal), "archive vs journal")
    yield* assertLoads(repo, model)
  }).pipe(
    Effect.provide(Layer.provideMerge(
      Archiver.layer({ segmentSize, pollInterval: "1 hour", backoff: "100 millis", maxBackoff: "2 seconds" }),
      storesLayer(objects, fault)
    ))
  ))
})

// ---------------------------------------------------------------------------------------------
// 2. The truncation rule under an outage

test("Checkpointer with an Archiver: fails with the ArchiveError while the archive is down and truncates nothing", async () => {
  const objects = new Map<string, Uint8Array>()
  const fault = newFault()
  const segmentSize = 4
  await run(Effect.gen(function*() {
    const aggregate = ledger()
    const repo = yield* Repository.make(aggregate, { cacheSize: 0 })
    const journal = yield* Journal.Journal
    const archive = yield* Archive.Archive
    const archiver = yield* Archiver.Archiver
    const checkpointer = yield* Checkpointer.make([aggregate], { history: "archive" })
    const model: Model = new Map()
    const acked = new Map<number, Journal.JournalRecord>()
    const random = prng(23)

    yield* workload(repo, model, random, 6, { tick: "1 second" })
    yield* capture(journal, acked)
    const first = yield* checkpointer.run
    const c1 = first.checkpoint
    assert.equal(c1, (yield* journal.lastSeq) + 1)
    assert.deepEqual(first.archivedThrough, Option.some(c1 - 1))

    // More records, with one of a namespace nobody registered in the middle: it holds the watermark.
    yield* workload(repo, model, random, 5, { tick: "1 second" })
    const mystery = yield* journal.append({ namespace: "mystery", id: "x" }, 0, [
      { type: "Unknown", payload: new Uint8Array([1, 2, 3]) }
    ])
    yield* workload(repo, model, random, 5, { tick: "1 second" })
    yield* capture(journal, acked)
    assert.ok(mystery.firstSeq - c1 > segmentSize, "more than one segment lies below the held-back record")
    const before = yield* replayAll(journal)
    const lastSeq = yield* journal.lastSeq

    // Down: the run fails with the ArchiveError; the checkpoint and the journal are untouched.
    fault.down = true
    yield* expectError(checkpointer.run, "ArchiveError", OUTAGE)
    assert.equal(yield* journal.checkpoint, c1, "the checkpoint did not move")
    assertSameRecords(yield* replayAll(journal), before, "journal after the failed run")
    assert.equal(yield* journal.lastSeq, lastSeq)
    const down = yield* archiver.status
    assert.equal(down.archivedThrough, c1 - 1)
    assert.ok(Option.isSome(down.lastError) && down.lastError.value.includes(OUTAGE))

    // Down again in the middle of the flush: one segment goes up, then the next upload fails.
    fault.down = false
    fault.putsLeft = 1
    yield* expectError(checkpointer.run, "ArchiveError", OUTAGE)
    const partial = yield* archiver.status
    assert.equal(partial.archivedThrough, c1 - 1 + segmentSize, "exactly one more segment was archived")
    assert.equal(yield* journal.checkpoint, c1, "the checkpoint did not move")
    assertSameRecords(yield* replayAll(journal), before, "journal after the interrupted flush")

    // Recovered: the run archives, moves the checkpoint to the held-back record and truncates.
    fault.down = false
    fault.putsLeft = undefined
    const result = yield* checkpointer.run
    assert.equal(result.checkpoint, mystery.firstSeq)
    assert.deepEqual(result.archivedThrough, Option.some(mystery.firstSeq - 1))
    assert.deepEqual(result.heldBack, [{ namespace: "mystery", firstSeq: mystery.firstSeq, records: 1 }])
    assert.equal(yield* journal.checkpoint, mystery.firstSeq)
    const remaining = yield* replayAll(journal)
    assert.ok(remaining.every((r) => r.seq >= mystery.firstSeq), "the journal holds nothing below the checkpoint")
    assert.equal(remaining[0]?.seq, mystery.firstSeq)
    const archived = yield* readArchive(archive)
    assert.equal(archived.through, mystery.firstSeq - 1)
    // Nothing that is not in the archive was removed: archive ∪ journal is every acknowledged record.
    const union = new Map<number, Journal.JournalRecord>()
    for (const record of [...archived.records, ...remaining]) union.set(record.seq, record)
    assertSameRecords(bySeq(union.values()), bySeq(acked.values()), "archive ∪ journal vs acknowledged")
    yield* assertLoads(repo, model)
  }).pipe(
    Effect.provide(Layer.provideMerge(
      Layer.effect(Archiver.Archiver, Archiver.make({ segmentSize })),
      storesLayer(objects, fault)
    ))
  ))
})

// ---------------------------------------------------------------------------------------------
// 3. Restore after losing the local data

test("Archiver layer restores every acknowledged record into a fresh journal after the local data is lost", async () => {
  const objects = new Map<string, Uint8Array>()
  const aggregate = ledger({ every: 4, schemaVersion: 1 })
  const model: Model = new Map()
  const acked = new Map<number, Journal.JournalRecord>()
  await run(Effect.gen(function*() {
    const repo = yield* Repository.make(aggregate)
    const journal = yield* Journal.Journal
    const checkpointer = yield* Checkpointer.make([aggregate], { history: "archive" })
    const random = prng(37)
    for (let round = 0; round < 3; round++) {
      yield* workload(repo, model, random, 12, { streams: 6, tick: "250 millis" })
      yield* capture(journal, acked)
      const result = yield* checkpointer.run
      assert.deepEqual(result.archivedThrough, Option.some(yield* journal.lastSeq))
    }
    assert.deepEqual(yield* replayAll(journal), [], "the journal was truncated: the archive is the only copy")
    assert.equal((yield* (yield* Archiver.Archiver).status).archivedThrough, yield* journal.lastSeq)
  }).pipe(
    Effect.provide(Layer.provideMerge(
      Archiver.layer({ segmentSize: 5, pollInterval: "1 second", backoff: "100 millis", maxBackoff: "1 second" }),
      storesLayer(objects)
    ))
  ))
  const expected = bySeq(acked.values())
  const lastSeq = expected[expected.length - 1]!.seq
  assert.ok(model.size >= 4, "several streams")

  // A fresh machine while the archive is unreachable: the Archiver does not start on an empty journal.
  await run(Effect.gen(function*() {
    const fault = newFault()
    fault.down = true
    const journal = yield* Journal.makeMemory
    const archive = yield* Archive.make(faultyStore(objects, fault))
    const start = Effect.scoped(Layer.build(Archiver.layer())).pipe(
      Effect.provideService(Journal.Journal, journal),
      Effect.provideService(Archive.Archive, archive)
    )
    yield* expectError(start, "ArchiveError", OUTAGE)
    assert.equal(yield* journal.lastSeq, 0, "nothing was restored")
  }))

  // A fresh machine: empty journal and snapshot store over the same archive.
  await run(Effect.gen(function*() {
    const journal = yield* Journal.Journal
    assert.equal(yield* journal.lastSeq, lastSeq)
    assertSameRecords(yield* replayAll(journal), expected, "restored journal vs acknowledged")
    const status = yield* (yield* Archiver.Archiver).status
    assert.equal(status.archivedThrough, lastSeq)
    assert.equal(status.pendingSeqs, 0)
    const repo = yield* Repository.make(aggregate, { cacheSize: 0 })
    yield* assertLoads(repo, model)
    // and the timeline continues after the restored history
    const next = yield* repo.execute("s0", append([credit(5)]))
    assert.equal(next.version, (model.get("s0") ?? []).length + 1)
    assert.equal(yield* journal.lastSeq, lastSeq + 1)
  }).pipe(Effect.provide(Layer.provideMerge(Archiver.layer(), storesLayer(objects)))))
})

test("Archiver layer: after losing the local data, the restore gives back exactly what status reported archived", async () => {
  const objects = new Map<string, Uint8Array>()
  const fault = newFault()
  const aggregate = ledger()
  const model: Model = new Map()
  const acked = new Map<number, Journal.JournalRecord>()
  let archivedThrough = 0
  let checkpoint = 0
  await run(Effect.gen(function*() {
    const repo = yield* Repository.make(aggregate)
    const journal = yield* Journal.Journal
    const archiver = yield* Archiver.Archiver
    const random = prng(41)
    yield* settle
    yield* workload(repo, model, random, 8, { tick: "1 second" })
    yield* capture(journal, acked)
    checkpoint = (yield* (yield* Checkpointer.make([aggregate], { history: "archive" })).run).checkpoint
    yield* workload(repo, model, random, 8, { tick: "1 second" }) // uploaded in the background
    yield* TestClock.adjust("1 second")
    fault.down = true
    yield* workload(repo, model, random, 8, { tick: "1 second" }) // acknowledged, never archived
    yield* capture(journal, acked)
    const status = yield* archiver.status
    archivedThrough = status.archivedThrough
    const lastSeq = yield* journal.lastSeq
    assert.ok(archivedThrough > checkpoint - 1, "the background fiber archived records after the checkpoint")
    assert.ok(archivedThrough < lastSeq, "acknowledged records are still pending")
    assert.equal(status.pendingSeqs, lastSeq - archivedThrough)
    assert.ok(Option.isSome(status.lastError))
  }).pipe(
    Effect.provide(Layer.provideMerge(
      Archiver.layer({ segmentSize: 5, pollInterval: "1 second", backoff: "100 millis", maxBackoff: "1 second" }),
      storesLayer(objects, fault)
    ))
  ))

  // The local data is gone; the archive is reachable again.
  await run(Effect.gen(function*() {
    const journal = yield* Journal.Journal
    const expected = bySeq(acked.values()).filter((r) => r.seq <= archivedThrough)
    assert.equal(yield* journal.lastSeq, archivedThrough)
    assertSameRecords(yield* replayAll(journal), expected, "restored journal vs records reported archived")
    const versions = versionsIn(expected)
    for (const id of model.keys()) {
      assert.equal(yield* journal.version({ namespace: "ledger", id }), versions(id), `stream ${id} version`)
    }
    yield* assertLoads(yield* Repository.make(aggregate, { cacheSize: 0 }), model, versions)
    assert.equal((yield* (yield* Archiver.Archiver).status).archivedThrough, archivedThrough)
  }).pipe(Effect.provide(Layer.provideMerge(Archiver.layer(), storesLayer(objects)))))
})

// ---------------------------------------------------------------------------------------------
// 4. Point-in-time recovery

test("Archiver.restore({ until }) restores exactly the records with timestamp ≤ T, and loads fold exactly those", async () => {
  const objects = new Map<string, Uint8Array>()
  const aggregate = ledger({ every: 3, schemaVersion: 1 })
  const model: Model = new Map()
  const acked = new Map<number, Journal.JournalRecord>()
  const asOf = new Map<number, Map<string, LedgerState>>()
  const times: Array<number> = []
  await run(Effect.gen(function*() {
    const repo = yield* Repository.make(aggregate)
    const journal = yield* Journal.Journal
    const random = prng(53)
    let now = 1_000
    for (let i = 0; i < 40; i++) {
      now += [0, 0, 50, 100, 175][Math.floor(random() * 5)]! // several appends share a timestamp
      yield* TestClock.setTime(now)
      times.push(now)
      yield* workload(repo, model, random, 1, { streams: 4 })
    }
    yield* capture(journal, acked)
    for (const record of acked.values()) assert.ok(times.includes(record.timestamp), "timestamps come from the TestClock")
    const result = yield* (yield* Checkpointer.make([aggregate], { history: "archive" })).run
    assert.deepEqual(result.archivedThrough, Option.some(yield* journal.lastSeq))
    assert.deepEqual(yield* replayAll(journal), [], "only the archive holds the history now")
    // time travel on the truncated journal (through the archive), for comparison below
    const probes = [times[12]!, times[12]! + 1, times[29]!]
    for (const t of probes) {
      const states = new Map<string, LedgerState>()
      for (const id of model.keys()) states.set(id, (yield* repo.load(id, { asOf: t })).state)
      asOf.set(t, states)
    }
  }).pipe(
    Effect.provide(Layer.provideMerge(Layer.effect(Archiver.Archiver, Archiver.make({ segmentSize: 6 })), storesLayer(objects)))
  ))

  const all = bySeq(acked.values())
  const first = times[0]!
  const last = times[times.length - 1]!
  const untils = [first - 1, first, times[12]!, times[12]! + 1, times[29]!, last, last + 1_000]
  assert.ok(new Set(untils.map((t) => all.filter((r) => r.timestamp <= t).length)).size >= 5, "the cut points differ")
  for (const until of untils) {
    await run(Effect.gen(function*() {
      const journal = yield* Journal.Journal
      const expected = all.filter((r) => r.timestamp <= until)
      const restored = yield* Archiver.restore({ until })
      assert.equal(restored.records, expected.length, `until ${until}: record count`)
      assert.equal(restored.lastSeq, expected.length === 0 ? 0 : expected[expected.length - 1]!.seq)
      assert.equal(restored.segments, (yield* (yield* Archive.Archive).list()).length)
      assertSameRecords(yield* replayAll(journal), expected, `until ${until}`)
      const versions = versionsIn(expected)
      const repo = yield* Repository.make(aggregate, { cacheSize: 0 })
      yield* assertLoads(repo, model, versions)
      const states = asOf.get(until)
      if (states !== undefined) {
        for (const [id, state] of states) assert.deepEqual((yield* repo.load(id)).state, state, `${id} as of ${until}`)
      }
    }).pipe(Effect.provide(storesLayer(objects))))
  }
})

// ---------------------------------------------------------------------------------------------
// 5. A crash between any two Checkpointer steps

interface Env {
  readonly journal: Journal.Journal
  readonly snapshots: SnapshotStore.SnapshotStore
  readonly archive: Archive.Archive
  readonly fault: Fault
}

const withStores = <A, E, R>(env: Env, effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.provideService(Journal.Journal, env.journal),
    Effect.provideService(SnapshotStore.SnapshotStore, env.snapshots)
  )

const withAll = <A, E, R>(env: Env, effect: Effect.Effect<A, E, R>) =>
  withStores(env, Effect.provideService(effect, Archive.Archive, env.archive))

/** What a crashed checkpoint had done: the steps' effects, run partially. */
interface CrashPoint {
  readonly name: string
  readonly crash: (
    env: Env,
    archiver: Archiver.Archiver,
    touched: ReadonlyArray<string>
  ) => Effect.Effect<void, unknown, Journal.Journal | SnapshotStore.SnapshotStore>
}

const snapshotAll = (ids: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const repo = yield* Repository.make(ledger(), { cacheSize: 0 })
    for (const id of ids) yield* repo.snapshot(id)
  })

const crashPoints: ReadonlyArray<CrashPoint> = [
  {
    name: "after snapshotting some of the touched streams",
    crash: (_env, _archiver, touched) => snapshotAll(touched.filter((_, i) => i % 2 === 0))
  },
  {
    name: "after snapshotting every touched stream, before the upload",
    crash: (_env, _archiver, touched) => snapshotAll(touched)
  },
  {
    name: "in the middle of the upload (part of a segment archived)",
    crash: (env, archiver, touched) =>
      Effect.gen(function*() {
        yield* snapshotAll(touched)
        const lastSeq = yield* env.journal.lastSeq
        const through = (yield* archiver.status).archivedThrough
        assert.ok(lastSeq - through > 6, "enough records to cut the upload short")
        yield* archiver.flush(through + 4) // a segment of 3 records, not aligned to segmentSize
      })
  },
  {
    name: "when the archive fails after one segment of the upload",
    crash: (env, archiver, touched) =>
      Effect.gen(function*() {
        yield* snapshotAll(touched)
        env.fault.putsLeft = 1
        yield* expectError(archiver.flush((yield* env.journal.lastSeq) + 1), "ArchiveError", OUTAGE)
        env.fault.putsLeft = undefined
        env.fault.down = false
      })
  },
  {
    name: "after the archive is flushed, before setCheckpoint",
    crash: (env, archiver, touched) =>
      Effect.gen(function*() {
        yield* snapshotAll(touched)
        const lastSeq = yield* env.journal.lastSeq
        assert.equal(yield* archiver.flush(lastSeq + 1), lastSeq)
      })
  },
  {
    name: "after setCheckpoint, before truncateBefore",
    crash: (env, archiver, touched) =>
      Effect.gen(function*() {
        yield* snapshotAll(touched)
        const lastSeq = yield* env.journal.lastSeq
        yield* archiver.flush(lastSeq + 1)
        yield* env.journal.setCheckpoint(lastSeq + 1)
      })
  }
]

for (const crashPoint of crashPoints) {
  for (const earlier of [false, true]) {
    test(`Checkpointer crash ${crashPoint.name}${earlier ? " (after an earlier checkpoint)" : " (first checkpoint)"}: a restarted run completes correctly`, () =>
      run(Effect.gen(function*() {
        const objects = new Map<string, Uint8Array>()
        const fault = newFault()
        const env: Env = {
          journal: yield* Journal.makeMemory,
          snapshots: yield* SnapshotStore.makeMemory(),
          archive: yield* Archive.make(faultyStore(objects, fault)),
          fault
        }
        const aggregate = ledger()
        const model: Model = new Map()
        const acked = new Map<number, Journal.JournalRecord>()
        const random = prng(earlier ? 101 : 103)

        // The first process: appends, optionally a complete checkpoint, more appends, then a crash.
        const repo = yield* withAll(env, Repository.make(aggregate))
        const archiver = yield* withAll(env, Archiver.make({ segmentSize: 4 }))
        if (earlier) {
          yield* workload(repo, model, random, 8, { tick: "1 second" })
          yield* capture(env.journal, acked)
          const checkpointer = yield* withStores(env, Effect.provideService(Checkpointer.make([aggregate], { history: "archive" }), Archiver.Archiver, archiver))
          yield* checkpointer.run
        }
        yield* workload(repo, model, random, 10, { tick: "1 second" })
        yield* capture(env.journal, acked)
        const from = yield* env.journal.checkpoint
        const touched = Array.from(new Set((yield* replayAll(env.journal)).filter((r) => r.seq >= from).map((r) => r.id))).sort()
        yield* withStores(env, crashPoint.crash(env, archiver, touched))

        // The restarted process: a new Repository, Archiver and Checkpointer over the same storage.
        const repo2 = yield* withAll(env, Repository.make(aggregate))
        yield* workload(repo2, model, random, 3, { tick: "1 second" })
        yield* capture(env.journal, acked)
        const archiver2 = yield* withAll(env, Archiver.make({ segmentSize: 4 }))
        const checkpointer2 = yield* withStores(env, Effect.provideService(Checkpointer.make([aggregate], { history: "archive" }), Archiver.Archiver, archiver2))
        const lastSeq = yield* env.journal.lastSeq
        const result = yield* checkpointer2.run
        assert.equal(result.checkpoint, lastSeq + 1)
        assert.deepEqual(result.archivedThrough, Option.some(lastSeq))
        assert.deepEqual(result.heldBack, [])

        // Afterwards: nothing below the checkpoint in the journal, all of it in the archive, chained.
        assert.equal(yield* env.journal.checkpoint, result.checkpoint)
        assert.deepEqual((yield* replayAll(env.journal)).filter((r) => r.seq < result.checkpoint), [])
        const archived = yield* readArchive(env.archive)
        assert.equal(archived.through, result.checkpoint - 1)
        assertSameRecords(
          archived.records,
          bySeq(acked.values()).filter((r) => r.seq < result.checkpoint),
          "archive vs acknowledged records below the checkpoint"
        )
        // Every stream loads exactly, from the snapshots alone (no archive to fall back on) and with it.
        yield* assertLoads(yield* withStores(env, Repository.make(aggregate, { cacheSize: 0 })), model)
        yield* assertLoads(yield* withAll(env, Repository.make(aggregate, { cacheSize: 0 })), model)
        yield* assertLoads(repo2, model)
      })))
  }
}

// ---------------------------------------------------------------------------------------------
// 6. An archive that is not the journal's timeline; invalid options

test("Archiver.make fails with an ArchiverError when the archive holds seqs beyond the journal's last seq", () =>
  run(Effect.gen(function*() {
    const objects = new Map<string, Uint8Array>()
    const archive = yield* Archive.make(Archive.makeObjectStoreMemory(objects))
    const record = ledgerRecord
    yield* archive.put({ startSeq: 1, endSeq: 3, records: [record(1), record(2), record(3)] })
    yield* archive.put({ startSeq: 4, endSeq: 5, records: [record(4), record(5)] })

    // another timeline: a journal that only got to seq 2
    const other = yield* Journal.makeMemory
    yield* other.append({ namespace: "ledger", id: "y" }, 0, [
      { type: "Credited", payload: new Uint8Array([1]) },
      { type: "Credited", payload: new Uint8Array([2]) }
    ])
    const make = (journal: Journal.Journal, options?: Archiver.ArchiverOptions) =>
      Archiver.make(options).pipe(
        Effect.provideService(Journal.Journal, journal),
        Effect.provideService(Archive.Archive, archive)
      )
    yield* expectError(make(other), "ArchiverError", "up to 5", "last seq is 2")
    // an empty journal without restoring first, through the layer too
    const empty = yield* Journal.makeMemory
    yield* expectError(make(empty), "ArchiverError", "up to 5")
    yield* expectError(
      Effect.scoped(Layer.build(Archiver.layer({ restoreOnStart: false }))).pipe(
        Effect.provideService(Journal.Journal, empty),
        Effect.provideService(Archive.Archive, archive)
      ),
      "ArchiverError",
      "up to 5"
    )
    assert.equal(yield* empty.lastSeq, 0)
    assert.equal(yield* other.lastSeq, 2)

    // the archive's own timeline is accepted: restored, then an Archiver that knows it is caught up
    const restored = yield* Journal.makeMemory
    yield* Archiver.restore().pipe(
      Effect.provideService(Journal.Journal, restored),
      Effect.provideService(Archive.Archive, archive)
    )
    const archiver = yield* make(restored)
    assert.deepEqual((yield* archiver.status).archivedThrough, 5)
    assert.equal((yield* archiver.status).pendingSeqs, 0)
  })))

test("Archiver: an invalid segmentSize fails with an ArchiverError", () =>
  run(Effect.gen(function*() {
    const fault = newFault()
    fault.down = true // the options are checked before the archive is touched
    const journal = yield* Journal.makeMemory
    const archive = yield* Archive.make(faultyStore(new Map(), fault))
    const provide = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      effect.pipe(Effect.provideService(Journal.Journal, journal), Effect.provideService(Archive.Archive, archive))
    for (const segmentSize of [0, -1, 2.5, Number.NaN]) {
      yield* expectError(provide(Archiver.make({ segmentSize })), "ArchiverError", "segmentSize")
    }
    yield* expectError(
      provide(Effect.scoped(Layer.build(Archiver.layer({ segmentSize: 0, restoreOnStart: false })))),
      "ArchiverError",
      "segmentSize"
    )
    assert.equal(fault.failures, 0, "the archive was never called")
  })))

test("Archiver: an upload that stored its object but reported a failure never leads to overlapping segments", () =>
  run(Effect.gen(function*() {
    const objects = new Map<string, Uint8Array>()
    // putIfAbsent stores the object, then fails (a timeout after the write) while `ambiguous` is set.
    let ambiguous = false
    const inner = Archive.makeObjectStoreMemory(objects)
    const store: Archive.ObjectStore = {
      ...inner,
      putIfAbsent: (key, bytes) =>
        Effect.flatMap(inner.putIfAbsent(key, bytes), (created) =>
          ambiguous
            ? Effect.fail(new Archive.ArchiveError({ method: "putIfAbsent", key, message: `${OUTAGE}: timed out after writing` }))
            : Effect.succeed(created))
    }
    const layer = Layer.mergeAll(Journal.layerMemory, SnapshotStore.layerMemory(), Layer.effect(Archive.Archive, Archive.make(store)))
    const aggregate = ledger()
    yield* Effect.gen(function*() {
      const repo = yield* Repository.make(aggregate)
      const journal = yield* Journal.Journal
      const archiver = yield* Archiver.make({ segmentSize: 4 })
      yield* repo.execute("a", append([credit(1), credit(2)])) // seqs 1-2
      yield* journal.append({ namespace: "mystery", id: "m" }, 0, [{ type: "X", payload: new Uint8Array([1]) }]) // seq 3
      yield* repo.execute("a", append([credit(3)])) // seq 4
      ambiguous = true
      yield* Effect.flip(archiver.uploadFullSegments) // stores …01-…04, reports a failure
      ambiguous = false
      const result = yield* (yield* Checkpointer.make([aggregate], { history: "archive" }).pipe(
        Effect.provideService(Archiver.Archiver, archiver)
      )).run // flush(3): must adopt …01-…04 instead of writing …01-…02
      assert.equal(result.checkpoint, 3)
      yield* repo.execute("a", append([credit(4)])) // seq 5
      yield* archiver.flush(100)
      const refs = yield* (yield* Archive.Archive).list()
      for (let i = 1; i < refs.length; i++) assert.equal(refs[i]!.startSeq, refs[i - 1]!.endSeq + 1, "segments chain")
      assert.deepEqual(refs.map((r) => [r.startSeq, r.endSeq]), [[1, 4], [5, 5]])
    }).pipe(Effect.provide(layer))
    // and the archive restores whole into a fresh journal
    yield* Effect.gen(function*() {
      const restored = yield* Archiver.restore()
      assert.equal(restored.lastSeq, 5)
      assert.deepEqual(yield* (yield* Repository.make(aggregate)).load("a"), { state: fold([credit(1), credit(2), credit(3), credit(4)]), version: 4 })
    }).pipe(Effect.provide(Layer.mergeAll(Journal.layerMemory, SnapshotStore.layerMemory(), Layer.effect(Archive.Archive, Archive.make(Archive.makeObjectStoreMemory(objects))))))
  })))
