/**
 * What the parts of one Redis journal share (`journalAppend.ts`, `journalRestore.ts` and the
 * reads in `RedisJournal.ts`): the client, the store's keys, the size limits of an argument, the
 * wrapping of failed commands into `JournalError`s, the position read, the position this process
 * knows settled, and whether the journal is closed.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as EffectRedis from "effect/persistence/Redis"
import { Settled } from "../../internal/follow.ts"
import { InFlightPosition } from "../../internal/inFlightPosition.ts"
import { JournalError } from "../../Journal.ts"
import { describeRedisFailure } from "./errors.ts"
import type { StoreKeys } from "./keys.ts"
import type { Limits } from "./limits.ts"

/** The journal's position as the meta hash holds it. */
export interface Position {
  readonly lastSeq: number
  readonly checkpoint: number
  readonly truncatedBefore: number
  readonly removedBefore: number
}

/** The fields of the position in the meta hash. */
const POSITION = ["lastSeq", "checkpoint", "truncatedBefore", "removedBefore"] as const

/**
 * The stored numbers (seqs, versions, timestamps) of `fields` of hash `key` as read (absent: 0), or
 * a `JournalError` of `method` naming the first damaged one.
 */
export const numbers = (
  method: string,
  key: string,
  fields: ReadonlyArray<string>,
  values: ReadonlyArray<string | null>
): Effect.Effect<ReadonlyArray<number>, JournalError> => {
  const parsed = values.map((value) => value === null ? 0 : /^\d{1,16}$/.test(value) && Number.isSafeInteger(Number(value)) ? Number(value) : undefined)
  const damaged = parsed.indexOf(undefined)
  return damaged === -1 ? Effect.succeed(parsed as ReadonlyArray<number>) : Effect.fail(
    new JournalError({
      method,
      message: `Journal.${method}: the field ${JSON.stringify(fields[damaged])} of ${key} is damaged: ${JSON.stringify(values[damaged]!.slice(0, 40))} is not a safe integer ≥ 0`
    })
  )
}

/** The shared state and helpers of one journal. */
export interface JournalContext {
  readonly redis: EffectRedis.Redis["Service"]
  readonly keys: StoreKeys
  /** How large one argument may be. */
  readonly limits: Limits
  /** `effect` with a failed command as a `JournalError` of `method` saying it cannot do `what`. */
  readonly run: <A, R>(method: string, what: string, effect: Effect.Effect<A, EffectRedis.RedisError, R>) => Effect.Effect<A, JournalError, R>
  /** The position (one HMGET: atomic, no script needed), for `method`'s errors; what it learns settles followers. */
  readonly positionFor: (method: string) => Effect.Effect<Position, JournalError>
  /** What this process knows settled, raised by its own appends and by what it reads of the others'. */
  readonly tracked: InFlightPosition
  /** Wakes this process's followers when `tracked` moves. */
  readonly settled: Settled
  /** True once the journal's scope closed. */
  readonly isClosed: () => boolean
  /** The error of an operation on a closed journal. */
  readonly closedError: (method: string) => JournalError
}

/** The context of the journal under `keys`; `close` (called when its scope closes) wakes every follower. */
export const makeContext = (redis: EffectRedis.Redis["Service"], keys: StoreKeys, limits: Limits): JournalContext & { readonly close: () => void } => {
  let closed = false
  const settled = new Settled()
  const tracked = new InFlightPosition(settled)
  const run = <A, R>(method: string, what: string, effect: Effect.Effect<A, EffectRedis.RedisError, R>) =>
    Effect.mapError(effect, (cause) =>
      new JournalError({ method, message: `Journal.${method}: cannot ${what} (Redis keys ${keys.tag}): ${describeRedisFailure(cause)}`, cause }))
  const positionFor = (method: string) =>
    run(method, "read the journal's position", redis.send<ReadonlyArray<string | null>>("HMGET", keys.meta, ...POSITION)).pipe(
      Effect.flatMap((row) => numbers(method, keys.meta, POSITION, row)),
      Effect.map(([lastSeq, checkpoint, truncatedBefore, removedBefore]) => {
        tracked.advance(lastSeq!)
        return { lastSeq: lastSeq!, checkpoint: checkpoint!, truncatedBefore: truncatedBefore!, removedBefore: removedBefore! }
      })
    )
  return {
    redis,
    keys,
    limits,
    run,
    positionFor,
    tracked,
    settled,
    isClosed: () => closed,
    closedError: (method) => new JournalError({ method, message: `Journal.${method}: the Redis journal (keys ${keys.tag}) is closed` }),
    close: () => {
      closed = true
      settled.notify()
    }
  }
}

