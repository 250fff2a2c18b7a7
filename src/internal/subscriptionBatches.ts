/**
 * How a subscription hands records to its handler: batches taken from the read-ahead queue, and
 * the handler retried with exponential backoff.
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type { JournalRecord } from "../Journal.ts"

/** The retry policy, with every default filled in. @internal */
export interface Retry {
  readonly times: number
  readonly baseDelayMs: number
  readonly maxDelayMs: number
}

/** The delay before retry number `attempt` (0 first): doubled each time, capped. @internal */
export const retryDelay = (retry: Retry, attempt: number): number => Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** attempt)

/** Marks a handler's failure as one that a retry cannot fix (a record that does not decode): it is not retried. @internal */
export const Permanent: unique symbol = Symbol.for("annals/Subscription/Permanent")

const isPermanent = (error: unknown): boolean =>
  typeof error === "object" && error !== null && (error as { readonly [Permanent]?: unknown })[Permanent] === true

/**
 * Runs the effect `attempt` returns (called again for each try: a handler may decide when called),
 * retried `retry.times` times with backoff; a defect counts as a failure (and is retried), an
 * interruption does not, nor a failure marked `Permanent`. Fails with the last failure. @internal
 */
export const retrying = <R>(attempt: () => Effect.Effect<void, unknown, R>, retry: Retry): Effect.Effect<void, unknown, R> =>
  Effect.suspend(function loop(tries = 0): Effect.Effect<void, unknown, R> {
    return Effect.suspend(attempt).pipe(
      Effect.catchCause((cause) => Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : Effect.fail(Cause.squash(cause))),
      Effect.catch((error) => tries < retry.times && !isPermanent(error) ? Effect.andThen(Effect.sleep(retryDelay(retry, tries)), loop(tries + 1)) : Effect.fail(error))
    )
  })

/**
 * The next batch: `carry` (records left over from the last one) or the next page from `queue`, then
 * what else the queue holds now — or, with `maxWaitMs` > 0, what reaches it within that time —, at most
 * `maxRecords`; what is over goes into the next `carry`. @internal
 */
export const nextBatch = <E>(
  queue: Queue.Dequeue<ReadonlyArray<JournalRecord>, E>,
  carry: Array<JournalRecord>,
  maxRecords: number,
  maxWaitMs: number
): Effect.Effect<{ readonly batch: ReadonlyArray<JournalRecord>; readonly carry: Array<JournalRecord> }, E> =>
  Effect.gen(function*() {
    const buffer = carry.length > 0 ? carry : Array.from(yield* Queue.take(queue))
    const deadline = maxWaitMs > 0 ? (yield* Clock.currentTimeMillis) + maxWaitMs : 0
    while (buffer.length < maxRecords) {
      const more = maxWaitMs === 0 ? yield* Queue.poll(queue) : yield* Effect.flatMap(
        Clock.currentTimeMillis,
        (now) => now >= deadline ? Effect.succeedNone : Effect.timeoutOption(Queue.take(queue), deadline - now)
      )
      if (Option.isNone(more)) break
      for (const record of more.value) buffer.push(record)
    }
    return buffer.length > maxRecords
      ? { batch: buffer.slice(0, maxRecords), carry: buffer.slice(maxRecords) }
      : { batch: buffer, carry: [] }
  })
