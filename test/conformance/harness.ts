/**
 * The conformance harness: a suite is a list of cases written once against a service; a fixture
 * says how to open one layer's storage. `register` turns (suite × fixture) into `node:test` tests,
 * which run unchanged under `bun test`, `deno test` and `node --test`.
 */
import { Context, Effect, Exit, Layer, type Scope } from "effect"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { test } from "node:test"

/**
 * A layer's storage, opened once per case. `open` may be built several times inside one case: for a
 * durable layer every build reopens the same storage (a restart); for a memory layer each build is new.
 */
export interface Fixture<S> {
  readonly name: string
  /** True when building `open` twice reaches the same data (file, Postgres, S3). */
  readonly durable: boolean
  readonly storage: Effect.Effect<S, unknown, Scope.Scope>
}

/** One conformance case: a name and a body that uses the fixture's storage. */
export interface Case<S> {
  readonly name: string
  /** Only for durable fixtures. */
  readonly durableOnly?: boolean
  readonly run: (storage: S, fixture: Fixture<S>) => Effect.Effect<void, unknown, Scope.Scope>
}

/** Builds a layer in the current scope and returns its service (a fresh build: a reopen for durable layers). */
export const open = <I, A, E>(
  tag: Context.Key<I, A>,
  layer: Layer.Layer<I, E>
): Effect.Effect<A, E, Scope.Scope> => Effect.map(Layer.build(Layer.fresh(layer)), (context) => Context.get(context, tag))

/** Runs one case against a fixture under a TestClock (time starts at 0 and moves only when told). */
export const runCase = <S>(fixture: Fixture<S>, testCase: Case<S>): Promise<Exit.Exit<void, unknown>> =>
  Effect.runPromiseExit(
    Effect.gen(function*() {
      const storage = yield* fixture.storage
      yield* testCase.run(storage, fixture)
    }).pipe(Effect.scoped, Effect.provide(TestClock.layer()))
  )

/** Registers every case of a suite against a fixture as `node:test` tests. */
export const register = <S>(suite: string, fixture: Fixture<S>, cases: ReadonlyArray<Case<S>>): void => {
  for (const testCase of cases) {
    if (testCase.durableOnly === true && !fixture.durable) continue
    test(`${suite} [${fixture.name}] ${testCase.name}`, async () => {
      const exit = await runCase(fixture, testCase)
      if (Exit.isFailure(exit)) throw Exit.isFailure(exit) ? squash(exit) : undefined
    })
  }
}

/** The error a failed exit carries, as a throwable with its message. */
export const squash = (exit: Exit.Failure<unknown, unknown>): unknown => {
  const error = exit.cause.reasons.map((reason) =>
    reason._tag === "Fail" ? reason.error : reason._tag === "Die" ? reason.defect : new Error("interrupted")
  )[0]
  return error ?? new Error("failed")
}

/** The names of the cases that fail against a fixture (for mutation tests of the suites themselves). */
export const failingCases = async <S>(fixture: Fixture<S>, cases: ReadonlyArray<Case<S>>): Promise<Array<string>> => {
  const failed: Array<string> = []
  for (const testCase of cases) {
    if (testCase.durableOnly === true && !fixture.durable) continue
    const exit = await runCase(fixture, testCase)
    if (Exit.isFailure(exit)) failed.push(testCase.name)
  }
  return failed
}

/**
 * Asserts that `effect` fails with the tagged error `tag` whose message mentions every string in
 * `mentions`, and returns that error (narrowed). Succeeding, or failing otherwise, is a test failure.
 */
export const expectError = <A, E extends { readonly _tag: string; readonly message: string }, R, T extends E["_tag"]>(
  effect: Effect.Effect<A, E, R>,
  tag: T,
  ...mentions: ReadonlyArray<string>
): Effect.Effect<Extract<E, { readonly _tag: T }>, never, R> =>
  Effect.map(Effect.result(effect), (result) => {
    assert.ok(result._tag === "Failure", `expected a ${tag} error, but the operation succeeded`)
    const error = result.failure
    assert.equal(error._tag, tag, `expected ${tag}, got ${error._tag}: ${error.message}`)
    for (const mention of mentions) {
      assert.ok(error.message.includes(mention), `the message "${error.message}" should mention "${mention}"`)
    }
    return error as Extract<E, { readonly _tag: T }>
  })
