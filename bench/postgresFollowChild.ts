/**
 * The follower process of bench/postgres.ts's `follow` group: opens the PostgreSQL Journal at `url`
 * in `schema`, prints `ready`, then follows it from seq `from` through seq `until` and prints
 * `seen <first> <last>` as soon as each chunk of records arrives, then exits.
 *
 *   <runtime> bench/postgresFollowChild.ts <url> <schema> <from> <until>
 */
import { Effect, Stream } from "effect"
import { PgClient, PgJournal } from "../src/postgres/index.ts"

const [url, schema, fromText, untilText] = process.argv.slice(2)
const from = Number(fromText)
const until = Number(untilText)
if (url === undefined || schema === undefined || !Number.isSafeInteger(from) || !Number.isSafeInteger(until) || until < from) {
  throw new Error(`usage: postgresFollowChild <url> <schema> <from> <until>, got ${JSON.stringify(process.argv.slice(2))}`)
}

await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const client = yield* PgClient.make({ url, schema, max: 2 })
  const journal = yield* Effect.provideService(PgJournal.make(), PgClient.PgClient, client)
  // LISTEN is in place once the journal is made: an append after this line wakes the follower.
  process.stdout.write("ready\n")
  yield* Stream.runForEachArray(Stream.take(journal.follow(from), until - from + 1), (chunk) =>
    Effect.sync(() => {
      process.stdout.write(`seen ${chunk[0]!.seq} ${chunk[chunk.length - 1]!.seq}\n`)
    }))
})))
