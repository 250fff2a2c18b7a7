/**
 * Projection exports to a NATS JetStream object store (`NatsArtifacts`) over the machine's NATS
 * server, with the NATS Journal, SnapshotStore and CursorStore (so the export lease is a KV lease),
 * each case under a store prefix of its own and each replica on a connection of its own:
 *
 * - export, then import into a replica on another connection: the objects are named like the
 *   directory layout, the manifest written last; following from its cursor equals a replica that
 *   replayed everything, and folds only what came after the artifact; `run`'s periodic exports too;
 * - replicas racing to export make one artifact per round;
 * - a crash between the data and the manifest (data objects written alone) is never imported, and
 *   the next export removes it;
 * - a damaged data object (another SHA-256 than its manifest says) fails the import naming it;
 * - `NatsClient.removeStore` removes the object store with the other streams;
 * - existing object stores whose settings would drop artifacts, and bad options, are refused.
 */
import { Objm, type ObjectStoreOptions } from "@nats-io/obj"
import { type Context, Effect, Layer, Option, type Scope } from "effect"
import assert from "node:assert/strict"
import { Buffer } from "node:buffer"
import { test } from "node:test"
import { type ArtifactStore, CursorStore, Journal, Projection, type SnapshotStore } from "../src/index.ts"
import { NatsArtifacts, NatsClient, NatsStores } from "../src/nats/index.ts"
import { expectError } from "./conformance/harness.ts"
import { appendConcurrently, balances, reference } from "./support/balances.ts"
import { isolatedNatsPrefix, natsTarget, removeNatsPrefix } from "./support/nats.ts"
import { withJetStream } from "./support/natsStores.ts"
import { eventually, replayAll } from "./runtime/harness.ts"

const target = await natsTarget()

/** The object name prefix of round `round` of the `balances`@1 fold. */
const roundPrefix = (round: number) => `${Buffer.from("balances", "utf8").toString("hex")}@1/${String(round).padStart(20, "0")}/`

/** What one replica's process has: the NATS stores and the artifact store on a connection of its own. */
type Services = Journal.Journal | SnapshotStore.SnapshotStore | CursorStore.CursorStore | NatsClient.NatsClient

interface Replica {
  readonly artifacts: ArtifactStore.ArtifactStore
  /** Runs `effect` with this replica's services. */
  readonly run: <A, E>(effect: Effect.Effect<A, E, Services | Scope.Scope>) => Effect.Effect<A, E, Scope.Scope>
}

if (target !== undefined) {
  const natsTest = (name: string, body: (prefix: string) => Effect.Effect<void, unknown, Scope.Scope>) =>
    test(`Projection exports to NATS [${target.name}] ${name}`, () => Effect.runPromise(Effect.scoped(Effect.flatMap(isolatedNatsPrefix(target), body))))

  /** A replica's process: the NATS stores under `prefix` and its artifact store over a connection of their own. */
  const replica = (prefix: string): Effect.Effect<Replica, unknown, Scope.Scope> =>
    Effect.gen(function*() {
      const context: Context.Context<Services> = yield* Layer.build(
        NatsStores.layerClient({ prefix }).pipe(Layer.provideMerge(NatsClient.layer({ servers: target.url })))
      )
      const artifacts = yield* Effect.provideContext(NatsArtifacts.make({ prefix }), context)
      return { artifacts, run: (effect) => Effect.provideContext(effect, context) }
    })

  /** Opens the artifact store under `prefix` on a connection of its own, closed afterwards. */
  const open = (prefix: string, options: NatsArtifacts.NatsArtifactsOptions = {}) =>
    Effect.scoped(Effect.provide(NatsArtifacts.make({ prefix, ...options }), NatsClient.layer({ servers: target.url })))

  /** The prefix's artifact objects (deleted ones left out): name → revision of its metadata. */
  const objectsOf = (prefix: string) =>
    withJetStream(target, async ({ js }) => {
      const store = await new Objm(js).open(`${prefix}_artifacts`)
      const names = (await store.list()).map((info) => info.name)
      return new Map(await Promise.all(names.map(async (name) => [name, (await store.info(name))!.revision] as const)))
    })

  /** Stores `bytes` as the object `name` of the prefix's artifact store, as a crashed writer or a damage would. */
  const putRaw = (prefix: string, name: string, bytes: Uint8Array) =>
    withJetStream(target, async ({ js }) => void await (await new Objm(js).open(`${prefix}_artifacts`)).putBlob({ name }, bytes))

  /** The bytes of the object `name` of the prefix's artifact store. */
  const getRaw = (prefix: string, name: string) =>
    withJetStream(target, async ({ js }) => {
      const bytes = await (await new Objm(js).open(`${prefix}_artifacts`)).getBlob(name)
      assert.ok(bytes !== null, `the object ${name} exists`)
      return bytes
    })

  /** A replica of `balances` named `name` running in `on`, caught up after `count` appends from `on`. */
  const caughtUp = (on: Replica, name: string, count: number) =>
    on.run(Effect.gen(function*() {
      yield* appendConcurrently(yield* Journal.Journal, 4, count)
      const running = yield* Projection.run(balances().projection, { replica: name })
      yield* running.awaitCaughtUp
      return running
    }))

  natsTest("export, then import into a replica on another connection: following from its cursor equals a replica that replayed everything", (prefix) =>
    Effect.gen(function*() {
      const a = yield* replica(prefix)
      const b = yield* replica(prefix)
      const running = yield* caughtUp(a, "a", 120)
      const manifest = Option.getOrThrow(yield* running.exportState({ artifacts: a.artifacts, round: 1 }))
      assert.equal(manifest.cursor, (yield* running.point).seq)
      assert.equal(manifest.writer, running.owner)
      const objects = yield* objectsOf(prefix)
      const [state, manifestObject] = [`${roundPrefix(1)}state.msgpack`, `${roundPrefix(1)}MANIFEST.json`]
      assert.deepEqual([...objects.keys()].sort(), [manifestObject, state], "one data object and the manifest, named like the directory layout")
      assert.ok(objects.get(manifestObject)! > objects.get(state)!, "the manifest was written after the data")
      assert.deepEqual(JSON.parse(Buffer.from(yield* getRaw(prefix, manifestObject)).toString("utf8")), manifest)

      yield* a.run(Effect.flatMap(Journal.Journal, (journal) => appendConcurrently(journal, 4, 40, 120)))
      const fresh = balances()
      const imported = yield* b.run(Effect.gen(function*() {
        const found = Option.getOrThrow(yield* Projection.importLatest(fresh.projection, { artifacts: b.artifacts, replica: "b" }))
        assert.deepEqual(yield* Projection.importLatest(fresh.projection, { artifacts: b.artifacts, replica: "b" }), Option.none(), "already there")
        const other = yield* Projection.run(fresh.projection, { replica: "b" })
        yield* other.awaitCaughtUp
        return { found, state: yield* other.get, all: yield* replayAll(yield* Journal.Journal) }
      }))
      assert.deepEqual(imported.found, manifest)
      yield* running.awaitCaughtUp
      assert.deepEqual(imported.state, reference(imported.all))
      assert.deepEqual(imported.state, yield* running.get)
      const after = imported.all.filter((r) => r.namespace === "ledger" && r.seq > manifest.cursor).length
      assert.equal(fresh.counter.calls, after, "the new replica folded only what came after the artifact")
    }))

  natsTest("run's periodic exports write rounds to the object store, which a replica imports", (prefix) =>
    Effect.gen(function*() {
      const a = yield* replica(prefix)
      const everyMs = 250
      const running = yield* a.run(Effect.gen(function*() {
        yield* appendConcurrently(yield* Journal.Journal, 2, 30)
        return yield* Projection.run(balances().projection, { replica: "a", exports: { artifacts: a.artifacts, everyMs } })
      }))
      yield* running.awaitCaughtUp
      yield* eventually("two rounds are exported", Effect.map(a.artifacts.completeRounds("balances", 1), (rounds) => rounds.length >= 2))
      const rounds = yield* a.artifacts.completeRounds("balances", 1)
      assert.ok(rounds.every((round, i) => i === 0 || round > rounds[i - 1]!), `rounds ascend: ${rounds.join(", ")}`)
      const manifest = Option.getOrThrow(yield* a.run(Projection.importLatest(balances().projection, { artifacts: a.artifacts, replica: "b" })))
      assert.equal(manifest.round, rounds[rounds.length - 1])
      assert.equal(manifest.writer, running.owner)
    }))

  natsTest("replicas on connections of their own racing to export make one artifact per round", (prefix) =>
    Effect.gen(function*() {
      const replicas = yield* Effect.forEach(["a", "b", "c"], () => replica(prefix))
      yield* replicas[0]!.run(Effect.flatMap(Journal.Journal, (journal) => appendConcurrently(journal, 3, 90)))
      const running = yield* Effect.forEach(replicas, (on, i) =>
        on.run(Effect.tap(Projection.run(balances().projection, { replica: `r${i}` }), (r) => r.awaitCaughtUp)))
      for (const round of [3, 4]) {
        const results = yield* Effect.forEach(running, (r, i) => r.exportState({ artifacts: replicas[i]!.artifacts, round }), { concurrency: "unbounded" })
        assert.equal(results.filter(Option.isSome).length, 1, `round ${round}: one export`)
        const again = yield* Effect.forEach(running, (r, i) => r.exportState({ artifacts: replicas[i]!.artifacts, round }), { concurrency: "unbounded" })
        assert.equal(again.filter(Option.isSome).length, 0, `round ${round} is not exported twice`)
      }
      const lower = yield* running[1]!.exportState({ artifacts: replicas[1]!.artifacts, round: 2 })
      assert.deepEqual(lower, Option.none(), "a round below the newest is not exported")
      assert.deepEqual(yield* replicas[2]!.artifacts.completeRounds("balances", 1), [3, 4])
      assert.deepEqual([...(yield* objectsOf(prefix)).keys()].sort(), [3, 4].flatMap((round) => [`${roundPrefix(round)}MANIFEST.json`, `${roundPrefix(round)}state.msgpack`]))
    }))

  natsTest("a crash between the data and the manifest is never imported, and the next export removes it", (prefix) =>
    Effect.gen(function*() {
      const a = yield* replica(prefix)
      const running = yield* caughtUp(a, "a", 60)
      const first = Option.getOrThrow(yield* running.exportState({ artifacts: a.artifacts, round: 1 }))
      // Exports of rounds 2 and 3 that crashed after writing their data objects.
      yield* putRaw(prefix, `${roundPrefix(2)}state.msgpack`, new Uint8Array([1, 2, 3]))
      yield* putRaw(prefix, `${roundPrefix(3)}state.msgpack`, new Uint8Array([4, 5, 6]))
      assert.deepEqual(yield* a.artifacts.completeRounds("balances", 1), [1])
      const imported = yield* a.run(Projection.importLatest(balances().projection, { artifacts: a.artifacts, replica: "b" }))
      assert.deepEqual(imported, Option.some(first), "the import takes the newest complete round")

      yield* a.run(Effect.flatMap(Journal.Journal, (journal) => appendConcurrently(journal, 2, 10, 60)))
      yield* running.awaitCaughtUp
      const third = Option.getOrThrow(yield* running.exportState({ artifacts: a.artifacts, round: 3 }))
      assert.equal(third.cursor, (yield* running.point).seq)
      const names = [...(yield* objectsOf(prefix)).keys()].sort()
      assert.deepEqual(names, [1, 3].flatMap((round) => [`${roundPrefix(round)}MANIFEST.json`, `${roundPrefix(round)}state.msgpack`]), "round 2's leftover is gone")
      const reread = yield* a.run(Effect.gen(function*() {
        const manifest = yield* Projection.importLatest(balances().projection, { artifacts: a.artifacts, replica: "c" })
        const c = yield* Projection.run(balances().projection, { replica: "c" })
        yield* c.awaitCaughtUp
        return { manifest, state: yield* c.get }
      }))
      assert.deepEqual(reread.manifest, Option.some(third), "round 3 holds the new export, not what the crash left")
      assert.deepEqual(reread.state, yield* running.get)
    }))

  natsTest("the store never replaces an object: of writers racing for one round one writes the manifest; a writer stopped before its manifest removes its data", (prefix) =>
    Effect.gen(function*() {
      const { artifacts } = yield* replica(prefix)
      const ref = { projection: "balances", version: 1, round: 7 }
      const bytes = (text: string) => new Uint8Array(Buffer.from(text, "utf8"))
      const writers = Array.from({ length: 6 }, (_, i) => i)
      const won = yield* Effect.forEach(writers, (i) =>
        Effect.scoped(Effect.gen(function*() {
          const writer = yield* artifacts.writeRound(ref)
          yield* writer.writeFile(`part-${i}`, bytes(`part of writer ${i}`))
          return (yield* writer.writeManifest(bytes(`manifest of writer ${i}`))) ? [i] : []
        })), { concurrency: "unbounded" })
      assert.equal(won.flat().length, 1, `one writer wrote the manifest: ${JSON.stringify(won)}`)
      const winner = won.flat()[0]!
      assert.equal(Buffer.from((yield* artifacts.read(ref, "MANIFEST.json"))!).toString("utf8"), `manifest of writer ${winner}`)
      assert.deepEqual(yield* artifacts.completeRounds("balances", 1), [7])

      const again = yield* Effect.flip(Effect.scoped(Effect.flatMap(artifacts.writeRound(ref), (writer) => writer.writeFile(`part-${winner}`, bytes("other")))))
      assert.match(again.message, /exists already/)
      assert.equal(Buffer.from((yield* artifacts.read(ref, `part-${winner}`))!).toString("utf8"), `part of writer ${winner}`, "the data stays as written")

      const stopped = { ...ref, round: 8 }
      yield* Effect.scoped(Effect.flatMap(artifacts.writeRound(stopped), (writer) => writer.writeFile("state.msgpack", bytes("never completed"))))
      assert.equal(yield* artifacts.read(stopped, "state.msgpack"), undefined, "the stopped writer's data object is gone")
      assert.deepEqual(yield* artifacts.completeRounds("balances", 1), [7])
    }))

  natsTest("a damaged data object fails the import naming the object; the replica's cursor does not move", (prefix) =>
    Effect.gen(function*() {
      const a = yield* replica(prefix)
      const running = yield* caughtUp(a, "a", 40)
      Option.getOrThrow(yield* running.exportState({ artifacts: a.artifacts, round: 1 }))
      const state = `${roundPrefix(1)}state.msgpack`
      const bytes = yield* getRaw(prefix, state)
      const damaged = Uint8Array.from(bytes, (byte, i) => (i === bytes.length - 1 ? byte ^ 0xff : byte))
      yield* putRaw(prefix, state, damaged)
      const error = yield* expectError(
        a.run(Projection.importLatest(balances().projection, { artifacts: a.artifacts, replica: "d" })),
        "ProjectionError",
        "balances@1#d",
        state,
        `${prefix}_artifacts`,
        "SHA-256"
      )
      assert.equal(error.method, "import")
      assert.deepEqual(yield* a.run(Effect.flatMap(CursorStore.CursorStore, (cursors) => cursors.get("balances@1#d"))), Option.none())
    }))

  natsTest("NatsClient.removeStore removes the artifact object store with the other streams of the prefix", (prefix) =>
    Effect.gen(function*() {
      const a = yield* replica(prefix)
      const running = yield* caughtUp(a, "a", 10)
      Option.getOrThrow(yield* running.exportState({ artifacts: a.artifacts, round: 1 }))
      const streamsOf = withJetStream(target, async ({ jsm }) => {
        const names: Array<string> = []
        for await (const info of jsm.streams.list()) if (info.config.name.includes(prefix)) names.push(info.config.name)
        return names.sort()
      })
      const before = yield* streamsOf
      assert.ok(before.includes(`OBJ_${prefix}_artifacts`), `the artifact object store exists: ${before.join(", ")}`)
      const removed = yield* a.run(NatsClient.removeStore(prefix))
      assert.equal(removed, before.length)
      assert.deepEqual(yield* streamsOf, [])
    }))

  natsTest("existing object stores whose settings would drop artifacts are refused, naming the setting; so are bad options", (prefix) =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, Partial<ObjectStoreOptions>, string]> = [
        ["ttl", { ttl: 60_000_000_000 }, "max age (TTL) 60 s"],
        ["memory", { storage: "memory" as ObjectStoreOptions["storage"] }, 'keeps its data in memory, but storage "file" was asked']
      ]
      for (const [suffix, options, says] of cases) {
        const other = `${prefix}${suffix}`
        yield* Effect.addFinalizer(() => Effect.promise(() => removeNatsPrefix(target.url, other)))
        yield* withJetStream(target, async ({ js }) => void await new Objm(js).create(`${other}_artifacts`, options))
        yield* expectError(open(other), "ArtifactStoreError", `artifact object store ${other}_artifacts`, says)
      }
      yield* expectError(open("bad.prefix"), "ArtifactStoreError", "prefix must be")
      yield* expectError(open(prefix, { replicas: 0 }), "ArtifactStoreError", "replicas must be an integer from 1 to 5")
    }))
}
