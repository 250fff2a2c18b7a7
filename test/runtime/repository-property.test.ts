/**
 * Properties of the Repository (DESIGN §6), seeded and repeatable, over every storage combination:
 *
 * - `load` equals the fold of all the stream's events from `initial`, whatever the snapshot policy,
 *   cache, retention, checkpoints, truncations and restarts (a reopen of durable storage) in between;
 * - `load(id, { asOf: T })` equals the fold of exactly the events with timestamp ≤ T — or, with no
 *   Archive to read truncated history from, fails with `HistoryTruncated` (never a partial state);
 * - N fibers executing commands on one aggregate through several repositories: each command lands
 *   exactly once or fails with a conflict after the retry bound, and the state is the fold of what
 *   was stored.
 *
 * ANNALS_PROPERTY_RUNS sets the number of seeded runs (default 6 over memory; a share of that,
 * at least one, over the other combinations: `propertyShare` in layers.ts). Each runtime runs seeds of its own (Bun the first block, Deno the next, Node the third),
 * so a CI run over the three covers three times as many scenarios as one runtime does.
 */
import { Effect, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { Archiver, Checkpointer, Journal, Repository } from "../../src/index.ts"
import { append, fold, type LedgerEvent, type LedgerRepository, ledger, prng } from "../support/ledger.ts"
import { runtime } from "../support/programWorkspace.ts"
import { type Case, register } from "./harness.ts"
import type { Combination, Storage } from "./layers.ts"

const runs = Number(globalThis.process?.env?.ANNALS_PROPERTY_RUNS ?? 6)
const runsOver = (combination: Combination) => Math.max(1, Math.ceil(runs * combination.propertyShare))
/** The seeds this runtime runs over `combination`: its own block of `runsOver(combination)`. */
const seedsOver = (combination: Combination) => {
  const count = runsOver(combination)
  const first = ["bun", "deno", "node"].indexOf(runtime) * count + 1
  return Array.from({ length: count }, (_, i) => first + i)
}

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

/**
 * One session of the scenario: the storage opened (with an Archive and an Archiver when the
 * scenario has a segment size), a Checkpointer and a Repository on it.
 */
const session = <A, E>(
  s: Scenario,
  storage: Storage,
  body: (tools: {
    readonly repo: LedgerRepository
    readonly checkpoint: Checkpointer.Checkpointer["run"]
    readonly journal: Journal.Journal
  }) => Effect.Effect<A, E>
) => {
  const aggregate = ledger(s.every === undefined ? undefined : { every: s.every, schemaVersion: 1 })
  const use = <R>(checkpointer: Effect.Effect<Checkpointer.Checkpointer, never, R>) =>
    Effect.gen(function*() {
      const journal = yield* Journal.Journal
      const repo = yield* Repository.make(aggregate, { cacheSize: s.cacheSize })
      return yield* body({ repo, journal, checkpoint: (yield* checkpointer).run })
    })
  return s.segmentSize === undefined
    ? Effect.provide(use(Checkpointer.make([aggregate], { history: "discard" })), storage.stores)
    : Effect.provide(
      use(Checkpointer.make([aggregate], { history: "archive" })),
      Layer.provideMerge(Layer.effect(Archiver.Archiver, Archiver.make({ segmentSize: s.segmentSize })), storage.all)
    )
}

const runScenario = (s: Scenario, storage: Storage) =>
  Effect.gen(function*() {
    const random = prng(s.seed * 7919)
    const int = (n: number) => Math.floor(random() * n)
    const history = new Map<string, Array<{ readonly timestamp: number; readonly event: LedgerEvent }>>()
    const ids = Array.from({ length: s.streams }, (_, i) => `acct-${i}`)
    let now = 1_000
    let step = 0

    const expectedAt = (id: string, asOf: number | undefined) => {
      const events = (history.get(id) ?? []).filter((e) => asOf === undefined || e.timestamp <= asOf).map((e) => e.event)
      return { state: fold(events), version: events.length }
    }
    const checkLoad = (repo: LedgerRepository, id: string, asOf: number | undefined) =>
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

    // Each session runs until a restart: then the storage is closed and reopened (durable layers).
    while (step < s.steps) {
      yield* session(s, storage, ({ checkpoint, journal, repo }) =>
        Effect.gen(function*() {
          for (; step < s.steps; step++) {
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
              yield* checkLoad(repo, id, undefined)
            } else if (op < 85) {
              const timestamps = (history.get(id) ?? []).map((e) => e.timestamp)
              const asOf = timestamps.length > 0 && int(2) === 0 ? timestamps[int(timestamps.length)]! : int(now + 2)
              yield* checkLoad(repo, id, asOf)
            } else if (op < 95) {
              const result = yield* checkpoint
              assert.deepEqual(result.heldBack, [])
              assert.equal(result.checkpoint, (yield* journal.lastSeq) + 1)
              assert.deepEqual(yield* Stream.runCollect(journal.replayFrom(0)), [], "a checkpoint with no held-back namespace empties the journal")
            } else {
              step++
              return // a restart: cold caches, and the storage reopened
            }
          }
        }))
    }
    yield* session(s, storage, ({ repo }) =>
      Effect.gen(function*() {
        for (const id of ids) {
          yield* checkLoad(repo, id, undefined)
          for (const { timestamp } of history.get(id) ?? []) yield* checkLoad(repo, id, timestamp)
        }
      }))
  })

/** Registers each seeded scenario as its own case, so that a failure names its seed. */
const propertyCases: ReadonlyArray<Case> = [
  {
    name: `load and load asOf equal the fold of the events, over seeded scenarios (ANNALS_PROPERTY_RUNS=${runs})`,
    run: (_, combination) =>
      Effect.gen(function*() {
        for (const seed of seedsOver(combination)) {
          const s = scenario(seed)
          yield* Effect.scoped(Effect.flatMap(combination.open({ keep: s.keep }), (storage) => runScenario(s, storage)))
          yield* TestClock.setTime(0)
        }
      })
  },

  {
    name: "concurrency: every command lands exactly once or fails with a conflict after the retry bound",
    run: (storage) =>
      Effect.forEach([1, 2, 3, 4, 5], (seed) =>
        Effect.gen(function*() {
          const random = prng(seed)
          const aggregate = ledger(seed % 2 === 0 ? { every: 3, schemaVersion: 1 } : undefined)
          // Several repositories on one journal: separate caches, so writers really race.
          const repos = yield* Effect.forEach([0, 1, 2], () => Repository.make(aggregate, { maxRetries: 2 }))
          const id = `hot-${seed}`
          const fibers = 16
          const perFiber = 10
          const outcomes = yield* Effect.forEach(
            Array.from({ length: fibers }, (_, f) => f),
            (f) =>
              Effect.forEach(Array.from({ length: perFiber }, (_, i) => i), (i) => {
                const amount = f * 1_000 + i // unique, so each stored event names its command
                const pauses = Math.floor(random() * 3)
                return Effect.result(repos[f % repos.length]!.execute(id, (state) =>
                  Effect.gen(function*() {
                    for (let p = 0; p < pauses; p++) yield* Effect.yieldNow
                    return [{ _tag: "Credited" as const, amount: state.count >= 0 ? amount : -1 }]
                  }))).pipe(Effect.map((result) => ({ amount, result })))
              }),
            { concurrency: "unbounded" }
          )
          const journal = yield* Journal.Journal
          const stored = yield* Stream.runCollect(journal.read({ namespace: "ledger", id }))
          const storedAmounts = stored.map((r) => {
            const event = (aggregate.eventCodec.decode(r.payload) as { success: LedgerEvent }).success
            return event.amount
          })
          const landed = outcomes.flat().filter((o) => o.result._tag === "Success").map((o) => o.amount)
          const failed = outcomes.flat().filter((o) => o.result._tag === "Failure")
          for (const f of failed) {
            const error = f.result._tag === "Failure" ? f.result.failure : undefined
            assert.equal(error?._tag, "VersionConflict", `seed ${seed}: ${error?.message}`)
          }
          assert.deepEqual([...storedAmounts].sort((a, b) => a - b), [...landed].sort((a, b) => a - b), `seed ${seed}: stored = landed`)
          assert.equal(new Set(storedAmounts).size, storedAmounts.length, `seed ${seed}: no command stored twice`)
          assert.equal(landed.length + failed.length, fibers * perFiber)
          assert.ok(landed.length > 0)
          const events = storedAmounts.map((amount): LedgerEvent => ({ _tag: "Credited", amount }))
          for (const repo of repos) assert.deepEqual(yield* repo.load(id), { state: fold(events), version: events.length })
        }).pipe(Effect.provide(storage.stores)), { discard: true })
  }
]

register("Repository property", propertyCases)
