/**
 * The PostgreSQL CursorStore: the conformance suite over every PostgreSQL server of the run (a
 * schema of its own per case, dropped afterwards; durable: every build reopens the same schema),
 * list order by UTF-16 code units whatever the database's collation, two OS processes competing
 * for one lease, and a server that goes away.
 */
import { Effect, Option } from "effect"
import assert from "node:assert/strict"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { test } from "node:test"
import { CursorStore } from "../src/index.ts"
import { PgCursorStore } from "../src/postgres/index.ts"
import { type CursorStorage, cursorStoreCases } from "./conformance/CursorStore.ts"
import { expectError, open, register } from "./conformance/harness.ts"
import { spawnChild, withTimeout } from "./support/childProcess.ts"
import { startEmbeddedServer } from "./support/embeddedPostgres.ts"
import { isolatedSchema, pgTargets } from "./support/postgres.ts"
import { tempDirectory } from "./support/tempDirectory.ts"

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
      const directory = yield* tempDirectory("pg-lease")
      const log = path.join(directory, "log")
      // The table exists before the children start, so that they only compete for the lease.
      const store = yield* open(CursorStore.CursorStore, PgCursorStore.layer({ url: target.url, schema, max: 2 }))
      const children = yield* Effect.forEach(["A", "B"], (owner) => spawnChild("pgLeaseChild", [target.url, schema, owner, log, String(ROUNDS)]))
      yield* Effect.promise(() =>
        Promise.all(children.map(async (child, i) => {
          await withTimeout(child.line(/^done$/), 90_000, `lease child ${i} to finish`).catch((error) => {
            throw new Error(`${error instanceof Error ? error.message : String(error)}; stderr: ${child.stderr()}`)
          })
          assert.equal((await child.closed).code, 0, child.stderr())
        }))
      )
      const lines = (yield* Effect.promise(() => fs.readFile(log, "utf8"))).trim().split("\n").map((line) => line.split(" "))
      assert.equal(lines.length, 2 * 2 * ROUNDS)
      const tokens: Array<number> = []
      for (let i = 0; i < lines.length; i += 2) {
        const [enter, exit] = [lines[i]!, lines[i + 1]!]
        assert.equal(enter[0], "enter", `line ${i + 1} must start a hold (no two holders at once): ${lines.map((l) => l.join(" ")).join(" | ")}`)
        assert.deepEqual(exit, ["exit", enter[1], enter[2]], `the hold of line ${i + 1} must end before another starts`)
        tokens.push(Number(enter[2]))
      }
      for (let i = 1; i < tokens.length; i++) assert.ok(tokens[i]! > tokens[i - 1]!, `fencing tokens must increase: ${tokens.join(", ")}`)
      assert.deepEqual(new Set(lines.map((line) => line[1])), new Set(["A", "B"]), "both processes held the lease")
      assert.equal(Option.getOrThrow(yield* store.get("orders")).seq, 2 * ROUNDS, "every commit under the lease landed")
      const first = lines[0]!
      yield* expectError(
        store.commit("orders", 1_000, { name: "orders", owner: first[1]!, until: Number.MAX_SAFE_INTEGER, token: Number(first[2]) }),
        "LeaseLost"
      )
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
