/**
 * Redis Cluster safety of the Redis layers' Lua scripts (DESIGN §10): every key a script touches
 * is one it was passed in KEYS, so the cluster routes the script to the node that holds them. A
 * `MONITOR` of a server of the case's own sees each script's `EVALSHA` and then the commands the
 * script runs (source `lua`); each of those may name only keys of that `EVALSHA`. Every operation
 * of the Journal, SnapshotStore and CursorStore runs, the multi-chunk restore and the batched
 * truncation included.
 */
import { Context, Effect, Layer, Stream } from "effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import { Command, Redis as IORedis } from "ioredis"
import { CursorStore, Journal, SnapshotStore } from "../src/index.ts"
import { RedisStores } from "../src/redis/index.ts"
import { snap } from "./conformance/SnapshotStore.ts"
import { privateRedisServer, redisTarget } from "./support/redis.ts"

const target = await redisTarget()

/** What a MONITOR of `url` saw scripts do with keys they were not given, until the scope closes (then call `violations`). */
const watchScripts = (url: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new IORedis(url, { lazyConnect: true })
      await client.connect()
      const monitor = await client.monitor()
      let declared: ReadonlySet<string> = new Set()
      let scripts = 0
      const violations: Array<string> = []
      monitor.on("monitor", (_time: string, args: ReadonlyArray<string>, source: string) => {
        const [name = "", ...rest] = args
        if (source !== "lua") {
          if (/^evalsha$/i.test(name)) {
            scripts++
            declared = new Set(rest.slice(2, 2 + Number(rest[1])))
          }
          return
        }
        for (const key of new Command(name, [...rest]).getKeys()) {
          if (!declared.has(String(key))) violations.push(`${name} ${String(key)}`)
        }
      })
      return { client, monitor, seen: () => ({ scripts, violations }) }
    }),
    ({ client, monitor }) => Effect.sync(() => (monitor.disconnect(), client.disconnect()))
  )

const event = (text: string) => ({ type: "E", payload: new TextEncoder().encode(text) })

if (target !== undefined) {
  test(`Redis layers [${target.name}] every key a script touches was passed to it in KEYS (Redis Cluster routes scripts by them)`, () =>
    Effect.gen(function*() {
      const url = yield* privateRedisServer()
      const scripts = yield* watchScripts(url)
      const context = yield* Layer.build(RedisStores.layer({ url, prefix: "keys", keep: 2, blockMs: 100 }))
      const journal = Context.get(context, Journal.Journal)
      const snapshots = Context.get(context, SnapshotStore.SnapshotStore)
      const cursors = Context.get(context, CursorStore.CursorStore)
      const restored = Array.from({ length: 2_500 }, (_, i) => ({
        seq: i + 1, namespace: "r", id: String(i % 7), version: Math.floor(i / 7) + 1, type: "E", timestamp: i, payload: new Uint8Array([i % 256]),
        ...(i % 2 === 0 ? { metadata: { k: String(i) } } : {})
      }))
      yield* journal.restore(restored)
      yield* journal.append({ namespace: "a", id: "x" }, 0, [event("1"), event("2")])
      yield* journal.append({ namespace: "a", id: "x" }, 0, [event("conflict")]).pipe(Effect.flip)
      yield* journal.setCheckpoint(3)
      yield* journal.truncateBefore(2_000)
      assert.equal((yield* Stream.runCollect(journal.replayFrom(0))).length, 503)
      for (let v = 1; v <= 3; v++) yield* snapshots.put(snap("s", "a", v))
      yield* snapshots.get("s", "a", { maxVersion: 2 })
      yield* Stream.runCollect(snapshots.scan("s"))
      yield* snapshots.delete("s", "a")
      const lease = yield* cursors.acquire("c", "me", 10_000)
      yield* cursors.commit("c", 5, lease)
      yield* cursors.release("c", "me")
      yield* cursors.delete("c")
      const seen = scripts.seen()
      assert.ok(seen.scripts >= 15, `the monitor saw ${seen.scripts} scripts`)
      assert.deepEqual(seen.violations, [], "keys touched by scripts without being passed in KEYS")
    }).pipe(Effect.scoped, Effect.runPromise))
}
