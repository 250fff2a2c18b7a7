/**
 * The NATS Journal under faults and hostile input: through a TCP proxy in front of the machine's
 * nats-server (test/support/tcpProxy.ts), a reply lost after the append was stored (retried by its
 * message id: stored once), a reply that times out, a server gone and back (typed errors, the
 * connection comes back, followers go on without a gap); a private nats-server restarted on its
 * store (SIGTERM and SIGKILL: nothing acknowledged lost, seqs go on dense); hostile and very long
 * stream names, prefix isolation, bad options, existing streams with unfit settings, damaged
 * messages, appends spilled into the object store, and no server at open.
 */
import { RetentionPolicy, type StreamConfig, StorageType } from "@nats-io/jetstream"
import { Objm } from "@nats-io/obj"
import { Effect, Fiber, Layer, Schedule, type Scope, Stream } from "effect"
import assert from "node:assert/strict"
import { randomBytes } from "node:crypto"
import { test } from "node:test"
import { Journal } from "../src/index.ts"
import { pack } from "../src/internal/msgpack.ts"
import * as NatsClient from "../src/nats/NatsClient.ts"
import * as NatsJournal from "../src/nats/NatsJournal.ts"
import { expectError, open } from "./conformance/harness.ts"
import { isolatedNatsPrefix, natsTarget, privateNatsServer } from "./support/nats.ts"
import { natsProxy, withJetStream } from "./support/natsStores.ts"

const target = await natsTarget()

const wallSleep = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))
const event = (text: string) => ({ type: "E", payload: new TextEncoder().encode(text) })
const text = (payload: Uint8Array) => new TextDecoder().decode(payload)

/** `effect` with a wall-clock bound, so that a hang fails the test naming `what`. */
const bounded = <A, E, R>(what: string, ms: number, effect: Effect.Effect<A, E, R>) =>
  Effect.timeoutOrElse(effect, { duration: ms, orElse: () => Effect.die(new Error(`${what} took over ${ms} ms`)) })

/**
 * The client's request timeout in these cases (default 5 s): a request to a server that is gone
 * fails after it, so a short one keeps the cases short.
 */
const REQUEST_TIMEOUT_MS = 1_500

/** A journal under `prefix` over `servers` (requests timing out after REQUEST_TIMEOUT_MS), built in the current scope. */
const journalAt = (servers: string, prefix: string, options: NatsJournal.NatsJournalOptions & NatsClient.NatsClientOptions = {}) =>
  open(Journal.Journal, NatsJournal.layer({ servers, prefix, requestTimeoutMs: REQUEST_TIMEOUT_MS, ...options }))

/** Every record of the journal, as `seq namespace/id version payload`. */
const logOf = (journal: Journal.Journal) =>
  Effect.map(Stream.runCollect(journal.replayFrom(0)), (records) => records.map((r) => `${r.seq} ${r.namespace}/${r.id} ${r.version} ${text(r.payload)}`))

/** Waits (up to 20 s) until `seen` holds `count` entries. */
const untilSeen = (what: string, seen: ReadonlyArray<unknown>, count: number) =>
  bounded(what, 20_000, Effect.repeat(Effect.void, { until: () => seen.length >= count, schedule: Schedule.spaced(20) }))

if (target !== undefined) {
  const natsTest = (name: string, body: (prefix: string) => Effect.Effect<void, unknown, Scope.Scope>) =>
    test(`NatsJournal [${target.name}] ${name}`, () => Effect.runPromise(Effect.scoped(Effect.flatMap(isolatedNatsPrefix(target), body))))

  natsTest("a reply lost after the append was stored: the retry by message id returns the first outcome, and the records are stored once", (prefix) =>
    Effect.gen(function*() {
      const proxy = yield* natsProxy(target)
      const journal = yield* journalAt(proxy.url, prefix)
      yield* journal.append({ namespace: "lost", id: "a" }, 0, [event("first")])
      // The server stores the append; its reply is dropped, then the connection is cut.
      proxy.holdReplies()
      const append = yield* Effect.forkChild(journal.append({ namespace: "lost", id: "a" }, 1, [event("second"), event("third")]))
      yield* wallSleep(150)
      proxy.cut()
      proxy.releaseReplies()
      const result = yield* bounded("the retried append", 30_000, Fiber.join(append))
      assert.deepEqual({ firstSeq: result.firstSeq, lastSeq: result.lastSeq, version: result.version }, { firstSeq: 2, lastSeq: 3, version: 3 })
      const records = yield* Stream.runCollect(journal.read({ namespace: "lost", id: "a" }))
      assert.deepEqual(records.map((r) => [r.seq, r.version, text(r.payload)]), [[1, 1, "first"], [2, 2, "second"], [3, 3, "third"]])
      assert.equal(yield* journal.lastSeq, 3)
      assert.ok(proxy.connections() > 1, "the client reconnected")
      const next = yield* journal.append({ namespace: "lost", id: "a" }, 3, [event("fourth")])
      assert.equal(next.firstSeq, 4, "the chain goes on after the retried message")
    }))

  natsTest("a reply that times out (the server slow, the connection kept) is retried by message id: stored once", (prefix) =>
    Effect.gen(function*() {
      const proxy = yield* natsProxy(target)
      const journal = yield* journalAt(proxy.url, prefix)
      yield* journal.append({ namespace: "slow", id: "a" }, 0, [event("before")])
      proxy.holdReplies()
      const append = yield* Effect.forkChild(journal.append({ namespace: "slow", id: "a" }, 1, [event("once")]))
      // Past the client's request timeout: the publish is sent again with its id, whose reply is kept back too.
      yield* wallSleep(REQUEST_TIMEOUT_MS + 600)
      proxy.releaseReplies()
      const result = yield* bounded("the retried append", 30_000, Fiber.join(append))
      assert.deepEqual([result.firstSeq, result.version], [2, 2])
      assert.deepEqual(yield* logOf(journal), ["1 slow/a 1 before", "2 slow/a 2 once"], "stored once, although it was published twice")
      assert.equal(proxy.connections(), 1, "the connection was kept")
    }))

  natsTest("the server gone: appends and reads fail with JournalErrors naming the stream and the server; back again, the layer works and a follower misses nothing", (prefix) =>
    Effect.gen(function*() {
      const proxy = yield* natsProxy(target)
      const journal = yield* journalAt(proxy.url, prefix, { retries: 1 })
      // Another process's journal, on the server directly.
      const other = yield* journalAt(target.url, prefix)
      const seen: Array<number> = []
      const follower = yield* Effect.forkChild(Stream.runForEach(journal.follow(0), (r) => Effect.sync(() => void seen.push(r.seq))))
      yield* journal.append({ namespace: "gone", id: "a" }, 0, [event("1")])
      yield* untilSeen("the follower's first record", seen, 1)
      proxy.stop()
      const server = proxy.url.replace("nats://", "")
      const failed = yield* bounded("an append to a server that is gone", 60_000, Effect.flip(journal.append({ namespace: "gone", id: "a" }, 1, [event("2")])))
      assert.equal(failed._tag, "JournalError", failed.message)
      // Its message was sent (the client keeps it for the connection): whether it was stored is unknown.
      for (const words of ["Journal.append", "may or may not have been stored", `${prefix}_journal`, server]) assert.ok(failed.message.includes(words), failed.message)
      yield* expectError(Effect.asVoid(Stream.runCollect(journal.read({ namespace: "gone", id: "a" }))), "JournalError", `${prefix}_journal`, server)
      yield* expectError(journal.lastSeq, "JournalError", `${prefix}_journal`, server)
      // Meanwhile another process appends: the follower must learn of it once the server is back.
      yield* other.append({ namespace: "gone", id: "b" }, 0, [event("other")])
      proxy.start()
      // The failed append may have been stored (its outcome was unknown): the version tells.
      const version = yield* bounded("version after the server is back", 30_000,
        Effect.retry(journal.version({ namespace: "gone", id: "a" }), { times: 100, schedule: Schedule.spaced(100) }))
      const last = yield* journal.lastSeq
      yield* untilSeen("the follower catching up with the other process", seen, last)
      yield* journal.append({ namespace: "gone", id: "a" }, version, [event("3")])
      yield* untilSeen("the follower catching up", seen, last + 1)
      assert.deepEqual(seen, Array.from({ length: last + 1 }, (_, i) => i + 1), "every record once, in order")
      yield* Fiber.interrupt(follower)
    }))

  test(`NatsJournal [${target.name}] a private nats-server restarted on its store, by SIGTERM and by SIGKILL with appends in flight: nothing acknowledged is lost, appends go on, seqs stay dense`, () =>
    Effect.gen(function*() {
      const server = yield* privateNatsServer()
      const journal = yield* journalAt(server.url, "restart", { retries: 1 })
      const acknowledged: Array<string> = []
      const unknown: Array<string> = []
      /** `fibers` fibers appending `r/<fiber>` until `stop()` or a failure (an unknown outcome, recorded). */
      const appending = (round: string, fibers: number, stop: () => boolean) =>
        Effect.forEach(Array.from({ length: fibers }, (_, f) => f), (f) =>
          Effect.gen(function*() {
            for (let i = 0; !stop(); i++) {
              const payload = `${round}/${f}/${i}`
              const stream = { namespace: "r", id: String(f) }
              const result = yield* Effect.result(journal.append(stream, "any", [event(payload)]))
              if (result._tag === "Failure") return void unknown.push(payload)
              acknowledged.push(`${result.success.firstSeq} r/${f} ${result.success.version} ${payload}`)
            }
          }), { concurrency: "unbounded", discard: true })
      /** Waits until the journal answers again (the client reconnects by itself). */
      const back = bounded("the journal answering after the restart", 30_000, Effect.retry(journal.lastSeq, { schedule: Schedule.spaced(100) }))

      yield* appending("a", 4, () => acknowledged.length >= 20)
      yield* Effect.promise(() => server.stop("SIGTERM"))
      yield* Effect.promise(() => server.start())
      assert.equal(yield* back, acknowledged.length, "a clean shutdown keeps every acknowledged append")

      // Appends in flight when the server is killed: the acknowledged ones must survive.
      const before = acknowledged.length
      const inFlight = yield* Effect.forkChild(appending("b", 4, () => false))
      yield* bounded("appends before the kill", 30_000, Effect.repeat(Effect.void, { until: () => acknowledged.length >= before + 40, schedule: Schedule.spaced(5) }))
      yield* Effect.promise(() => server.stop("SIGKILL"))
      yield* bounded("the appends failing once the server is gone", 60_000, Fiber.join(inFlight))
      const acknowledgedBeforeKill = [...acknowledged]
      yield* Effect.promise(() => server.start())
      const lastSeq = yield* back
      assert.ok(lastSeq >= acknowledgedBeforeKill.length, `lastSeq ${lastSeq} after the kill, ${acknowledgedBeforeKill.length} acknowledged`)

      yield* appending("c", 2, () => acknowledged.length >= acknowledgedBeforeKill.length + 10)
      for (const reader of [journal, yield* journalAt(server.url, "restart")]) {
        const log = yield* logOf(reader)
        assert.deepEqual(log.map((line) => Number(line.split(" ")[0])), Array.from({ length: log.length }, (_, i) => i + 1), "seqs dense from 1")
        const inLog = new Set(log)
        for (const line of acknowledged) assert.ok(inLog.has(line), `acknowledged ${line} is in the log`)
        // Besides the acknowledged appends, the log holds only appends whose outcome was unknown, each at most once.
        const acknowledgedLines = new Set(acknowledged)
        const extra = log.filter((line) => !acknowledgedLines.has(line)).map((line) => line.split(" ")[3]!)
        assert.ok(extra.every((payload) => unknown.includes(payload)), `only unknown appends besides: ${extra.join(", ")}`)
        for (const id of ["0", "1", "2", "3"]) {
          const versions = log.filter((line) => line.split(" ")[1] === `r/${id}`).map((line) => Number(line.split(" ")[2]))
          assert.deepEqual(versions, Array.from({ length: versions.length }, (_, i) => i + 1), `versions of r/${id} dense`)
        }
      }
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`NatsJournal [${target.name}] a follower of another connection's appends keeps up through a server restart (its wake-ups do not stall)`, () =>
    Effect.gen(function*() {
      const server = yield* privateNatsServer()
      const writer = yield* journalAt(server.url, "watch")
      const reader = yield* journalAt(server.url, "watch")
      const seen: Array<number> = []
      // A read failed by the restart ends the follow: it resumes after the last record seen, as Subscriptions do.
      const resumed = Effect.suspend(() => Stream.runForEach(reader.follow((seen.at(-1) ?? 0) + 1), (r) => Effect.sync(() => void seen.push(r.seq))))
      yield* Effect.forkChild(Effect.forever(Effect.catchTag(resumed, "JournalError", () => Effect.sleep(100))))
      // Appends go on all the time, also while the server is gone (those fail, or are sent once it is back).
      let appended = 0
      let stop = false
      const appending = yield* Effect.forkChild(Effect.gen(function*() {
        while (!stop) {
          if ((yield* Effect.result(writer.append({ namespace: "w", id: "1" }, "any", [event("w")])))._tag === "Success") appended++
          yield* Effect.sleep(5)
        }
      }))
      yield* wallSleep(1_000)
      yield* Effect.promise(() => server.stop("SIGKILL"))
      // Long enough for the clients to notice (the watcher's pull in progress is lost with the server).
      yield* wallSleep(1_000)
      yield* Effect.promise(() => server.start())
      const restarted = appended
      yield* bounded("appends after the restart", 30_000, Effect.repeat(Effect.void, { until: () => appended >= restarted + 200, schedule: Schedule.spaced(10) }))
      stop = true
      yield* Fiber.join(appending)
      const lastSeq = yield* writer.lastSeq
      yield* bounded("the follower keeping up after the restart", 10_000, Effect.repeat(Effect.void, { until: () => seen.length >= lastSeq, schedule: Schedule.spaced(10) }))
      assert.deepEqual(seen, Array.from({ length: lastSeq }, (_, i) => i + 1), "every record once, in order")
    }).pipe(Effect.scoped, Effect.runPromise))

  natsTest("hostile and very long stream names round-trip, never meet, make only plain subject tokens, and keep their versions through truncation", (prefix) =>
    Effect.gen(function*() {
      const journal = yield* journalAt(target.url, prefix)
      const long = (char: string, length = 256) => char.repeat(length)
      const streams: ReadonlyArray<readonly [string, string]> = [
        ["a.b", "c"],
        ["a", "b.c"],
        ["*", ">"],
        [">", "*"],
        ["a", "*"],
        ["=2E", "x"],
        [".", "x"],
        ["==", "=="],
        ["a b", " "],
        ["\t", "\t\n"],
        ["日本", "\u{1F600}"],
        ["x", long("a", 240)],
        ["x", long("a", 241)],
        ["x", long("a")],
        ["x", `${long("a", 255)}b`],
        [long("."), long(">")],
        [long("."), `${long(">", 255)}*`]
      ]
      for (const [namespace, id] of streams) yield* journal.append({ namespace, id }, 0, [event(`${namespace}|${id}`)])
      for (const [namespace, id] of streams) {
        const records = yield* Stream.runCollect(journal.read({ namespace, id }))
        assert.deepEqual(records.map((r) => [r.namespace, r.id, r.version, text(r.payload)]), [[namespace, id, 1, `${namespace}|${id}`]], `${namespace}/${id}`)
        assert.equal(yield* journal.version({ namespace, id }), 1)
      }
      const replayed = (yield* Stream.runCollect(journal.replayFrom(0))).map((r) => [r.namespace, r.id])
      assert.deepEqual(replayed, streams.map(([namespace, id]) => [namespace, id]))
      const subjects = yield* withJetStream(target, async ({ jsm }) =>
        Object.keys((await jsm.streams.info(`${prefix}_journal`, { subjects_filter: ">" })).state.subjects ?? {}))
      assert.equal(subjects.length, streams.length, "one subject per stream: no two met")
      const plain = new RegExp(`^${prefix}\\.journal\\.s\\.[A-Za-z0-9_=-]+\\.[A-Za-z0-9_=-]+$`)
      for (const subject of subjects) assert.match(subject, plain, "no dot, wildcard or extra token from a name")
      assert.ok(subjects.some((subject) => subject.endsWith(".==")) === false && subjects.some((subject) => /\.==[0-9a-f]{64}$/.test(subject)), "long names are hashed")
      yield* journal.truncateBefore(streams.length + 1)
      for (const [namespace, id] of streams) {
        assert.equal(yield* journal.version({ namespace, id }), 1, `the version of ${namespace}/${id} survives truncation`)
        assert.deepEqual(yield* Stream.runCollect(journal.read({ namespace, id })), [])
      }
      yield* journal.append({ namespace: "x", id: long("a") }, 1, [event("again")])
      assert.equal(yield* journal.version({ namespace: "x", id: `${long("a", 255)}b` }), 1, "the stream whose name differs only at the end is untouched")
    }))

  natsTest("prefixes isolate journals sharing one connection (layerClient): logs, versions, followers and truncation", (prefix) =>
    Effect.gen(function*() {
      const other = yield* isolatedNatsPrefix(target)
      const client = Layer.succeedContext(yield* Layer.build(NatsClient.layer({ servers: target.url })))
      const first = yield* open(Journal.Journal, NatsJournal.layerClient({ prefix }).pipe(Layer.provide(client)))
      const second = yield* open(Journal.Journal, NatsJournal.layerClient({ prefix: other }).pipe(Layer.provide(client)))
      const seen: Array<string> = []
      const follower = yield* Effect.forkChild(Stream.runForEach(second.follow(0), (r) => Effect.sync(() => void seen.push(text(r.payload)))))
      yield* first.append({ namespace: "p", id: "1" }, 0, [event("first-1"), event("first-2")])
      yield* second.append({ namespace: "p", id: "1" }, 0, [event("second-1")])
      yield* untilSeen("the second journal's follower", seen, 1)
      assert.deepEqual([yield* first.lastSeq, yield* second.lastSeq], [2, 1])
      assert.deepEqual([yield* first.version({ namespace: "p", id: "1" }), yield* second.version({ namespace: "p", id: "1" })], [2, 1])
      yield* first.truncateBefore(3)
      assert.deepEqual((yield* logOf(second)), ["1 p/1 1 second-1"], "the other prefix's truncation removed nothing here")
      yield* wallSleep(200)
      assert.deepEqual(seen, ["second-1"], "the follower saw only its own journal")
      yield* Fiber.interrupt(follower)
    }))

  natsTest("bad options fail the layer build with a JournalError naming them", (prefix) =>
    Effect.gen(function*() {
      const openError = (options: NatsJournal.NatsJournalOptions, ...mentions: ReadonlyArray<string>) =>
        expectError(Effect.scoped(journalAt(target.url, prefix, options)), "JournalError", "NatsJournal", ...mentions)
      yield* openError({ prefix: "" }, "prefix", '""')
      yield* openError({ prefix: "a.b" }, "prefix", '"a.b"')
      yield* openError({ prefix: "a>" }, "prefix", '"a>"')
      yield* openError({ prefix: "x".repeat(33) }, "prefix", "1 to 32")
      yield* openError({ replicas: 0 }, "replicas", "got 0")
      yield* openError({ replicas: 1.5 }, "replicas", "1.5")
      yield* openError({ storage: "disk" as "file" }, "storage", '"disk"')
      yield* openError({ duplicateWindowMs: 10 }, "duplicateWindowMs", "got 10")
      yield* openError({ retries: -1 }, "retries", "got -1")
      const streams = yield* withJetStream(target, async ({ jsm }) => (await jsm.streams.names().next()).filter((name) => name.startsWith(prefix)))
      assert.deepEqual(streams, [], "nothing was created")
    }))

  test(`NatsJournal [${target.name}] an existing stream that would expire, drop, reorder or hide messages is refused naming the setting; a fit one is used`, () =>
    Effect.gen(function*() {
      const unfit: ReadonlyArray<readonly [Partial<StreamConfig>, ...Array<string>]> = [
        [{ max_age: 3_600_000_000_000 }, "max age (TTL) 3600 s"],
        [{ max_msgs: 1_000 }, "a limit of 1000 messages (max_msgs)"],
        [{ max_bytes: 1_048_576 }, "a size limit of 1048576 bytes (max_bytes)"],
        [{ max_msgs_per_subject: 5 }, "max_msgs_per_subject is 5"],
        [{ deny_purge: true }, "deny_purge"],
        [{ allow_direct: false }, "allow_direct is off"],
        [{ storage: StorageType.Memory }, "keeps its data in memory, but storage \"file\" was asked"],
        [{ duplicate_window: 1_000_000_000 }, "duplicate_window is 1000 ms, below 120000 ms"],
        [{ retention: RetentionPolicy.Workqueue }, "has workqueue retention"],
        [{ sealed: true }, "sealed"]
      ]
      for (const [changes, ...mentions] of unfit) {
        const prefix = yield* isolatedNatsPrefix(target)
        yield* prepareStream(prefix, changes)
        yield* expectError(Effect.scoped(journalAt(target.url, prefix)), "JournalError", `the existing stream ${prefix}_journal`, target.url, ...mentions)
      }
      const elsewhere = yield* isolatedNatsPrefix(target)
      yield* withJetStream(target, async ({ jsm }) => void await jsm.streams.add({ name: `${elsewhere}_journal`, subjects: [`${elsewhere}.other.>`] }))
      yield* expectError(Effect.scoped(journalAt(target.url, elsewhere)), "JournalError", "does not hold the subjects", `${elsewhere}.journal.>`)
      const fit = yield* isolatedNatsPrefix(target)
      yield* prepareStream(fit, { duplicate_window: 600_000_000_000 })
      const journal = yield* journalAt(target.url, fit)
      yield* journal.append({ namespace: "f", id: "1" }, 0, [event("fits")])
      assert.deepEqual(yield* logOf(journal), ["1 f/1 1 fits"])
    }).pipe(Effect.scoped, Effect.runPromise))

  natsTest("a damaged message fails the reads that meet it with a JournalError naming the message; reads that do not meet it go on", (prefix) =>
    Effect.gen(function*() {
      const journal = yield* journalAt(target.url, prefix)
      yield* journal.append({ namespace: "d", id: "a" }, 0, [event("ok")])
      yield* publishRaw(prefix, "d.b", new Uint8Array([0xc1, 0x00]))
      // A well-formed message after it (lastSeq 2, timestamp 5, no checkpoint or truncation; stream d/c at version 1).
      yield* publishRaw(prefix, "d.c", pack(["annals.nats.journal", 1, [2, 5, 0, 0, 0], "d", "c", 1, [[2, 1, 5, "E", new TextEncoder().encode("fine"), null]], null]))
      const damaged = ["damaged", "message 2", `${prefix}.journal.s.d.b`, `${prefix}_journal`, "not msgpack"]
      yield* expectError(Effect.asVoid(Stream.runCollect(journal.replayFrom(0))), "JournalError", "Journal.replayFrom", ...damaged)
      yield* expectError(Effect.asVoid(Stream.runCollect(journal.read({ namespace: "d", id: "b" }))), "JournalError", "Journal.read", ...damaged)
      yield* expectError(journal.version({ namespace: "d", id: "b" }), "JournalError", "Journal.version", ...damaged)
      assert.deepEqual((yield* Stream.runCollect(journal.read({ namespace: "d", id: "c" }))).map((r) => text(r.payload)), ["fine"])
      assert.deepEqual(yield* logOf(journal).pipe(Effect.as([]), Effect.orElseSucceed(() => ["failed"])), ["failed"])
      assert.equal(yield* journal.lastSeq, 2)
      const appended = yield* journal.append({ namespace: "d", id: "a" }, 1, [event("after")])
      assert.equal(appended.firstSeq, 3, "appends go on after the damaged message")

      // A damaged last message: the journal's position is unknown, so every operation fails naming it.
      for (const [data, words] of [
        [pack(["something", "else"]), "not an annals journal message"],
        [pack(["annals.nats.journal", 2, [4, 5, 0, 0, 0], null, null, null, [], null]), "format version 2"],
        [pack(["annals.nats.journal", 1, [4, -5, 0, 0, 0], null, null, null, [], null]), "position"],
        [pack(["annals.nats.journal", 1, [4, 5, 0, 0, 0], "d", "a", 3, [[4, 3, 5, "E", 7, null]], "gone"]), "missing"]
      ] as const) {
        const alone = yield* isolatedNatsPrefix(target)
        const broken: Journal.Journal = yield* journalAt(target.url, alone)
        yield* broken.append({ namespace: "d", id: "a" }, 0, [event("ok")])
        yield* publishRaw(alone, "d.a", data)
        const at = ["damaged", "message 2", `${alone}.journal.s.d.a`, words]
        if (words === "missing") {
          // Only the payloads are gone: the position reads, the records do not.
          yield* expectError(Effect.asVoid(Stream.runCollect(broken.read({ namespace: "d", id: "a" }))), "JournalError", ...at, "object gone")
          assert.equal(yield* broken.lastSeq, 4)
        } else {
          yield* expectError(broken.lastSeq, "JournalError", ...at)
          yield* expectError(broken.append({ namespace: "d", id: "a" }, 1, [event("no")]), "JournalError", ...at)
          yield* expectError(Effect.asVoid(Stream.runCollect(broken.replayFrom(0))), "JournalError", ...at)
        }
      }
    }))

  natsTest("an append too large for one message keeps its payloads in the object store, round-trips, and truncation deletes the object", (prefix) =>
    Effect.gen(function*() {
      const maxPayload = yield* withJetStream(target, async (access) => access.maxPayload)
      const journal = yield* journalAt(target.url, prefix)
      const big = new Uint8Array(randomBytes(3 * 1024 * 1024))
      const halves = [new Uint8Array(randomBytes(Math.ceil(maxPayload * 0.6))), new Uint8Array(randomBytes(Math.ceil(maxPayload * 0.6)))]
      yield* journal.append({ namespace: "big", id: "one" }, 0, [{ type: "Big", payload: big }])
      yield* journal.append({ namespace: "big", id: "two" }, 0, halves.map((payload) => ({ type: "Half", payload })))
      assert.equal((yield* objectsOf(prefix)).length, 2, "one object per spilled append")
      const sizes = yield* withJetStream(target, async ({ jsm }) =>
        Promise.all([1, 2].map(async (seq) => (await jsm.streams.getMessage(`${prefix}_journal`, { seq }))!.data.length)))
      for (const size of sizes) assert.ok(size < 4_096, `the message holds no payload (${size} bytes)`)
      const one = yield* Stream.runCollect(journal.read({ namespace: "big", id: "one" }))
      assert.deepEqual(one.map((r) => [r.seq, r.version, r.type]), [[1, 1, "Big"]])
      assert.ok(Buffer.from(one[0]!.payload).equals(Buffer.from(big)), "the 3 MiB payload round-trips")
      const replayed = yield* Stream.runCollect(journal.replayFrom(2))
      assert.deepEqual(replayed.map((r) => [r.seq, r.version, r.payload.length]), [[2, 1, halves[0]!.length], [3, 2, halves[1]!.length]])
      assert.ok(replayed.every((r, i) => Buffer.from(r.payload).equals(Buffer.from(halves[i]!))), "both payloads, in order")
      yield* journal.append({ namespace: "small", id: "s" }, 0, [event("small")])
      yield* journal.truncateBefore(2)
      assert.equal((yield* objectsOf(prefix)).length, 1, "the truncated append's object is deleted")
      yield* journal.truncateBefore(4)
      assert.deepEqual(yield* objectsOf(prefix), [], "and the second one's")
      assert.deepEqual([yield* journal.version({ namespace: "big", id: "one" }), yield* journal.version({ namespace: "big", id: "two" })], [1, 2])
      assert.deepEqual(yield* logOf(journal), ["4 small/s 1 small"])
    }))

  natsTest("no server at open, or a bad request timeout, fails the build with a NatsClientError naming the address (without its password) or the option", () =>
    Effect.gen(function*() {
      const error = yield* expectError(Effect.scoped(journalAt("nats://user:secret@127.0.0.1:1", "nothing")), "NatsClientError", "127.0.0.1:1", "cannot connect")
      assert.ok(!error.message.includes("secret"), error.message)
      for (const requestTimeoutMs of [0, 2.5]) {
        yield* expectError(Effect.scoped(journalAt(target.url, "nothing", { requestTimeoutMs })), "NatsClientError", "requestTimeoutMs", String(requestTimeoutMs))
      }
    }))

  /** Creates the journal stream of `prefix` by hand, as the layer would, with `changes`; `sealed` is set afterwards (a stream is never created sealed). */
  const prepareStream = (prefix: string, changes: Partial<StreamConfig>) =>
    withJetStream(target, async ({ jsm }) => {
      const { sealed, ...rest } = changes
      const created = await jsm.streams.add({ name: `${prefix}_journal`, subjects: [`${prefix}.journal.>`], allow_direct: true, duplicate_window: 120_000_000_000, ...rest })
      const seal: Partial<StreamConfig> = { ...created.config, sealed: true }
      if (sealed === true) await jsm.streams.update(created.config.name, seal)
    })

  /** Publishes `data` on the journal subject `<prefix>.journal.s.<tokens>`, as no journal would. */
  const publishRaw = (prefix: string, tokens: string, data: Uint8Array) =>
    withJetStream(target, async ({ js }) => void await js.publish(`${prefix}.journal.s.${tokens}`, data))

  /** The names of the objects in the journal's payload store. */
  const objectsOf = (prefix: string) =>
    withJetStream(target, async ({ js }) => (await (await new Objm(js).open(`${prefix}_payloads`)).list()).map((info) => info.name))
}
