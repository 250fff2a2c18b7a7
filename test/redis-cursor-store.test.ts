/**
 * The Redis CursorStore: the conformance suite over the machine's Redis (a key prefix of its own
 * per case, removed afterwards; durable: every build reopens the same keys), list order by UTF-16
 * code units, two OS processes competing for one lease, many connections updating one name,
 * damaged entries, bad options, an evicting server refused, and a server gone and back.
 */
import { Effect, Exit, Layer, Option, Schedule, type Scope } from "effect"
import * as EffectRedis from "effect/persistence/Redis"
import assert from "node:assert/strict"
import { test } from "node:test"
import { CursorStore } from "../src/index.ts"
import { RedisClient, RedisCursorStore } from "../src/redis/index.ts"
import { type CursorStorage, cursorStoreCases } from "./conformance/CursorStore.ts"
import { expectError, open, register } from "./conformance/harness.ts"
import { leaseCompetition } from "./support/leaseCompetition.ts"
import { isolatedPrefix, privateRedisServer, probeClient, redisProxy, redisTarget } from "./support/redis.ts"

const target = await redisTarget()

/** Names whose order differs between JavaScript (UTF-16 code units), code points, and a linguistic collation. */
const names = ["b", "B", "a", "_x", "é", "e", "\uFF01", "\u{1F600}", "a b", "ab", "A"]

if (target !== undefined) {
  const storage = Effect.map(isolatedPrefix(target), (prefix): CursorStorage => ({ layer: RedisCursorStore.layer({ url: target.url, prefix }) }))
  register("CursorStore", { name: target.name, durable: true, storage }, cursorStoreCases)

  const redisTest = (name: string, body: (prefix: string) => Effect.Effect<void, unknown, Scope.Scope>) =>
    test(`RedisCursorStore [${target.name}] ${name}`, () => Effect.runPromise(Effect.scoped(Effect.flatMap(isolatedPrefix(target), body))))
  const storeAt = (url: string, prefix: string, commandTimeout = 2_000) =>
    open(CursorStore.CursorStore, RedisCursorStore.layer({ url, prefix, options: { commandTimeout } }))

  /** Runs `body` with a raw connection to the shared server. */
  const withClient = <A>(body: (client: ReturnType<typeof probeClient>) => Promise<A>) =>
    Effect.promise(async () => {
      const client = probeClient(target.url)
      await client.connect()
      try {
        return await body(client)
      } finally {
        client.disconnect()
      }
    })

  redisTest("list orders names by UTF-16 code units, not by code points or bytes, and reads every name of a large hash", (prefix) =>
    Effect.gen(function*() {
      const store = yield* storeAt(target.url, prefix)
      for (const [i, name] of names.entries()) yield* store.commit(name, i + 1)
      const listed = (yield* store.list).map((cursor) => cursor.name)
      assert.deepEqual(listed, [...names].sort())
      assert.ok(listed.indexOf("\u{1F600}") < listed.indexOf("\uFF01"), "a surrogate pair sorts before U+FF01, as in JavaScript")
      const many = Array.from({ length: 1_500 }, (_, i) => `p${i}`)
      yield* Effect.forEach(many, (name, i) => store.commit(name, i + 1), { concurrency: 16 })
      assert.equal((yield* store.list).length, names.length + many.length, "HSCAN pages add up to every name, each once")
    }))

  redisTest("two OS processes competing for one lease: one holder at a time, fencing tokens increase, no commit lost", (prefix) =>
    Effect.flatMap(storeAt(target.url, prefix), (store) => leaseCompetition("redis", target.url, prefix, store, 15)))

  redisTest("many connections committing one name at once: compare-and-set keeps the highest seq, and acquires never overlap", (prefix) =>
    Effect.gen(function*() {
      const stores = yield* Effect.forEach([1, 2, 3, 4], () => storeAt(target.url, prefix))
      yield* Effect.forEach(Array.from({ length: 200 }, (_, i) => i + 1), (seq) => stores[seq % 4]!.commit("hot", seq), { concurrency: 16 })
      assert.equal(Option.getOrThrow(yield* stores[0]!.get("hot")).seq, 200, "no commit went backwards under contention")
      const won = yield* Effect.forEach(stores, (store, i) => Effect.result(store.acquire("hot", `owner-${i}`, 60_000)), { concurrency: "unbounded" })
      assert.equal(won.filter((r) => r._tag === "Success").length, 1, "exactly one of the racing owners took the lease")
    }))

  redisTest("32 connections committing one name 3,200 times at once: every commit lands (random pauses between lost compare-and-sets)", (prefix) =>
    Effect.gen(function*() {
      const stores = yield* Effect.forEach(Array.from({ length: 32 }, (_, i) => i), () => storeAt(target.url, prefix, 10_000))
      const commits = Array.from({ length: 3_200 }, (_, i) => i + 1)
      const exits = yield* Effect.forEach(commits, (seq) => Effect.exit(stores[seq % stores.length]!.commit("hot", seq)), { concurrency: "unbounded" })
      const failed = exits.filter(Exit.isFailure).map((exit) => String(exit.cause))
      assert.deepEqual(failed.slice(0, 3), [], `${failed.length} of ${commits.length} commits failed`)
      assert.equal(Option.getOrThrow(yield* stores[0]!.get("hot")).seq, commits.length)
    }))

  redisTest("a compare-and-set whose reply is lost fails saying the change may or may not have been applied; the same call again succeeds, with no false LeaseHeld or LeaseLost", (prefix) =>
    Effect.gen(function*() {
      let loseNext = false
      // The script runs on the server; its reply is lost on the way back, as when the connection drops.
      const lossy = Layer.effect(EffectRedis.Redis, Effect.map(RedisClient.make({ url: target.url }), (real): EffectRedis.Redis["Service"] => ({
        ...real,
        eval: (script) => (...params) =>
          Effect.flatMap(real.eval(script)(...params), (reply) => {
            if (!loseNext) return Effect.succeed(reply)
            loseNext = false
            return Effect.fail(new EffectRedis.RedisError({ cause: new Error("Connection is closed.") }))
          })
      })))
      const store = yield* open(CursorStore.CursorStore, RedisCursorStore.layerClient({ prefix }).pipe(Layer.provide(lossy)))
      const lost = <A, E extends { readonly _tag: string; readonly message: string }>(effect: Effect.Effect<A, E>) =>
        Effect.gen(function*() {
          loseNext = true
          yield* expectError(effect, "CursorStoreError", "Connection is closed", "may or may not have been applied")
          return yield* effect
        })
      const lease = yield* lost(store.acquire("s", "A", 60_000))
      assert.equal(lease.token, 1, "the acquire again renews the lease it took, not a second one")
      yield* lost(store.commit("s", 5, lease))
      assert.equal(Option.getOrThrow(yield* store.get("s")).seq, 5)
      yield* lost(store.release("s", "A"))
      assert.equal((yield* store.acquire("s", "B", 60_000)).token, 2, "released: another owner takes it")
      yield* lost(store.delete("s"))
      assert.ok(Option.isNone(yield* store.get("s")))
    }))

  redisTest("a damaged entry fails get and list with a CursorStoreError naming the key and the name, and stores nothing over it", (prefix) =>
    Effect.gen(function*() {
      const store = yield* storeAt(target.url, prefix)
      yield* store.commit("good", 5)
      const key = `{${prefix}}:cursors`
      for (const [value, words] of [["not json", "not a JSON array"], ["[1,2,3]", "fields"], ['[-1,0,null,0]', "seq"], ['[1,1,["o",1],1]', "lease"]] as const) {
        yield* withClient((client) => client.hset(key, "bad", value))
        yield* expectError(store.get("bad"), "CursorStoreError", "CursorStore.get", key, '"bad"', "damaged", words)
        yield* expectError(store.commit("bad", 9), "CursorStoreError", "CursorStore.commit", '"bad"', "damaged")
        yield* expectError(store.list, "CursorStoreError", "CursorStore.list", '"bad"')
        assert.equal(yield* withClient((client) => client.hget(key, "bad")), value, "the damaged entry is left as it was")
      }
      assert.equal(Option.getOrThrow(yield* store.get("good")).seq, 5)
    }))

  redisTest("bad options fail the layer build with a CursorStoreError naming them", (prefix) =>
    Effect.gen(function*() {
      yield* expectError(
        Effect.scoped(open(CursorStore.CursorStore, RedisCursorStore.layer({ url: target.url, prefix: `${prefix} *` }))),
        "CursorStoreError",
        "prefix"
      )
    }))

  redisTest("a server that may evict keys without expiry (allkeys-lru) is refused at open, naming the policy", () =>
    Effect.gen(function*() {
      const url = yield* privateRedisServer(["--maxmemory-policy", "allkeys-lru"])
      yield* expectError(Effect.scoped(storeAt(url, "evict")), "CursorStoreError", "maxmemory-policy", "allkeys-lru", "noeviction")
      const volatile = yield* privateRedisServer(["--maxmemory-policy", "volatile-lru"])
      const store = yield* storeAt(volatile, "evict")
      yield* store.commit("ok", 1)
      assert.equal(Option.getOrThrow(yield* store.get("ok")).seq, 1, "a volatile-* policy never evicts cursors, which have no expiry")
    }))

  redisTest("a server gone fails every operation with a CursorStoreError naming it, and the store works again when it is back", (prefix) =>
    Effect.gen(function*() {
      const p = yield* redisProxy(target)
      const store = yield* storeAt(p.url, prefix, 500)
      yield* store.commit("orders", 1)
      p.stop()
      const key = `{${prefix}}:cursors`
      yield* expectError(store.commit("orders", 2), "CursorStoreError", "CursorStore.commit", '"orders"', key)
      yield* expectError(store.get("orders"), "CursorStoreError", "CursorStore.get", '"orders"', key)
      yield* expectError(store.acquire("orders", "A", 1_000), "CursorStoreError", "CursorStore.acquire", '"orders"')
      yield* expectError(store.release("orders", "A"), "CursorStoreError", "CursorStore.release", '"orders"')
      yield* expectError(store.delete("orders"), "CursorStoreError", "CursorStore.delete", '"orders"')
      yield* expectError(store.list, "CursorStoreError", "CursorStore.list", key)
      p.start()
      const back = yield* store.get("orders").pipe(Effect.retry({ times: 50, schedule: Schedule.spaced("100 millis") }))
      assert.equal(Option.getOrThrow(back).seq, 1, "the failed commit stored nothing")
      yield* store.commit("orders", 2)
      assert.equal(Option.getOrThrow(yield* store.get("orders")).seq, 2)
    }))
}
