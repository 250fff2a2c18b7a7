/**
 * The NATS Journal: the Journal conformance suites (cases, follow, in-flight) over the machine's
 * nats-server with JetStream, each case under a prefix of its own (its stream removed afterwards);
 * durable: every build reopens the same stream.
 */
import { Effect } from "effect"
import { NatsJournal } from "../src/nats/index.ts"
import { register } from "./conformance/harness.ts"
import { type JournalStorage, journalCases } from "./conformance/Journal.ts"
import { journalFollowCases } from "./conformance/JournalFollow.ts"
import { journalInFlightCases } from "./conformance/JournalInFlight.ts"
import { isolatedNatsPrefix, natsTarget } from "./support/nats.ts"

const target = await natsTarget()
if (target !== undefined) {
  const fixture = {
    name: target.name,
    durable: true,
    storage: Effect.map(isolatedNatsPrefix(target), (prefix): JournalStorage => ({ layer: NatsJournal.layer({ servers: target.url, prefix }) }))
  }
  register("Journal", fixture, journalCases)
  register("Journal follow", fixture, journalFollowCases)
  register("Journal", fixture, journalInFlightCases)
}
