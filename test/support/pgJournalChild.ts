/**
 * A child process of the PostgreSQL multi-process test, on its own PgJournal over the given server
 * and schema. Two roles:
 *
 *   pgJournalChild <url> <schema> append <process> <fibers> <appends> <streams>
 *     `fibers` fibers each make `appends` successful appends with `expectedVersion` to streams chosen
 *     from s0…s{streams-1} (overlapping with the other processes'), retrying after each conflict;
 *     prints `ok <stream> <expected> <firstSeq> <version>` per success and
 *     `conflict <stream> <expected> <actual>` per VersionConflict, then `done`.
 *   pgJournalChild <url> <schema> follow <total>
 *     follows from 0 and prints `seq <seq> <stream> <version>` per record until it has seen `total`,
 *     then `done`.
 * It prints `ready` once its journal is open.
 */
import { Effect, Stream } from "effect"
import process from "node:process"
import { Journal } from "../../src/index.ts"
import { PgJournal } from "../../src/postgres/index.ts"

const [url, schema, role, ...rest] = process.argv.slice(2)
const say = (line: string) => Effect.sync(() => void process.stdout.write(`${line}\n`))

const appendRole = (processIndex: number, fibers: number, appends: number, streams: number) =>
  Effect.gen(function*() {
    const journal = yield* Journal.Journal
    yield* say("ready")
    yield* Effect.forEach(Array.from({ length: fibers }, (_, f) => f), (fiber) =>
      Effect.gen(function*() {
        let seed = processIndex * 7919 + fiber * 104729 + 1
        const next = () => (seed = (seed * 48271) % 2147483647)
        for (let done = 0; done < appends;) {
          const id = `s${next() % streams}`
          const stream = { namespace: "mp", id }
          const expected = yield* journal.version(stream)
          const event = { type: "E", payload: new TextEncoder().encode(`${processIndex}/${fiber}/${done}`) }
          const result = yield* Effect.result(journal.append(stream, expected, [event]))
          if (result._tag === "Success") {
            done++
            yield* say(`ok ${id} ${expected} ${result.success.firstSeq} ${result.success.version}`)
          } else if (result.failure._tag === "VersionConflict") {
            yield* say(`conflict ${id} ${expected} ${result.failure.actual}`)
          } else {
            return yield* Effect.fail(result.failure)
          }
        }
      }), { concurrency: "unbounded", discard: true })
    yield* say("done")
  })

const followRole = (total: number) =>
  Effect.gen(function*() {
    const journal = yield* Journal.Journal
    yield* say("ready")
    yield* Stream.runForEach(Stream.take(journal.follow(0), total), (record) => say(`seq ${record.seq} ${record.id} ${record.version}`))
    yield* say("done")
  })

const program = role === "append"
  ? appendRole(Number(rest[0]), Number(rest[1]), Number(rest[2]), Number(rest[3]))
  : followRole(Number(rest[0]))

Effect.runPromise(program.pipe(Effect.provide(PgJournal.layer({ url: url!, schema: schema!, max: 4, pollIntervalMs: 200 })))).then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  }
)
