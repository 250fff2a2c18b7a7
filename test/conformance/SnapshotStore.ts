/**
 * The SnapshotStore conformance suite (DESIGN §3), written once and run against every SnapshotStore layer.
 */
import { Effect, Layer, Option, Stream } from "effect"
import assert from "node:assert/strict"
import { Buffer } from "node:buffer"
import type { Snapshot, SnapshotCriteria, SnapshotStoreError, SnapshotStoreOptions } from "../../src/SnapshotStore.ts"
import { SnapshotStore } from "../../src/SnapshotStore.ts"
import { type Case, expectError, open } from "./harness.ts"

/**
 * How a fixture opens a SnapshotStore: every build of `layer(options)` opens the fixture's storage
 * (for a durable fixture, a second build is a reopen of the same data).
 */
export interface SnapshotStorage {
  readonly layer: (options?: SnapshotStoreOptions) => Layer.Layer<SnapshotStore, unknown>
}

type Service = SnapshotStore

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/**
 * A snapshot of `namespace/id` at `version` (shared with the backends' own tests); by default
 * seq = 10·version, timestamp = 100·version (so both grow with the version, as they do for real records) and the state spells `id@version`.
 */
export const snap = (
  namespace: string,
  id: string,
  version: number,
  fields: Partial<Omit<Snapshot, "namespace" | "id" | "version">> = {}
): Snapshot => ({
  namespace,
  id,
  version,
  seq: version * 10,
  timestamp: version * 100,
  schemaVersion: 1,
  state: encoder.encode(`${id}@${version}`),
  ...fields
})
const cart = (id: string, version: number, fields: Partial<Omit<Snapshot, "namespace" | "id" | "version">> = {}) =>
  snap("cart", id, version, fields)

const text = (snapshot: Snapshot) => decoder.decode(snapshot.state)
/** The snapshot as plain data, with the state as an array of bytes (for deepEqual). */
const plain = (snapshot: Snapshot) => ({ ...snapshot, state: Array.from(snapshot.state) })
/** The version `get` selects, or `undefined` for none. */
const versionOf = (store: Service, namespace: string, id: string, criteria?: SnapshotCriteria) =>
  Effect.map(store.get(namespace, id, criteria), (found) => Option.getOrUndefined(found)?.version)
const scanned = (store: Service, namespace: string) =>
  Effect.map(Stream.runCollect(store.scan(namespace)), (all) => all.map((s) => `${s.namespace}/${s.id}@${s.version}`))
const putAll = (store: Service, snapshots: ReadonlyArray<Snapshot>) => Effect.forEach(snapshots, store.put, { discard: true })

const withStore = (
  name: string,
  body: (store: Service) => Effect.Effect<void, unknown>,
  options?: SnapshotStoreOptions
): Case<SnapshotStorage> => ({
  name,
  run: (storage) => Effect.flatMap(open(SnapshotStore, storage.layer(options)), body)
})

/** Builds the layer with `options` and asserts the build fails with a SnapshotStoreError naming `keep`. */
const expectBuildError = (storage: SnapshotStorage, options: SnapshotStoreOptions) =>
  expectError(
    Effect.scoped(open(SnapshotStore, storage.layer(options))).pipe(
      Effect.mapError((error) => error as SnapshotStoreError)
    ),
    "SnapshotStoreError",
    "keep"
  )

/** Every SnapshotStore conformance case. */
export const snapshotStoreCases: ReadonlyArray<Case<SnapshotStorage>> = [
  withStore("get on an unknown stream is none, with or without criteria", (store) =>
    Effect.gen(function*() {
      assert.ok(Option.isNone(yield* store.get("cart", "nothing")))
      yield* store.put(cart("known", 3))
      assert.ok(Option.isNone(yield* store.get("cart", "unknown")))
      assert.ok(Option.isNone(yield* store.get("cart", "unknown", { maxVersion: 10, maxTimestamp: 10_000 })))
      assert.ok(Option.isNone(yield* store.get("order", "known")), "the same id in another namespace is another stream")
      assert.ok(Option.isNone(yield* store.get("cart", "know")), "ids are matched exactly")
      assert.equal(yield* versionOf(store, "cart", "known"), 3)
    })),

  withStore("put then get returns every field intact; the state is a plain Uint8Array copy", (store) =>
    Effect.gen(function*() {
      const state = new Uint8Array([0, 1, 2, 127, 128, 253, 254, 255])
      const snapshot: Snapshot = {
        namespace: "cart",
        id: "a",
        version: 7,
        seq: 1_234,
        timestamp: 1_700_000_000_000,
        schemaVersion: 3,
        state
      }
      yield* store.put(snapshot)
      state[0] = 99 // the store must have copied what it stored
      state.fill(42, 1)
      const found = yield* store.get("cart", "a")
      assert.ok(Option.isSome(found))
      assert.deepEqual(plain(found.value), {
        namespace: "cart",
        id: "a",
        version: 7,
        seq: 1_234,
        timestamp: 1_700_000_000_000,
        schemaVersion: 3,
        state: [0, 1, 2, 127, 128, 253, 254, 255]
      })
      assert.equal(Object.getPrototypeOf(found.value.state), Uint8Array.prototype, "state must be a plain Uint8Array")
      // an empty state and schemaVersion 0 are fine too
      yield* store.put(cart("empty", 1, { seq: 1, timestamp: 0, schemaVersion: 0, state: new Uint8Array(0) }))
      const empty = yield* store.get("cart", "empty")
      assert.ok(Option.isSome(empty))
      assert.deepEqual(plain(empty.value), {
        namespace: "cart",
        id: "empty",
        version: 1,
        seq: 1,
        timestamp: 0,
        schemaVersion: 0,
        state: []
      })
      // reading again gives the same data
      const again = yield* store.get("cart", "a")
      assert.ok(Option.isSome(again))
      assert.deepEqual(Array.from(again.value.state), [0, 1, 2, 127, 128, 253, 254, 255])
    })),

  withStore("a Node Buffer state is copied on put and read back as a plain Uint8Array", (store) =>
    Effect.gen(function*() {
      const state = Buffer.from([1, 2, 3])
      yield* store.put(cart("buffer", 1, { state }))
      state[0] = 99
      const found = Option.getOrThrow(yield* store.get("cart", "buffer"))
      assert.deepEqual(Array.from(found.state), [1, 2, 3])
      assert.equal(Object.getPrototypeOf(found.state), Uint8Array.prototype)
    })),

  withStore("a 1 MiB state round-trips", (store) =>
    Effect.gen(function*() {
      const state = new Uint8Array(1024 * 1024).map((_, i) => (i * 31 + (i >>> 8)) & 0xff)
      yield* store.put(cart("big", 1, { state }))
      const found = yield* store.get("cart", "big")
      assert.ok(Option.isSome(found))
      assert.equal(found.value.state.length, state.length)
      assert.deepEqual(found.value.state, state)
    })),

  withStore("a put at an existing version replaces that snapshot (keep 1)", (store) =>
    Effect.gen(function*() {
      yield* store.put(cart("r", 5, { seq: 50, timestamp: 500, schemaVersion: 1, state: encoder.encode("first") }))
      yield* store.put(cart("r", 5, { seq: 51, timestamp: 510, schemaVersion: 2, state: encoder.encode("second") }))
      const found = yield* store.get("cart", "r")
      assert.ok(Option.isSome(found))
      assert.deepEqual(
        { ...found.value, state: text(found.value) },
        { namespace: "cart", id: "r", version: 5, seq: 51, timestamp: 510, schemaVersion: 2, state: "second" }
      )
      assert.deepEqual(yield* scanned(store, "cart"), ["cart/r@5"])
    })),

  withStore("a put at an existing version replaces it in place and evicts nothing (keep 3)", (store) =>
    Effect.gen(function*() {
      yield* putAll(store, [cart("r", 1), cart("r", 2), cart("r", 3)])
      yield* store.put(cart("r", 2, { state: encoder.encode("replaced"), schemaVersion: 9 }))
      const two = yield* store.get("cart", "r", { maxVersion: 2 })
      assert.ok(Option.isSome(two))
      assert.equal(text(two.value), "replaced")
      assert.equal(two.value.schemaVersion, 9)
      assert.equal(yield* versionOf(store, "cart", "r", { maxVersion: 1 }), 1, "replacing must not count as one more snapshot")
      const latest = yield* store.get("cart", "r")
      assert.ok(Option.isSome(latest))
      assert.equal(text(latest.value), "r@3")
      // replacing the latest twice still leaves the two older ones
      yield* store.put(cart("r", 3, { state: encoder.encode("three again") }))
      yield* store.put(cart("r", 3, { state: encoder.encode("three once more") }))
      const newest = yield* store.get("cart", "r")
      assert.ok(Option.isSome(newest))
      assert.equal(text(newest.value), "three once more")
      assert.equal(yield* versionOf(store, "cart", "r", { maxVersion: 1 }), 1)
      assert.equal(yield* versionOf(store, "cart", "r", { maxVersion: 2 }), 2)
    }), { keep: 3 }),

  withStore("get without criteria returns the latest snapshot", (store) =>
    Effect.gen(function*() {
      yield* putAll(store, [cart("l", 2), cart("l", 9), cart("l", 4)])
      const found = yield* store.get("cart", "l")
      assert.ok(Option.isSome(found))
      assert.equal(found.value.version, 9)
      assert.equal(text(found.value), "l@9")
      assert.equal(yield* versionOf(store, "cart", "l", {}), 9)
      assert.equal(yield* versionOf(store, "cart", "l", { maxVersion: undefined, maxTimestamp: undefined }), 9)
    }), { keep: 3 }),

  withStore("maxVersion selects the youngest snapshot at or below it (inclusive)", (store) =>
    Effect.gen(function*() {
      yield* putAll(store, [cart("v", 2), cart("v", 4), cart("v", 6), cart("v", 8)])
      const at = (maxVersion: number) => versionOf(store, "cart", "v", { maxVersion })
      assert.equal(yield* at(0), undefined)
      assert.equal(yield* at(1), undefined)
      assert.equal(yield* at(2), 2)
      assert.equal(yield* at(3), 2)
      assert.equal(yield* at(4), 4)
      assert.equal(yield* at(5), 4)
      assert.equal(yield* at(7), 6)
      assert.equal(yield* at(8), 8)
      assert.equal(yield* at(1_000), 8)
      const found = yield* store.get("cart", "v", { maxVersion: 5 })
      assert.ok(Option.isSome(found))
      assert.deepEqual(plain(found.value), plain(cart("v", 4)))
    }), { keep: 5 }),

  withStore("maxTimestamp selects the youngest snapshot at or below it (inclusive)", (store) =>
    Effect.gen(function*() {
      // versions 2, 4, 6, 8 at timestamps 200, 400, 600, 800; versions 6 and 7 share a timestamp
      yield* putAll(store, [cart("t", 2), cart("t", 4), cart("t", 6), cart("t", 7, { timestamp: 600 }), cart("t", 8)])
      const at = (maxTimestamp: number) => versionOf(store, "cart", "t", { maxTimestamp })
      assert.equal(yield* at(0), undefined)
      assert.equal(yield* at(199), undefined)
      assert.equal(yield* at(200), 2)
      assert.equal(yield* at(399), 2)
      assert.equal(yield* at(400), 4)
      assert.equal(yield* at(599), 4)
      assert.equal(yield* at(600), 7, "of two snapshots at the same timestamp, the younger")
      assert.equal(yield* at(799), 7)
      assert.equal(yield* at(800), 8)
      assert.equal(yield* at(Number.MAX_SAFE_INTEGER), 8)
      const found = yield* store.get("cart", "t", { maxTimestamp: 450 })
      assert.ok(Option.isSome(found))
      assert.deepEqual(plain(found.value), plain(cart("t", 4)))
    }), { keep: 5 }),

  withStore("maxVersion and maxTimestamp together select the youngest snapshot meeting both", (store) =>
    Effect.gen(function*() {
      yield* putAll(store, [cart("b", 2), cart("b", 4), cart("b", 6), cart("b", 8)])
      const at = (maxVersion: number, maxTimestamp: number) => versionOf(store, "cart", "b", { maxVersion, maxTimestamp })
      assert.equal(yield* at(7, 500), 4, "the timestamp bound is the tighter one")
      assert.equal(yield* at(3, 900), 2, "the version bound is the tighter one")
      assert.equal(yield* at(6, 600), 6, "both bounds inclusive")
      assert.equal(yield* at(8, 800), 8)
      assert.equal(yield* at(8, 799), 6)
      assert.equal(yield* at(5, 800), 4)
      assert.equal(yield* at(1, 900), undefined, "no version low enough")
      assert.equal(yield* at(8, 100), undefined, "no timestamp low enough")
      assert.equal(yield* at(0, 0), undefined)
    }), { keep: 5 }),

  withStore("keep defaults to 1: only the latest snapshot stays", (store) =>
    Effect.gen(function*() {
      yield* putAll(store, [cart("k", 1), cart("k", 2), cart("k", 3)])
      assert.equal(yield* versionOf(store, "cart", "k"), 3)
      assert.equal(yield* versionOf(store, "cart", "k", { maxVersion: 2 }), undefined)
      assert.equal(yield* versionOf(store, "cart", "k", { maxVersion: 1 }), undefined)
      assert.equal(yield* versionOf(store, "cart", "k", { maxTimestamp: 299 }), undefined)
      // an older snapshot put after a newer one is the oldest, so it is the one that goes
      yield* store.put(cart("k", 2))
      assert.equal(yield* versionOf(store, "cart", "k"), 3)
      assert.equal(yield* versionOf(store, "cart", "k", { maxVersion: 2 }), undefined)
      yield* store.put(cart("k", 4))
      assert.equal(yield* versionOf(store, "cart", "k"), 4)
      assert.equal(yield* versionOf(store, "cart", "k", { maxVersion: 3 }), undefined)
    })),

  withStore("keep 1 given explicitly keeps only the latest", (store) =>
    Effect.gen(function*() {
      yield* putAll(store, [cart("k", 5), cart("k", 6)])
      assert.equal(yield* versionOf(store, "cart", "k"), 6)
      assert.equal(yield* versionOf(store, "cart", "k", { maxVersion: 5 }), undefined)
    }), { keep: 1 }),

  withStore("keep 3 keeps the 3 highest versions, dropping the oldest first, even when put out of order", (store) =>
    Effect.gen(function*() {
      yield* putAll(store, [cart("k", 5), cart("k", 1), cart("k", 4), cart("k", 2), cart("k", 3)])
      const at = (maxVersion: number) => versionOf(store, "cart", "k", { maxVersion })
      assert.equal(yield* versionOf(store, "cart", "k"), 5)
      assert.equal(yield* at(4), 4)
      assert.equal(yield* at(3), 3)
      assert.equal(yield* at(2), undefined, "versions 1 and 2 are the oldest: dropped")
      assert.equal(yield* at(1), undefined)
      yield* store.put(cart("k", 6))
      assert.equal(yield* at(3), undefined, "version 3 is now the oldest: dropped")
      assert.equal(yield* at(4), 4)
      assert.equal(yield* at(5), 5)
      assert.equal(yield* versionOf(store, "cart", "k"), 6)
      yield* store.put(cart("k", 1)) // older than all three kept: it is the one that goes
      assert.equal(yield* at(3), undefined)
      assert.equal(yield* at(4), 4)
      assert.equal(yield* versionOf(store, "cart", "k"), 6)
    }), { keep: 3 }),

  withStore("keep counts per stream: one busy stream never evicts another's snapshots", (store) =>
    Effect.gen(function*() {
      yield* putAll(store, [cart("quiet", 1), cart("quiet", 2), snap("order", "busy", 1)])
      for (let v = 1; v <= 6; v++) yield* store.put(cart("busy", v))
      assert.equal(yield* versionOf(store, "cart", "quiet", { maxVersion: 1 }), 1)
      assert.equal(yield* versionOf(store, "cart", "quiet"), 2)
      assert.equal(yield* versionOf(store, "order", "busy"), 1)
      assert.equal(yield* versionOf(store, "cart", "busy", { maxVersion: 5 }), 5)
      assert.equal(yield* versionOf(store, "cart", "busy", { maxVersion: 4 }), undefined)
    }), { keep: 2 }),

  withStore("delete removes every snapshot of the stream and nothing else", (store) =>
    Effect.gen(function*() {
      yield* putAll(store, [cart("d", 1), cart("d", 2), cart("d", 3), cart("other", 1)])
      yield* putAll(store, [snap("order", "d", 4), snap("car", "d", 2)])
      yield* store.delete("cart", "d")
      assert.equal(yield* versionOf(store, "cart", "d"), undefined)
      assert.equal(yield* versionOf(store, "cart", "d", { maxVersion: 2 }), undefined)
      assert.equal(yield* versionOf(store, "cart", "d", { maxVersion: 1 }), undefined)
      assert.equal(yield* versionOf(store, "cart", "d", { maxTimestamp: 150 }), undefined)
      assert.deepEqual(yield* scanned(store, "cart"), ["cart/other@1"])
      // other streams — same namespace, same id elsewhere — are untouched
      assert.equal(yield* versionOf(store, "cart", "other"), 1)
      assert.equal(yield* versionOf(store, "order", "d"), 4)
      assert.equal(yield* versionOf(store, "car", "d"), 2)
      // a new snapshot after the delete starts from nothing: the deleted ones never come back
      yield* store.put(cart("d", 7))
      assert.equal(yield* versionOf(store, "cart", "d"), 7)
      assert.equal(yield* versionOf(store, "cart", "d", { maxVersion: 6 }), undefined)
    }), { keep: 3 }),

  withStore("delete of an unknown stream, or twice, is a no-op", (store) =>
    Effect.gen(function*() {
      yield* store.put(cart("keep", 1))
      yield* store.delete("cart", "never")
      yield* store.delete("nowhere", "keep")
      yield* store.delete("cart", "kee")
      assert.equal(yield* versionOf(store, "cart", "keep"), 1)
      yield* store.delete("cart", "keep")
      yield* store.delete("cart", "keep")
      assert.equal(yield* versionOf(store, "cart", "keep"), undefined)
      assert.deepEqual(yield* scanned(store, "cart"), [])
    })),

  withStore("scan returns the latest snapshot of every stream in exactly that namespace, ordered by id", (store) =>
    Effect.gen(function*() {
      yield* putAll(store, [
        cart("c", 1),
        cart("a", 2),
        cart("b2", 1),
        cart("b10", 4),
        cart("a", 5),
        cart("c", 3),
        cart("a", 3), // older than a@5: a stays at 5
        snap("cart2", "a0", 1),
        snap("car", "a1", 1),
        snap("carts", "b", 1),
        snap("ca", "a", 1),
        snap("Cart", "z", 1)
      ])
      const all = yield* Stream.runCollect(store.scan("cart"))
      assert.deepEqual(all.map((s) => `${s.namespace}/${s.id}@${s.version}`), ["cart/a@5", "cart/b10@4", "cart/b2@1", "cart/c@3"])
      assert.deepEqual(plain(all[0]!), plain(cart("a", 5)))
      assert.equal(Object.getPrototypeOf(all[0]!.state), Uint8Array.prototype)
      assert.deepEqual(yield* scanned(store, "car"), ["car/a1@1"])
      assert.deepEqual(yield* scanned(store, "cart2"), ["cart2/a0@1"])
      assert.deepEqual(yield* scanned(store, "ca"), ["ca/a@1"])
      assert.deepEqual(yield* scanned(store, "Cart"), ["Cart/z@1"])
      assert.deepEqual(yield* scanned(store, "c"), [])
      assert.deepEqual(yield* scanned(store, "unknown"), [])
      // scanning twice gives the same answer, and reflects later puts and deletes
      yield* store.put(cart("b2", 9))
      yield* store.delete("cart", "c")
      assert.deepEqual(yield* scanned(store, "cart"), ["cart/a@5", "cart/b10@4", "cart/b2@9"])
    }), { keep: 3 }),

  withStore("scan of an empty store or namespace is empty", (store) =>
    Effect.gen(function*() {
      assert.deepEqual(yield* scanned(store, "cart"), [])
      yield* store.put(snap("order", "1", 1))
      assert.deepEqual(yield* scanned(store, "cart"), [])
      assert.deepEqual(yield* scanned(store, "order"), ["order/1@1"])
    })),

  withStore("invalid put arguments fail with a SnapshotStoreError naming the problem and store nothing", (store) =>
    Effect.gen(function*() {
      const bad = (snapshot: Snapshot, ...mentions: ReadonlyArray<string>) =>
        expectError(store.put(snapshot), "SnapshotStoreError", ...mentions)
      yield* bad({ ...cart("x", 1), namespace: "" }, "namespace")
      yield* bad(cart("", 1), "id")
      yield* bad({ ...cart("x", 1), namespace: "ca\u0000rt" }, "NUL")
      yield* bad(cart("x\u0000y", 1), "NUL")
      yield* bad({ ...cart("x", 1), namespace: "cart\uD800" }, "namespace", "surrogate")
      yield* bad(cart("x\uDC00", 1), "id", "surrogate")
      yield* bad({ ...cart("x", 1), namespace: "n".repeat(257) }, "namespace", "257")
      yield* bad(cart("i".repeat(257), 1), "id", "257")
      yield* bad(cart("x", -1), "version")
      yield* bad(cart("x", 1.5), "version")
      yield* bad(cart("x", Number.NaN), "version")
      yield* bad(cart("x", 1, { seq: -1 }), "seq")
      yield* bad(cart("x", 1, { timestamp: -1 }), "timestamp")
      yield* bad(cart("x", 1, { schemaVersion: 0.5 }), "schemaVersion")
      yield* bad(cart("x", 1, { state: "nope" as unknown as Uint8Array }), "state")
      yield* bad(cart("x", 1, { state: [1, 2, 3] as unknown as Uint8Array }), "state")
      yield* bad(cart("x", 1, { state: undefined as unknown as Uint8Array }), "state")
      // nothing was stored, under any of those names
      assert.deepEqual(yield* scanned(store, "cart"), [])
      assert.equal(yield* versionOf(store, "cart", "x"), undefined)
      assert.equal(yield* versionOf(store, "cart", "i".repeat(256)), undefined)
      // names of exactly 256 characters are fine
      yield* store.put(snap("n".repeat(256), "i".repeat(256), 1))
      assert.equal(yield* versionOf(store, "n".repeat(256), "i".repeat(256)), 1)
      assert.deepEqual(yield* scanned(store, "n".repeat(256)), [`${"n".repeat(256)}/${"i".repeat(256)}@1`])
    })),

  withStore("invalid get, delete and scan arguments fail with a SnapshotStoreError naming the problem", (store) =>
    Effect.gen(function*() {
      yield* store.put(cart("x", 3))
      yield* expectError(store.get("", "x"), "SnapshotStoreError", "namespace")
      yield* expectError(store.get("cart", ""), "SnapshotStoreError", "id")
      yield* expectError(store.get("cart", "x\u0000"), "SnapshotStoreError", "NUL")
      yield* expectError(store.get("cart", "x\uD800"), "SnapshotStoreError", "surrogate")
      yield* expectError(Stream.runCollect(store.scan("ca\uDFFFrt")), "SnapshotStoreError", "surrogate")
      yield* expectError(store.get("cart", "x".repeat(257)), "SnapshotStoreError", "257")
      yield* expectError(store.get("cart", "x", { maxVersion: -1 }), "SnapshotStoreError", "maxVersion")
      yield* expectError(store.get("cart", "x", { maxVersion: 2.5 }), "SnapshotStoreError", "maxVersion")
      yield* expectError(store.get("cart", "x", { maxTimestamp: -1 }), "SnapshotStoreError", "maxTimestamp")
      yield* expectError(store.get("cart", "x", { maxTimestamp: Number.NaN }), "SnapshotStoreError", "maxTimestamp")
      yield* expectError(store.delete("", "x"), "SnapshotStoreError", "namespace")
      yield* expectError(store.delete("cart", ""), "SnapshotStoreError", "id")
      yield* expectError(store.delete("cart", "x\u0000"), "SnapshotStoreError", "NUL")
      yield* expectError(Stream.runCollect(store.scan("")), "SnapshotStoreError", "namespace")
      yield* expectError(Stream.runCollect(store.scan("ca\u0000rt")), "SnapshotStoreError", "NUL")
      yield* expectError(Stream.runCollect(store.scan("c".repeat(257))), "SnapshotStoreError", "257")
      // the failed calls changed nothing
      assert.equal(yield* versionOf(store, "cart", "x"), 3)
      assert.deepEqual(yield* scanned(store, "cart"), ["cart/x@3"])
    })),

  {
    name: "an invalid keep option fails the layer build with a SnapshotStoreError naming keep",
    run: (storage) =>
      Effect.gen(function*() {
        yield* expectBuildError(storage, { keep: 0 })
        yield* expectBuildError(storage, { keep: -1 })
        yield* expectBuildError(storage, { keep: 1.5 })
        yield* expectBuildError(storage, { keep: Number.NaN })
        yield* expectBuildError(storage, { keep: "2" as unknown as number })
        // and a valid keep builds
        const store = yield* open(SnapshotStore, storage.layer({ keep: 2 }))
        yield* putAll(store, [cart("ok", 1), cart("ok", 2), cart("ok", 3)])
        assert.equal(yield* versionOf(store, "cart", "ok", { maxVersion: 2 }), 2)
        assert.equal(yield* versionOf(store, "cart", "ok", { maxVersion: 1 }), undefined)
      })
  },

  withStore("concurrent puts to many streams all land, keep respected per stream", (store) =>
    Effect.gen(function*() {
      const ids = Array.from({ length: 16 }, (_, i) => `s${String(i).padStart(2, "0")}`)
      yield* Effect.forEach(
        ids.flatMap((id) => Array.from({ length: 6 }, (_, v) => cart(id, v + 1))),
        (snapshot) => Effect.andThen(Effect.yieldNow, store.put(snapshot)),
        { concurrency: "unbounded", discard: true }
      )
      assert.deepEqual(yield* scanned(store, "cart"), ids.map((id) => `cart/${id}@6`))
      for (const id of ids) {
        assert.equal(yield* versionOf(store, "cart", id, { maxVersion: 5 }), 5)
        assert.equal(yield* versionOf(store, "cart", id, { maxVersion: 4 }), undefined)
      }
    }), { keep: 2 }),

  {
    name: "snapshots and deletes persist across a reopen",
    durableOnly: true,
    run: (storage) =>
      Effect.gen(function*() {
        const big = new Uint8Array(200_000).map((_, i) => (i * 7) & 0xff)
        yield* Effect.scoped(Effect.gen(function*() {
          const store = yield* open(SnapshotStore, storage.layer({ keep: 3 }))
          yield* putAll(store, [
            cart("p", 1),
            cart("p", 2, { schemaVersion: 4, state: big }),
            cart("p", 3),
            cart("p", 4),
            cart("gone", 1),
            snap("order", "p", 9)
          ])
          yield* store.put(cart("p", 3, { state: encoder.encode("replaced") }))
          yield* store.delete("cart", "gone")
        }))
        const store = yield* open(SnapshotStore, storage.layer({ keep: 3 }))
        const latest = yield* store.get("cart", "p")
        assert.ok(Option.isSome(latest))
        assert.deepEqual(plain(latest.value), plain(cart("p", 4)))
        assert.equal(Object.getPrototypeOf(latest.value.state), Uint8Array.prototype)
        const three = yield* store.get("cart", "p", { maxVersion: 3 })
        assert.ok(Option.isSome(three))
        assert.equal(text(three.value), "replaced")
        const two = yield* store.get("cart", "p", { maxTimestamp: 250 })
        assert.ok(Option.isSome(two))
        assert.deepEqual(plain(two.value), plain(cart("p", 2, { schemaVersion: 4, state: big })))
        assert.equal(yield* versionOf(store, "cart", "p", { maxVersion: 1 }), undefined)
        assert.equal(yield* versionOf(store, "cart", "gone"), undefined)
        assert.deepEqual(yield* scanned(store, "cart"), ["cart/p@4"])
        assert.deepEqual(yield* scanned(store, "order"), ["order/p@9"])
        // the reopened store keeps working: keep still applies to what was there before
        yield* store.put(cart("p", 5))
        assert.equal(yield* versionOf(store, "cart", "p", { maxVersion: 2 }), undefined)
        assert.equal(yield* versionOf(store, "cart", "p", { maxVersion: 3 }), 3)
      })
  }
]
