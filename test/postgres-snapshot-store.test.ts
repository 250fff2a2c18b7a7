/**
 * The PostgreSQL SnapshotStore: the conformance suite over every PostgreSQL server of the run (a
 * schema of its own per case, dropped afterwards; durable: every build reopens the same schema),
 * scan order by UTF-16 code units whatever the database's collation, puts of one stream from many
 * connections at once, and a server that goes away.
 */
import { Effect, Stream } from "effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import { PgSnapshotStore } from "../src/postgres/index.ts"
import { SnapshotStore } from "../src/index.ts"
import { expectError, open, register } from "./conformance/harness.ts"
import { snap, type SnapshotStorage, snapshotStoreCases } from "./conformance/SnapshotStore.ts"
import { startEmbeddedServer } from "./support/embeddedPostgres.ts"
import { isolatedSchema, type PgTarget, pgTargets } from "./support/postgres.ts"

const targets = await pgTargets()

const storage = (target: PgTarget) =>
  Effect.map(isolatedSchema(target), (schema): SnapshotStorage => ({
    layer: (options?: SnapshotStore.SnapshotStoreOptions) => PgSnapshotStore.layer({ url: target.url, schema, max: 4, ...options })
  }))

/** A snapshot of `cart/id` at `version` (`namespace` overrides the namespace): the suite's own. */
const snapshot = (id: string, version: number, namespace = "cart"): SnapshotStore.Snapshot => snap(namespace, id, version)

/** Ids whose order differs between JavaScript (UTF-16 code units), code points, and a linguistic collation. */
const ids = ["b", "B", "a", "_x", "é", "e", "\uFF01", "\u{1F600}", "a b", "ab", "A"]

for (const target of targets) {
  register("SnapshotStore", { name: target.name, durable: true, storage: storage(target) }, snapshotStoreCases)

  const pgTest = (name: string, body: (store: SnapshotStore.SnapshotStore, schema: string) => Effect.Effect<void, unknown, never>) =>
    test(`PgSnapshotStore [${target.name}] ${name}`, () =>
      Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const schema = yield* isolatedSchema(target)
        yield* body(yield* open(SnapshotStore.SnapshotStore, PgSnapshotStore.layer({ url: target.url, schema, max: 8, keep: 2 })), schema)
      }))))

  pgTest("scan orders ids by UTF-16 code units, not by the database's collation or by code points", (store) =>
    Effect.gen(function*() {
      for (const id of ids) yield* store.put(snapshot(id, 1))
      const scanned = (yield* Stream.runCollect(store.scan("cart"))).map((s) => s.id)
      assert.deepEqual(scanned, [...ids].sort())
      assert.ok(scanned.indexOf("\u{1F600}") < scanned.indexOf("\uFF01"), "a surrogate pair sorts before U+FF01, as in JavaScript")
    }))

  pgTest("puts of one stream from many connections at once keep exactly `keep`, the highest versions", (store) =>
    Effect.gen(function*() {
      yield* Effect.forEach(Array.from({ length: 24 }, (_, i) => i + 1), (version) => store.put(snapshot("busy", version)), { concurrency: 8 })
      const latest = yield* store.get("cart", "busy")
      assert.equal(latest._tag === "Some" ? latest.value.version : undefined, 24)
      const older = yield* store.get("cart", "busy", { maxVersion: 23 })
      assert.equal(older._tag === "Some" ? older.value.version : undefined, 23)
      assert.equal((yield* store.get("cart", "busy", { maxVersion: 22 }))._tag, "None", "only 2 are kept")
    }))
}

test("PgSnapshotStore: a server that is gone fails every operation with a SnapshotStoreError naming it, and opening fails typed", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const server = yield* Effect.acquireRelease(Effect.promise(startEmbeddedServer), (s) => Effect.promise(() => s.stop()))
    const store = yield* open(SnapshotStore.SnapshotStore, PgSnapshotStore.layer({ url: server.url, schema: "gone", max: 2 }))
    yield* store.put(snapshot("s", 1))
    yield* Effect.promise(() => server.stop())
    const put = yield* expectError(store.put(snapshot("s", 2)), "SnapshotStoreError", "SnapshotStore.put", "cart/s", '"gone"."annals_snapshots"')
    assert.equal(put.method, "put")
    yield* expectError(store.get("cart", "s"), "SnapshotStoreError", "SnapshotStore.get", "cart/s")
    yield* expectError(store.delete("cart", "s"), "SnapshotStoreError", "SnapshotStore.delete", "cart/s")
    yield* expectError(Stream.runCollect(store.scan("cart")), "SnapshotStoreError", "SnapshotStore.scan", '"cart"')
    const reopened = yield* Effect.result(Effect.scoped(open(SnapshotStore.SnapshotStore, PgSnapshotStore.layer({ url: server.url, schema: "gone" }))))
    assert.ok(reopened._tag === "Failure" && reopened.failure._tag === "PgClientError", "opening against a stopped server fails with a PgClientError")
    assert.match(reopened.failure.message, /cannot reach the server/)
  }))))
