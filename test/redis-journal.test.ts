/**
 * The Redis Journal: the Journal conformance suites (cases, follow, in-flight) over the machine's
 * Redis, each case under a key prefix of its own (removed afterwards); durable: every build reopens
 * the same keys.
 */
import { Effect } from "effect"
import { RedisJournal } from "../src/redis/index.ts"
import { register } from "./conformance/harness.ts"
import { type JournalStorage, journalCases } from "./conformance/Journal.ts"
import { journalFollowCases } from "./conformance/JournalFollow.ts"
import { journalInFlightCases } from "./conformance/JournalInFlight.ts"
import { isolatedPrefix, redisTarget } from "./support/redis.ts"

const target = await redisTarget()
if (target !== undefined) {
  const fixture = {
    name: target.name,
    durable: true,
    storage: Effect.map(isolatedPrefix(target), (prefix): JournalStorage => ({ layer: RedisJournal.layer({ url: target.url, prefix }) }))
  }
  register("Journal", fixture, journalCases)
  register("Journal follow", fixture, journalFollowCases)
  register("Journal", fixture, journalInFlightCases)
}
