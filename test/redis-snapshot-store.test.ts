/**
 * The Redis SnapshotStore: the conformance suite over the machine's Redis (a key prefix of its own
 * per case, removed afterwards; durable: every build reopens the same keys), scan order by UTF-16
 * code units, puts of one stream from many connections at once, names that look like keys, prefix
 * isolation, damaged members, bad options, a server gone and back, and the three stores on one
 * client (`RedisStores.layer`).
 */
import { Context, Effect, Fiber, Layer, Option, Schedule, type Scope, Stream } from "effect"
import assert from "node:assert/strict"
import { constants } from "node:buffer"
import { test } from "node:test"
import { CursorStore, Journal, SnapshotStore } from "../src/index.ts"
import { RedisSnapshotStore, RedisStores } from "../src/redis/index.ts"
import { expectError, open, register } from "./conformance/harness.ts"
import { snap, type SnapshotStorage, snapshotStoreCases } from "./conformance/SnapshotStore.ts"
import { isolatedPrefix, privateRedisServer, probeClient, redisProxy, redisTarget } from "./support/redis.ts"

const target = await redisTarget()

/** Ids whose order differs between JavaScript (UTF-16 code units), code points, and a linguistic collation. */
const ids = ["b", "B", "a", "_x", "é", "e", "\uFF01", "\u{1F600}", "a b", "ab", "A"]

if (target !== undefined) {
  const storage = Effect.map(isolatedPrefix(target), (prefix): SnapshotStorage => ({
    layer: (options?: SnapshotStore.SnapshotStoreOptions) => RedisSnapshotStore.layer({ url: target.url, prefix, ...options })
  }))
  register("SnapshotStore", { name: target.name, durable: true, storage }, snapshotStoreCases)

  const redisTest = (name: string, body: (prefix: string) => Effect.Effect<void, unknown, Scope.Scope>) =>
    test(`RedisSnapshotStore [${target.name}] ${name}`, () => Effect.runPromise(Effect.scoped(Effect.flatMap(isolatedPrefix(target), body))))
  const storeAt = (url: string, prefix: string, options: { readonly keep?: number; readonly commandTimeout?: number } = {}) =>
    open(
      SnapshotStore.SnapshotStore,
      RedisSnapshotStore.layer({ url, prefix, keep: options.keep ?? 2, options: { commandTimeout: options.commandTimeout ?? 2_000 } })
    )

  redisTest("scan orders ids by UTF-16 code units, not by code points or bytes, and reads every id of a large namespace", (prefix) =>
    Effect.gen(function*() {
      const store = yield* storeAt(target.url, prefix)
      for (const id of ids) yield* store.put(snap("cart", id, 1))
      const scanned = (yield* Stream.runCollect(store.scan("cart"))).map((s) => s.id)
      assert.deepEqual(scanned, [...ids].sort())
      assert.ok(scanned.indexOf("\u{1F600}") < scanned.indexOf("\uFF01"), "a surrogate pair sorts before U+FF01, as in JavaScript")
      // More ids than one SSCAN reply and one page of latest snapshots hold.
      const many = Array.from({ length: 1_250 }, (_, i) => `s${String(i).padStart(5, "0")}`)
      yield* Effect.forEach(many, (id) => store.put(snap("big", id, 1 + (id.length % 3))), { concurrency: 16 })
      const all = yield* Stream.runCollect(store.scan("big"))
      assert.deepEqual(all.map((s) => s.id), many)
      assert.ok(all.every((s) => s.version === 1 + (s.id.length % 3)))
    }))

  redisTest("puts of one stream from many connections at once keep exactly `keep`, the highest versions", (prefix) =>
    Effect.gen(function*() {
      const stores = yield* Effect.forEach([1, 2, 3, 4], () => storeAt(target.url, prefix))
      yield* Effect.forEach(Array.from({ length: 40 }, (_, i) => i + 1), (version) => stores[version % 4]!.put(snap("cart", "busy", version)), {
        concurrency: 8
      })
      const store = stores[0]!
      assert.equal(Option.getOrThrow(yield* store.get("cart", "busy")).version, 40)
      assert.equal(Option.getOrThrow(yield* store.get("cart", "busy", { maxVersion: 39 })).version, 39)
      assert.equal((yield* store.get("cart", "busy", { maxVersion: 38 }))._tag, "None", "only 2 are kept")
      const client = probeClient(target.url)
      yield* Effect.promise(() => client.connect())
      const members = yield* Effect.promise(() => client.zcard(`{${prefix}}:snapshot:cart:busy`))
      client.disconnect()
      assert.equal(members, 2, "exactly 2 members remain in the stream's set")
    }))

  redisTest("names that look like keys, hash tags or separators reach no other stream, and prefixes isolate stores", (prefix) =>
    Effect.gen(function*() {
      const store = yield* storeAt(target.url, prefix)
      const hostile = [["a:b", "c"], ["a", "b:c"], ["{x}", "}"], ["%3A", "x"], [":", ":"], ["*", "?"]] as const
      for (const [i, [namespace, id]] of hostile.entries()) yield* store.put(snap(namespace, id, i + 1))
      for (const [i, [namespace, id]] of hostile.entries()) {
        const got = Option.getOrThrow(yield* store.get(namespace, id))
        assert.deepEqual([got.namespace, got.id, got.version], [namespace, id, i + 1])
        assert.deepEqual((yield* Stream.runCollect(store.scan(namespace))).map((s) => s.id), [id])
      }
      const other = yield* storeAt(target.url, `${prefix}-other`)
      assert.equal((yield* other.get("a:b", "c"))._tag, "None", "another prefix sees nothing of this one")
      yield* other.put(snap("a:b", "c", 9))
      assert.equal(Option.getOrThrow(yield* store.get("a:b", "c")).version, 1)
      const client = probeClient(target.url)
      yield* Effect.promise(() => client.connect())
      yield* Effect.promise(() => client.unlink(`{${prefix}-other}:snapshot:a%3Ab:c`, `{${prefix}-other}:snapshot-ids:a%3Ab`))
      client.disconnect()
    }))

  redisTest("a damaged member fails get and scan with a SnapshotStoreError naming the key, and other streams still read", (prefix) =>
    Effect.gen(function*() {
      const store = yield* storeAt(target.url, prefix)
      yield* store.put(snap("cart", "good", 1))
      yield* store.put(snap("cart", "bad", 1))
      const client = probeClient(target.url)
      yield* Effect.promise(() => client.connect())
      const key = `{${prefix}}:snapshot:cart:bad`
      yield* Effect.promise(() => client.zadd(key, 2, "2:2:x:0:AAAA"))
      yield* expectError(store.get("cart", "bad"), "SnapshotStoreError", "SnapshotStore.get", key, "damaged")
      yield* expectError(Stream.runCollect(store.scan("cart")), "SnapshotStoreError", "SnapshotStore.scan", key)
      yield* Effect.promise(() => client.zadd(key, 3, "3:3:3:0:not base64!"))
      yield* expectError(store.get("cart", "bad", { maxVersion: 3 }), "SnapshotStoreError", "damaged", "version:seq:timestamp:schemaVersion:base64")
      yield* Effect.promise(() => client.set(`{${prefix}}:snapshot:cart:wrong`, "a string"))
      yield* expectError(store.get("cart", "wrong"), "SnapshotStoreError", "SnapshotStore.get", "cart/wrong", "WRONGTYPE")
      client.disconnect()
      assert.equal(Option.getOrThrow(yield* store.get("cart", "good")).version, 1)
      assert.equal(Option.getOrThrow(yield* store.get("cart", "bad", { maxVersion: 1 })).version, 1, "the intact snapshot below the damaged ones still reads")
    }))

  redisTest("a state beyond the server's proto-max-bulk-len or this runtime's longest string fails naming its size and the limit, stores nothing, and no other command fails", () =>
    Effect.gen(function*() {
      const url = yield* privateRedisServer(["--proto-max-bulk-len", "1mb"])
      const limit = yield* Effect.promise(async () => {
        const raw = probeClient(url)
        await raw.connect()
        const [, value] = await raw.call("CONFIG", "GET", "proto-max-bulk-len") as [string, string]
        raw.disconnect()
        return Number(value)
      })
      const store = yield* storeAt(url, "limits")
      yield* store.put(snap("n", "small", 1))
      const others = yield* Effect.forkChild(Effect.forEach(Array.from({ length: 50 }, (_, i) => i), () => store.get("n", "small"), { concurrency: 10 }))
      const over = new Uint8Array(3 * Math.ceil(limit / 4) + 3)
      yield* expectError(store.put(snap("n", "big", 1, { state: over })), "SnapshotStoreError", "n/big", `${over.length} bytes`, `proto-max-bulk-len (${limit} bytes)`, "nothing was stored")
      assert.ok((yield* Fiber.join(others)).every(Option.isSome), "the other commands went through")
      assert.ok(Option.isNone(yield* store.get("n", "big")))
      const under = new Uint8Array(3 * Math.floor((limit - 64) / 4)).map((_, i) => i)
      yield* store.put(snap("n", "big", 1, { state: under }))
      assert.deepEqual(Option.getOrThrow(yield* store.get("n", "big")).state, under)
      // Allocated, never touched: the check runs on its length.
      const huge = new Uint8Array(Math.ceil(constants.MAX_STRING_LENGTH * 3 / 4) + 3)
      yield* expectError(store.put(snap("n", "huge", 1, { state: huge })), "SnapshotStoreError", "longest string", String(constants.MAX_STRING_LENGTH), "nothing was stored")
    }))

  redisTest("get loads the kept snapshots one at a time, youngest first: the server's memory peak grows by one state, not by all it keeps; criteria pick the right one among many", () =>
    Effect.gen(function*() {
      const url = yield* privateRedisServer()
      const peak = () =>
        Effect.promise(async () => {
          const raw = probeClient(url)
          await raw.connect()
          const info = String(await raw.call("INFO", "memory"))
          raw.disconnect()
          return Number(/used_memory_peak:(\d+)/.exec(info)![1])
        })
      const keep = 10
      const store = yield* storeAt(url, "peak", { keep, commandTimeout: 20_000 })
      const state = new Uint8Array(4 * 1024 * 1024).map((_, i) => i)
      for (let v = 1; v <= keep; v++) yield* store.put(snap("g", "a", v, { state, timestamp: 10 * v }))
      const before = yield* peak()
      assert.equal(Option.getOrThrow(yield* store.get("g", "a", { maxTimestamp: 10 * keep - 1 })).version, keep - 1)
      const grown = (yield* peak()) - before
      assert.ok(grown < 3 * state.length, `the memory peak grew by ${grown} bytes for a get among ${keep} states of ${state.length} bytes`)
      // Many small ones: each criterion against the youngest that matches it.
      const many = yield* storeAt(url, "many", { keep: 60 })
      for (let v = 1; v <= 60; v++) yield* many.put(snap("g", "b", 2 * v, { timestamp: 1_000 - 7 * v }))
      for (const [criteria, version] of [[{ maxVersion: 61 }, 60], [{ maxTimestamp: 1_000 - 7 * 60 }, 120], [{ maxVersion: 100, maxTimestamp: 1_000 - 7 * 30 }, 100]] as const) {
        assert.equal(Option.getOrThrow(yield* many.get("g", "b", criteria)).version, version, JSON.stringify(criteria))
      }
      assert.ok(Option.isNone(yield* many.get("g", "b", { maxVersion: 1 })))
    }))

  redisTest("bad options fail the layer build with a SnapshotStoreError naming them", (prefix) =>
    Effect.gen(function*() {
      yield* expectError(Effect.scoped(storeAt(target.url, prefix, { keep: 0 })), "SnapshotStoreError", "keep")
      yield* expectError(
        Effect.scoped(open(SnapshotStore.SnapshotStore, RedisSnapshotStore.layer({ url: target.url, prefix: "a}b" }))),
        "SnapshotStoreError",
        "prefix",
        '"a}b"'
      )
    }))

  redisTest("a server gone fails every operation with a SnapshotStoreError naming it, and the store works again when it is back", (prefix) =>
    Effect.gen(function*() {
      const p = yield* redisProxy(target)
      const store = yield* storeAt(p.url, prefix, { commandTimeout: 500 })
      yield* store.put(snap("cart", "s", 1))
      p.stop()
      yield* expectError(store.put(snap("cart", "s", 2)), "SnapshotStoreError", "SnapshotStore.put", "cart/s", `{${prefix}}`)
      yield* expectError(store.get("cart", "s"), "SnapshotStoreError", "SnapshotStore.get", "cart/s")
      yield* expectError(store.delete("cart", "s"), "SnapshotStoreError", "SnapshotStore.delete", "cart/s")
      yield* expectError(Stream.runCollect(store.scan("cart")), "SnapshotStoreError", "SnapshotStore.scan", '"cart"')
      p.start()
      const back = yield* store.get("cart", "s").pipe(Effect.retry({ times: 50, schedule: Schedule.spaced("100 millis") }))
      assert.equal(Option.getOrThrow(back).version, 1, "the failed put stored nothing, the first is intact")
      yield* store.put(snap("cart", "s", 2))
      assert.equal(Option.getOrThrow(yield* store.get("cart", "s")).version, 2)
    }))

  redisTest("RedisStores.layer: the Journal, SnapshotStore and CursorStore on one client, under one prefix", (prefix) =>
    Effect.gen(function*() {
      const context = yield* Layer.build(RedisStores.layer({ url: target.url, prefix, keep: 2 }))
      const journal = Context.get(context, Journal.Journal)
      const snapshots = Context.get(context, SnapshotStore.SnapshotStore)
      const cursors = Context.get(context, CursorStore.CursorStore)
      const appended = yield* journal.append({ namespace: "cart", id: "1" }, 0, [{ type: "E", payload: new Uint8Array([1]) }])
      yield* snapshots.put({ ...snap("cart", "1", 1), seq: appended.lastSeq })
      yield* cursors.commit("projection", appended.lastSeq)
      assert.equal(Option.getOrThrow(yield* snapshots.get("cart", "1")).seq, appended.lastSeq)
      assert.equal(Option.getOrThrow(yield* cursors.get("projection")).seq, appended.lastSeq)
      const client = probeClient(target.url)
      yield* Effect.promise(() => client.connect())
      const keys = (yield* Effect.promise(() => client.keys(`{${prefix}}:*`))).sort()
      client.disconnect()
      assert.ok(keys.includes(`{${prefix}}:cursors`) && keys.includes(`{${prefix}}:snapshot:cart:1`) && keys.includes(`{${prefix}}:journal:log`), keys.join(", "))
    }))
}
