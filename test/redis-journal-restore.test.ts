/**
 * The Redis Journal's restore of more records than one chunk holds (one transaction on a reserved
 * connection): after the server lost its script cache (a restart, `SCRIPT FLUSH`), when the server
 * fails a chunk while the transaction runs (the error says how far it got) or refuses it before
 * (nothing restored), and interrupted at any moment (the transaction is discarded: the pooled
 * connection is clean after).
 */
import { Context, Effect, Fiber, Layer, Stream } from "effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import * as EffectRedis from "effect/persistence/Redis"
import { Journal } from "../src/index.ts"
import { RedisClient, RedisJournal } from "../src/redis/index.ts"
import { expectError } from "./conformance/harness.ts"
import { isolatedPrefix, privateRedisServer, probeClient, redisTarget } from "./support/redis.ts"

const target = await redisTarget()

const wallSleep = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

/** `count` records of one stream per namespace, from seq `from`, payloads of `size` bytes. */
const records = (from: number, namespace: string, count: number, size = 1) =>
  Array.from({ length: count }, (_, i) => ({
    seq: from + i, namespace, id: "a", version: i + 1, type: "E", timestamp: 1, payload: new Uint8Array(size).fill(i % 256)
  }))

/** A journal under `prefix` over `url`, built in the current scope. */
const journalAt = (url: string, prefix: string) =>
  Effect.map(Layer.build(RedisJournal.layer({ url, prefix, options: { commandTimeout: 10_000 } })), (context) => Context.get(context, Journal.Journal))

/** Sends one command to `url` on a connection of its own. */
const command = (url: string, ...args: ReadonlyArray<string>) =>
  Effect.promise(async () => {
    const client = probeClient(url)
    await client.connect()
    try {
      return await client.call(args[0]!, ...args.slice(1))
    } finally {
      client.disconnect()
    }
  })

if (target !== undefined) {
  test(`RedisJournal [${target.name}] a restore of several chunks after the server lost its scripts (SCRIPT FLUSH, as after a restart) loads them again and applies`, () =>
    Effect.gen(function*() {
      const url = yield* privateRedisServer()
      const journal = yield* journalAt(url, "flush")
      yield* journal.restore(records(1, "a", 1_500))
      yield* command(url, "SCRIPT", "FLUSH")
      yield* journal.restore(records(1_501, "b", 1_500))
      assert.equal(yield* journal.lastSeq, 3_000)
      assert.equal((yield* Stream.runCollect(journal.read({ namespace: "b", id: "a" }))).length, 1_500)
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`RedisJournal [${target.name}] a chunk that the server fails while the transaction runs names the error and how far the restore got`, () =>
    Effect.gen(function*() {
      const prefix = yield* isolatedPrefix(target)
      const journal = yield* journalAt(target.url, prefix)
      // The second chunk's stream has a damaged copy (a string where a Redis Stream belongs): its script fails inside EXEC.
      yield* command(target.url, "SET", `{${prefix}}:journal:stream:b:a`, "not a stream")
      const first = records(1, "a", 1_000)
      const error = yield* expectError(journal.restore([...first, ...records(1_001, "b", 500)]), "JournalError", "Redis refused chunk 2 of 2", "WRONGTYPE")
      assert.match(error.message, new RegExp(`the first 1 chunk\\(s\\), the records through seq ${first.length}, were restored`))
      assert.equal(yield* journal.lastSeq, first.length, "the journal holds exactly what the message says")
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`RedisJournal [${target.name}] a transaction the server refuses before EXEC (queued commands beyond maxmemory) is discarded: nothing was restored`, () =>
    Effect.gen(function*() {
      const url = yield* privateRedisServer(["--maxmemory", "3mb", "--maxmemory-policy", "noeviction"])
      const journal = yield* journalAt(url, "oom")
      yield* expectError(journal.restore(records(1, "big", 4_000, 1_024)), "JournalError", "OOM", "nothing was restored")
      assert.equal(yield* journal.lastSeq, 0)
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`RedisJournal [${target.name}] a restore of several chunks interrupted at any moment leaves no pooled connection inside its transaction`, () =>
    Effect.gen(function*() {
      const client = yield* Layer.build(RedisClient.layer({ url: target.url, pool: { maxConnections: 1 } }))
      const redis = Context.get(client, EffectRedis.Redis)
      const answers: Array<string> = []
      for (let delay = 0; delay < 20; delay++) {
        yield* Effect.scoped(Effect.gen(function*() {
          const prefix = yield* isolatedPrefix(target)
          const journal = Context.get(yield* Layer.build(RedisJournal.layerClient({ prefix }).pipe(Layer.provide(Layer.succeedContext(client)))), Journal.Journal)
          const restore = yield* Effect.forkChild(journal.restore(records(1, "r", 3_000)))
          yield* wallSleep(delay)
          yield* Fiber.interrupt(restore)
          // The pool's one connection: it answers PING as a connection outside any transaction does.
          answers.push(yield* Effect.scoped(Effect.flatMap(redis.reserve, (connection) => connection.send<string>("PING"))))
        }))
      }
      assert.deepEqual(answers, answers.map(() => "PONG"))
    }).pipe(Effect.scoped, Effect.runPromise))
}
