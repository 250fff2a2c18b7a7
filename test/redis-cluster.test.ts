/**
 * The Redis layers on a real Redis Cluster of 3 masters started by this file
 * (`privateRedisCluster`), through `RedisClient.layerCluster`: the Journal (cases, follow,
 * in-flight), SnapshotStore and CursorStore conformance suites with each case's prefix on the
 * next node in turn, so every node holds stores; then one store per node used at once (a restore's
 * transaction on each node), scripts after every node lost its script cache, WAIT on the script's
 * node, a node dropping its connections under an append, and no connection left after the close.
 */
import { Context, Effect, Exit, Fiber, Layer, Option, Schedule, Scope, Stream } from "effect"
import assert from "node:assert/strict"
import { after, test } from "node:test"
import { Command } from "ioredis"
import { CursorStore, Journal, SnapshotStore } from "../src/index.ts"
import { RedisClient, RedisCursorStore, RedisJournal, RedisSnapshotStore, RedisStores } from "../src/redis/index.ts"
import { register } from "./conformance/harness.ts"
import { type CursorStorage, cursorStoreCases } from "./conformance/CursorStore.ts"
import { type JournalStorage, journalCases } from "./conformance/Journal.ts"
import { journalFollowCases } from "./conformance/JournalFollow.ts"
import { journalInFlightCases } from "./conformance/JournalInFlight.ts"
import { snap, type SnapshotStorage, snapshotStoreCases } from "./conformance/SnapshotStore.ts"
import { type ClusterNodeAddress, privateRedisCluster, probeClient, redisTarget } from "./support/redis.ts"

const target = await redisTarget()

/** The address (`host:port`) of the master that serves each slot. */
const slotOwners = async (node: ClusterNodeAddress): Promise<ReadonlyArray<string>> => {
  const client = probeClient(`redis://${node.host}:${node.port}`)
  await client.connect()
  const ranges = await client.call("CLUSTER", "SLOTS") as ReadonlyArray<readonly [number, number, readonly [string, number]]>
  client.disconnect()
  const owners: Array<string> = []
  for (const [from, to, [host, port]] of ranges) for (let slot = from; slot <= to; slot++) owners[slot] = `${host}:${port}`
  return owners
}

/** A fresh prefix whose hash tag lands on `node`. */
const prefixOn = (owners: ReadonlyArray<string>, node: string): string => {
  for (;;) {
    const prefix = `annals-c-${Math.random().toString(16).slice(2, 10)}`
    if (owners[new Command("GET", [`{${prefix}}`]).getSlot()!] === node) return prefix
  }
}

if (target !== undefined) {
  const scope = Effect.runSync(Scope.make())
  after(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  const nodes = await Effect.runPromise(Scope.provide(scope)(privateRedisCluster(3)))
  const owners = await slotOwners(nodes[0]!)
  const masters = [...new Set(owners)].sort()
  const name = `${target.name} cluster of ${masters.length}`
  const client = RedisClient.layerCluster({ nodes, options: { redisOptions: { commandTimeout: 5_000 } } })

  /** Each call a fresh prefix on the next master in turn. */
  const rotating = () => {
    let next = 0
    return Effect.sync(() => prefixOn(owners, masters[next++ % masters.length]!))
  }
  const journals = rotating()
  const journalFixture = {
    name,
    durable: true,
    storage: Effect.map(journals, (prefix): JournalStorage => ({ layer: RedisJournal.layerClient({ prefix }).pipe(Layer.provide(client)) }))
  }
  register("Journal", journalFixture, journalCases)
  register("Journal follow", journalFixture, journalFollowCases)
  register("Journal", journalFixture, journalInFlightCases)
  const snapshots = rotating()
  register("SnapshotStore", {
    name,
    durable: true,
    storage: Effect.map(snapshots, (prefix): SnapshotStorage => ({
      layer: (options?: SnapshotStore.SnapshotStoreOptions) => RedisSnapshotStore.layerClient({ prefix, ...options }).pipe(Layer.provide(client))
    }))
  }, snapshotStoreCases)
  const cursors = rotating()
  register("CursorStore", {
    name,
    durable: true,
    storage: Effect.map(cursors, (prefix): CursorStorage => ({ layer: RedisCursorStore.layerClient({ prefix }).pipe(Layer.provide(client)) }))
  }, cursorStoreCases)

  /** The three stores under `prefix` over one cluster client. */
  const storesOn = (prefix: string) =>
    Effect.map(Layer.build(RedisStores.layerClient({ prefix, blockMs: 100 }).pipe(Layer.provide(client))), (context) => ({
      journal: Context.get(context, Journal.Journal),
      snapshots: Context.get(context, SnapshotStore.SnapshotStore),
      cursors: Context.get(context, CursorStore.CursorStore)
    }))

  test(`RedisStores [${name}] one store on each node at once: a restore of several chunks (one MULTI on the store's node), appends, follow, truncation, snapshots and cursors`, () =>
    Effect.gen(function*() {
      const prefixes = masters.map((node) => prefixOn(owners, node))
      yield* Effect.forEach(prefixes, (prefix) =>
        Effect.gen(function*() {
          const { cursors, journal, snapshots } = yield* storesOn(prefix)
          const records = Array.from({ length: 2_500 }, (_, i) => ({
            seq: i + 1, namespace: "r", id: String(i % 3), version: Math.floor(i / 3) + 1, type: "E", timestamp: i, payload: new Uint8Array([i % 256])
          }))
          yield* journal.restore(records)
          const follower = yield* storesOn(prefix)
          const seen = yield* Effect.forkChild(Stream.runCollect(Stream.take(follower.journal.follow(2_500), 3)))
          for (let k = 0; k < 2; k++) yield* journal.append({ namespace: "a", id: prefix }, k, [{ type: "E", payload: new Uint8Array([k]) }])
          assert.deepEqual((yield* Fiber.join(seen)).map((r) => r.seq), [2_500, 2_501, 2_502], `the follower on ${prefix}`)
          yield* journal.truncateBefore(2_400)
          assert.equal((yield* Stream.runCollect(journal.replayFrom(0))).length, 103)
          yield* snapshots.put(snap("s", "a", 1))
          assert.equal(Option.getOrThrow(yield* snapshots.get("s", "a")).version, 1)
          const lease = yield* cursors.acquire("c", "me", 10_000)
          yield* cursors.commit("c", 2_502, lease)
          assert.equal(Option.getOrThrow(yield* cursors.get("c")).seq, 2_502)
        }), { concurrency: "unbounded", discard: true })
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`RedisStores [${name}] after every node lost its scripts (SCRIPT FLUSH, as after a restart), the next calls load them again on every master`, () =>
    Effect.gen(function*() {
      const prefixes = masters.map((node) => prefixOn(owners, node))
      const stores = yield* Effect.forEach(prefixes, storesOn)
      for (const { journal } of stores) yield* journal.append({ namespace: "f", id: "a" }, 0, [{ type: "E", payload: new Uint8Array([1]) }])
      yield* Effect.promise(() =>
        Promise.all(nodes.map(async (node) => {
          const raw = probeClient(`redis://${node.host}:${node.port}`)
          await raw.connect()
          await raw.call("SCRIPT", "FLUSH")
          raw.disconnect()
        }))
      )
      for (const { cursors, journal, snapshots } of stores) {
        assert.equal((yield* journal.append({ namespace: "f", id: "a" }, 1, [{ type: "E", payload: new Uint8Array([2]) }])).version, 2)
        yield* snapshots.put(snap("s", "a", 1))
        yield* cursors.commit("c", 1)
      }
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`RedisJournal [${name}] wait: each append's WAIT goes to the node that ran its script (a reserved connection follows the store's slot)`, () =>
    Effect.gen(function*() {
      const waits = () =>
        Effect.promise(() =>
          Promise.all(nodes.map(async (node) => {
            const raw = probeClient(`redis://${node.host}:${node.port}`)
            await raw.connect()
            const stats = String(await raw.call("INFO", "commandstats"))
            raw.disconnect()
            return [`${node.host}:${node.port}`, Number(/cmdstat_wait:calls=(\d+)/.exec(stats)?.[1] ?? 0)] as const
          }))
        )
      const before = new Map(yield* waits())
      const home = masters[1]!
      const journal = Context.get(
        yield* Layer.build(RedisJournal.layerClient({ prefix: prefixOn(owners, home), wait: { replicas: 0, timeoutMs: 100 } }).pipe(Layer.provide(client))),
        Journal.Journal
      )
      const appends = 5
      for (let k = 0; k < appends; k++) yield* journal.append({ namespace: "w", id: "a" }, k, [{ type: "E", payload: new Uint8Array([k]) }])
      const added = (yield* waits()).map(([node, calls]) => [node, calls - before.get(node)!] as const)
      assert.deepEqual(added, nodes.map((node) => [`${node.host}:${node.port}`, `${node.host}:${node.port}` === home ? appends : 0]))
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`RedisJournal [${name}] a node dropping its connections under an append in flight: the append fails at once and its retry by id stores it once, without waiting for commandTimeout`, () =>
    Effect.gen(function*() {
      const home = masters[2]!
      const journal = Context.get(yield* Layer.build(RedisJournal.layerClient({ prefix: prefixOn(owners, home) }).pipe(Layer.provide(client))), Journal.Journal)
      const stream = { namespace: "k", id: "a" }
      yield* journal.append(stream, 0, [{ type: "E", payload: new Uint8Array([0]) }])
      const raw = probeClient(`redis://${home}`)
      yield* Effect.promise(() => raw.connect())
      // The node holds writes back for a moment: the append is in flight when its connection is killed.
      const pauseMs = 1_000
      yield* Effect.promise(() => raw.call("CLIENT", "PAUSE", String(pauseMs), "WRITE"))
      const started = Date.now()
      const append = yield* Effect.forkChild(journal.append(stream, 1, [{ type: "E", payload: new Uint8Array([1]) }]))
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 100)))
      yield* Effect.promise(() => raw.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))
      raw.disconnect()
      assert.equal((yield* Fiber.join(append)).version, 2)
      const took = Date.now() - started
      assert.ok(took < 4_000, `the append returned after ${took} ms (commandTimeout 5,000 ms)`)
      assert.equal(yield* journal.version(stream), 2, "stored once")
    }).pipe(Effect.scoped, Effect.runPromise))

  test(`RedisClient [${name}] every node's connections are closed when the layers close, reserved ones included`, () =>
    Effect.gen(function*() {
      const clients = Effect.promise(() =>
        Promise.all(nodes.map(async (node) => {
          const raw = probeClient(`redis://${node.host}:${node.port}`)
          await raw.connect()
          const list = String(await raw.call("CLIENT", "LIST"))
          raw.disconnect()
          return list.trim().split("\n").length - 1
        }))
      )
      const before = yield* clients
      yield* Effect.scoped(Effect.forEach(masters, (node) =>
        Effect.gen(function*() {
          const { journal } = yield* storesOn(prefixOn(owners, node))
          const follower = yield* Effect.forkChild(Stream.runCollect(Stream.take(journal.follow(1), 1_500)))
          yield* journal.restore(Array.from({ length: 1_500 }, (_, i) => ({ seq: i + 1, namespace: "r", id: "a", version: i + 1, type: "E", timestamp: 1, payload: new Uint8Array([1]) })))
          assert.equal((yield* Fiber.join(follower)).length, 1_500)
        }), { concurrency: "unbounded", discard: true }))
      const after = yield* Effect.repeat(clients, { until: (counts) => counts.every((n, i) => n <= before[i]!), times: 20, schedule: Schedule.spaced(50) })
      assert.deepEqual(after, before)
    }).pipe(Effect.scoped, Effect.runPromise))
}
