/**
 * Compare-and-set on KV revisions, as the NATS stores use it: read a key's value and revision,
 * decide, write with the revision expected (`previousSeq`; 0 when the key has never been written),
 * and when another writer came first read again and decide again, a bounded number of times.
 *
 * @internal
 */
import { JetStreamApiCodes } from "@nats-io/jetstream"
import * as Effect from "effect/Effect"
import { apiErrorCode, isWrongLastSequence } from "./errors.ts"

/** What an attempt returns when its write lost to another writer. */
export const LOST: unique symbol = Symbol("annals/nats/lost")

/** True when a compare-and-set publish lost: the subject's last sequence was not the one expected. */
export const isLostRace = (cause: unknown): boolean =>
  isWrongLastSequence(cause) || apiErrorCode(cause) === JetStreamApiCodes.StreamWrongLastSequenceUnknown

/** `write`, or `LOST` when it failed because another writer came first (its error's `cause` says so). */
export const orLost = <A, E extends { readonly cause?: unknown }, R>(write: Effect.Effect<A, E, R>): Effect.Effect<A | typeof LOST, E, R> =>
  Effect.catch(write, (error) => (isLostRace(error.cause) ? Effect.succeed(LOST) : Effect.fail(error)))

/** Runs `attempt` until it returns something other than `LOST`, at most `attempts` times; then runs `exhausted`. */
export const untilWon = <A, E, R>(
  attempts: number,
  attempt: Effect.Effect<A | typeof LOST, E, R>,
  exhausted: Effect.Effect<never, E, R>
): Effect.Effect<A, E, R> =>
  Effect.gen(function*() {
    for (let n = 1; n <= attempts; n++) {
      const outcome = yield* attempt
      if (outcome !== LOST) return outcome as A
    }
    return yield* exhausted
  })
