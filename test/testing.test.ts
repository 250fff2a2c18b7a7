/**
 * `annals/testing`: every terminal of AggregateSpec passes when it should and, when it should not,
 * rejects with an AssertionError whose message names the stream and whose `actual`/`expected` are the
 * values compared — a helper that never fails would be worthless. Also: the given events and the
 * appended ones go through the codec, `evolve` and the state Schema are checked event by event,
 * services come from `.provide`, and the Effect form fails the same way.
 */
import { Context, Data, Effect, Layer, Schema } from "effect"
import assert, { AssertionError } from "node:assert/strict"
import { test } from "node:test"
import { Aggregate, Journal } from "../src/index.ts"
import { AggregateSpec } from "../src/testing/index.ts"

const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Finite })
const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Finite })
const AccountEvent = Schema.Union([Deposited, Withdrawn])
type AccountEvent = typeof AccountEvent.Type
const Balance = Schema.Struct({ balance: Schema.Finite })
type Balance = typeof Balance.Type

const Account = Aggregate.make({
  namespace: "account",
  event: AccountEvent,
  state: Balance,
  initial: { balance: 0 },
  evolve: (state, event) => ({ balance: state.balance + (event._tag === "Deposited" ? event.amount : -event.amount) })
})

class InsufficientFunds extends Data.TaggedError("InsufficientFunds")<{ readonly balance: number; readonly requested: number }> {}
class Frozen extends Data.TaggedError("Frozen")<{}> {}

const deposit = (amount: number): Aggregate.Command<Balance, AccountEvent> => () => Effect.succeed([{ _tag: "Deposited", amount }])
const withdraw = (amount: number): Aggregate.Command<Balance, AccountEvent, InsufficientFunds | Frozen> => (state) =>
  state.balance < amount
    ? Effect.fail(new InsufficientFunds({ balance: state.balance, requested: amount }))
    : Effect.succeed([{ _tag: "Withdrawn", amount }])
/** Withdraws everything there is; nothing on an empty account. */
const closeOut: Aggregate.Command<Balance, AccountEvent> = (state) =>
  Effect.succeed(state.balance === 0 ? [] : [{ _tag: "Withdrawn", amount: state.balance }])

const d = (amount: number): AccountEvent => ({ _tag: "Deposited", amount })
const w = (amount: number): AccountEvent => ({ _tag: "Withdrawn", amount })

/** Asserts that `run` rejects with an AssertionError whose message matches every pattern; returns it. */
const rejection = async (run: Promise<void>, ...patterns: ReadonlyArray<RegExp>): Promise<AssertionError> => {
  const outcome = await run.then(() => undefined, (error: unknown) => error)
  assert.ok(outcome !== undefined, "the spec passed, but it should have failed")
  assert.ok(outcome instanceof AssertionError, `not an AssertionError: ${String(outcome)}`)
  for (const pattern of patterns) assert.match(outcome.message, pattern)
  return outcome
}

const spec = AggregateSpec.for(Account)

// ─── then ────────────────────────────────────────────────────────────────────────────────────────

test("then: passes when the command appends exactly the expected events", () =>
  spec.given([d(100), d(20)]).when(withdraw(70)).then([w(70)]))

test("then: without given, the command runs on a new stream (the initial state)", async () => {
  await spec.when(closeOut).then([])
  await spec.when(deposit(3)).then([d(3)])
  await rejection(spec.when(withdraw(1)).then([w(1)]), /InsufficientFunds/, /balance: 0/)
})

test("then: several given calls add up, in order, and a spec is immutable (a shared given stays as it was)", async () => {
  const funded = spec.given([d(50)])
  await funded.given([d(25)]).when(closeOut).then([w(75)])
  await funded.when(closeOut).then([w(50)])
})

test("then: rejects when other events were appended, with the appended events as actual and the expected as expected", async () => {
  const error = await rejection(
    spec.given([d(100)]).when(withdraw(70)).then([w(60)]),
    /AggregateSpec\(account\/test\)/,
    /appended other events/
  )
  assert.deepEqual(error.actual, [w(70)])
  assert.deepEqual(error.expected, [w(60)])
  assert.equal(error.operator, "deepStrictEqual")
})

test("then: rejects when the command appended more, fewer or differently ordered events", async () => {
  const both: Aggregate.Command<Balance, AccountEvent> = () => Effect.succeed([d(1), d(2)])
  await spec.when(both).then([d(1), d(2)])
  await rejection(spec.when(both).then([d(1)]), /appended other events/)
  await rejection(spec.when(both).then([d(1), d(2), d(3)]), /appended other events/)
  await rejection(spec.when(both).then([d(2), d(1)]), /appended other events/)
  await rejection(spec.when(both).then([d(1), w(2)]), /appended other events/)
})

test("then: rejects when the command failed, naming the error", async () => {
  const error = await rejection(
    spec.given([d(10)]).when(withdraw(70)).then([w(70)]),
    /expected the command to append the events/,
    /but it failed with/,
    /InsufficientFunds/
  )
  assert.ok(error.actual instanceof InsufficientFunds)
  assert.deepEqual(error.expected, [w(70)])
})

test("then: what is compared went through the codec (a property outside the event Schema is not stored)", async () => {
  const extra: Aggregate.Command<Balance, AccountEvent> = () =>
    Effect.succeed([{ _tag: "Deposited", amount: 5, note: "not in the Schema" } as AccountEvent])
  await spec.when(extra).then([d(5)])
  await rejection(spec.when(extra).then([{ _tag: "Deposited", amount: 5, note: "not in the Schema" } as AccountEvent]), /appended other events/)
})

// ─── thenNothing ─────────────────────────────────────────────────────────────────────────────────

test("thenNothing: passes when the command succeeds with no events", () => spec.when(closeOut).thenNothing())

test("thenNothing: rejects when the command appended events, or failed", async () => {
  const appended = await rejection(spec.given([d(30)]).when(closeOut).thenNothing(), /to append no events/, /appended other events/)
  assert.deepEqual(appended.actual, [w(30)])
  assert.deepEqual(appended.expected, [])
  await rejection(spec.when(withdraw(5)).thenNothing(), /to append no events, but it failed with/, /InsufficientFunds/)
})

// ─── thenFails ───────────────────────────────────────────────────────────────────────────────────

test("thenFails: passes with the error's _tag, an equal error value, or a check that returns true or nothing", async () => {
  const refused = spec.given([d(10)]).when(withdraw(70))
  await refused.thenFails("InsufficientFunds")
  await refused.thenFails(new InsufficientFunds({ balance: 10, requested: 70 }))
  await refused.thenFails((error) => error._tag === "InsufficientFunds" && error.requested === 70)
  await refused.thenFails((error) => {
    assert.equal(error._tag, "InsufficientFunds")
  })
})

test("thenFails: rejects when the error has another _tag, with the tags as actual and expected", async () => {
  const error = await rejection(
    spec.given([d(10)]).when(withdraw(70)).thenFails("Frozen"),
    /an error tagged "Frozen"/,
    /InsufficientFunds/
  )
  assert.equal(error.actual, "InsufficientFunds")
  assert.equal(error.expected, "Frozen")
})

test("thenFails: rejects when the error differs in a field or a class (deep equality of the error value)", async () => {
  const refused = spec.given([d(10)]).when(withdraw(70))
  const field = await rejection(refused.thenFails(new InsufficientFunds({ balance: 10, requested: 71 })), /expected the command to fail with/)
  assert.deepEqual(field.actual, new InsufficientFunds({ balance: 10, requested: 70 }))
  assert.deepEqual(field.expected, new InsufficientFunds({ balance: 10, requested: 71 }))
  await rejection(refused.thenFails(new Frozen()), /expected the command to fail with/)
  class Other extends Data.TaggedError("InsufficientFunds")<{ readonly balance: number; readonly requested: number }> {}
  await rejection(refused.thenFails(new Other({ balance: 10, requested: 70 }) as InsufficientFunds), /expected the command to fail with/)
})

test("thenFails: rejects when the check returns false or throws, naming the error and the check's message", async () => {
  const refused = spec.given([d(10)]).when(withdraw(70))
  await rejection(refused.thenFails((error) => error._tag === "Frozen"), /does not pass the check/, /InsufficientFunds/)
  await rejection(
    refused.thenFails((error) => assert.equal(error._tag, "Frozen", "the account should be frozen")),
    /fails the check given to thenFails: the account should be frozen/
  )
})

test("thenFails: rejects when the command succeeded, naming what it appended", async () => {
  await rejection(spec.given([d(100)]).when(withdraw(70)).thenFails("InsufficientFunds"), /but it succeeded and appended/, /Withdrawn/)
  await rejection(spec.when(closeOut).thenFails((() => true) as never), /but it succeeded and appended no events/)
})

test("thenFails: a command whose events do not encode fails with the CodecError the Repository reports", async () => {
  const bad: Aggregate.Command<Balance, AccountEvent> = () => Effect.succeed([{ _tag: "Deposited", amount: "ten" } as never])
  await spec.when(bad).thenFails(((error: { readonly _tag: string }) => error._tag === "CodecError") as never)
  await rejection(spec.when(bad).then([d(10)]), /failed with/, /CodecError/)
})

// ─── What the spec checks on the way ─────────────────────────────────────────────────────────────

test("given: an event that does not encode fails the spec, naming it and its position", async () => {
  await rejection(
    spec.given([d(1), { _tag: "Deposited", amount: "ten" } as never]).when(closeOut).thenNothing(),
    /given event #2/,
    /amount: 'ten'/,
    /does not encode with the aggregate's event Schema/
  )
})

test("evolve: a throw on a given or an appended event fails the spec, naming the event", async () => {
  const Fragile = Aggregate.make({
    namespace: "fragile",
    event: AccountEvent,
    state: Balance,
    initial: { balance: 0 },
    evolve: (state, event) => {
      if (event.amount === 13) throw new Error("unlucky amount")
      return { balance: state.balance + event.amount }
    }
  })
  const fragile = AggregateSpec.for(Fragile, { id: "f-1" })
  await rejection(
    fragile.given([d(1), d(13)]).when(closeOut).thenNothing(),
    /AggregateSpec\(fragile\/f-1\)/,
    /evolve is not total: it threw on given event #2/,
    /amount: 13/,
    /unlucky amount/
  )
  await rejection(
    fragile.when(() => Effect.succeed([d(2), d(13)])).then([d(2), d(13)]),
    /evolve is not total: it threw on appended event #2/,
    /unlucky amount/
  )
})

test("evolve: a state that does not encode with the state Schema fails the spec, naming the event", async () => {
  const Sloppy = Aggregate.make({
    namespace: "sloppy",
    event: AccountEvent,
    state: Balance,
    initial: { balance: 0 },
    evolve: (state, event) => ({ balance: event.amount === 0 ? (undefined as never) : state.balance + event.amount })
  })
  await rejection(
    AggregateSpec.for(Sloppy).given([d(1), d(0)]).when(closeOut).thenNothing(),
    /the state after given event #2/,
    /does not encode with the aggregate's state Schema/
  )
})

test("a command that dies fails the spec with the defect, whatever the terminal", async () => {
  const dies: Aggregate.Command<Balance, AccountEvent> = () => Effect.die(new Error("kaboom"))
  await rejection(spec.when(dies).then([]), /did not succeed or fail/, /kaboom/)
  await rejection(spec.when(dies).thenFails((() => true) as never), /did not succeed or fail/, /kaboom/)
})

test("a spec awaited without a terminal method rejects, saying so", async () => {
  const unfinished: unknown = spec.when(closeOut)
  await rejection(Promise.resolve(unfinished) as Promise<void>, /without a terminal method/)
  await rejection(Promise.resolve(spec.when(closeOut).effect as unknown) as Promise<void>, /without a terminal method/)
})

// ─── Services and the Effect form ────────────────────────────────────────────────────────────────

class Limits extends Context.Service<Limits, { readonly max: number }>()("test/Limits") {}
const limited = (amount: number): Aggregate.Command<Balance, AccountEvent, InsufficientFunds, Limits> => (state) =>
  Effect.gen(function*() {
    const { max } = yield* Limits
    return amount > max
      ? yield* Effect.fail(new InsufficientFunds({ balance: state.balance, requested: amount }))
      : [{ _tag: "Deposited" as const, amount }]
  })

test("provide: the command gets its services from the provided layers (and the Promise form needs them)", async () => {
  const withLimits = spec.provide(Layer.succeed(Limits, { max: 100 }))
  await withLimits.when(limited(100)).then([d(100)])
  await withLimits.when(limited(101)).thenFails("InsufficientFunds")
  await rejection(withLimits.when(limited(100)).then([d(99)]), /appended other events/)
  // @ts-expect-error Limits is not provided: the Promise form is not available
  void (() => spec.when(limited(1)).then([d(1)]))
})

test("provide: a layer may use the spec's own Journal (built before the given events are appended)", async () => {
  const fromJournal = Layer.effect(
    Limits,
    Effect.gen(function*() {
      return { max: yield* (yield* Journal.Journal).lastSeq }
    })
  )
  // The layer is built before the given events are appended: it sees an empty journal.
  await spec.provide(fromJournal).given([d(5)]).when(limited(1)).thenFails("InsufficientFunds")
  await spec.provide(fromJournal).when(limited(0)).then([d(0)])
})

test("effect form: the same checks as Effects; a failed check fails with the AssertionError", async () => {
  const checks = Effect.gen(function*() {
    yield* spec.given([d(100)]).when(withdraw(70)).effect.then([w(70)])
    yield* spec.given([d(10)]).when(withdraw(70)).effect.thenFails("InsufficientFunds")
    yield* spec.when(closeOut).effect.thenNothing()
    // What the provided layers do not cover stays in R, for the caller to provide.
    yield* spec.when(limited(5)).effect.then([d(5)]).pipe(Effect.provideService(Limits, { max: 10 }))
    const failed = yield* Effect.flip(spec.given([d(100)]).when(withdraw(70)).effect.then([w(1)]))
    assert.ok(failed instanceof AssertionError)
    assert.match(failed.message, /appended other events/)
    assert.deepEqual(failed.actual, [w(70)])
    return yield* Effect.flip(spec.when(closeOut).effect.thenFails("Frozen" as never))
  })
  const error = await Effect.runPromise(checks)
  assert.match(error.message, /but it succeeded and appended no events/)
})

test("effect form: every run uses fresh stores, even inside a program that provides its own memory Journal", async () => {
  const program = Effect.gen(function*() {
    const outer = yield* Journal.Journal
    yield* spec.given([d(1)]).when(closeOut).effect.then([w(1)])
    yield* spec.given([d(2)]).when(closeOut).effect.then([w(2)])
    return yield* outer.lastSeq
  })
  assert.equal(await Effect.runPromise(Effect.provide(program, Journal.layerMemory)), 0)
})
