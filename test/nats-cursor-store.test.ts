/**
 * The NATS CursorStore: the conformance suite over the machine's NATS server (a store prefix of its
 * own per case, its bucket removed afterwards; durable: every build reopens it), list order by
 * UTF-16 code units, hostile and very long names (hashed keys), prefix isolation on one connection,
 * two OS processes competing for one lease, many connections updating one name, damaged values, bad
 * options, a server gone and back, and existing buckets whose settings would drop entries.
 */
import { Kvm } from "@nats-io/kv"
import { Effect, Layer, Option, Schedule, type Scope } from "effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import { CursorStore } from "../src/index.ts"
import * as NatsClient from "../src/nats/NatsClient.ts"
import * as NatsCursorStore from "../src/nats/NatsCursorStore.ts"
import { type CursorStorage, cursorStoreCases } from "./conformance/CursorStore.ts"
import { expectError, open, register } from "./conformance/harness.ts"
import { leaseCompetition } from "./support/leaseCompetition.ts"
import { isolatedNatsPrefix, natsTarget } from "./support/nats.ts"
import { natsProxy, prepareBucket, withJetStream } from "./support/natsStores.ts"

const target = await natsTarget()

/** Names whose order differs between JavaScript (UTF-16 code units), code points, and a linguistic collation. */
const names = ["b", "B", "a", "_x", "é", "e", "\uFF01", "\u{1F600}", "a b", "ab", "A"]

if (target !== undefined) {
  const storage = Effect.map(isolatedNatsPrefix(target), (prefix): CursorStorage => ({ layer: NatsCursorStore.layer({ servers: target.url, prefix }) }))
  register("CursorStore", { name: target.name, durable: true, storage }, cursorStoreCases)

  const natsTest = (name: string, body: (prefix: string) => Effect.Effect<void, unknown, Scope.Scope>) =>
    test(`NatsCursorStore [${target.name}] ${name}`, () => Effect.runPromise(Effect.scoped(Effect.flatMap(isolatedNatsPrefix(target), body))))
  const storeAt = (servers: string, prefix: string, options: NatsCursorStore.NatsCursorStoreOptions = {}) =>
    open(CursorStore.CursorStore, NatsCursorStore.layer({ servers, prefix, ...options }))
  const openError = (prefix: string, options: NatsCursorStore.NatsCursorStoreOptions, ...mentions: ReadonlyArray<string>) =>
    expectError(Effect.scoped(storeAt(target.url, prefix, options)), "CursorStoreError", ...mentions)

  /** Runs `body` over the prefix's cursor bucket, on a connection of its own. */
  const withBucket = <A>(prefix: string, body: (kv: Awaited<ReturnType<Kvm["open"]>>) => Promise<A>) =>
    withJetStream(target, async ({ js }) => body(await new Kvm(js).open(`${prefix}_cursors`)))

  natsTest("list orders names by UTF-16 code units, not by code points or bytes, and reads every name of a large bucket", (prefix) =>
    Effect.gen(function*() {
      const store = yield* storeAt(target.url, prefix)
      for (const [i, name] of names.entries()) yield* store.commit(name, i + 1)
      const listed = (yield* store.list).map((cursor) => cursor.name)
      assert.deepEqual(listed, [...names].sort())
      assert.ok(listed.indexOf("\u{1F600}") < listed.indexOf("\uFF01"), "a surrogate pair sorts before U+FF01, as in JavaScript")
      const many = Array.from({ length: 400 }, (_, i) => `p${i}`)
      yield* Effect.forEach(many, (name, i) => store.commit(name, i + 1), { concurrency: 16 })
      const all = yield* store.list
      assert.equal(all.length, names.length + many.length, "every name once")
      assert.equal(all.find((cursor) => cursor.name === "p399")?.seq, 400)
    }))

  natsTest("hostile and very long names (hashed keys) round-trip, reach no other name, and make only plain one-token keys", (prefix) =>
    Effect.gen(function*() {
      const store = yield* storeAt(target.url, prefix)
      const long = (char: string, length = 256) => char.repeat(length)
      const hostile = [
        "a.b",
        "*",
        ">",
        "a.>",
        "=2E",
        "==",
        " ",
        long("a", 240),
        long("a", 241),
        long("a"),
        `${long("a", 255)}b`,
        long("."),
        `${long(".", 255)}*`,
        long("\u{1F600}", 128)
      ]
      for (const [i, name] of hostile.entries()) yield* store.commit(name, i + 1)
      for (const [i, name] of hostile.entries()) assert.equal(Option.getOrThrow(yield* store.get(name)).seq, i + 1, `the cursor of ${name.slice(0, 20)}`)
      assert.deepEqual((yield* store.list).map((cursor) => cursor.name), [...hostile].sort())
      const keys = yield* withBucket(prefix, async (kv) => {
        const all: Array<string> = []
        for await (const key of await kv.keys()) all.push(key)
        return all
      })
      assert.equal(keys.length, hostile.length, "one key per name: no two met")
      for (const key of keys) assert.match(key, /^[A-Za-z0-9_=-]+$/, "no dot or wildcard from a name")
      assert.ok(keys.some((key) => key.startsWith("==")), "long names are hashed in keys")
      const lease = yield* store.acquire(long("a"), "owner", 60_000)
      yield* store.commit(long("a"), 100, lease)
      yield* store.delete(long("a"))
      assert.equal((yield* store.get(long("a")))._tag, "None")
      assert.equal(Option.getOrThrow(yield* store.get(`${long("a", 255)}b`)).seq, 11, "the name that differs only at the end stays")
    }))

  natsTest("prefixes isolate stores sharing one connection (layerClient)", (prefix) =>
    Effect.gen(function*() {
      const other = yield* isolatedNatsPrefix(target)
      const client = Layer.succeedContext(yield* Layer.build(NatsClient.layer({ servers: target.url })))
      const first = yield* open(CursorStore.CursorStore, NatsCursorStore.layerClient({ prefix }).pipe(Layer.provide(client)))
      const second = yield* open(CursorStore.CursorStore, NatsCursorStore.layerClient({ prefix: other }).pipe(Layer.provide(client)))
      yield* first.commit("orders", 5)
      yield* first.acquire("orders", "A", 60_000)
      assert.equal((yield* second.get("orders"))._tag, "None", "another prefix sees nothing of this one")
      yield* second.acquire("orders", "B", 60_000)
      yield* second.commit("orders", 9)
      assert.equal(Option.getOrThrow(yield* first.get("orders")).seq, 5)
      assert.deepEqual((yield* second.list).map((cursor) => cursor.seq), [9])
    }))

  natsTest("two OS processes competing for one lease: one holder at a time, fencing tokens increase, no commit lost", (prefix) =>
    Effect.flatMap(storeAt(target.url, prefix), (store) => leaseCompetition("nats", target.url, prefix, store, 15)))

  natsTest("many connections committing one name at once: compare-and-set keeps the highest seq, and acquires never overlap", (prefix) =>
    Effect.gen(function*() {
      const stores = yield* Effect.forEach([1, 2, 3, 4], () => storeAt(target.url, prefix))
      yield* Effect.forEach(Array.from({ length: 200 }, (_, i) => i + 1), (seq) => stores[seq % 4]!.commit("hot", seq), { concurrency: 16 })
      assert.equal(Option.getOrThrow(yield* stores[0]!.get("hot")).seq, 200, "no commit went backwards under contention")
      const won = yield* Effect.forEach(stores, (store, i) => Effect.result(store.acquire("hot", `owner-${i}`, 60_000)), { concurrency: "unbounded" })
      assert.equal(won.filter((r) => r._tag === "Success").length, 1, "exactly one of the racing owners took the lease")
    }))

  natsTest("a damaged value fails get, commit and list with a CursorStoreError naming its key and name, and stores nothing over it", (prefix) =>
    Effect.gen(function*() {
      const store = yield* storeAt(target.url, prefix)
      yield* store.commit("good", 5)
      const bucket = `${prefix}_cursors`
      const damages = [
        ["not json", "not a JSON array"],
        ['{"seq":1}', "not a JSON array"],
        ["[1,2,3,4,5]", "name"],
        ['["bad",1,2,3]', "fields"],
        ['["bad",-1,0,null,0]', "seq"],
        ['["bad",1,1,["o",1],1]', "lease"],
        ['["other",1,1,null,0]', 'holds the entry of "other"']
      ] as const
      for (const [value, words] of damages) {
        yield* withBucket(prefix, (kv) => kv.put("bad", value))
        yield* expectError(store.get("bad"), "CursorStoreError", "CursorStore.get", bucket, "key bad", '"bad"', "damaged", words)
        yield* expectError(store.commit("bad", 9), "CursorStoreError", "CursorStore.commit", '"bad"', "damaged")
        yield* expectError(store.list, "CursorStoreError", "CursorStore.list", "key bad", "damaged")
        assert.equal(yield* withBucket(prefix, async (kv) => (await kv.get("bad"))!.string()), value, "the damaged value is left as it was")
      }
      assert.equal(Option.getOrThrow(yield* store.get("good")).seq, 5)
    }))

  natsTest("bad options fail the layer build with a CursorStoreError naming them", (prefix) =>
    Effect.gen(function*() {
      yield* openError(`${prefix} *`, {}, "prefix")
      yield* openError(prefix, { replicas: 6 }, "replicas", "1 to 5")
      yield* openError(prefix, { storage: "ssd" as "file" }, "storage", '"ssd"')
    }))

  natsTest("a server gone fails every operation with a CursorStoreError naming it, and the store works again when it is back", (prefix) =>
    Effect.gen(function*() {
      const proxy = yield* natsProxy(target)
      // Requests to the server that is gone fail after the client's timeout (default 5 s): a short one here.
      const store = yield* open(CursorStore.CursorStore, NatsCursorStore.layer({ servers: proxy.url, prefix, requestTimeoutMs: 1_500 }))
      yield* store.commit("orders", 1)
      proxy.stop()
      const bucket = `${prefix}_cursors`
      yield* Effect.all([
        expectError(store.commit("orders", 2), "CursorStoreError", "CursorStore.commit", '"orders"', bucket),
        expectError(store.get("orders"), "CursorStoreError", "CursorStore.get", '"orders"', bucket),
        expectError(store.acquire("orders", "A", 1_000), "CursorStoreError", "CursorStore.acquire", '"orders"'),
        expectError(store.release("orders", "A"), "CursorStoreError", "CursorStore.release", '"orders"'),
        expectError(store.delete("orders"), "CursorStoreError", "CursorStore.delete", '"orders"'),
        expectError(store.list, "CursorStoreError", "CursorStore.list", bucket)
      ], { concurrency: "unbounded" })
      proxy.start()
      const back = yield* store.get("orders").pipe(Effect.retry({ times: 50, schedule: Schedule.spaced("100 millis") }))
      assert.equal(Option.getOrThrow(back).seq, 1, "the failed commit stored nothing")
      yield* store.commit("orders", 2)
      assert.equal(Option.getOrThrow(yield* store.get("orders")).seq, 2)
    }))

  natsTest("an existing bucket that would drop entries, or is weaker than asked, is refused at open naming the setting", (prefix) =>
    Effect.gen(function*() {
      const refusals: ReadonlyArray<readonly [Parameters<typeof prepareBucket>[2], Parameters<typeof prepareBucket>[3], ReadonlyArray<string>]> = [
        [{ ttl: 3_600_000 }, {}, ["max age (TTL) 3600 s"]],
        [{ max_bytes: 1_000_000 }, {}, ["max_bytes"]],
        [{}, { max_msgs: 1_000 }, ["max_msgs"]],
        [{ maxValueSize: 100 }, {}, ["max_msg_size", "100 bytes"]],
        [{ storage: "memory" }, {}, ["memory", 'storage: "memory"']],
        [{}, { sealed: true }, ["sealed"]]
      ]
      for (const [options, changes, mentions] of refusals) {
        const space = yield* isolatedNatsPrefix(target)
        yield* prepareBucket(target, `${space}_cursors`, options, changes)
        yield* openError(space, {}, `cursor bucket ${space}_cursors`, ...mentions)
      }
      yield* prepareBucket(target, `${prefix}_cursors`, { storage: "memory", history: 5 })
      yield* openError(prefix, { storage: "memory", replicas: 3 }, "1 replica(s)", "3 asked")
      const store = yield* storeAt(target.url, prefix, { storage: "memory" })
      yield* store.commit("ok", 1)
      assert.equal(Option.getOrThrow(yield* store.get("ok")).seq, 1, "a memory bucket is used when memory is asked, and history does not matter")
    }))
}
