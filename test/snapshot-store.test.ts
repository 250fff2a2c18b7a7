import { Effect, Layer, Option, Stream } from "effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import { SnapshotStore } from "../src/index.ts"
import { failingCases, type Fixture, register } from "./conformance/harness.ts"
import { type SnapshotStorage, snapshotStoreCases } from "./conformance/SnapshotStore.ts"

type Service = SnapshotStore.SnapshotStore
type Snapshot = SnapshotStore.Snapshot
type Options = SnapshotStore.SnapshotStoreOptions | undefined

const memory: Fixture<SnapshotStorage> = {
  name: "memory",
  durable: false,
  storage: Effect.succeed({ layer: SnapshotStore.layerMemory })
}

register("SnapshotStore", memory, snapshotStoreCases)

// ---------------------------------------------------------------------------------------------
// Mutation test: the suite must catch every one of these deliberately broken stores.
// ---------------------------------------------------------------------------------------------

/** A fixture whose every layer build runs `build` (a fresh store per build, like the memory layer). */
const brokenFixture = (
  name: string,
  build: (options: Options) => Effect.Effect<Service, SnapshotStore.SnapshotStoreError>
): Fixture<SnapshotStorage> => ({
  name,
  durable: false,
  storage: Effect.succeed({
    layer: (options?: SnapshotStore.SnapshotStoreOptions) => Layer.effect(SnapshotStore.SnapshotStore, build(options))
  })
})

/** A broken store made by rewriting a correct memory store's operations. */
const wrap = (name: string, breakIt: (base: Service, options: Options) => Service): Fixture<SnapshotStorage> =>
  brokenFixture(name, (options) => Effect.map(SnapshotStore.makeMemory(options), (base) => breakIt(base, options)))

/** Like `wrap`, with a record of the streams that were ever put (namespace → ids). */
const wrapTracked = (
  name: string,
  breakIt: (base: Service, streams: Map<string, Set<string>>) => Partial<Service>
): Fixture<SnapshotStorage> =>
  wrap(name, (base) => {
    const streams = new Map<string, Set<string>>()
    const put: Service["put"] = (snapshot) =>
      Effect.andThen(base.put(snapshot), Effect.sync(() => {
        const ids = streams.get(snapshot.namespace) ?? new Set<string>()
        ids.add(snapshot.id)
        streams.set(snapshot.namespace, ids)
      }))
    return { ...base, put, ...breakIt({ ...base, put }, streams) }
  })

/** The oldest snapshot of the stream matching `criteria` (the opposite of what `get` must return). */
const oldest = (base: Service, namespace: string, id: string, criteria?: SnapshotStore.SnapshotCriteria) =>
  Effect.gen(function*() {
    let found = yield* base.get(namespace, id, criteria)
    while (Option.isSome(found) && found.value.version > 1) {
      const older = yield* base.get(namespace, id, { ...criteria, maxVersion: found.value.version - 1 })
      if (Option.isNone(older)) break
      found = older
    }
    return found
  })

const byId = (a: Snapshot, b: Snapshot) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

class NotPlain extends Uint8Array {}

const mutants: ReadonlyArray<Fixture<SnapshotStorage>> = [
  wrap("get ignores the criteria", (base) => ({ ...base, get: (namespace, id) => base.get(namespace, id) })),

  wrap("get ignores maxTimestamp", (base) => ({
    ...base,
    get: (namespace, id, criteria) =>
      base.get(namespace, id, criteria?.maxVersion === undefined ? undefined : { maxVersion: criteria.maxVersion })
  })),

  wrap("get ignores maxVersion", (base) => ({
    ...base,
    get: (namespace, id, criteria) =>
      base.get(namespace, id, criteria?.maxTimestamp === undefined ? undefined : { maxTimestamp: criteria.maxTimestamp })
  })),

  wrap("get treats the bounds as exclusive", (base) => ({
    ...base,
    get: (namespace, id, criteria) =>
      base.get(namespace, id, {
        maxVersion: criteria?.maxVersion === undefined ? undefined : Math.max(0, criteria.maxVersion - 1),
        maxTimestamp: criteria?.maxTimestamp === undefined ? undefined : Math.max(0, criteria.maxTimestamp - 1)
      })
  })),

  wrap("get returns the oldest match instead of the youngest", (base) => ({
    ...base,
    get: (namespace, id, criteria) => oldest(base, namespace, id, criteria)
  })),

  wrap("get returns a Uint8Array subclass instead of a plain Uint8Array", (base) => ({
    ...base,
    get: (namespace, id, criteria) =>
      Effect.map(base.get(namespace, id, criteria), Option.map((s) => ({ ...s, state: new NotPlain(s.state) })))
  })),

  wrap("put does not replace a snapshot at an existing version", (base) => ({
    ...base,
    put: (snapshot) =>
      Effect.flatMap(
        Effect.orElseSucceed(base.get(snapshot.namespace, snapshot.id, { maxVersion: snapshot.version }), () => Option.none()),
        (found) => Option.isSome(found) && found.value.version === snapshot.version ? Effect.void : base.put(snapshot)
      )
  })),

  wrap("put stores the caller's buffer instead of a copy", (base) => {
    const buffers = new Map<string, Uint8Array>()
    const key = (s: Snapshot) => `${s.namespace}\u0000${s.id}\u0000${s.version}`
    const shared = (s: Snapshot): Snapshot => ({ ...s, state: buffers.get(key(s)) ?? s.state })
    return {
      ...base,
      put: (snapshot) => Effect.andThen(base.put(snapshot), Effect.sync(() => void buffers.set(key(snapshot), snapshot.state))),
      get: (namespace, id, criteria) => Effect.map(base.get(namespace, id, criteria), Option.map(shared)),
      scan: (namespace) => Stream.map(base.scan(namespace), shared)
    }
  }),

  wrap("put swallows invalid input instead of failing", (base) => ({
    ...base,
    put: (snapshot) => Effect.ignore(base.put(snapshot))
  })),

  brokenFixture("put ignores keep and keeps every snapshot", (options) =>
    Effect.andThen(SnapshotStore.makeMemory(options), SnapshotStore.makeMemory({ keep: 1_000_000 }))),

  brokenFixture("put keeps the oldest snapshots instead of the newest", (options) =>
    Effect.andThen(SnapshotStore.makeMemory(options), (checked) =>
      Effect.map(SnapshotStore.makeMemory({ keep: 1_000_000 }), (base): Service => {
        const keep = options?.keep ?? 1
        const versions = new Map<string, Set<number>>()
        return {
          ...checked,
          get: base.get,
          scan: base.scan,
          put: (snapshot) =>
            Effect.suspend(() => {
              const key = `${snapshot.namespace}\u0000${snapshot.id}`
              const kept = versions.get(key) ?? new Set<number>()
              if (!kept.has(snapshot.version) && kept.size >= keep) return Effect.void // full: the new one is dropped
              return Effect.andThen(base.put(snapshot), Effect.sync(() => void versions.set(key, kept.add(snapshot.version))))
            }),
          delete: (namespace, id) =>
            Effect.andThen(base.delete(namespace, id), Effect.sync(() => void versions.delete(`${namespace}\u0000${id}`)))
        }
      }))),

  brokenFixture("an invalid keep option is silently replaced by 1", (options) =>
    SnapshotStore.makeMemory({
      keep: typeof options?.keep === "number" && Number.isSafeInteger(options.keep) && options.keep >= 1 ? options.keep : 1
    })),

  wrap("delete is a no-op", (base) => ({ ...base, delete: () => Effect.void })),

  wrap("delete removes only the latest snapshot", (base) => ({
    ...base,
    delete: (namespace, id) =>
      Effect.flatMap(base.get(namespace, id), (latest) =>
        Option.isNone(latest)
          ? Effect.void
          : Effect.flatMap(base.get(namespace, id, { maxVersion: latest.value.version - 1 }), (rest) =>
            Effect.andThen(base.delete(namespace, id), Option.isSome(rest) ? base.put(rest.value) : Effect.void)))
  })),

  wrapTracked("delete removes the whole namespace", (base, streams) => ({
    delete: (namespace, id) =>
      Effect.andThen(
        base.delete(namespace, id),
        Effect.forEach([...(streams.get(namespace) ?? [])], (other) => base.delete(namespace, other), { discard: true })
      )
  })),

  wrapTracked("delete ignores the namespace", (base, streams) => ({
    delete: (namespace, id) =>
      Effect.andThen(
        base.delete(namespace, id),
        Effect.forEach([...streams.keys()], (other) => base.delete(other, id), { discard: true })
      )
  })),

  wrapTracked("scan matches namespaces by prefix (startsWith)", (base, streams) => ({
    scan: (namespace) =>
      Stream.unwrap(Effect.map(
        Effect.forEach(
          [namespace, ...[...streams.keys()].filter((other) => other !== namespace && other.startsWith(namespace))],
          (other) => Stream.runCollect(base.scan(other))
        ),
        (all) => Stream.fromArray(all.flat().sort(byId))
      ))
  })),

  wrap("scan is ordered by id descending", (base) => ({
    ...base,
    scan: (namespace) =>
      Stream.unwrap(Effect.map(Stream.runCollect(base.scan(namespace)), (all) => Stream.fromArray(all.reverse())))
  })),

  wrap("scan returns the oldest snapshot of each stream", (base) => ({
    ...base,
    scan: (namespace) =>
      Stream.mapEffect(base.scan(namespace), (latest) =>
        Effect.map(oldest(base, latest.namespace, latest.id), (found) => Option.getOrElse(found, () => latest)))
  }))
]

/**
 * A stand-in for a durable store: one memory store per case, which every later build of the layer
 * reopens (the options are still checked on every build). It lets the durableOnly case run here.
 */
const reopenable: Fixture<SnapshotStorage> = {
  name: "memory reopened",
  durable: true,
  storage: Effect.sync(() => {
    let opened: Service | undefined
    return {
      layer: (options?: SnapshotStore.SnapshotStoreOptions) =>
        Layer.effect(
          SnapshotStore.SnapshotStore,
          Effect.flatMap(SnapshotStore.makeMemory(options), (fresh) => Effect.sync(() => (opened ??= fresh)))
        )
    }
  })
}

test("SnapshotStore suite: the memory store passes every case, and every broken store fails at least one", async () => {
  assert.deepEqual(await failingCases(memory, snapshotStoreCases), [], "the memory store must pass every case")
  assert.deepEqual(
    await failingCases(reopenable, snapshotStoreCases),
    [],
    "a store that keeps its data across builds must pass every case"
  )
  // a store that forgets everything when reopened fails the durable case, and only that one
  const amnesiac = await failingCases({ ...memory, name: "memory posing as durable", durable: true }, snapshotStoreCases)
  assert.deepEqual(amnesiac, snapshotStoreCases.filter((c) => c.durableOnly === true).map((c) => c.name))
  assert.equal(amnesiac.length, 1)
  const survivors: Array<string> = []
  for (const mutant of mutants) {
    const failed = await failingCases(mutant, snapshotStoreCases)
    if (failed.length === 0) survivors.push(mutant.name)
  }
  assert.deepEqual(survivors, [], `these broken stores passed the whole suite: ${survivors.join("; ")}`)
})
