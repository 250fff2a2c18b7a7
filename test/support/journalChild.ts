/**
 * A child process of the multi-process Journal tests (test/support/journalProcesses.ts), on a
 * Journal of its own over the given backend:
 *
 *   journalChild postgres <url> <schema> <role> …   PgJournal.layer({ url, schema })
 *   journalChild redis <url> <prefix> <role> …      RedisJournal.layer({ url, prefix })
 *   journalChild nats <url> <prefix> <role> …       NatsJournal.layer({ servers: url, prefix })
 *
 * and one of two roles:
 *
 *   … append <process> <fibers> <appends> <streams> [<pauseMs> [retry]]
 *     `fibers` fibers each make `appends` successful appends with `expectedVersion` to streams chosen
 *     from s0…s{streams-1} (overlapping with the other processes'), retrying after each conflict and
 *     pausing `pauseMs` (default 0) after each success; prints
 *     `ok <stream> <expected> <firstSeq> <version>` per success and
 *     `conflict <stream> <expected> <actual>` per VersionConflict, then `done`. Each attempt's
 *     payload is `<process>/<fiber>/<attempt>`. Any other failure ends the process, unless `retry`
 *     is given (a server restarted meanwhile): then it prints `unknown <stream> <expected> <payload>`
 *     (the append may or may not have been stored) and makes the same append again.
 *   … follow <fromSeq> <count> [retry]
 *     follows from `fromSeq` and prints `seq <seq> <stream> <version>` per record until it has seen
 *     `count`, then `done`. With `retry`, a JournalError (the server gone) prints
 *     `resume <seq>` and it follows again from after the last record it printed.
 * It prints `ready` once its journal is open.
 */
import { Effect, type Layer, Schedule, Stream } from "effect"
import process from "node:process"
import { Journal } from "../../src/index.ts"
import { NatsJournal } from "../../src/nats/index.ts"
import { PgJournal } from "../../src/postgres/index.ts"
import { RedisJournal } from "../../src/redis/index.ts"

const [backend, url, namespace, role, ...rest] = process.argv.slice(2)
const say = (line: string) => Effect.sync(() => void process.stdout.write(`${line}\n`))

/** How long a child in `retry` mode waits before it tries again after a failure that is not a conflict. */
const RETRY_PAUSE_MS = 200

/** The Journal layer the arguments name (`namespace` is the schema or the key prefix); throws for another backend. */
const journalLayer = (): Layer.Layer<Journal.Journal, unknown> => {
  if (backend === "postgres") return PgJournal.layer({ url: url!, schema: namespace!, max: 4, pollIntervalMs: 200 })
  if (backend === "redis") return RedisJournal.layer({ url: url!, prefix: namespace! })
  if (backend === "nats") return NatsJournal.layer({ servers: url!, prefix: namespace! })
  throw new Error(`unknown backend ${backend} (expected postgres, redis or nats)`)
}

const appendRole = (processIndex: number, fibers: number, appends: number, streams: number, pauseMs: number, retry: boolean) =>
  Effect.gen(function*() {
    const journal = yield* Journal.Journal
    yield* say("ready")
    yield* Effect.forEach(Array.from({ length: fibers }, (_, f) => f), (fiber) =>
      Effect.gen(function*() {
        let seed = processIndex * 7919 + fiber * 104729 + 1
        const next = () => (seed = (seed * 48271) % 2147483647)
        for (let done = 0, attempt = 0; done < appends; attempt++) {
          const id = `s${next() % streams}`
          const stream = { namespace: "mp", id }
          const expected = yield* retried(retry, journal.version(stream))
          const payload = `${processIndex}/${fiber}/${attempt}`
          const event = { type: "E", payload: new TextEncoder().encode(payload) }
          for (;;) {
            const result = yield* Effect.result(journal.append(stream, expected, [event]))
            if (result._tag === "Success") {
              done++
              yield* say(`ok ${id} ${expected} ${result.success.firstSeq} ${result.success.version}`)
              if (pauseMs > 0) yield* Effect.sleep(pauseMs)
            } else if (result.failure._tag === "VersionConflict") {
              yield* say(`conflict ${id} ${expected} ${result.failure.actual}`)
            } else if (retry) {
              yield* say(`unknown ${id} ${expected} ${payload}`)
              yield* Effect.sleep(RETRY_PAUSE_MS)
              continue
            } else {
              return yield* Effect.fail(result.failure)
            }
            break
          }
        }
      }), { concurrency: "unbounded", discard: true })
    yield* say("done")
  })

/** `effect`, with `retry`: tried again after every failure (a read while the server is gone). */
const retried = <A, E>(retry: boolean, effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  retry ? Effect.retry(effect, { schedule: Schedule.spaced(RETRY_PAUSE_MS) }) : effect

const followRole = (fromSeq: number, count: number, retry: boolean) =>
  Effect.gen(function*() {
    const journal = yield* Journal.Journal
    yield* say("ready")
    let next = fromSeq
    let seen = 0
    while (seen < count) {
      const followed = Stream.runForEach(Stream.take(journal.follow(next), count - seen), (record) =>
        Effect.andThen(Effect.sync(() => {
          seen++
          next = record.seq + 1
        }), say(`seq ${record.seq} ${record.id} ${record.version}`)))
      const result = yield* Effect.result(followed)
      if (result._tag === "Success") continue
      if (!retry || result.failure._tag !== "JournalError") return yield* Effect.fail(result.failure)
      yield* say(`resume ${next}`)
      yield* Effect.sleep(RETRY_PAUSE_MS)
    }
    yield* say("done")
  })

const program = role === "append"
  ? appendRole(Number(rest[0]), Number(rest[1]), Number(rest[2]), Number(rest[3]), Number(rest[4] ?? 0), rest[5] === "retry")
  : followRole(Number(rest[0]), Number(rest[1]), rest[2] === "retry")

Effect.runPromise(program.pipe(Effect.provide(journalLayer()))).then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  }
)
