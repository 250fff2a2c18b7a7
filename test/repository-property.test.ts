/**
 * Properties of the Repository (DESIGN §5), seeded and repeatable on every runtime:
 *
 * - `load` equals the fold of all the stream's events from `initial`, whatever the snapshot policy,
 *   cache, retention, checkpoints and truncations in between;
 * - `load(id, { asOf: T })` equals the fold of exactly the events with timestamp ≤ T — or, with no
 *   Archive to read truncated history from, fails with `HistoryTruncated` (never a partial state);
 * - N fibers executing commands on one aggregate through several repositories: each command lands
 *   exactly once or fails with a conflict after the retry bound, and the state is the fold of what
 *   was stored.
 *
 * ANNALS_PROPERTY_RUNS sets the number of seeded runs (default 30).
 */
import { Effect, Layer, Option, Stream } from "effect"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { test } from "node:test"
import { Archive, Archiver, Checkpointer, Journal, Repository, SnapshotStore } from "../src/index.ts"
import { append, fold, type LedgerEvent, ledger, prng } from "./support/ledger.ts"

const runs = Number(globalThis.process?.env?.ANNALS_PROPERTY_RUNS ?? 30)

interface Scenario {
  readonly seed: number
  readonly every: number | undefined
  readonly cacheSize: number
  readonly keep: number
  readonly segmentSize: number | undefined
  readonly streams: number
  readonly steps: number
}

const scenario = (seed: number): Scenario => {
  const random = prng(seed)
  const pick = <A>(options: ReadonlyArray<A>): A => options[Math.floor(random() * options.length)]!
  return {
    seed,
    every: pick([undefined, 1, 2, 3, 5, 10]),
    cacheSize: pick([0, 1, 1_000]),
    keep: pick([1, 2, 3]),
    segmentSize: pick([undefined, 1, 3, 8]),
    streams: 1 + Math.floor(random() * 4),
    steps: 40 + Math.floor(random() * 80)
  }
}

const runScenario = (s: Scenario) =>
  Effect.gen(function*() {
    const random = prng(s.seed * 7919)
    const int = (n: number) => Math.floor(random() * n)
    const aggregate = ledger(s.every === undefined ? undefined : { every: s.every, schemaVersion: 1 })
    const journal = yield* Journal.Journal
    const archiver = yield* Effect.serviceOption(Archiver.Archiver)
    const checkpointer = yield* (Option.isSome(archiver)
      ? Effect.provideService(Checkpointer.make([aggregate], { history: "archive" }), Archiver.Archiver, archiver.value)
      : Checkpointer.make([aggregate], { history: "discard" }))
    let repo = yield* Repository.make(aggregate, { cacheSize: s.cacheSize })
    const history = new Map<string, Array<{ readonly timestamp: number; readonly event: LedgerEvent }>>()
    const ids = Array.from({ length: s.streams }, (_, i) => `acct-${i}`)
    let now = 1_000

    const expectedAt = (id: string, asOf: number | undefined) => {
      const events = (history.get(id) ?? []).filter((e) => asOf === undefined || e.timestamp <= asOf).map((e) => e.event)
      return { state: fold(events), version: events.length }
    }
    const checkLoad = (id: string, asOf: number | undefined, step: number) =>
      Effect.gen(function*() {
        const result = yield* Effect.result(repo.load(id, asOf === undefined ? undefined : { asOf }))
        const where = `seed ${s.seed} step ${step}: load(${id}${asOf === undefined ? "" : `, asOf ${asOf}`})`
        if (result._tag === "Success") {
          assert.deepEqual(result.success, expectedAt(id, asOf), where)
        } else {
          // Only legal when history is truncated and no Archive can supply it.
          assert.equal(result.failure._tag, "HistoryTruncated", `${where}: ${result.failure.message}`)
          assert.equal(s.segmentSize, undefined, `${where}: with an Archive, history is never truncated away`)
        }
      })

    for (let step = 0; step < s.steps; step++) {
      const id = ids[int(ids.length)]!
      const op = int(100)
      if (op < 55) {
        now += int(4) // equal timestamps happen too
        yield* TestClock.setTime(now)
        const events: Array<LedgerEvent> = Array.from({ length: 1 + int(3) }, () =>
          int(2) === 0
            ? { _tag: "Credited", amount: int(1_000) }
            : int(2) === 0
            ? { _tag: "Debited", amount: int(500), note: `n${int(10)}` }
            : { _tag: "Debited", amount: int(500) })
        const result = yield* repo.execute(id, append(events))
        const list = history.get(id) ?? []
        for (const event of events) list.push({ timestamp: now, event })
        history.set(id, list)
        assert.deepEqual({ state: result.state, version: result.version }, expectedAt(id, undefined), `seed ${s.seed} step ${step}: execute`)
      } else if (op < 70) {
        yield* checkLoad(id, undefined, step)
      } else if (op < 85) {
        const timestamps = (history.get(id) ?? []).map((e) => e.timestamp)
        const asOf = timestamps.length > 0 && int(2) === 0 ? timestamps[int(timestamps.length)]! : int(now + 2)
        yield* checkLoad(id, asOf, step)
      } else if (op < 95) {
        const result = yield* checkpointer.run
        assert.deepEqual(result.heldBack, [])
        assert.equal(result.checkpoint, (yield* journal.lastSeq) + 1)
        assert.deepEqual(yield* Stream.runCollect(journal.replayFrom(0)), [], "a checkpoint with no held-back namespace empties the journal")
      } else {
        repo = yield* Repository.make(aggregate, { cacheSize: s.cacheSize }) // a restart: cold cache
      }
    }
    for (const id of ids) {
      yield* checkLoad(id, undefined, s.steps)
      for (const { timestamp } of history.get(id) ?? []) yield* checkLoad(id, timestamp, s.steps)
    }
  })

const layerFor = (s: Scenario) => {
  const base = Layer.mergeAll(Journal.layerMemory, SnapshotStore.layerMemory({ keep: s.keep }))
  if (s.segmentSize === undefined) return base
  const withArchive = Layer.merge(base, Archive.layerMemory())
  return Layer.provideMerge(
    Layer.effect(Archiver.Archiver, Archiver.make({ segmentSize: s.segmentSize })),
    withArchive
  )
}

test(`Repository property: load and load asOf equal the fold of the events, over ${runs} seeded scenarios`, async () => {
  for (let seed = 1; seed <= runs; seed++) {
    const s = scenario(seed)
    await Effect.runPromise(runScenario(s).pipe(Effect.provide(layerFor(s)), Effect.provide(TestClock.layer())))
  }
})

test("Repository concurrency: every command lands exactly once or fails with a conflict after the retry bound", async () => {
  for (let seed = 1; seed <= 5; seed++) {
    await Effect.runPromise(Effect.gen(function*() {
      const random = prng(seed)
      const aggregate = ledger(seed % 2 === 0 ? { every: 3, schemaVersion: 1 } : undefined)
      // Several repositories on one journal: separate caches, so writers really race.
      const repos = yield* Effect.forEach([0, 1, 2], () => Repository.make(aggregate, { maxRetries: 2 }))
      const fibers = 16
      const perFiber = 10
      const outcomes = yield* Effect.forEach(
        Array.from({ length: fibers }, (_, f) => f),
        (f) =>
          Effect.forEach(Array.from({ length: perFiber }, (_, i) => i), (i) => {
            const amount = f * 1_000 + i // unique, so each stored event names its command
            const pauses = Math.floor(random() * 3)
            return Effect.result(repos[f % repos.length]!.execute("hot", (state) =>
              Effect.gen(function*() {
                for (let p = 0; p < pauses; p++) yield* Effect.yieldNow
                return [{ _tag: "Credited" as const, amount: state.count >= 0 ? amount : -1 }]
              }))).pipe(Effect.map((result) => ({ amount, result })))
          }),
        { concurrency: "unbounded" }
      )
      const journal = yield* Journal.Journal
      const stored = yield* Stream.runCollect(journal.read({ namespace: "ledger", id: "hot" }))
      const storedAmounts = stored.map((r) => {
        const event = (repos[0]!.aggregate.eventCodec.decode(r.payload) as { success: LedgerEvent }).success
        return event.amount
      })
      const landed = outcomes.flat().filter((o) => o.result._tag === "Success").map((o) => o.amount)
      const failed = outcomes.flat().filter((o) => o.result._tag === "Failure")
      for (const f of failed) {
        assert.equal(f.result._tag === "Failure" && f.result.failure._tag, "VersionConflict", `seed ${seed}`)
      }
      assert.deepEqual([...storedAmounts].sort((a, b) => a - b), [...landed].sort((a, b) => a - b), `seed ${seed}: stored = landed`)
      assert.equal(new Set(storedAmounts).size, storedAmounts.length, `seed ${seed}: no command stored twice`)
      assert.equal(landed.length + failed.length, fibers * perFiber)
      assert.ok(landed.length > 0)
      const events = storedAmounts.map((amount): LedgerEvent => ({ _tag: "Credited", amount }))
      for (const repo of repos) assert.deepEqual(yield* repo.load("hot"), { state: fold(events), version: events.length })
    }).pipe(
      Effect.provide(Layer.mergeAll(Journal.layerMemory, SnapshotStore.layerMemory())),
      Effect.provide(TestClock.layer())
    ))
  }
})
