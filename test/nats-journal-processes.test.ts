/**
 * The NATS Journal across processes (DESIGN §2, §11), each case under a prefix of its own (its
 * streams removed afterwards): 4 processes × 4 fibers appending with expectedVersion to overlapping
 * streams while a fifth follows (test/support/journalProcesses.ts: dense versions, no record lost
 * or doubled, every conflict real and reported, the follower sees every record once in seq order);
 * the same with the follower SIGKILLed mid-run and a new one resuming after the last seq it
 * printed; and the same over a private nats-server (file storage) SIGKILLed mid-run and started
 * again on its port and store: the children reconnect, nothing acknowledged is lost, appends whose
 * outcome was unknown are stored at most once, and the follower resumes exactly after its cursor.
 */
import { Effect } from "effect"
import { test } from "node:test"
import { NatsJournal } from "../src/nats/index.ts"
import { appendWhileFollowing, type ProcessesScenario } from "./support/journalProcesses.ts"
import { isolatedNatsPrefix, natsTarget, privateNatsServer } from "./support/nats.ts"

const target = await natsTarget()

/** Runs the scenario under `prefix` on the server at `url`, with `options` on top. */
const run = (url: string, prefix: string, options: Partial<ProcessesScenario> = {}) =>
  appendWhileFollowing({ backend: ["nats", url, prefix], journal: NatsJournal.layer({ servers: url, prefix }), ...options })

if (target !== undefined) {
  test(`NatsJournal [${target.name}] 4 processes × 4 fibers append with expectedVersion to overlapping streams while a fifth follows: nothing lost, doubled or reordered`, () =>
    Effect.runPromise(Effect.scoped(Effect.flatMap(isolatedNatsPrefix(target), (prefix) => run(target.url, prefix)))))

  test(`NatsJournal [${target.name}] the follower process SIGKILLed mid-run: a new one from the last seq it printed sees the rest, each record once and in order`, () =>
    Effect.runPromise(Effect.scoped(Effect.flatMap(isolatedNatsPrefix(target), (prefix) => run(target.url, prefix, { killFollowerAfter: 60, pauseMs: 10 })))))

  test(`NatsJournal [${target.name}] the server SIGKILLed mid-run and started again on its store: nothing acknowledged lost, unknown outcomes stored at most once, the follower resumes after its cursor`, () =>
    Effect.gen(function*() {
      const server = yield* privateNatsServer()
      const restart = Effect.promise(async () => {
        await server.stop("SIGKILL")
        // Long enough for every child to notice: requests in flight time out, the clients reconnect in a loop.
        await new Promise((resolve) => setTimeout(resolve, 1_000))
        await server.start()
      })
      yield* run(server.url, "mp", { pauseMs: 20, outage: { afterAcknowledged: 60, run: restart } })
    }).pipe(Effect.scoped, Effect.runPromise))
}
