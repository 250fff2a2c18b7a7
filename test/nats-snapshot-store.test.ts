/**
 * The NATS SnapshotStore: the conformance suite over the machine's NATS server (a store prefix of
 * its own per case, its bucket and object store removed afterwards; durable: every build reopens
 * them), scan order by UTF-16 code units, hostile and very long names (hashed keys), prefix
 * isolation on one connection, states in the object store and the objects keep drops, puts of one
 * stream from many connections at once (with gets meanwhile), damaged values, bad options, a server
 * gone and back, and existing buckets whose settings are refused.
 */
import { Kvm } from "@nats-io/kv"
import { Objm } from "@nats-io/obj"
import { Effect, Fiber, Layer, Option, Ref, Schedule, type Scope, Stream } from "effect"
import assert from "node:assert/strict"
import { randomBytes } from "node:crypto"
import { test } from "node:test"
import { SnapshotStore } from "../src/index.ts"
import { pack, unpack } from "../src/internal/msgpack.ts"
import * as NatsClient from "../src/nats/NatsClient.ts"
import * as NatsSnapshotStore from "../src/nats/NatsSnapshotStore.ts"
import { expectError, open, register } from "./conformance/harness.ts"
import { snap, type SnapshotStorage, snapshotStoreCases } from "./conformance/SnapshotStore.ts"
import { isolatedNatsPrefix, natsTarget } from "./support/nats.ts"
import { natsProxy, prepareBucket, withJetStream } from "./support/natsStores.ts"

const target = await natsTarget()

/** Ids whose order differs between JavaScript (UTF-16 code units), code points, and a linguistic collation. */
const ids = ["b", "B", "a", "_x", "é", "e", "\uFF01", "\u{1F600}", "a b", "ab", "A"]

const MiB = 1024 * 1024

if (target !== undefined) {
  const storage = Effect.map(isolatedNatsPrefix(target), (prefix): SnapshotStorage => ({
    layer: (options?: SnapshotStore.SnapshotStoreOptions) => NatsSnapshotStore.layer({ servers: target.url, prefix, ...options })
  }))
  register("SnapshotStore", { name: target.name, durable: true, storage }, snapshotStoreCases)

  const natsTest = (name: string, body: (prefix: string) => Effect.Effect<void, unknown, Scope.Scope>) =>
    test(`NatsSnapshotStore [${target.name}] ${name}`, () => Effect.runPromise(Effect.scoped(Effect.flatMap(isolatedNatsPrefix(target), body))))
  const storeAt = (servers: string, prefix: string, options: NatsSnapshotStore.NatsSnapshotStoreOptions = {}) =>
    open(SnapshotStore.SnapshotStore, NatsSnapshotStore.layer({ servers, prefix, keep: 2, ...options }))
  const openError = (prefix: string, options: NatsSnapshotStore.NatsSnapshotStoreOptions, ...mentions: ReadonlyArray<string>) =>
    expectError(Effect.scoped(storeAt(target.url, prefix, options)), "SnapshotStoreError", ...mentions)

  /** Every key of the prefix's snapshot bucket. */
  const keysOf = (prefix: string) =>
    withJetStream(target, async ({ js }) => {
      const keys: Array<string> = []
      for await (const key of await (await new Kvm(js).open(`${prefix}_snapshots`)).keys()) keys.push(key)
      return keys.sort()
    })
  /** The decoded value under `key` (msgpack), or `undefined`. */
  const valueOf = (prefix: string, key: string) =>
    withJetStream(target, async ({ js }) => {
      const entry = await (await new Kvm(js).open(`${prefix}_snapshots`)).get(key)
      return entry === null || entry.operation !== "PUT" ? undefined : { size: entry.length, value: unpack(entry.value) as [number, string, string, Array<Array<unknown>>] }
    })
  /** Writes raw bytes under `key`. */
  const putRaw = (prefix: string, key: string, data: Uint8Array) =>
    withJetStream(target, async ({ js }) => void await (await new Kvm(js).open(`${prefix}_snapshots`)).put(key, data))
  /** The names of the objects in the prefix's state store. */
  const objectsOf = (prefix: string) =>
    withJetStream(target, async ({ js }) => (await (await new Objm(js).open(`${prefix}_states`)).list()).map((info) => info.name).sort())
  const state = (size: number) => new Uint8Array(randomBytes(size))

  natsTest("scan orders ids by UTF-16 code units, not by code points or bytes, and reads every id of a large namespace", (prefix) =>
    Effect.gen(function*() {
      const store = yield* storeAt(target.url, prefix)
      for (const id of ids) yield* store.put(snap("cart", id, 1))
      const scanned = (yield* Stream.runCollect(store.scan("cart"))).map((s) => s.id)
      assert.deepEqual(scanned, [...ids].sort())
      assert.ok(scanned.indexOf("\u{1F600}") < scanned.indexOf("\uFF01"), "a surrogate pair sorts before U+FF01, as in JavaScript")
      const many = Array.from({ length: 300 }, (_, i) => `s${String(i).padStart(5, "0")}`)
      yield* Effect.forEach(many, (id) => store.put(snap("big", id, 1 + (id.length % 3))), { concurrency: 16 })
      const all = yield* Stream.runCollect(store.scan("big"))
      assert.deepEqual(all.map((s) => s.id), many)
      assert.ok(all.every((s) => s.version === 1 + (s.id.length % 3)))
    }))

  natsTest("hostile and very long names (hashed keys) round-trip, reach no other stream, and make only plain two-token keys", (prefix) =>
    Effect.gen(function*() {
      const store = yield* storeAt(target.url, prefix)
      const long = (char: string, length = 256) => char.repeat(length)
      const streams: ReadonlyArray<readonly [string, string]> = [
        ["a.b", "c"],
        ["a", "b.c"],
        ["*", ">"],
        ["=2E", "x"],
        ["==", "=="],
        [" ", "\t"],
        ["日本", "\u{1F600}"],
        ["x", long("a", 240)],
        ["x", long("a", 241)],
        ["x", long("a")],
        ["x", `${long("a", 255)}b`],
        [long("."), long(">")],
        [long("."), `${long(">", 255)}*`]
      ]
      for (const [i, [namespace, id]] of streams.entries()) yield* store.put(snap(namespace, id, i + 1))
      for (const [i, [namespace, id]] of streams.entries()) {
        const got = Option.getOrThrow(yield* store.get(namespace, id))
        assert.deepEqual([got.namespace, got.id, got.version], [namespace, id, i + 1])
      }
      for (const namespace of new Set(streams.map(([namespace]) => namespace))) {
        const expected = streams.filter(([n]) => n === namespace).map(([, id]) => id).sort()
        assert.deepEqual((yield* Stream.runCollect(store.scan(namespace))).map((s) => s.id), expected, `scan of ${JSON.stringify(namespace)}`)
      }
      const keys = yield* keysOf(prefix)
      assert.equal(keys.length, streams.length, "one key per stream: no two met")
      for (const key of keys) assert.match(key, /^[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]+$/, "no dot, wildcard or extra token from a name")
      assert.ok(keys.some((key) => key.includes(".==")) && keys.some((key) => key.startsWith("==")), "long names are hashed in keys")
      yield* store.delete("x", long("a"))
      assert.equal((yield* store.get("x", long("a")))._tag, "None")
      assert.equal(Option.getOrThrow(yield* store.get("x", `${long("a", 255)}b`)).version, 11, "the stream whose name differs only at the end stays")
    }))

  natsTest("prefixes isolate stores sharing one connection (layerClient)", (prefix) =>
    Effect.gen(function*() {
      const other = yield* isolatedNatsPrefix(target)
      const client = Layer.succeedContext(yield* Layer.build(NatsClient.layer({ servers: target.url })))
      const first = yield* open(SnapshotStore.SnapshotStore, NatsSnapshotStore.layerClient({ prefix }).pipe(Layer.provide(client)))
      const second = yield* open(SnapshotStore.SnapshotStore, NatsSnapshotStore.layerClient({ prefix: other }).pipe(Layer.provide(client)))
      yield* first.put(snap("cart", "1", 1))
      assert.equal((yield* second.get("cart", "1"))._tag, "None", "another prefix sees nothing of this one")
      yield* second.put(snap("cart", "1", 9))
      assert.equal(Option.getOrThrow(yield* first.get("cart", "1")).version, 1)
      assert.deepEqual((yield* Stream.runCollect(second.scan("cart"))).map((s) => s.version), [9])
    }))

  natsTest("states too large for one message go to the object store, round-trip, and the objects keep drops are deleted", (prefix) =>
    Effect.gen(function*() {
      const maxPayload = yield* withJetStream(target, async (access) => access.maxPayload)
      const store = yield* storeAt(target.url, prefix, { keep: 2 })
      const first = state(3 * maxPayload)
      const second = state(3 * maxPayload)
      yield* store.put(snap("cart", "big", 1, { state: first }))
      assert.equal((yield* objectsOf(prefix)).length, 1)
      assert.deepEqual(Option.getOrThrow(yield* store.get("cart", "big")).state, first)
      yield* store.put(snap("cart", "big", 2, { state: second }))
      const both = yield* objectsOf(prefix)
      assert.equal(both.length, 2)
      assert.deepEqual(Option.getOrThrow(yield* store.get("cart", "big")).state, second)
      assert.deepEqual(Option.getOrThrow(yield* store.get("cart", "big", { maxVersion: 1 })).state, first)
      assert.deepEqual((yield* Stream.runCollect(store.scan("cart")))[0]!.state, second)
      const stored = (yield* valueOf(prefix, "cart.big"))!
      assert.ok(stored.size < 4096, `the value holds references only (${stored.size} bytes)`)
      yield* store.put(snap("cart", "big", 3))
      const left = yield* objectsOf(prefix)
      assert.equal(left.length, 1, "version 1 was dropped, and its object with it")
      assert.ok(left[0]!.startsWith("cart.big/2/"), `the object of version 2 stays: ${left[0]}`)
      yield* store.put(snap("cart", "big", 4))
      assert.deepEqual(yield* objectsOf(prefix), [])
      yield* store.put(snap("cart", "big", 5, { state: first }))
      yield* store.put(snap("cart", "big", 5, { state: state(Math.floor(maxPayload * 0.4)) }))
      assert.deepEqual(yield* objectsOf(prefix), [], "a same-version put with a state that fits inline replaces the object, which is deleted")
      yield* store.put(snap("cart", "big", 6, { state: second }))
      yield* store.delete("cart", "big")
      assert.deepEqual(yield* objectsOf(prefix), [], "delete removes the stream's objects")
      const alone = yield* storeAt(target.url, prefix, { keep: 1 })
      const room = maxPayload - 8 * 1024
      yield* alone.put(snap("cart", "inline", 1, { state: state(room) }))
      assert.deepEqual(yield* objectsOf(prefix), [], `with keep 1 a state of ${room} bytes stays in the value`)
      yield* alone.put(snap("cart", "inline", 2, { state: state(maxPayload) }))
      assert.equal((yield* objectsOf(prefix)).length, 1, "one of max_payload bytes does not fit in one message")
      assert.equal(Option.getOrThrow(yield* alone.get("cart", "inline")).state.length, maxPayload)
    }))

  natsTest("puts of one stream from many connections at once keep exactly `keep`, no object leaks, and gets meanwhile never fail", (prefix) =>
    Effect.gen(function*() {
      const maxPayload = yield* withJetStream(target, async (access) => access.maxPayload)
      const stores = yield* Effect.forEach([1, 2, 3, 4], () => storeAt(target.url, prefix))
      const done = yield* Ref.make(false)
      const reads = yield* Ref.make(0)
      // Readers of the older kept snapshot, the one the next put drops (with its object, for most).
      const readers = yield* Effect.forEach(stores, (store) =>
        Effect.forkChild(Effect.gen(function*() {
          while (!(yield* Ref.get(done))) {
            const latest = Option.getOrUndefined(yield* store.get("cart", "busy"))
            if (latest !== undefined) yield* store.get("cart", "busy", { maxVersion: latest.version - 1 })
            yield* Ref.update(reads, (n) => n + 1)
          }
        })))
      // Two of three states are too large for a message, so puts race on objects too.
      yield* Effect.forEach(
        Array.from({ length: 30 }, (_, i) => i + 1),
        (version) => stores[version % 4]!.put(snap("cart", "busy", version, version % 3 !== 1 ? { state: state(Math.ceil(1.2 * maxPayload)) } : {})),
        { concurrency: 8 }
      )
      yield* Ref.set(done, true)
      yield* Fiber.joinAll(readers)
      assert.ok((yield* Ref.get(reads)) > 0)
      const store = stores[1]!
      assert.equal(Option.getOrThrow(yield* store.get("cart", "busy")).version, 30)
      assert.equal(Option.getOrThrow(yield* store.get("cart", "busy", { maxVersion: 29 })).version, 29)
      assert.equal((yield* store.get("cart", "busy", { maxVersion: 28 }))._tag, "None", "only 2 are kept")
      const [, , , kept] = (yield* valueOf(prefix, "cart.busy"))!.value
      assert.deepEqual(kept.map((entry) => entry[0]), [29, 30], "exactly 2 snapshots remain in the value")
      const referenced = kept.flatMap((entry) => (typeof entry[4] === "string" ? [entry[4]] : []))
      assert.deepEqual(yield* objectsOf(prefix), referenced, "every object left is one the value refers to")
    }))

  natsTest("a damaged value fails get and scan with a SnapshotStoreError naming its key, other streams still read, and delete removes it", (prefix) =>
    Effect.gen(function*() {
      const store = yield* storeAt(target.url, prefix)
      yield* store.put(snap("cart", "good", 1))
      yield* store.put(snap("cart", "bad", 1))
      const damages: ReadonlyArray<readonly [Uint8Array, string]> = [
        [new Uint8Array([0x94, 0x01]), "not msgpack"],
        [pack([2, "cart", "bad", []]), "[1, namespace, id, snapshots]"],
        [pack([1, "cart", "other", []]), "holds the snapshots of"],
        [pack([1, "cart", "bad", [[2, 20, 200, 1, new Uint8Array()], [1, 10, 100, 1, new Uint8Array()]]]), "versions must ascend"],
        [pack([1, "cart", "bad", [[2, 20, 200, 1, 7]]]), "neither bytes nor an object name"]
      ]
      for (const [data, words] of damages) {
        yield* putRaw(prefix, "cart.bad", data)
        yield* expectError(store.get("cart", "bad"), "SnapshotStoreError", "SnapshotStore.get", "cart.bad", `${prefix}_snapshots`, "cart/bad", "damaged", words)
        yield* expectError(Stream.runCollect(store.scan("cart")), "SnapshotStoreError", "SnapshotStore.scan", "cart.bad", "damaged")
        yield* expectError(store.put(snap("cart", "bad", 3)), "SnapshotStoreError", "SnapshotStore.put", "cart.bad", "damaged")
      }
      // A value well-formed but referring to an object that is not there: reads fail, a put over it still stores.
      yield* putRaw(prefix, "cart.bad", pack([1, "cart", "bad", [[2, 20, 200, 1, "cart.bad/2/gone"]]]))
      yield* expectError(store.get("cart", "bad"), "SnapshotStoreError", "SnapshotStore.get", "cart.bad", "damaged", "cart.bad/2/gone", "missing")
      yield* expectError(Stream.runCollect(store.scan("cart")), "SnapshotStoreError", "SnapshotStore.scan", "cart.bad/2/gone")
      yield* store.put(snap("cart", "bad", 3))
      assert.equal(Option.getOrThrow(yield* store.get("cart", "bad")).version, 3)
      yield* expectError(store.get("cart", "bad", { maxVersion: 2 }), "SnapshotStoreError", "cart.bad/2/gone")
      assert.equal(Option.getOrThrow(yield* store.get("cart", "good")).version, 1)
      yield* store.delete("cart", "bad")
      assert.equal((yield* store.get("cart", "bad"))._tag, "None", "delete removed the damaged value")
      yield* store.put(snap("cart", "bad", 4))
      assert.deepEqual((yield* Stream.runCollect(store.scan("cart"))).map((s) => `${s.id}@${s.version}`), ["bad@4", "good@1"])
    }))

  natsTest("bad options fail the layer build with a SnapshotStoreError naming them", (prefix) =>
    Effect.gen(function*() {
      yield* openError(prefix, { keep: 0 }, "keep")
      yield* openError("a.b", {}, "prefix", '"a.b"')
      yield* openError(prefix, { replicas: 0 }, "replicas", "1 to 5")
      yield* openError(prefix, { replicas: 2.5 }, "replicas")
      yield* openError(prefix, { storage: "disk" as "file" }, "storage", '"disk"')
      yield* openError(prefix, { keep: 100_000 }, "keep 100000", "does not fit", "max_payload")
    }))

  natsTest("a server gone fails every operation with a SnapshotStoreError naming it, and the store works again when it is back", (prefix) =>
    Effect.gen(function*() {
      const proxy = yield* natsProxy(target)
      // Requests to the server that is gone fail after the client's timeout (default 5 s): a short one here.
      const store = yield* open(SnapshotStore.SnapshotStore, NatsSnapshotStore.layer({ servers: proxy.url, prefix, keep: 2, requestTimeoutMs: 1_500 }))
      yield* store.put(snap("cart", "s", 1))
      proxy.stop()
      const bucket = `${prefix}_snapshots`
      yield* Effect.all([
        expectError(store.put(snap("cart", "s", 2)), "SnapshotStoreError", "SnapshotStore.put", "cart/s", bucket),
        expectError(store.put(snap("cart", "s", 3, { state: state(2 * MiB) })), "SnapshotStoreError", "SnapshotStore.put", "cart/s"),
        expectError(store.get("cart", "s"), "SnapshotStoreError", "SnapshotStore.get", "cart/s", bucket),
        expectError(store.delete("cart", "s"), "SnapshotStoreError", "SnapshotStore.delete", "cart/s"),
        expectError(Stream.runCollect(store.scan("cart")), "SnapshotStoreError", "SnapshotStore.scan", '"cart"', bucket)
      ], { concurrency: "unbounded" })
      proxy.start()
      const back = yield* store.get("cart", "s").pipe(Effect.retry({ times: 50, schedule: Schedule.spaced("100 millis") }))
      assert.equal(Option.getOrThrow(back).version, 1, "the failed puts stored nothing, the first is intact")
      yield* store.put(snap("cart", "s", 2, { state: state(2 * MiB) }))
      assert.equal(Option.getOrThrow(yield* store.get("cart", "s")).state.length, 2 * MiB)
    }))

  natsTest("existing buckets: weaker, sealed or chunk-dropping ones are refused naming the setting; a snapshot bucket with a max age is used", (prefix) =>
    Effect.gen(function*() {
      yield* prepareBucket(target, `${prefix}_snapshots`, { storage: "memory" })
      yield* openError(prefix, {}, `snapshot bucket ${prefix}_snapshots`, "memory", 'storage: "memory"')
      yield* openError(prefix, { storage: "memory", replicas: 3 }, "1 replica(s)", "3 asked")
      const memory = yield* storeAt(target.url, prefix, { storage: "memory" })
      yield* memory.put(snap("cart", "m", 1))
      assert.equal(Option.getOrThrow(yield* memory.get("cart", "m")).version, 1)

      const sealed = yield* isolatedNatsPrefix(target)
      yield* prepareBucket(target, `${sealed}_snapshots`, {}, { sealed: true })
      yield* openError(sealed, {}, `snapshot bucket ${sealed}_snapshots`, "sealed")

      const expiring = yield* isolatedNatsPrefix(target)
      yield* withJetStream(target, async ({ js }) => void await new Objm(js).create(`${expiring}_states`, { ttl: 3_600_000_000_000 }))
      yield* openError(expiring, {}, `state object store ${expiring}_states`, "max age", "3600 s")

      const aging = yield* isolatedNatsPrefix(target)
      yield* prepareBucket(target, `${aging}_snapshots`, { ttl: 3_600_000 })
      const cache = yield* storeAt(target.url, aging)
      yield* cache.put(snap("cart", "c", 1))
      assert.equal(Option.getOrThrow(yield* cache.get("cart", "c")).version, 1, "snapshots are a cache: a max age only drops them")
    }))
}
