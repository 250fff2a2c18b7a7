/**
 * Given/then tests of a projection: given these events in these streams, then this state (a fold)
 * or this check of the read model (an effectful handler) — and the same again after the replays that
 * at-least-once delivery may bring.
 *
 * ```ts
 * test("balances add up per account", () =>
 *   ProjectionSpec.for(Balances)
 *     .given(Account, "alice", [{ _tag: "Deposited", amount: 100 }])
 *     .given(Account, "bob", [{ _tag: "Deposited", amount: 5 }])
 *     .then({ alice: 100, bob: 5 }))
 * ```
 *
 * Each terminal runs the projection for real with `Projection.run`, on fresh in-memory stores (a
 * Journal, SnapshotStore, CursorStore and Archive) into which the given events are appended, encoded
 * with their codec (a given event that does not encode fails the spec, naming it):
 * - a **fold** (`Projection.fold`) runs over the first half of the records and is stopped, the rest
 *   are appended, and it is started again from its saved state; then it is reset and run from
 *   scratch three times. Each time it has caught up, its state must be the expected one (deep
 *   equality) or pass the check, and every state must equal the first (a fold is deterministic);
 * - an **effectful handler** (`Projection.make`) runs to the end of the log, then, with its cursor
 *   deleted and the read model kept (the provided layers are built once per terminal), again from
 *   scratch, twice: the check must pass after each of the three runs — the handler is idempotent.
 *
 * The terminal `then` returns a `Promise<void>` that rejects with a node:assert `AssertionError`
 * (usable as a `test(...)` body on every runtime); it needs every service the projection and the check
 * use to be provided with `.provide(layer)`. `.effect.then` is the same check as an
 * `Effect<void, AssertionError, R>`, leaving `R` to the caller.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import type { AssertionError } from "node:assert"
import type * as Aggregate from "../Aggregate.ts"
import * as Archive from "../Archive.ts"
import type * as Codec from "../Codec.ts"
import * as CursorStore from "../CursorStore.ts"
import * as Journal from "../Journal.ts"
import * as Projection from "../Projection.ts"
import * as SnapshotStore from "../SnapshotStore.ts"
import { checkFailure, deepEqual, failure, mismatch, orFailure, show, thenableMisuse } from "./internal/verdict.ts"

/**
 * The services every spec provides itself, fresh for each terminal: in-memory stores, which the
 * projection, the check and the provided layers may use.
 *
 * @since 0.1.0
 * @category models
 */
export type Stores = Journal.Journal | SnapshotStore.SnapshotStore | CursorStore.CursorStore | Archive.Archive

/**
 * The type a Promise terminal takes while services are missing: provide them with `.provide(layer)`
 * first (or use `.effect.then` and provide them yourself).
 *
 * @since 0.1.0
 * @category type-level
 */
export interface MissingServices<R> {
  readonly "provide these services with .provide(layer) first": R
}

/**
 * `T`, once nothing is missing.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Ready<Missing, T> = [Missing] extends [never] ? T : MissingServices<Missing>

/**
 * Adds events to a stream's history, after those already given (in call order across streams):
 * with an aggregate and an id (the events typed and encoded by that aggregate), or with a stream
 * whose namespace the projection reads (encoded with the projection's codec for it).
 *
 * @since 0.1.0
 * @category models
 */
export interface Given<E, Self> {
  <A extends Aggregate.Any>(aggregate: A, id: string, events: ReadonlyArray<Aggregate.EventOf<A>>): Self
  (stream: Journal.StreamRef, events: ReadonlyArray<E>): Self
}

/**
 * A check of an effectful handler's read model, run after each run: fails by throwing, failing, or
 * dying (an `AssertionError` keeps its message, `actual` and `expected`).
 *
 * @since 0.1.0
 * @category models
 */
export type ReadModelCheck<R> = () => void | Effect.Effect<void, unknown, R>

/**
 * What a fold's `then` takes: the expected state (deep equality) or a check of the state.
 *
 * @since 0.1.0
 * @category models
 */
export type ExpectedState<S, R> = S | ((state: S) => void | Effect.Effect<void, unknown, R>)

/**
 * A spec of an effectful handler. `P` is what the provided layers provide, `RH` what the handler
 * needs, `RL` what the layers need.
 *
 * @since 0.1.0
 * @category models
 */
export interface HandlerSpec<E, P = never, RH = never, RL = never> {
  readonly given: Given<E, HandlerSpec<E, P, RH, RL>>
  /** Provides services, built once per terminal on top of the spec's stores (so the read model outlives the replays). */
  readonly provide: <ROut, LE, RIn>(layer: Layer.Layer<ROut, LE, RIn>) => HandlerSpec<E, P | ROut, RH, RL | RIn>
  /** Runs the projection three times (the last two from scratch, read model kept); `check` must pass after each. */
  readonly then: (
    check: Ready<Exclude<RH, P | Stores> | Exclude<RL, Stores>, ReadModelCheck<P | Stores>>
  ) => Promise<void>
  /** The same as an Effect that needs what the provided layers do not cover. */
  readonly effect: {
    readonly then: <R>(
      check: ReadModelCheck<R>
    ) => Effect.Effect<void, AssertionError, Exclude<RH | R, P | Stores> | Exclude<RL, Stores>>
  }
}

/**
 * A spec of a fold. `P` is what the provided layers provide, `RL` what they need.
 *
 * @since 0.1.0
 * @category models
 */
export interface FoldSpec<S, E, P = never, RL = never> {
  readonly given: Given<E, FoldSpec<S, E, P, RL>>
  /** Provides services (to the check), built once per terminal on top of the spec's stores. */
  readonly provide: <ROut, LE, RIn>(layer: Layer.Layer<ROut, LE, RIn>) => FoldSpec<S, E, P | ROut, RL | RIn>
  /** Runs the fold four times (a restart part way, then three from scratch); each state must match `expected`. */
  readonly then: (expected: Ready<Exclude<RL, Stores>, ExpectedState<S, P | Stores>>) => Promise<void>
  /** The same as an Effect that needs what the provided layers do not cover. */
  readonly effect: {
    readonly then: <R = never>(
      expected: ExpectedState<S, R>
    ) => Effect.Effect<void, AssertionError, Exclude<R, P | Stores> | Exclude<RL, Stores>>
  }
}

// deno-lint-ignore no-explicit-any
type AnyLayer = Layer.Layer<any, any, any>
// deno-lint-ignore no-explicit-any
type AnyProjection = Projection.Handler<any, any, any, boolean> | Projection.Folded<any, any, boolean>

interface GivenEvents {
  readonly stream: Journal.StreamRef
  /** `undefined`: the projection does not read the namespace and no aggregate was given. */
  readonly codec: Codec.Codec<{ readonly _tag: string }> | undefined
  readonly events: ReadonlyArray<unknown>
}

interface Setup {
  readonly projection: AnyProjection
  readonly subject: string
  readonly given: ReadonlyArray<GivenEvents>
  readonly layers: ReadonlyArray<AnyLayer>
}

/**
 * Starts a spec of a projection: a fold (`Projection.fold`) or an effectful handler (`Projection.make`).
 *
 * @since 0.1.0
 * @category constructors
 */
function forProjection<S, E, A extends boolean>(projection: Projection.Folded<S, E, A>): FoldSpec<S, E>
function forProjection<E, Err, R, A extends boolean>(projection: Projection.Handler<E, Err, R, A>): HandlerSpec<E, never, R>
function forProjection(projection: AnyProjection): FoldSpec<unknown, unknown> | HandlerSpec<unknown, never, unknown> {
  const setup: Setup = { projection, subject: `ProjectionSpec(${Projection.subscriptionName(projection)})`, given: [], layers: [] }
  return projection._tag === "Fold" ? makeSpec(setup, runFold) : makeSpec(setup, runHandler)
}

export {
  /**
   * Starts a spec of a projection: a fold (`Projection.fold`) or an effectful handler (`Projection.make`).
   *
   * @since 0.1.0
   * @category constructors
   */
  forProjection as for
}

type Runner = (setup: Setup, expected: unknown) => Effect.Effect<void, AssertionError, unknown>

// deno-lint-ignore no-explicit-any
const makeSpec = (setup: Setup, runner: Runner): any => {
  const given = (...args: ReadonlyArray<unknown>) => {
    const [stream, events, codec] = args.length >= 3
      ? aggregateStream(args[0] as Aggregate.Any, args[1] as string, args[2] as ReadonlyArray<unknown>)
      : [args[0] as Journal.StreamRef, args[1] as ReadonlyArray<unknown>, setup.projection.decoders.get((args[0] as Journal.StreamRef).namespace)]
    return makeSpec({ ...setup, given: [...setup.given, { stream, events, codec }] }, runner)
  }
  const hint = ".then(expected)"
  return {
    given,
    provide: (layer: AnyLayer) => makeSpec({ ...setup, layers: [...setup.layers, layer] }, runner),
    then: (expected: unknown, ...rest: ReadonlyArray<unknown>) =>
      thenableMisuse(setup.subject, hint, expected, rest[0]) ??
        Effect.runPromise(runner(setup, expected) as Effect.Effect<void, AssertionError>),
    effect: {
      then: (expected: unknown, ...rest: ReadonlyArray<unknown>) => {
        const misuse = thenableMisuse(`${setup.subject}.effect`, hint, expected, rest[0])
        return misuse === undefined ? runner(setup, expected) : Effect.promise(() => misuse)
      }
    }
  }
}

const aggregateStream = (aggregate: Aggregate.Any, id: string, events: ReadonlyArray<unknown>) =>
  [{ namespace: aggregate.namespace, id }, events, aggregate.eventCodec] as const

/** Runs `program` on fresh stores and the provided layers (built on them, once). */
const provided = <A>(setup: Setup, program: Effect.Effect<A, AssertionError, unknown>) => {
  const stores = Layer.mergeAll(Journal.layerMemory, SnapshotStore.layerMemory(), CursorStore.layerMemory, Archive.layerMemory())
  const [first, ...others] = setup.layers
  const services = first === undefined ? stores : Layer.provideMerge(Layer.mergeAll(first, ...others), stores)
  return orFailure(setup.subject, "building the provided layers")(Effect.provide(program, services, { local: true }))
}

/** The given events encoded, in order; a given event that does not encode fails naming it. */
const encodeGiven = (setup: Setup): Result.Result<ReadonlyArray<readonly [Journal.StreamRef, Journal.EventData]>, AssertionError> => {
  const out: Array<readonly [Journal.StreamRef, Journal.EventData]> = []
  for (const { codec, events, stream } of setup.given) {
    const where = `stream ${stream.namespace}/${stream.id}`
    if (codec === undefined) {
      return Result.fail(failure(
        `${setup.subject}: the projection does not read namespace ${JSON.stringify(stream.namespace)}: ` +
          `give the events of ${where} with their aggregate, .given(Aggregate, id, events)`
      ))
    }
    for (const [index, event] of events.entries()) {
      const payload = codec.encode(event as { readonly _tag: string })
      if (Result.isFailure(payload)) {
        return Result.fail(failure(
          `${setup.subject}: given event #${index + 1} of ${where} ${show(event)} does not encode with its event Schema: ${String(payload.failure)}`
        ))
      }
      out.push([stream, { type: (event as { readonly _tag: string })._tag, payload: payload.success }])
    }
  }
  return Result.succeed(out)
}

/** Appends encoded events, one append each, in order. */
const appendAll = (setup: Setup, records: ReadonlyArray<readonly [Journal.StreamRef, Journal.EventData]>) =>
  orFailure(setup.subject, "appending the given events")(
    Effect.gen(function*() {
      const journal = yield* Journal.Journal
      for (const [stream, data] of records) yield* journal.append(stream, "any", [data])
    })
  )

/** Runs the projection until it has caught up with the log, then stops it; returns a fold's state. */
const runToEnd = (setup: Setup, label: string) =>
  orFailure(setup.subject, `running the projection (${label})`)(
    Effect.scoped(Effect.gen(function*() {
      const projection = setup.projection
      if (projection._tag === "Fold") {
        const running = yield* Projection.run(projection)
        yield* running.awaitCaughtUp
        return yield* running.get
      }
      const running = yield* Projection.run(projection)
      yield* running.awaitCaughtUp
      return undefined
    }))
  )

const reset = (setup: Setup, label: string) =>
  orFailure(setup.subject, `resetting the projection (before ${label})`)(Projection.reset(setup.projection))

/** Runs a user's check; its failure becomes an AssertionError saying after which run. */
const runCheck = (setup: Setup, label: string, check: () => unknown) =>
  Effect.catchCause(
    Effect.suspend(() => {
      const out = check()
      return Effect.isEffect(out) ? Effect.asVoid(out) : Effect.void
    }),
    (cause) => Effect.fail(checkFailure(`${setup.subject}: after ${label}, the check failed`, cause as Cause.Cause<unknown>))
  )

const runHandler: Runner = (setup, check) =>
  provided(
    setup,
    Effect.gen(function*() {
      const records = encodeGiven(setup)
      if (Result.isFailure(records)) return yield* Effect.fail(records.failure)
      yield* appendAll(setup, records.success)
      const runs = ["its first run", "a replay from scratch (its cursor deleted, the read model kept)", "a second replay from scratch"]
      for (const [index, label] of runs.entries()) {
        if (index > 0) yield* reset(setup, label)
        yield* runToEnd(setup, label)
        yield* runCheck(setup, label, check as () => unknown)
      }
    })
  )

const runFold: Runner = (setup, expected) =>
  provided(
    setup,
    Effect.gen(function*() {
      const records = encodeGiven(setup)
      if (Result.isFailure(records)) return yield* Effect.fail(records.failure)
      const all = records.success
      const half = Math.floor(all.length / 2)
      yield* appendAll(setup, all.slice(0, half))
      yield* runToEnd(setup, `a first run over ${half} of the ${all.length} records`)
      yield* appendAll(setup, all.slice(half))
      const runs = [
        `a restart part way (stopped after ${half} of the ${all.length} records, started again from its saved state)`,
        "run 1 from scratch",
        "run 2 from scratch",
        "run 3 from scratch"
      ]
      let first: { readonly state: unknown; readonly label: string } | undefined
      for (const [index, label] of runs.entries()) {
        if (index > 0) yield* reset(setup, label)
        const state = yield* runToEnd(setup, label)
        if (typeof expected === "function") {
          yield* runCheck(setup, label, () => (expected as (state: unknown) => unknown)(state))
        } else if (!deepEqual(state, expected)) {
          return yield* Effect.fail(mismatch(`${setup.subject}: after ${label}, the state is not the expected one`, state, expected))
        }
        if (first === undefined) first = { state, label }
        else if (!deepEqual(state, first.state)) {
          return yield* Effect.fail(mismatch(
            `${setup.subject}: after ${label}, the state differs from the one after ${first.label} (the same events must fold into the same state)`,
            state,
            first.state
          ))
        }
      }
    })
  )
