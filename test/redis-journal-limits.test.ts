/**
 * The Redis Journal at its size limits: appends of very many events (the events travel as one
 * argument, so no runtime's call stack limits them), and payloads too large for the server
 * (`proto-max-bulk-len`) or for a JavaScript string, refused before anything is sent.
 */
import { Context, Effect, Fiber, Layer, Stream } from "effect"
import assert from "node:assert/strict"
import { constants } from "node:buffer"
import { test } from "node:test"
import { Journal } from "../src/index.ts"
import { RedisJournal } from "../src/redis/index.ts"
import { expectError } from "./conformance/harness.ts"
import { isolatedPrefix, privateRedisServer, probeClient, redisTarget } from "./support/redis.ts"

const target = await redisTarget()

/** A journal under `prefix` over `url`, built in the current scope. */
const journalAt = (url: string, prefix: string) =>
  Effect.map(Layer.build(RedisJournal.layer({ url, prefix, options: { commandTimeout: 60_000 } })), (context) => Context.get(context, Journal.Journal))

if (target !== undefined) {
  test(`RedisJournal [${target.name}] an append of 100,000 events is one script with a handful of arguments: stored whole, dense versions`, () =>
    Effect.gen(function*() {
      const prefix = yield* isolatedPrefix(target)
      const journal = yield* journalAt(target.url, prefix)
      const count = 100_000
      const events = Array.from({ length: count }, (_, i) => ({ type: i % 2 === 0 ? "Even" : "Odd", payload: new Uint8Array([i % 256]) }))
      const result = yield* journal.append({ namespace: "big", id: "a" }, 0, events)
      assert.deepEqual([result.firstSeq, result.lastSeq, result.version], [1, count, count])
      const records = yield* Stream.runCollect(journal.read({ namespace: "big", id: "a" }))
      assert.equal(records.length, count)
      assert.ok(records.every((r, i) => r.version === i + 1 && r.type === events[i]!.type && r.payload[0] === i % 256), "every record as appended")
    }).pipe(Effect.scoped, Effect.runPromise))

  /** A server of the case's own taking arguments of at most 1 MB, and that limit as it reports it. */
  const smallServer = Effect.gen(function*() {
    const url = yield* privateRedisServer(["--proto-max-bulk-len", "1mb"])
    const limit = yield* Effect.promise(async () => {
      const raw = probeClient(url)
      await raw.connect()
      const [, value] = await raw.call("CONFIG", "GET", "proto-max-bulk-len") as [string, string]
      raw.disconnect()
      return Number(value)
    })
    return { url, limit }
  })

  test(`RedisJournal [${target.name}] an append beyond the server's proto-max-bulk-len fails naming its size and the limit, stores nothing, and no other command on the connection fails; one just under it is stored`, () =>
    Effect.gen(function*() {
      const { limit, url } = yield* smallServer
      const journal = yield* journalAt(url, "limits")
      const stream = { namespace: "big", id: "a" }
      const others = yield* Effect.forkChild(Effect.forEach(Array.from({ length: 50 }, (_, i) => i), () => journal.version({ namespace: "other", id: "x" }), { concurrency: 10 }))
      const over = new Uint8Array(3 * Math.ceil(limit / 4) + 3)
      yield* expectError(journal.append(stream, 0, [{ type: "E", payload: over }]), "JournalError", "big/a", "bytes encoded", `proto-max-bulk-len (${limit} bytes)`, "nothing was stored")
      assert.ok((yield* Fiber.join(others)).every((version) => version === 0), "the other commands went through")
      assert.equal(yield* journal.version(stream), 0)
      // Base64 of this payload leaves 64 bytes below the limit for the rest of the argument.
      const under = new Uint8Array(3 * Math.floor((limit - 64) / 4)).map((_, i) => i)
      yield* journal.append(stream, 0, [{ type: "E", payload: under }])
      const [record] = yield* Stream.runCollect(journal.read(stream))
      assert.deepEqual(record?.payload, under)
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`RedisJournal [${target.name}] a restore splits its records into chunks that fit one argument each; a record that fits none fails naming it, and restores nothing`, () =>
    Effect.gen(function*() {
      const { limit, url } = yield* smallServer
      const journal = yield* journalAt(url, "limits")
      // Three records of 40% of the limit each as base64: two chunks, although a chunk holds far more records.
      const records = [1, 2, 3].map((seq) => ({
        seq, namespace: "r", id: "a", version: seq, type: "E", timestamp: seq, payload: new Uint8Array(Math.floor(limit * 0.3)).fill(seq)
      }))
      yield* journal.restore(records)
      const read = yield* Stream.runCollect(journal.read({ namespace: "r", id: "a" }))
      assert.deepEqual(read.map((r) => [r.seq, r.payload.length, r.payload[0]]), records.map((r) => [r.seq, r.payload.length, r.seq]))
      const huge = { seq: 4, namespace: "r", id: "b", version: 1, type: "E", timestamp: 4, payload: new Uint8Array(limit) }
      yield* expectError(journal.restore([huge]), "JournalError", "the record at seq 4", "r/b", `proto-max-bulk-len (${limit} bytes)`, "nothing was restored")
      assert.equal(yield* journal.lastSeq, 3)
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`RedisJournal [${target.name}] an append whose payload as base64 would be longer than this runtime's longest string fails naming both, before encoding anything`, () =>
    Effect.gen(function*() {
      const prefix = yield* isolatedPrefix(target)
      const journal = yield* journalAt(target.url, prefix)
      // Allocated, never touched: the check runs on its length.
      const payload = new Uint8Array(Math.ceil(constants.MAX_STRING_LENGTH * 3 / 4) + 3)
      yield* expectError(journal.append({ namespace: "huge", id: "a" }, 0, [{ type: "E", payload }]), "JournalError", "longest string", String(constants.MAX_STRING_LENGTH), "nothing was stored")
      assert.equal(yield* journal.lastSeq, 0)
    }).pipe(Effect.scoped, Effect.runPromise))
}
