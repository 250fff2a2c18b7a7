/**
 * The Redis Journal across processes (DESIGN §2, §10), each case under a key prefix of its own
 * (removed afterwards): 4 processes × 4 fibers appending with expectedVersion to overlapping
 * streams while a fifth follows (test/support/journalProcesses.ts: dense versions, no record lost
 * or doubled, every conflict real and reported, the follower sees every record once in seq order);
 * and the same with the follower SIGKILLed mid-run and a new one resuming after the last seq it
 * printed: the two together see every record once, in order.
 */
import { Effect } from "effect"
import { test } from "node:test"
import { RedisJournal } from "../src/redis/index.ts"
import { appendWhileFollowing, type ProcessesScenario } from "./support/journalProcesses.ts"
import { isolatedPrefix, type RedisTarget, redisTarget } from "./support/redis.ts"

const target = await redisTarget()

/** Runs the scenario under a fresh prefix on `target`, with `options` on top. */
const run = (target: RedisTarget, options: Partial<ProcessesScenario> = {}) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const prefix = yield* isolatedPrefix(target)
    yield* appendWhileFollowing({
      backend: ["redis", target.url, prefix],
      journal: RedisJournal.layer({ url: target.url, prefix }),
      ...options
    })
  })))

if (target !== undefined) {
  test(`RedisJournal [${target.name}] 4 processes × 4 fibers append with expectedVersion to overlapping streams while a fifth follows: nothing lost, doubled or reordered`, () =>
    run(target))

  test(`RedisJournal [${target.name}] the follower process SIGKILLed mid-run: a new one from the last seq it printed sees the rest, each record once and in order`, () =>
    run(target, { killFollowerAfter: 60, pauseMs: 10 }))
}
