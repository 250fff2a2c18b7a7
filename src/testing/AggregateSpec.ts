/**
 * Given/when/then tests of an aggregate: given these events, when this command, then these events
 * (or this failure, or nothing).
 *
 * ```ts
 * test("a withdrawal beyond the balance is refused", () =>
 *   AggregateSpec.for(Account)
 *     .given([{ _tag: "Deposited", amount: 100 }])
 *     .when(withdraw(500))
 *     .thenFails("InsufficientFunds"))
 * ```
 *
 * Each terminal method runs the spec for real, on a fresh in-memory Journal and SnapshotStore: the
 * given events are encoded with the aggregate's codec and appended to one stream (so a given event
 * that does not encode fails the spec, naming it), the command is executed through a `Repository`
 * (which loads, decodes and folds them first), and the events it appended are read back from the
 * journal and decoded — so what is compared went through the codec both ways. Along the way the spec
 * checks that `evolve` is total over the given and the appended events and that every state it
 * produces encodes with the state Schema (what snapshots need); a failure names the event.
 *
 * Two forms of the same terminals:
 * - `then`, `thenFails`, `thenNothing` return a `Promise<void>` that rejects with a node:assert
 *   `AssertionError` (its message names the stream and, for a comparison, shows expected vs actual):
 *   the body of a `test(...)` under node:test, bun test and deno test alike. They need every service
 *   the command uses to be provided with `.provide(layer)` (a type error otherwise).
 * - `.effect.then`, `.effect.thenFails`, `.effect.thenNothing` return the same check as an
 *   `Effect<void, AssertionError, R>`, `R` being what the command needs beyond the provided layers:
 *   for tests written in Effect (provide the rest yourself).
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import type { AssertionError } from "node:assert"
import type * as Aggregate from "../Aggregate.ts"
import * as Codec from "../Codec.ts"
import { nameProblem } from "../internal/validate.ts"
import * as Journal from "../Journal.ts"
import * as Repository from "../Repository.ts"
import * as SnapshotStore from "../SnapshotStore.ts"
import { deepEqual, describeCause, failure, mismatch, orFailure, show, thenableMisuse } from "./internal/verdict.ts"

/**
 * The services every spec provides itself: its fresh in-memory Journal and SnapshotStore. Commands
 * and provided layers may use them.
 *
 * @since 0.1.0
 * @category models
 */
export type Stores = Journal.Journal | SnapshotStore.SnapshotStore

/**
 * Options of `AggregateSpec.for`.
 *
 * @since 0.1.0
 * @category models
 */
export interface SpecOptions {
  /** The id of the stream the spec runs on (default `"test"`). */
  readonly id?: string | undefined
}

/**
 * The `_tag`s of an error type (never for errors without one).
 *
 * @since 0.1.0
 * @category type-level
 */
export type TagOf<Err> = Err extends { readonly _tag: infer T extends string } ? T : never

/**
 * What `thenFails` accepts:
 * - a `_tag` string: the error's `_tag` is that string (or the error is that very string);
 * - a function: a check of the error that passes when it returns `true` or nothing and fails when it
 *   returns `false` or throws (so node:assert calls inside it work);
 * - any other value: the error is deeply equal to it (`assert.deepStrictEqual`: same class, same fields).
 *
 * @since 0.1.0
 * @category models
 */
export type ExpectedFailure<Err> = TagOf<Err> | ((error: Err) => boolean | void) | Err

/**
 * The checks of a spec as Effects, for tests written in Effect: each fails with an `AssertionError`
 * and needs `R`, what the command uses beyond the provided layers.
 *
 * @since 0.1.0
 * @category models
 */
export interface Verdicts<E, Err, R> {
  /** The command succeeds and appends exactly `expected` (deep equality, after the codec), in order. */
  readonly then: (expected: ReadonlyArray<E>) => Effect.Effect<void, AssertionError, R>
  /** The command fails with an error matching `expected` (see `ExpectedFailure`) and appends nothing. */
  readonly thenFails: (expected: ExpectedFailure<Err>) => Effect.Effect<void, AssertionError, R>
  /** The command succeeds and appends no events. */
  readonly thenNothing: () => Effect.Effect<void, AssertionError, R>
}

/**
 * A spec with its command: end it with a terminal method. The Promise terminals are callable only
 * once `R` is `never` (every service the command needs was provided with `.provide`); `.effect` has
 * the same checks as Effects needing `R`.
 *
 * @since 0.1.0
 * @category models
 */
export interface When<E, Err, R> {
  /** The command succeeds and appends exactly `expected` (deep equality, after the codec), in order. */
  then(this: When<E, Err, never>, expected: ReadonlyArray<E>): Promise<void>
  /** The command fails with an error matching `expected` (see `ExpectedFailure`) and appends nothing. */
  thenFails(this: When<E, Err, never>, expected: ExpectedFailure<Err>): Promise<void>
  /** The command succeeds and appends no events. */
  thenNothing(this: When<E, Err, never>): Promise<void>
  /** The same checks as Effects. */
  readonly effect: Verdicts<E, Err, R>
}

/**
 * A spec being set up. Immutable: every method returns a new spec, so a common `given` can be shared.
 * `P` is what the provided layers provide, `RL` what they need.
 *
 * @since 0.1.0
 * @category models
 */
export interface Spec<E extends { readonly _tag: string }, S, P = never, RL = never> {
  readonly aggregate: Aggregate.Aggregate<E, S>
  /** Adds events to the history the command runs on, after those already given (none: a new stream). */
  readonly given: (events: ReadonlyArray<E>) => Spec<E, S, P, RL>
  /**
   * Provides services to the command, built fresh for every run on top of the spec's own Journal and
   * SnapshotStore (which the layer may use), before the given events are appended. Several layers
   * are merged; they do not see each other.
   */
  readonly provide: <ROut, LE, RIn>(layer: Layer.Layer<ROut, LE, RIn>) => Spec<E, S, P | ROut, RL | RIn>
  /** The command under test. */
  readonly when: <Err, R>(
    command: Aggregate.Command<S, E, Err, R>
  ) => When<E, Err, Exclude<R, P | Stores> | Exclude<RL, Stores>>
}

interface Setup<E extends { readonly _tag: string }, S> {
  readonly aggregate: Aggregate.Aggregate<E, S>
  readonly id: string
  readonly subject: string
  readonly given: ReadonlyArray<E>
  // deno-lint-ignore no-explicit-any
  readonly layers: ReadonlyArray<Layer.Layer<any, any, any>>
}

/**
 * What a run produced: how the command ended (its error: `Err`, or a Repository failure such as a
 * `CodecError` of an event it decided on) and the events it appended, decoded.
 */
interface Outcome<E, Err> {
  readonly exit: Exit.Exit<unknown, Err | unknown>
  readonly appended: ReadonlyArray<E>
}

/**
 * Starts a spec of `aggregate`, on stream `options.id` (default `"test"`).
 *
 * Throws on an invalid id: a definition error is a programming error.
 *
 * @since 0.1.0
 * @category constructors
 */
const forAggregate = <E extends { readonly _tag: string }, S>(
  aggregate: Aggregate.Aggregate<E, S>,
  options?: SpecOptions
): Spec<E, S> => {
  const id = options?.id ?? "test"
  const problem = nameProblem("id", id)
  if (problem !== undefined) throw new Error(`AggregateSpec.for(${aggregate.namespace}): ${problem}`)
  return makeSpec({ aggregate, id, subject: `AggregateSpec(${aggregate.namespace}/${id})`, given: [], layers: [] })
}

export {
  /**
   * Starts a spec of `aggregate`, on stream `options.id` (default `"test"`).
   *
   * @since 0.1.0
   * @category constructors
   */
  forAggregate as for
}

const makeSpec = <E extends { readonly _tag: string }, S, P, RL>(setup: Setup<E, S>): Spec<E, S, P, RL> => ({
  aggregate: setup.aggregate,
  given: (events) => makeSpec({ ...setup, given: [...setup.given, ...events] }),
  provide: <ROut, LE, RIn>(layer: Layer.Layer<ROut, LE, RIn>) =>
    makeSpec<E, S, P | ROut, RL | RIn>({ ...setup, layers: [...setup.layers, layer] }),
  when: <Err, R>(command: Aggregate.Command<S, E, Err, R>) =>
    makeWhen<E, Err, Exclude<R, P | Stores> | Exclude<RL, Stores>>(
      setup.subject,
      // The layers provide what `R` lacks beyond the result's requirements (checked by `Spec`'s types).
      run(setup, command) as Effect.Effect<Outcome<E, Err>, AssertionError, Exclude<R, P | Stores> | Exclude<RL, Stores>>
    )
})

const makeWhen = <E, Err, R>(
  subject: string,
  outcome: Effect.Effect<Outcome<E, Err>, AssertionError, R>
): When<E, Err, R> => {
  const judged = (judge: (outcome: Outcome<E, Err>) => AssertionError | undefined) =>
    Effect.flatMap(outcome, (done) => {
      const problem = judge(done)
      return problem === undefined ? Effect.void : Effect.fail(problem)
    })
  const effect: Verdicts<E, Err, R> = {
    then: (expected) => judged((done) => judgeEvents(subject, done, expected)),
    thenFails: (expected) => judged((done) => judgeFailure(subject, done, expected)),
    thenNothing: () => judged((done) => judgeEvents(subject, done, []))
  }
  const hint = ".then(expected), .thenFails(expected) or .thenNothing()"
  const promise = (check: Effect.Effect<void, AssertionError, R>) =>
    Effect.runPromise(check as Effect.Effect<void, AssertionError>)
  return {
    // A `then` that receives functions is `await` (or a test runner) resolving the spec itself.
    then: (expected: ReadonlyArray<E>, ...rest: ReadonlyArray<unknown>) =>
      thenableMisuse(subject, hint, expected, rest[0]) ?? promise(effect.then(expected)),
    thenFails: (expected) => promise(effect.thenFails(expected)),
    thenNothing: () => promise(effect.thenNothing()),
    effect: {
      ...effect,
      then: (expected: ReadonlyArray<E>, ...rest: ReadonlyArray<unknown>) => {
        const misuse = thenableMisuse(`${subject}.effect`, hint, expected, rest[0])
        return misuse === undefined ? effect.then(expected) : Effect.promise(() => misuse)
      }
    }
  }
}

/** Runs the spec: appends the given events, executes the command, reads back what it appended. */
const run = <E extends { readonly _tag: string }, S, Err, R>(
  setup: Setup<E, S>,
  command: Aggregate.Command<S, E, Err, R>
) => {
  const { aggregate, subject, given } = setup
  const stream = { namespace: aggregate.namespace, id: setup.id }
  const memory = Layer.merge(Journal.layerMemory, SnapshotStore.layerMemory())
  const [first, ...others] = setup.layers
  const services = first === undefined ? memory : Layer.provideMerge(Layer.mergeAll(first, ...others), memory)
  const program = Effect.gen(function*() {
    const data = yield* encodeGiven(setup)
    const folded = foldChecked(setup, aggregate.initial, given, "given")
    if (!Result.isSuccess(folded)) return yield* Effect.fail(folded.failure)
    const journal = yield* Journal.Journal
    if (data.length > 0) yield* orFailure(subject, "appending the given events")(journal.append(stream, 0, data))
    const repository = yield* Repository.make(aggregate)
    const exit = yield* Effect.exit(repository.execute(setup.id, command))
    const records = yield* orFailure(subject, "reading the appended events back")(
      Stream.runCollect(journal.read(stream, { from: given.length + 1 }))
    )
    const appended = yield* decodeAppended(subject, aggregate.eventCodec, records)
    const after = foldChecked(setup, folded.success, appended, "appended")
    if (!Result.isSuccess(after)) return yield* Effect.fail(after.failure)
    if (Exit.isFailure(exit) && Result.isFailure(Cause.findError(exit.cause))) {
      return yield* Effect.fail(failure(`${subject}: the command did not succeed or fail, it ended with:\n${describeCause(exit.cause)}`))
    }
    return { exit, appended } as Outcome<E, Err>
  })
  return orFailure(subject, "building the provided layers")(Effect.provide(program, services, { local: true }))
}

/** Encodes the given events one by one, so that the one that does not encode is named. */
const encodeGiven = <E extends { readonly _tag: string }, S>(
  setup: Setup<E, S>
): Effect.Effect<ReadonlyArray<Journal.EventData>, AssertionError> =>
  Effect.gen(function*() {
    const stream = { namespace: setup.aggregate.namespace, id: setup.id }
    const data: Array<Journal.EventData> = []
    for (const [index, event] of setup.given.entries()) {
      const encoded = yield* Effect.result(Codec.encodeEvents(setup.aggregate.eventCodec, stream, [event]))
      if (Result.isFailure(encoded)) {
        return yield* Effect.fail(failure(
          `${setup.subject}: given event #${index + 1} ${show(event)} does not encode with the aggregate's event Schema: ` +
            encoded.failure.message
        ))
      }
      data.push(...encoded.success)
    }
    return data
  })

/** Decodes the records the command appended, as a Repository would load them. */
const decodeAppended = <E extends { readonly _tag: string }>(
  subject: string,
  codec: Codec.Codec<E>,
  records: ReadonlyArray<Journal.JournalRecord>
): Effect.Effect<ReadonlyArray<E>, AssertionError> =>
  Effect.suspend(() => {
    const events: Array<E> = []
    for (const record of records) {
      const event = Codec.decodeRecord(codec, record)
      if (Result.isFailure(event)) {
        return Effect.fail(failure(`${subject}: an appended event does not decode: ${event.failure.message}`))
      }
      events.push(event.success)
    }
    return Effect.succeed(events)
  })

/**
 * Folds `events` from `state` through `evolve`, checking that it returns for each and that each state
 * encodes with the state Schema; a failure names the event.
 */
const foldChecked = <E extends { readonly _tag: string }, S>(
  setup: Setup<E, S>,
  state: S,
  events: ReadonlyArray<E>,
  which: "given" | "appended"
): Result.Result<S, AssertionError> => {
  const { aggregate, subject } = setup
  for (const [index, event] of events.entries()) {
    const name = `${which} event #${index + 1} ${show(event)}`
    try {
      state = aggregate.evolve(state, event)
    } catch (cause) {
      return Result.fail(failure(`${subject}: evolve is not total: it threw on ${name}: ${show(cause)}`))
    }
    const encoded = aggregate.stateCodec.encode(state)
    if (Result.isFailure(encoded)) {
      return Result.fail(
        failure(`${subject}: the state after ${name} does not encode with the aggregate's state Schema: ${String(encoded.failure)}`)
      )
    }
  }
  return Result.succeed(state)
}

/** The verdict of `then` and `thenNothing`: the command succeeded and appended exactly `expected`. */
const judgeEvents = <E, Err>(
  subject: string,
  { appended, exit }: Outcome<E, Err>,
  expected: ReadonlyArray<E>
): AssertionError | undefined => {
  const wanted = expected.length === 0 ? "no events" : `the events ${show(expected)}`
  if (Exit.isFailure(exit)) {
    const error = Cause.squash(exit.cause)
    return mismatch(`${subject}: expected the command to append ${wanted}, but it failed with ${show(error)}`, error, expected)
  }
  if (deepEqual(appended, expected)) return undefined
  return mismatch(`${subject}: expected the command to append ${wanted}, but it appended other events`, appended, expected)
}

/** The verdict of `thenFails`: the command failed with an error matching `expected` and appended nothing. */
const judgeFailure = <E, Err>(
  subject: string,
  { appended, exit }: Outcome<E, Err>,
  expected: ExpectedFailure<Err>
): AssertionError | undefined => {
  if (Exit.isSuccess(exit)) {
    return failure(
      `${subject}: expected the command to fail with ${showExpected(expected)}, but it succeeded and appended ` +
        (appended.length === 0 ? "no events" : show(appended))
    )
  }
  const error = Cause.squash(exit.cause)
  if (appended.length > 0) {
    return failure(`${subject}: the command failed with ${show(error)}, yet these events were appended: ${show(appended)}`)
  }
  if (typeof expected === "string") {
    if (error === expected || tagOf(error) === expected) return undefined
    return mismatch(
      `${subject}: expected the command to fail with an error tagged ${JSON.stringify(expected)}, but it failed with ${show(error)}`,
      tagOf(error),
      expected
    )
  }
  if (typeof expected === "function") {
    try {
      if ((expected as (error: unknown) => boolean | void)(error) !== false) return undefined
      return failure(`${subject}: the command failed with ${show(error)}, which does not pass the check given to thenFails`)
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : show(cause)
      return failure(`${subject}: the command failed with ${show(error)}, which fails the check given to thenFails: ${reason}`)
    }
  }
  if (deepEqual(error, expected)) return undefined
  return mismatch(
    `${subject}: expected the command to fail with ${show(expected)}, but it failed with ${show(error)}`,
    error,
    expected
  )
}

const tagOf = (error: unknown): unknown =>
  typeof error === "object" && error !== null && "_tag" in error ? error._tag : undefined

const showExpected = (expected: unknown) =>
  typeof expected === "string"
    ? `an error tagged ${JSON.stringify(expected)}`
    : typeof expected === "function"
    ? "an error passing the given check"
    : show(expected)
