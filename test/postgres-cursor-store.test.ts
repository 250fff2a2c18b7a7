/**
 * The PostgreSQL CursorStore: the conformance suite over every PostgreSQL server of the run (a
 * schema of its own per case, dropped afterwards; durable: every build reopens the same schema),
 * list order by UTF-16 code units whatever the database's collation, two OS processes competing
 * for one lease, and a server that goes away.
 */
import { Effect } from "effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import { CursorStore } from "../src/index.ts"
import { PgCursorStore } from "../src/postgres/index.ts"
import { type CursorStorage, cursorStoreCases } from "./conformance/CursorStore.ts"
import { expectError, open, register } from "./conformance/harness.ts"
import { startEmbeddedServer } from "./support/embeddedPostgres.ts"
import { isolatedSchema, pgTargets } from "./support/postgres.ts"
import { leaseCompetition } from "./support/leaseCompetition.ts"

const targets = await pgTargets()

/** Names whose order differs between JavaScript (UTF-16 code units), code points, and a linguistic collation. */
const names = ["b", "B", "a", "_x", "é", "e", "\uFF01", "\u{1F600}", "a b", "ab", "A"]

const ROUNDS = 15

for (const target of targets) {
  const storage = Effect.map(isolatedSchema(target), (schema): CursorStorage => ({
    layer: PgCursorStore.layer({ url: target.url, schema, max: 4 })
  }))
  register("CursorStore", { name: target.name, durable: true, storage }, cursorStoreCases)

  test(`PgCursorStore [${target.name}] list orders names by UTF-16 code units, not by the database's collation or by code points`, () =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const schema = yield* isolatedSchema(target)
      const store = yield* open(CursorStore.CursorStore, PgCursorStore.layer({ url: target.url, schema, max: 2 }))
      for (const [i, name] of names.entries()) yield* store.commit(name, i + 1)
      const listed = (yield* store.list).map((cursor) => cursor.name)
      assert.deepEqual(listed, [...names].sort())
      assert.ok(listed.indexOf("\u{1F600}") < listed.indexOf("\uFF01"), "a surrogate pair sorts before U+FF01, as in JavaScript")
    }))))

  test(`PgCursorStore [${target.name}] two OS processes competing for one lease: one holder at a time, fencing tokens increase, no commit lost`, () =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const schema = yield* isolatedSchema(target)
      // The table exists before the children start, so that they only compete for the lease.
      const store = yield* open(CursorStore.CursorStore, PgCursorStore.layer({ url: target.url, schema, max: 2 }))
      yield* leaseCompetition("postgres", target.url, schema, store, ROUNDS)
    }))))
}

test("PgCursorStore: a server that is gone fails every operation with a CursorStoreError naming it, and opening fails typed", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const server = yield* Effect.acquireRelease(Effect.promise(startEmbeddedServer), (s) => Effect.promise(() => s.stop()))
    const store = yield* open(CursorStore.CursorStore, PgCursorStore.layer({ url: server.url, schema: "gone", max: 2 }))
    yield* store.commit("orders", 1)
    yield* Effect.promise(() => server.stop())
    const table = '"gone"."annals_cursors"'
    const commit = yield* expectError(store.commit("orders", 2), "CursorStoreError", "CursorStore.commit", '"orders"', table)
    assert.equal(commit.method, "commit")
    yield* expectError(store.get("orders"), "CursorStoreError", "CursorStore.get", '"orders"', table)
    yield* expectError(store.acquire("orders", "A", 1_000), "CursorStoreError", "CursorStore.acquire", '"orders"')
    yield* expectError(store.release("orders", "A"), "CursorStoreError", "CursorStore.release", '"orders"')
    yield* expectError(store.delete("orders"), "CursorStoreError", "CursorStore.delete", '"orders"')
    yield* expectError(store.list, "CursorStoreError", "CursorStore.list", table)
    const reopened = yield* Effect.result(Effect.scoped(open(CursorStore.CursorStore, PgCursorStore.layer({ url: server.url, schema: "gone" }))))
    assert.ok(reopened._tag === "Failure" && reopened.failure._tag === "PgClientError", "opening against a stopped server fails with a PgClientError")
    assert.match(reopened.failure.message, /cannot reach the server/)
  }))))
