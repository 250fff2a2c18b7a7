/**
 * The real clock for the Redis layers' own waits.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"

/** Runs `effect` on the real clock: connection pools, retries and timeouts keep real time, under a test clock too. */
export const liveClock = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provideService(effect, Clock.Clock, Clock.Clock.defaultValue())
