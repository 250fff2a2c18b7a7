/**
 * The PostgreSQL Journal: the Journal conformance suites (cases, follow, in-flight) over every
 * PostgreSQL server of the run, each case in a schema of its own (dropped afterwards); durable:
 * every build reopens the same schema.
 */
import { Effect } from "effect"
import { PgJournal } from "../src/postgres/index.ts"
import { register } from "./conformance/harness.ts"
import { type JournalStorage, journalCases } from "./conformance/Journal.ts"
import { journalFollowCases } from "./conformance/JournalFollow.ts"
import { journalInFlightCases } from "./conformance/JournalInFlight.ts"
import { isolatedSchema, pgTargets } from "./support/postgres.ts"

for (const target of await pgTargets()) {
  const fixture = {
    name: target.name,
    durable: true,
    storage: Effect.map(isolatedSchema(target), (schema): JournalStorage => ({ layer: PgJournal.layer({ url: target.url, schema, max: 4 }) }))
  }
  register("Journal", fixture, journalCases)
  register("Journal follow", fixture, journalFollowCases)
  register("Journal", fixture, journalInFlightCases)
}
