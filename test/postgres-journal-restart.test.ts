/**
 * The PostgreSQL Journal across a server restart (a server of the test's own, stopped with a fast
 * shutdown and started again on the same data): appends while it is down fail with a typed error
 * that says whether anything can have been stored, the pool and the LISTEN connection come back by
 * themselves, nothing acknowledged is lost or doubled, and a follower waiting in another process's
 * pool goes on from where it was, woken by notifications (its poll is too slow to be what wakes it).
 */
import { Context, Effect, Fiber, Layer, Stream } from "effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import { Journal } from "../src/index.ts"
import { PgJournal } from "../src/postgres/index.ts"
import { startEmbeddedServer } from "./support/embeddedPostgres.ts"

const event = (text: string) => ({ type: "E", payload: new TextEncoder().encode(text) })
const wallSleep = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

test("PgJournal: a server restart: appends while it is down fail typed, then the journal, its pool and a waiting follower go on with nothing lost or doubled", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const server = yield* Effect.acquireRelease(Effect.promise(startEmbeddedServer), (s) => Effect.promise(() => s.stop()))
    const open = (pollIntervalMs: number) =>
      Effect.map(Layer.build(PgJournal.layer({ url: server.url, schema: "restart", max: 3, pollIntervalMs })), Context.get(Journal.Journal))
    const writer = yield* open(500)
    // A follower on a pool of its own whose poll would take a minute: notifications must wake it.
    const reader = yield* open(60_000)
    const seen: Array<number> = []
    const follower = yield* Effect.forkScoped(Stream.runForEach(reader.follow(1), (record) => Effect.sync(() => void seen.push(record.seq))))
    // A deadline in the loop itself (not a race with a timer): a loop left running after a failure
    // would keep Node's test process alive for good.
    const waitSeen = (count: number, what: string) =>
      Effect.gen(function*() {
        // Generous: a CI machine running three runtimes' suites and servers side by side is slow to reconnect.
        const deadline = Date.now() + 45_000
        while (seen.length < count) {
          if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out after 45000 ms waiting for ${what} (the follower saw ${seen.length} of ${count})`))
          yield* wallSleep(10)
        }
      })

    const acknowledged: Array<number> = []
    for (let i = 1; i <= 3; i++) acknowledged.push((yield* writer.append({ namespace: "r", id: "s" }, i - 1, [event(`before ${i}`)])).firstSeq)
    yield* waitSeen(3, "the records before the restart")

    yield* Effect.promise(() => server.pause())
    // Down for longer than postgres.js's own single attempt to listen again (made as the connection
    // closes): only a listener that keeps trying hears the notifications after the restart.
    yield* wallSleep(2_000)
    const down = yield* Effect.result(writer.append({ namespace: "r", id: "s" }, 3, [event("while down")]))
    assert.ok(down._tag === "Failure" && down.failure._tag === "JournalError", "an append while the server is down fails with a JournalError")
    assert.match(down.failure.message, /^Cannot append to stream r\/s: .*(nothing was stored|may or may not have been stored)$/)
    const read = yield* Effect.result(Stream.runCollect(writer.read({ namespace: "r", id: "s" })))
    assert.ok(read._tag === "Failure" && read.failure._tag === "JournalError", "a read while the server is down fails typed")
    yield* wallSleep(300) // the follower's side sees the outage too (its pool's connections are gone)

    yield* Effect.promise(() => server.resume())
    // The first statements after the restart may meet a connection that died with the old server;
    // each failure is typed, and a few tries get through on a fresh one.
    const appendRetried = (expected: number, text: string) =>
      Effect.gen(function*() {
        for (let attempt = 1;; attempt++) {
          const version = yield* writer.version({ namespace: "r", id: "s" }).pipe(Effect.retry({ times: 5 }))
          if (version !== expected) return yield* Effect.die(new Error(`the stream is at ${version}, expected ${expected}: an append was doubled or lost`))
          const result = yield* Effect.result(writer.append({ namespace: "r", id: "s" }, expected, [event(text)]))
          if (result._tag === "Success") return result.success.firstSeq
          assert.equal(result.failure._tag, "JournalError", `attempt ${attempt}: ${result.failure.message}`)
          if (attempt === 5) return yield* Effect.die(new Error(`the append did not get through after the restart: ${result.failure.message}`))
          yield* wallSleep(100)
        }
      })
    const before = acknowledged.length
    // The append made while the server was down stored nothing (the server was not there to store it).
    for (let i = 1; i <= 3; i++) acknowledged.push(yield* appendRetried(before + i - 1, `after ${i}`))
    yield* waitSeen(6, "the records after the restart")

    const log = yield* Stream.runCollect(writer.replayFrom(0))
    assert.deepEqual(log.map((r) => r.seq), acknowledged, "exactly the acknowledged appends, in seq order")
    assert.deepEqual(log.map((r) => r.version), [1, 2, 3, 4, 5, 6])
    assert.deepEqual(seen, acknowledged, "the follower saw each record once, in order, across the restart")
    yield* Fiber.interrupt(follower)
  }))))
