/**
 * The Redis journal's `append`: one Lua script per append (`journalScripts.ts`), sent again with
 * the same append id when its reply is lost, then the `WAIT` / `WAITAOF` the options ask for.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as EffectRedis from "effect/persistence/Redis"
import { randomBytes } from "node:crypto"
import { appendArgumentError } from "../../internal/journalArguments.ts"
import { clockProblem } from "../../internal/journalChecks.ts"
import { formatStream } from "../../internal/validate.ts"
import type { AppendResult, Journal, StreamRef } from "../../Journal.ts"
import { JournalError, VersionConflict } from "../../Journal.ts"
import { describeRedisFailure, isReplyError } from "./errors.ts"
import type { JournalContext } from "./journalContext.ts"
import { encodeEvents } from "./journalEntries.ts"
import * as Scripts from "./journalScripts.ts"
import { liveClock } from "./liveClock.ts"

/** What an append waits for after its script. */
export interface AppendOptions {
  readonly wait?: { readonly replicas: number; readonly timeoutMs: number } | undefined
  readonly waitAof?: { readonly local: 0 | 1; readonly replicas: number; readonly timeoutMs: number } | undefined
  readonly retries: number
  readonly retryWindowMs: number
}

type Send = EffectRedis.Redis["Service"]["send"]

/** A fresh append id: 96 random bits, 16 characters. */
const appendIdOf = (): string => randomBytes(12).toString("base64url")

/** The journal's `append` over `context`. */
export const makeAppend = (context: JournalContext, options: AppendOptions): Journal["append"] => {
  const { keys, redis, tracked } = context
  const { retries } = options

  /** The WAIT and WAITAOF the options ask for, on the connection (`send`) the append's script ran on. */
  const durable = (send: Send, what: string): Effect.Effect<void, JournalError> => {
    const stored = `the append to ${what} is stored on the primary but`
    const unconfirmed = (command: string) => (cause: EffectRedis.RedisError) =>
      new JournalError({ method: "append", message: `Journal.append: ${stored} its ${command} failed (${describeRedisFailure(cause)}): it is not confirmed`, cause })
    const waits: Array<Effect.Effect<void, JournalError>> = []
    if (options.wait !== undefined) {
      const { replicas, timeoutMs } = options.wait
      waits.push(Effect.flatMap(Effect.mapError(send<number>("WAIT", String(replicas), String(timeoutMs)), unconfirmed("WAIT")), (acked) =>
        acked >= replicas ? Effect.void : Effect.fail(
          new JournalError({
            method: "append",
            message: `Journal.append: ${stored} only ${acked} of ${replicas} replica(s) acknowledged it within ${timeoutMs} ms (WAIT); it may be lost if the primary fails`
          })
        )))
    }
    if (options.waitAof !== undefined) {
      const { local, replicas, timeoutMs } = options.waitAof
      waits.push(Effect.flatMap(Effect.mapError(send<readonly [number, number]>("WAITAOF", String(local), String(replicas), String(timeoutMs)), unconfirmed("WAITAOF")), ([l, r]) =>
        l >= local && r >= replicas ? Effect.void : Effect.fail(
          new JournalError({
            method: "append",
            message: `Journal.append: ${stored} fsynced locally ${l}/${local} and on ${r} of ${replicas} replica(s) within ${timeoutMs} ms (WAITAOF)`
          })
        )))
    }
    return Effect.all(waits, { discard: true })
  }

  /** The script's reply as the append's outcome (or its conflict, or why it stored nothing). */
  const outcome = (reply: Scripts.AppendReply, stream: StreamRef, expectedVersion: number | "any", appendId: string): Effect.Effect<AppendResult, JournalError | VersionConflict> => {
    const where = formatStream(stream)
    if (reply[0] === 1) return Effect.fail(new VersionConflict({ stream: { ...stream }, expected: expectedVersion as number, actual: Number(reply[1]) }))
    if (reply[0] === 2) return Effect.fail(new JournalError({ method: "append", message: `Cannot append to stream ${where}: ${reply[1]}; nothing was stored`, stream: { ...stream } }))
    const [firstSeq, version, timestamp, count] = reply.slice(1).map(Number) as [number, number, number, number]
    if (![firstSeq, version, count].every((n) => Number.isSafeInteger(n) && n >= 1) || !Number.isSafeInteger(timestamp) || timestamp < 0) {
      return Effect.fail(
        new JournalError({
          method: "append",
          message: `Cannot append to stream ${where}: the outcome of append id ${appendId} in ${keys.appendOutcomes} is damaged (${
            JSON.stringify(reply.slice(1))
          }); the append may or may not have been stored`,
          stream: { ...stream }
        })
      )
    }
    return Effect.succeed({ firstSeq, lastSeq: firstSeq + count - 1, version, timestamp })
  }

  /**
   * Sends the append script on `connection` (again, with the same id, while its reply is lost), then
   * waits there as the options ask (WAIT and WAITAOF count that connection's writes).
   */
  const storeOn = (connection: EffectRedis.Connection, stream: StreamRef, expectedVersion: number | "any", now: number, events: string) => {
    const where = formatStream(stream)
    const appendId = appendIdOf()
    const call = connection.eval(Scripts.append)(
      [keys.meta, keys.versions, keys.log, keys.stream(stream.namespace, stream.id), keys.appendOutcomes, keys.appendTimes],
      [keys.name(stream.namespace, stream.id), String(expectedVersion), String(now), appendId, stream.namespace, stream.id, String(options.retryWindowMs), events]
    )
    // A lost reply is retried with the same id; a reply (even an error one) is final.
    const attempt = call.pipe(
      Effect.retry({ while: (error) => !isReplyError(error), times: retries, schedule: Schedule.exponential(200) }),
      liveClock,
      Effect.mapError((error) =>
        new JournalError({
          method: "append",
          message: isReplyError(error)
            ? `Cannot append to stream ${where}: Redis refused the append script (keys ${keys.tag}): ${describeRedisFailure(error)}; nothing was stored`
            : `Cannot append to stream ${where}: the reply from Redis was lost and ${retries} retries by append id ${appendId} did not reach it (${
              describeRedisFailure(error)
            }); the append may or may not have been stored`,
          stream: { ...stream },
          cause: error
        })
      )
    )
    return Effect.suspend(() => {
      tracked.started()
      let lastSeq: number | undefined
      return attempt.pipe(
        Effect.flatMap((reply) => outcome(reply, stream, expectedVersion, appendId)),
        Effect.tap((result) => Effect.andThen(Effect.sync(() => void (lastSeq = result.lastSeq)), durable(connection.send, where))),
        Effect.onExit(() => Effect.sync(() => tracked.replied(lastSeq)))
      )
    })
  }

  // Without waits, appends share the pipelined connection; a WAIT or WAITAOF blocks its connection,
  // so each append that waits takes a reserved one for its script and its waits.
  const waits = options.wait !== undefined || options.waitAof !== undefined
  const store = <A, E>(
    refused: (why: string, cause: unknown) => JournalError,
    use: (connection: EffectRedis.Connection) => Effect.Effect<A, E>
  ): Effect.Effect<A, E | JournalError> =>
    waits
      ? Effect.scoped(Effect.flatMap(Effect.mapError(redis.reserve, (cause) => refused(`no connection for its script and its wait (${describeRedisFailure(cause)})`, cause)), use))
      : use(redis)

  return (stream, expectedVersion, events) =>
    Effect.suspend(() => {
      const invalid = appendArgumentError(stream, expectedVersion, events)
      if (invalid !== undefined) return Effect.fail(invalid)
      if (context.isClosed()) return Effect.fail(context.closedError("append"))
      const ref = { namespace: stream.namespace, id: stream.id }
      const refused = (why: string, cause?: unknown) =>
        new JournalError({ method: "append", message: `Cannot append to stream ${formatStream(ref)}: ${why}; nothing was stored`, stream: ref, cause })
      return Effect.flatMap(Effect.andThen(context.settled.turn, Effect.clockWith((clock) => clock.currentTimeMillis)), (now) => {
        const badClock = clockProblem(now)
        if (badClock !== undefined) return Effect.fail(refused(badClock))
        // Everything that can throw before the script is sent: a failure here stored nothing.
        const encoded = Effect.try({ try: () => encodeEvents(events, context.limits), catch: (cause) => refused(`its events cannot be encoded (${describeRedisFailure(cause)})`, cause) })
        return Effect.flatMap(encoded, (encoding) =>
          "problem" in encoding
            ? Effect.fail(refused(encoding.problem))
            : store(refused, (connection) => storeOn(connection, ref, expectedVersion, now, encoding.json)))
      })
    })
}
