/**
 * What the spec helpers of `annals/testing` share: building the `AssertionError`s they fail with
 * (a message naming the subject, and `actual`/`expected` with a diff where two values were compared),
 * printing values and causes, and running a verdict as a Promise.
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import { AssertionError } from "node:assert"
import { inspect, isDeepStrictEqual } from "node:util"

/** A value as a test report shows it: the whole structure, on one line where it fits. @internal */
export const show = (value: unknown): string => inspect(value, { depth: 8, breakLength: 100 })

/** A failure without a comparison: `message` says what went wrong. @internal */
export const failure = (message: string): AssertionError => new AssertionError({ message, operator: "fail" })

/**
 * Two values that should have been deeply equal and are not: the error carries both, and its
 * message ends with their diff (node:assert adds it on Bun, Deno and Node alike).
 * @internal
 */
export const mismatch = (message: string, actual: unknown, expected: unknown): AssertionError =>
  new AssertionError({ message, actual, expected, operator: "deepStrictEqual" })

/** Deep strict equality, as `assert.deepStrictEqual` decides it (prototypes, own properties, `Error` names and messages). @internal */
export const deepEqual = (actual: unknown, expected: unknown): boolean => isDeepStrictEqual(actual, expected)

/** A defect or an interruption, described for a report. @internal */
export const describeCause = (cause: Cause.Cause<unknown>): string => Cause.pretty(cause)

/**
 * Any failure of a spec's own machinery (a layer that fails to build, a storage error while reading
 * back) as an `AssertionError` naming `subject`, so that every way a spec can fail rejects alike.
 * @internal
 */
export const orFailure = (subject: string, doing: string) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, AssertionError, R> =>
  Effect.catchCause(effect, (cause) => {
    const error = Cause.findError(cause)
    if (error._tag === "Success" && error.success instanceof AssertionError) return Effect.fail(error.success)
    return Effect.fail(failure(`${subject}: ${doing} failed:\n${describeCause(cause)}`))
  })

/**
 * A terminal named `then` makes its builder a thenable: `await spec` (or a test body returning the
 * spec) calls `then(onFulfilled, onRejected)` — two functions, which no terminal call passes — on a
 * spec left without its terminal. Rejects that use through `onRejected` with an error that says so
 * (`hint` names the terminals); `undefined` for an ordinary call.
 * @internal
 */
export const thenableMisuse = (
  subject: string,
  hint: string,
  first: unknown,
  second: unknown
): Promise<void> | undefined => {
  if (typeof first !== "function" || typeof second !== "function") return undefined
  second(failure(`${subject} was awaited (or returned from a test) without a terminal method: end it with ${hint}`))
  return Promise.resolve()
}

/**
 * A failed user check as an `AssertionError` prefixed with where it failed: an `AssertionError` it
 * threw or failed with keeps its message, `actual` and `expected`; anything else is described.
 * @internal
 */
export const checkFailure = (prefix: string, cause: Cause.Cause<unknown>): AssertionError => {
  const error = Cause.squash(cause)
  if (!(error instanceof AssertionError)) return failure(`${prefix}:\n${describeCause(cause)}`)
  return new AssertionError({ message: `${prefix}: ${error.message}`, actual: error.actual, expected: error.expected, operator: "fail" })
}
