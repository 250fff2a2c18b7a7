/**
 * The PostgreSQL Journal: the Journal conformance suites (cases, follow, in-flight) over every
 * PostgreSQL server of the run, each case in a schema of its own (dropped afterwards); durable:
 * every build reopens the same schema.
 */
import { Effect } from "effect"
import postgres from "postgres"
import { PgJournal } from "../src/postgres/index.ts"
import { register } from "./conformance/harness.ts"
import { type JournalStorage, journalCases } from "./conformance/Journal.ts"
import { journalFollowCases } from "./conformance/JournalFollow.ts"
import { journalInFlightCases } from "./conformance/JournalInFlight.ts"

const url = process.env.ANNALS_PG_MACHINE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"

/** A fresh schema, dropped when the scope closes. */
const schema = Effect.acquireRelease(
  Effect.promise(async () => {
    const name = `annals_t_${Math.random().toString(36).slice(2, 10)}`
    return name
  }),
  (name) =>
    Effect.promise(async () => {
      const sql = postgres(url, { max: 1, onnotice: () => {} })
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${name}" CASCADE`)
      await sql.end()
    })
)

const fixture = {
  name: "postgres (machine)",
  durable: true,
  storage: Effect.map(schema, (name): JournalStorage => ({ layer: PgJournal.layer({ url, schema: name, max: 4 }) }))
}
register("Journal", fixture, journalCases)
register("Journal follow", fixture, journalFollowCases)
register("Journal", fixture, journalInFlightCases)
