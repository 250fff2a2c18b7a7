/**
 * RedisClient's connections: commands in flight when their connection drops fail at once (not at
 * `commandTimeout`), the pool of reserved connections when many journals share one client (a
 * reservation that finds none free fails, naming the pool, and a follower whose watcher has none
 * still learns of other processes' appends), every connection closed with the layers, and bad pool
 * options.
 */
import { Context, Effect, Fiber, Layer, Schedule, Stream } from "effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import { CursorStore, Journal } from "../src/index.ts"
import { RedisClient, RedisJournal, RedisStores } from "../src/redis/index.ts"
import { expectError } from "./conformance/harness.ts"
import { isolatedPrefix, privateRedisServer, probeClient, redisProxy, redisTarget } from "./support/redis.ts"

const target = await redisTarget()

/** `effect` with a wall-clock bound, so that a hang fails the test naming `what`. */
const bounded = <A, E, R>(what: string, ms: number, effect: Effect.Effect<A, E, R>) =>
  Effect.timeoutOrElse(effect, { duration: ms, orElse: () => Effect.die(new Error(`${what} took over ${ms} ms`)) })

const event = (text: string) => ({ type: "E", payload: new TextEncoder().encode(text) })

if (target !== undefined) {
  test(`RedisClient [${target.name}] commands in flight when their connection drops fail at once, not after commandTimeout, and hold up no later command; an append among them is retried by its id and stored once`, () =>
    Effect.gen(function*() {
      const prefix = yield* isolatedPrefix(target)
      const p = yield* redisProxy(target)
      const commandTimeout = 4_000
      const journal = Context.get(yield* Layer.build(RedisJournal.layer({ url: p.url, prefix, options: { commandTimeout } })), Journal.Journal)
      const stream = { namespace: "d", id: "a" }
      yield* journal.append(stream, 0, [event("0")])
      p.holdReplies()
      const started = Date.now()
      const read = yield* Effect.forkChild(Effect.flip(journal.version(stream)))
      const append = yield* Effect.forkChild(journal.append(stream, 1, [event("1")]))
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 100)))
      p.cut()
      p.releaseReplies()
      const failed = yield* Fiber.join(read)
      const took = Date.now() - started
      assert.ok(took < commandTimeout / 2, `the read failed after ${took} ms`)
      assert.match(failed.message, /closed before the reply came/)
      const appended = yield* bounded("the retried append", 20_000, Fiber.join(append))
      // Neither it nor its retry waited behind the commands the drop cut off.
      assert.ok(Date.now() - started < commandTimeout / 2, `the append returned after ${Date.now() - started} ms`)
      assert.equal(appended.version, 2)
      assert.equal(yield* journal.version(stream), 2, "stored once")
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`RedisClient [${target.name}] journals sharing one client whose reserved connections are all taken: a restore fails naming the pool, followers still see other processes' appends`, () =>
    Effect.gen(function*() {
      const client = yield* Layer.build(RedisClient.layer({ url: target.url, pool: { maxConnections: 1, acquireTimeoutMs: 300 } }))
      const onClient = (prefix: string) =>
        Effect.map(Layer.build(RedisJournal.layerClient({ prefix, blockMs: 200 }).pipe(Layer.provide(Layer.succeedContext(client)))), (context) =>
          Context.get(context, Journal.Journal))
      const first = yield* onClient(yield* isolatedPrefix(target))
      const prefix = yield* isolatedPrefix(target)
      const second = yield* onClient(prefix)
      // The first journal's watcher takes the pool's one connection while it is followed.
      yield* Effect.forkChild(Stream.runDrain(first.follow(1)))
      const seen = yield* Effect.forkChild(Stream.runCollect(Stream.take(second.follow(1), 1)))
      const other = Context.get(yield* Layer.build(RedisJournal.layer({ url: target.url, prefix })), Journal.Journal)
      yield* other.append({ namespace: "n", id: "a" }, 0, [event("from another process")])
      const [record] = yield* bounded("the follower learning of the other process's append", 10_000, Fiber.join(seen))
      assert.equal(record?.seq, 1)
      const records = Array.from({ length: 1_500 }, (_, i) => ({ seq: 10 + i, namespace: "r", id: "a", version: i + 1, type: "E", timestamp: 1, payload: new Uint8Array([1]) }))
      yield* bounded("a restore without a free connection", 10_000,
        expectError(second.restore(records), "JournalError", "all 1 reserved connections", "300 ms", "pool.maxConnections", "nothing was restored"))
      assert.equal(yield* second.lastSeq, 1)
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`RedisClient [${target.name}] every connection is closed when the layers close: after use (reserved connections, watchers, a transaction), and after a failed build`, () =>
    Effect.gen(function*() {
      const url = yield* privateRedisServer()
      const clients = Effect.promise(async () => {
        const raw = probeClient(url)
        await raw.connect()
        const list = String(await raw.call("CLIENT", "LIST"))
        raw.disconnect()
        return list.trim().split("\n").length - 1
      })
      const before = yield* clients
      for (let round = 0; round < 3; round++) {
        yield* Effect.scoped(Effect.gen(function*() {
          const context = yield* Layer.build(RedisStores.layer({ url, prefix: `round-${round}`, blockMs: 100, wait: { replicas: 0, timeoutMs: 10 } }))
          const journal = Context.get(context, Journal.Journal)
          const follower = yield* Effect.forkChild(Stream.runCollect(Stream.take(journal.follow(1), 1501)))
          yield* journal.restore(Array.from({ length: 1_500 }, (_, i) => ({ seq: i + 1, namespace: "r", id: "a", version: i + 1, type: "E", timestamp: 1, payload: new Uint8Array([1]) })))
          yield* journal.append({ namespace: "n", id: "a" }, 0, [event("x")])
          assert.equal((yield* Fiber.join(follower)).length, 1_501)
          yield* Context.get(context, CursorStore.CursorStore).commit("c", 1)
        }))
      }
      // The client connects, then one of the stores refuses its options.
      yield* expectError(Effect.scoped(Effect.asVoid(Layer.build(RedisStores.layer({ url, prefix: "bad", keep: 0 })))), "SnapshotStoreError", "keep")
      const after = yield* Effect.repeat(clients, { until: (n) => n <= before, times: 20, schedule: Schedule.spaced(50) })
      assert.equal(after, before)
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`RedisClient [${target.name}] bad pool options fail the layer build with a RedisClientError naming them`, () =>
    Effect.gen(function*() {
      for (const [pool, words] of [[{ maxConnections: 0 }, "pool.maxConnections"], [{ acquireTimeoutMs: 0 }, "pool.acquireTimeoutMs"]] as const) {
        yield* expectError(Effect.asVoid(Layer.build(RedisClient.layer({ url: target.url, pool }))), "RedisClientError", words)
      }
    }).pipe(Effect.scoped, Effect.runPromise))
}
