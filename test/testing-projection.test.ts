/**
 * `annals/testing`: ProjectionSpec passes when the projection gives the expected state or read model
 * after every run, and rejects — naming the run — when it does not: a fold whose state does not
 * survive its saved state, a fold that is not deterministic, a handler that is not idempotent, and a
 * plain wrong expectation. The given events are encoded with their codec and named when they do not.
 */
import { Context, Effect, Layer, Schema } from "effect"
import assert, { AssertionError } from "node:assert/strict"
import { test } from "node:test"
import { Aggregate, Projection } from "../src/index.ts"
import { ProjectionSpec } from "../src/testing/index.ts"

const AccountEvent = Schema.Union([
  Schema.TaggedStruct("Deposited", { amount: Schema.Finite }),
  Schema.TaggedStruct("Withdrawn", { amount: Schema.Finite })
])
type AccountEvent = typeof AccountEvent.Type
const Account = Aggregate.make({
  namespace: "account",
  event: AccountEvent,
  state: Schema.Struct({ balance: Schema.Finite }),
  initial: { balance: 0 },
  evolve: (state, event) => ({ balance: state.balance + signed(event) })
})
const Note = Aggregate.make({
  namespace: "note",
  event: Schema.Union([Schema.TaggedStruct("Written", { text: Schema.String })]),
  state: Schema.Struct({}),
  initial: {},
  evolve: (state) => state
})
const signed = (event: AccountEvent) => event._tag === "Deposited" ? event.amount : -event.amount
const d = (amount: number): AccountEvent => ({ _tag: "Deposited", amount })
const w = (amount: number): AccountEvent => ({ _tag: "Withdrawn", amount })

const Balances = Projection.fold({
  name: "balances",
  aggregates: [Account],
  state: Schema.Record(Schema.String, Schema.Finite),
  initial: {} as Record<string, number>,
  evolve: (state, event, record) => ({ ...state, [record.stream.id]: (state[record.stream.id] ?? 0) + signed(event) })
})

const rejection = async (run: Promise<void>, ...patterns: ReadonlyArray<RegExp>): Promise<AssertionError> => {
  const outcome = await run.then(() => undefined, (error: unknown) => error)
  assert.ok(outcome !== undefined, "the spec passed, but it should have failed")
  assert.ok(outcome instanceof AssertionError, `not an AssertionError: ${String(outcome)}`)
  for (const pattern of patterns) assert.match(outcome.message, pattern)
  return outcome
}

// ─── Folds ───────────────────────────────────────────────────────────────────────────────────────

test("fold: passes when every run (a restart part way, three from scratch) gives the expected state", () =>
  ProjectionSpec.for(Balances)
    .given(Account, "alice", [d(100), w(30)])
    .given(Account, "bob", [d(5)])
    .given({ namespace: "account", id: "alice" }, [d(1)])
    .given(Note, "n-1", [{ _tag: "Written", text: "not read by the projection" }])
    .then({ alice: 71, bob: 5 }))

test("fold: with no given events the state is the initial one", () => ProjectionSpec.for(Balances).then({}))

test("fold: rejects a wrong expected state, with the state as actual", async () => {
  const error = await rejection(
    ProjectionSpec.for(Balances).given(Account, "alice", [d(100)]).then({ alice: 99 }),
    /ProjectionSpec\(balances@1\)/,
    /after a restart part way .*the state is not the expected one/
  )
  assert.deepEqual(error.actual, { alice: 100 })
  assert.deepEqual(error.expected, { alice: 99 })
})

test("fold: a check of the state passes, or rejects naming the run and keeping the assertion's values", async () => {
  const spec = ProjectionSpec.for(Balances).given(Account, "alice", [d(10), d(20)])
  await spec.then((state) => assert.equal(state.alice, 30))
  await spec.then((state) => Effect.sync(() => assert.equal(state.alice, 30)))
  const error = await rejection(spec.then((state) => assert.equal(state.alice, 31)), /after a restart part way/, /the check failed/)
  assert.equal(error.actual, 30)
  assert.equal(error.expected, 31)
  await rejection(spec.then(() => Effect.fail("not like this")), /the check failed/, /not like this/)
})

test("fold: a state that does not survive being saved (its Schema drops a field) fails the restart part way", async () => {
  const Lossy = Projection.fold({
    name: "lossy",
    aggregates: [Account],
    state: Schema.Struct({ total: Schema.Finite }),
    initial: { total: 0 },
    evolve: (state, event) => {
      // `count` is kept in the state in memory, but the state Schema does not save it.
      const next = { total: state.total + signed(event), count: ((state as { readonly count?: number }).count ?? 0) + 1 }
      return next
    }
  })
  await rejection(
    ProjectionSpec.for(Lossy).given(Account, "a", [d(1), d(2), d(3), d(4)]).then({ total: 10, count: 4 } as { readonly total: number }),
    /after a restart part way \(stopped after 2 of the 4 records/,
    /the state is not the expected one/
  )
})

test("fold: a fold that is not deterministic (state kept outside the state) fails a run from scratch", async () => {
  let calls = 0
  const Counting = Projection.fold({
    name: "counting",
    aggregates: [Account],
    state: Schema.Struct({ seen: Schema.Int }),
    initial: { seen: 0 },
    evolve: () => ({ seen: ++calls })
  })
  await rejection(
    ProjectionSpec.for(Counting).given(Account, "a", [d(1), d(2)]).then(() => {}),
    /after run 1 from scratch, the state differs from the one after a restart part way/
  )
})

test("fold: a given event that does not encode, or of a namespace the projection does not read, fails naming it", async () => {
  await rejection(
    ProjectionSpec.for(Balances).given(Account, "a", [d(1), { _tag: "Deposited", amount: "x" } as never]).then({}),
    /given event #2 of stream account\/a/,
    /amount: 'x'/,
    /does not encode/
  )
  await rejection(
    ProjectionSpec.for(Balances).given({ namespace: "note", id: "n" }, [d(1)]).then({}),
    /does not read namespace "note"/
  )
})

test("fold: awaited without its terminal, it rejects saying so", async () => {
  await rejection(Promise.resolve(ProjectionSpec.for(Balances) as unknown) as Promise<void>, /without a terminal method/)
})

// ─── Effectful handlers ──────────────────────────────────────────────────────────────────────────

/** The user's read model: rows in a Map, provided as a service. */
class Table extends Context.Service<Table, Map<string, number>>()("test/Table") {}
const table = Layer.sync(Table, () => new Map<string, number>())

/** Idempotent: one row per record, keyed by stream and version (an upsert). */
const Ledger = Projection.make({
  name: "ledger",
  aggregates: [Account],
  handle: (event, record) =>
    Effect.gen(function*() {
      ;(yield* Table).set(`${record.stream.id}/${record.version}`, signed(event))
    })
})
/** Not idempotent: adds to a running total, so a replay counts every event again. */
const Totals = Projection.make({
  name: "totals",
  aggregates: [Account],
  handle: (event, record) =>
    Effect.gen(function*() {
      const rows = yield* Table
      rows.set(record.stream.id, (rows.get(record.stream.id) ?? 0) + signed(event))
    })
})

const sumOf = (rows: Map<string, number>, prefix: string) =>
  [...rows].filter(([key]) => key.startsWith(prefix)).reduce((sum, [, amount]) => sum + amount, 0)

test("handler: an idempotent handler passes after its first run and after each replay from scratch", () =>
  ProjectionSpec.for(Ledger)
    .provide(table)
    .given(Account, "alice", [d(100), w(30)])
    .given(Account, "bob", [d(5)])
    .then(() => Effect.map(Table.use(Effect.succeed), (rows) => {
      assert.equal(rows.size, 3)
      assert.equal(sumOf(rows, "alice/"), 70)
    })))

test("handler: a handler that is not idempotent fails the replay, naming it", async () => {
  const spec = ProjectionSpec.for(Totals).provide(table).given(Account, "alice", [d(100), w(30)])
  const error = await rejection(
    spec.then(() => Effect.map(Table.use(Effect.succeed), (rows) => assert.equal(rows.get("alice"), 70))),
    /ProjectionSpec\(totals@1\): after a replay from scratch \(its cursor deleted, the read model kept\), the check failed/
  )
  assert.equal(error.actual, 140)
  assert.equal(error.expected, 70)
})

test("handler: a wrong read model fails the first run", async () => {
  await rejection(
    ProjectionSpec.for(Ledger).provide(table).given(Account, "a", [d(1)]).then(() =>
      Effect.map(Table.use(Effect.succeed), (rows) => assert.equal(rows.size, 2))
    ),
    /after its first run, the check failed/
  )
})

test("handler: the Promise form needs the handler's services; the Effect form leaves them to the caller", async () => {
  // @ts-expect-error Table is not provided: the Promise form does not take a check
  void (() => ProjectionSpec.for(Ledger).then(() => Effect.void))
  const rows = new Map<string, number>()
  await Effect.runPromise(
    ProjectionSpec.for(Ledger).given(Account, "a", [d(1), d(2)]).effect.then(() => Effect.void).pipe(Effect.provideService(Table, rows))
  )
  assert.equal(rows.size, 2)
  const failed = await Effect.runPromise(
    Effect.flip(ProjectionSpec.for(Balances).given(Account, "a", [d(1)]).effect.then({ a: 2 }))
  )
  assert.ok(failed instanceof AssertionError)
  assert.match(failed.message, /the state is not the expected one/)
})
