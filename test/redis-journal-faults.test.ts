/**
 * The Redis Journal under faults and hostile input, through a TCP proxy in front of the machine's
 * Redis (test/support/tcpProxy.ts): a reply lost after the append ran (retried by its id: stored
 * once, also when its records were truncated meanwhile), the outcomes kept for the retry window, a
 * server gone and back (typed errors, reconnects, followers go on without a gap), no server at
 * open, bad options, stream names that look like keys or hash tags, damaged entries and numbers,
 * truncation in batches, and WAIT / WAITAOF (on a reserved connection).
 */
import { ConfigProvider, Context, Effect, Fiber, Layer, Schedule, Stream } from "effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import * as EffectRedis from "effect/persistence/Redis"
import { Journal } from "../src/index.ts"
import { RedisClient, RedisJournal } from "../src/redis/index.ts"
import { OUTCOMES_TRIMMED } from "../src/redis/internal/journalScripts.ts"
import { expectError } from "./conformance/harness.ts"
import { isolatedPrefix, probeClient, redisProxy as proxy, redisTarget } from "./support/redis.ts"

const target = await redisTarget()

const wallSleep = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))
const event = (text: string) => ({ type: "E", payload: new TextEncoder().encode(text) })
const text = (payload: Uint8Array) => new TextDecoder().decode(payload)

/** A journal under `prefix` over `url`, built in the current scope. */
const journalAt = (url: string, prefix: string, options: Partial<RedisJournal.RedisJournalOptions> & { readonly commandTimeout?: number } = {}) =>
  Effect.map(
    Layer.build(RedisJournal.layer({ url, prefix, blockMs: 200, ...options, options: { commandTimeout: options.commandTimeout ?? 2_000 } })),
    (context) => Context.get(context, Journal.Journal)
  )

/** `effect` with a wall-clock bound, so that a hang fails the test naming `what`. */
const bounded = <A, E, R>(what: string, ms: number, effect: Effect.Effect<A, E, R>) =>
  Effect.timeoutOrElse(effect, { duration: ms, orElse: () => Effect.die(new Error(`${what} took over ${ms} ms`)) })

if (target !== undefined) {
  test(`RedisJournal [${target.name}] a reply lost after the append ran: the retry by append id returns the first outcome, and the record is stored once`, () =>
    Effect.gen(function*() {
      const prefix = yield* isolatedPrefix(target)
      const p = yield* proxy(target)
      const journal = yield* journalAt(p.url, prefix, { commandTimeout: 300 })
      yield* journal.append({ namespace: "lost", id: "a" }, 0, [event("first")])
      // The server runs the append; its reply is dropped, then the connection is cut.
      p.holdReplies()
      const append = yield* Effect.forkChild(journal.append({ namespace: "lost", id: "a" }, 1, [event("second"), event("third")]))
      yield* wallSleep(150)
      p.cut()
      p.releaseReplies()
      const result = yield* bounded("the retried append", 20_000, Fiber.join(append))
      assert.deepEqual({ firstSeq: result.firstSeq, lastSeq: result.lastSeq, version: result.version }, { firstSeq: 2, lastSeq: 3, version: 3 })
      const records = yield* Stream.runCollect(journal.read({ namespace: "lost", id: "a" }))
      assert.deepEqual(records.map((r) => [r.seq, r.version, text(r.payload)]), [[1, 1, "first"], [2, 2, "second"], [3, 3, "third"]])
      assert.equal(yield* journal.lastSeq, 3)
      assert.ok(p.connections() > 1, "the client reconnected")
    }).pipe(Effect.scoped, Effect.runPromise))

  /** An append whose reply is held back while another process truncates its records away, as a Checkpointer does; then the reply is lost. */
  const lostThenTruncated = (expected: "any" | number) =>
    Effect.scoped(Effect.gen(function*() {
      const prefix = yield* isolatedPrefix(target)
      const p = yield* proxy(target)
      const viaProxy = yield* journalAt(p.url, prefix, { commandTimeout: 300 })
      const direct = yield* journalAt(target.url, prefix)
      const stream = { namespace: "t", id: "a" }
      yield* viaProxy.append(stream, 0, [event("first")])
      p.holdReplies()
      const append = yield* Effect.forkChild(viaProxy.append(stream, expected, [event("second")]))
      yield* bounded("the held append to run", 10_000, Effect.repeat(direct.lastSeq, { until: (last) => last === 2, schedule: Schedule.spaced(10) }))
      yield* direct.truncateBefore(3)
      p.cut()
      p.releaseReplies()
      const result = yield* bounded("the retried append", 20_000, Fiber.join(append))
      assert.deepEqual([result.firstSeq, result.lastSeq, result.version], [2, 2, 2], `expected ${expected}: the first outcome`)
      assert.deepEqual([yield* direct.version(stream), yield* direct.lastSeq], [2, 2], `expected ${expected}: stored once`)
    }))

  test(`RedisJournal [${target.name}] a reply lost, then the append's records truncated before its retry: the retry returns the first outcome, neither a second copy nor a VersionConflict`, () =>
    Effect.runPromise(Effect.andThen(lostThenTruncated("any"), lostThenTruncated(1))))

  test(`RedisJournal [${target.name}] each append's outcome is kept for retryWindowMs by the server's clock, then forgotten a few per append`, () =>
    Effect.gen(function*() {
      const prefix = yield* isolatedPrefix(target)
      const journal = yield* journalAt(target.url, prefix, { retryWindowMs: 300 })
      const old = OUTCOMES_TRIMMED + 4
      for (let i = 0; i < old; i++) yield* journal.append({ namespace: "w", id: "a" }, i, [event(String(i))])
      const raw = probeClient(target.url)
      yield* Effect.promise(() => raw.connect())
      const kept = () => Effect.promise(() => Promise.all([raw.hlen(`{${prefix}}:journal:append-outcomes`), raw.xlen(`{${prefix}}:journal:append-times`)]))
      assert.deepEqual(yield* kept(), [old, old])
      yield* journal.truncateBefore(old + 1)
      assert.deepEqual(yield* kept(), [old, old], "truncation leaves the outcomes")
      yield* wallSleep(400)
      yield* journal.append({ namespace: "w", id: "a" }, old, [event("new")])
      const [afterOne] = yield* kept()
      assert.ok(afterOne > 1 && afterOne < old + 1, `one append forgets some expired outcomes, a bounded number: ${afterOne} of ${old + 1} kept`)
      let fresh = 1
      for (; fresh < old && (yield* kept())[0] > fresh; fresh++) yield* journal.append({ namespace: "w", id: "a" }, old + fresh, [event("new")])
      assert.deepEqual(yield* kept(), [fresh, fresh], "in the end only the appends within the window are kept")
      raw.disconnect()
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`RedisJournal [${target.name}] a reply that times out (the server slow, the connection kept) is retried by id: stored once`, () =>
    Effect.gen(function*() {
      const prefix = yield* isolatedPrefix(target)
      const p = yield* proxy(target)
      const journal = yield* journalAt(p.url, prefix, { commandTimeout: 200 })
      p.holdReplies()
      const append = yield* Effect.forkChild(journal.append({ namespace: "slow", id: "a" }, "any", [event("once")]))
      yield* wallSleep(300)
      p.releaseReplies()
      const result = yield* bounded("the retried append", 20_000, Fiber.join(append))
      assert.equal(result.firstSeq, 1)
      const log = yield* Stream.runCollect(journal.replayFrom(0))
      assert.deepEqual(log.map((r) => text(r.payload)), ["once"], "stored once, although its script was sent twice")
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`RedisJournal [${target.name}] the server gone: appends and reads fail typed, naming the keys; back again, appends go on and a follower misses nothing`, () =>
    Effect.gen(function*() {
      const prefix = yield* isolatedPrefix(target)
      const p = yield* proxy(target)
      const journal = yield* journalAt(p.url, prefix, { retries: 1, commandTimeout: 500 })
      const seen: Array<number> = []
      const follower = yield* Effect.forkChild(Stream.runForEach(journal.follow(0), (r) => Effect.sync(() => void seen.push(r.seq))))
      yield* journal.append({ namespace: "gone", id: "a" }, 0, [event("1")])
      // The follower has read it and waits at the end (a read cut mid-way fails the follow; Subscriptions restart it).
      yield* bounded("the follower's first record", 20_000, Effect.repeat(Effect.void, { until: () => seen.length === 1, schedule: Schedule.spaced(20) }))
      p.stop()
      const failed = yield* bounded("an append to a server that is gone", 20_000, Effect.flip(journal.append({ namespace: "gone", id: "a" }, 1, [event("2")])))
      assert.equal(failed._tag, "JournalError")
      assert.match(failed.message, /may or may not have been stored|nothing was stored/)
      assert.ok(failed.message.includes("gone/a"), failed.message)
      yield* expectError(Effect.asVoid(Stream.runCollect(journal.read({ namespace: "gone", id: "a" }))), "JournalError", `{${prefix}}`)
      p.start()
      // The failed append may have been stored (its outcome was unknown): the version tells.
      const version = yield* bounded("version after the server is back", 20_000, Effect.retry(journal.version({ namespace: "gone", id: "a" }), { times: 20, schedule: Schedule.spaced(100) }))
      yield* journal.append({ namespace: "gone", id: "a" }, version, [event("3")])
      const last = yield* journal.lastSeq
      yield* bounded("the follower catching up", 20_000, Effect.repeat(Effect.sync(() => seen.length), { until: () => seen.length === last, schedule: Schedule.spaced(50) }))
      assert.deepEqual(seen, Array.from({ length: last }, (_, i) => i + 1))
      yield* Fiber.interrupt(follower)
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`RedisJournal [${target.name}] stream names with ":", "{", "}", "%", "*", spaces and emoji stay apart, and truncation trims each one's copy`, () =>
    Effect.gen(function*() {
      const prefix = yield* isolatedPrefix(target)
      const journal = yield* journalAt(target.url, prefix)
      const names = [["a", "b:c"], ["a:b", "c"], ["{x}", "}{"], ["%3A", ":"], ["*", "?[]"], ["ns é", "\u{1F600} id"], ["a", "b%3Ac"]] as const
      for (const [namespace, id] of names) yield* journal.append({ namespace, id }, 0, [event(`${namespace}|${id}`)])
      for (const [namespace, id] of names) {
        const records = yield* Stream.runCollect(journal.read({ namespace, id }))
        assert.deepEqual(records.map((r) => text(r.payload)), [`${namespace}|${id}`], `${namespace}/${id}`)
        assert.equal(yield* journal.version({ namespace, id }), 1)
      }
      yield* journal.truncateBefore(names.length + 1)
      const raw = probeClient(target.url)
      yield* Effect.promise(() => raw.connect())
      for (const [namespace, id] of names) {
        const key = `{${prefix}}:journal:stream:${encodeURIComponent(namespace)}:${encodeURIComponent(id)}`
        assert.equal(yield* Effect.promise(() => raw.xlen(key)), 0, `the copy of ${namespace}/${id} is trimmed`)
        assert.equal(yield* journal.version({ namespace, id }), 1, "versions survive truncation")
      }
      raw.disconnect()
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`RedisJournal [${target.name}] a truncation of thousands of records runs in batches and trims the log and the copies, not the appends' outcomes`, () =>
    Effect.gen(function*() {
      const prefix = yield* isolatedPrefix(target)
      const journal = yield* journalAt(target.url, prefix)
      yield* Effect.forEach(Array.from({ length: 2_500 }, (_, i) => i), (i) =>
        journal.append({ namespace: "t", id: String(i % 7) }, "any", [event(String(i))]), { concurrency: 16, discard: true })
      yield* journal.truncateBefore(2_401)
      const log = yield* Stream.runCollect(journal.replayFrom(0))
      assert.deepEqual([log.length, log[0]!.seq], [100, 2_401])
      const raw = probeClient(target.url)
      yield* Effect.promise(() => raw.connect())
      assert.equal(yield* Effect.promise(() => raw.xlen(`{${prefix}}:journal:log`)), 100)
      assert.equal(yield* Effect.promise(() => raw.hlen(`{${prefix}}:journal:append-outcomes`)), 2_500, "the appends' outcomes outlive their records")
      let copies = 0
      for (let s = 0; s < 7; s++) copies += yield* Effect.promise(() => raw.xlen(`{${prefix}}:journal:stream:t:${s}`))
      assert.equal(copies, 100)
      raw.disconnect()
      assert.equal(yield* journal.checkpoint, 2_401)
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`RedisJournal [${target.name}] a damaged entry fails the read naming the entry and the key`, () =>
    Effect.gen(function*() {
      const prefix = yield* isolatedPrefix(target)
      const journal = yield* journalAt(target.url, prefix)
      yield* journal.append({ namespace: "d", id: "a" }, 0, [event("ok")])
      const raw = probeClient(target.url)
      yield* Effect.promise(() => raw.connect())
      yield* Effect.promise(() => raw.xadd(`{${prefix}}:journal:log`, "2-0", "n", "d", "i", "b", "v", "x", "t", "1", "y", "E", "p", ""))
      yield* Effect.promise(() => raw.hset(`{${prefix}}:journal:meta`, "lastSeq", "2"))
      raw.disconnect()
      yield* expectError(Effect.asVoid(Stream.runCollect(journal.replayFrom(0))), "JournalError", "entry 2-0", `{${prefix}}:journal:log`, "version")
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`RedisJournal [${target.name}] a damaged number in the meta or versions hash fails each operation that reads it with a JournalError naming the key and the field, never NaN`, () =>
    Effect.gen(function*() {
      const prefix = yield* isolatedPrefix(target)
      const journal = yield* journalAt(target.url, prefix)
      yield* journal.append({ namespace: "d", id: "a" }, 0, [event("ok")])
      const raw = probeClient(target.url)
      yield* Effect.promise(() => raw.connect())
      const versions = `{${prefix}}:journal:versions`
      const meta = `{${prefix}}:journal:meta`
      yield* Effect.promise(() => raw.hset(versions, "d:a", "x"))
      const record = { seq: 5, namespace: "d", id: "a", version: 2, type: "E", timestamp: 1, payload: new Uint8Array([1]) }
      for (const operation of [Effect.asVoid(journal.version({ namespace: "d", id: "a" })), Effect.asVoid(journal.append({ namespace: "d", id: "a" }, 1, [event("no")])), journal.restore([record])]) {
        yield* expectError(operation, "JournalError", "d:a", versions, "damaged", '"x"')
      }
      yield* Effect.promise(() => raw.hset(versions, "d:a", "1"))
      yield* Effect.promise(() => raw.hset(meta, "lastSeq", "1e3"))
      for (
        const operation of [
          Effect.asVoid(journal.lastSeq),
          Effect.asVoid(journal.append({ namespace: "d", id: "b" }, 0, [event("no")])),
          journal.truncateBefore(1),
          Effect.asVoid(Stream.runCollect(journal.replayFrom(0)))
        ]
      ) {
        yield* expectError(operation, "JournalError", "lastSeq", meta, "damaged", '"1e3"')
      }
      yield* Effect.promise(() => raw.hset(meta, "lastSeq", "1", "checkpoint", "-1"))
      yield* expectError(journal.setCheckpoint(3), "JournalError", "checkpoint", meta, "damaged", '"-1"')
      yield* Effect.promise(() => raw.hset(meta, "checkpoint", "0"))
      raw.disconnect()
      assert.equal(yield* journal.version({ namespace: "d", id: "a" }), 1, "repaired, it reads again; nothing was stored meanwhile")
      assert.equal(yield* journal.lastSeq, 1)
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`RedisJournal [${target.name}] bad options fail the build with a JournalError; no server fails it with a RedisClientError naming the address`, () =>
    Effect.gen(function*() {
      for (const [options, words] of [
        [{ prefix: "" }, "prefix"],
        [{ prefix: "a{b}" }, "prefix"],
        [{ blockMs: 0 }, "blockMs"],
        [{ retries: -1 }, "retries"],
        [{ wait: { replicas: -1, timeoutMs: 10 } }, "wait.replicas"],
        [{ wait: { replicas: 1, timeoutMs: 0 } }, "wait.timeoutMs"],
        [{ waitAof: { local: 1, replicas: 0, timeoutMs: 0 } }, "waitAof.timeoutMs"],
        [{ retryWindowMs: 0 }, "retryWindowMs"]
      ] as const) {
        yield* expectError(Effect.asVoid(Layer.build(RedisJournal.layer({ url: target.url, ...options }))), "JournalError", words)
      }
      yield* expectError(Effect.asVoid(Layer.build(RedisJournal.layer({ url: "redis://user:secret@127.0.0.1:1", options: { retryStrategy: () => null } }))),
        "RedisClientError", "127.0.0.1:1")
      const error = yield* Effect.flip(Layer.build(RedisJournal.layer({ url: "redis://user:secret@127.0.0.1:1", options: { retryStrategy: () => null } })))
      assert.ok(!String(error.message).includes("secret"), "no password in the message")
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`RedisJournal [${target.name}] wait: an append that fewer replicas acknowledge fails saying it is stored but not confirmed; waitAof needs Redis 7.2`, () =>
    Effect.gen(function*() {
      const prefix = yield* isolatedPrefix(target)
      const confirmed = yield* journalAt(target.url, prefix, { wait: { replicas: 0, timeoutMs: 100 } })
      yield* confirmed.append({ namespace: "w", id: "a" }, 0, [event("1")])
      const strict = yield* journalAt(target.url, prefix, { wait: { replicas: 1, timeoutMs: 50 } })
      yield* expectError(strict.append({ namespace: "w", id: "a" }, 1, [event("2")]), "JournalError", "stored on the primary", "0 of 1 replica")
      assert.equal(yield* confirmed.version({ namespace: "w", id: "a" }), 2, "stored, as the message says")
      const version = yield* Effect.promise(async () => {
        const raw = probeClient(target.url)
        await raw.connect()
        const info = String(await raw.call("INFO", "server"))
        raw.disconnect()
        return /redis_version:(\d+)\.(\d+)/.exec(info)!.slice(1).map(Number) as [number, number]
      })
      const aof = Layer.build(RedisJournal.layer({ url: target.url, prefix, waitAof: { local: 0, replicas: 0, timeoutMs: 100 } }))
      if (version[0] < 7 || (version[0] === 7 && version[1] < 2)) {
        yield* expectError(Effect.asVoid(aof), "JournalError", "waitAof needs Redis 7.2")
      } else {
        const journal = Context.get(yield* aof, Journal.Journal)
        yield* journal.append({ namespace: "w", id: "aof" }, 0, [event("1")])
      }
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`RedisJournal [${target.name}] an append waiting in WAIT holds a reserved connection of its own: the journal's other commands go on meanwhile`, () =>
    Effect.gen(function*() {
      const prefix = yield* isolatedPrefix(target)
      const journal = yield* journalAt(target.url, prefix, { wait: { replicas: 1, timeoutMs: 1_500 } })
      const watcher = yield* journalAt(target.url, prefix)
      const waiting = yield* Effect.forkChild(Effect.flip(journal.append({ namespace: "w", id: "a" }, 0, [event("1")])))
      yield* bounded("the append's script", 5_000, Effect.repeat(watcher.version({ namespace: "w", id: "a" }), { until: (v) => v === 1, schedule: Schedule.spaced(5) }))
      yield* wallSleep(100) // its WAIT is sent by now
      const started = Date.now()
      assert.equal(yield* journal.version({ namespace: "other", id: "x" }), 0)
      const took = Date.now() - started
      assert.ok(took < 500, `a read took ${took} ms while an append waited in WAIT`)
      const failed = yield* Fiber.join(waiting)
      assert.match(failed.message, /stored on the primary but only 0 of 1 replica/)
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`RedisClient [${target.name}] layerConfig: REDIS_URL names the server (its password kept out of errors)`, () =>
    Effect.gen(function*() {
      const fromEnv = (values: Record<string, string>) => Layer.provide(RedisClient.layerConfig, ConfigProvider.layer(ConfigProvider.fromUnknown(values)))
      const redis = Context.get(yield* Layer.build(fromEnv({ REDIS_URL: target.url })), EffectRedis.Redis)
      assert.equal(yield* redis.send("PING"), "PONG")
      yield* expectError(Effect.asVoid(Layer.build(fromEnv({ REDIS_URL: "redis://:hunter2@127.0.0.1:1" }))), "RedisClientError", "127.0.0.1:1")
    }).pipe(Effect.scoped, Effect.runPromise))
}
