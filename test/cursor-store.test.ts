/**
 * The CursorStore: the conformance suite over the memory layer and the file layer (a fresh directory
 * per case; durable: every build reopens it), what only files can do wrong (a second opener, damaged
 * files, crash leftovers, names that need escaping, failed writes), and mutation tests of the suite.
 */
import { Clock, Effect, Layer, Option, Result, type Scope } from "effect"
import assert from "node:assert/strict"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"
import { test } from "node:test"
import { FileCursorStore } from "../src/file/index.ts"
import { CursorStore } from "../src/index.ts"
import { type CursorStorage, cursorStoreCases } from "./conformance/CursorStore.ts"
import { expectError, failingCases, type Fixture, open, register } from "./conformance/harness.ts"
import { tempDirectory as makeTempDirectory } from "./support/tempDirectory.ts"

type Service = CursorStore.CursorStore

const tempDirectory = makeTempDirectory("cursors")

const memory: Fixture<CursorStorage> = { name: "memory", durable: false, storage: Effect.succeed({ layer: CursorStore.layerMemory }) }

register("CursorStore", memory, cursorStoreCases)
register("CursorStore", {
  name: "file",
  durable: true,
  storage: Effect.map(tempDirectory, (directory): CursorStorage => ({ layer: FileCursorStore.layer({ directory }) }))
}, cursorStoreCases)

// ---------------------------------------------------------------------------------------------
// What only the file layer can do wrong.
// ---------------------------------------------------------------------------------------------

const openFile = (directory: string) => open(CursorStore.CursorStore, FileCursorStore.layer({ directory }))
const openError = (directory: string, ...mentions: ReadonlyArray<string>) =>
  expectError(Effect.scoped(openFile(directory)), "CursorStoreError", ...mentions)
const files = (directory: string) => Effect.promise(async () => (await fs.readdir(directory)).sort())
const fileTest = (name: string, body: (directory: string) => Effect.Effect<void, unknown, Scope.Scope>) =>
  test(`FileCursorStore: ${name}`, () => Effect.runPromise(Effect.scoped(Effect.flatMap(tempDirectory, body))))

fileTest("a second open of the directory fails naming the owner; once the first is closed, it opens", (directory) =>
  Effect.gen(function*() {
    yield* Effect.scoped(Effect.gen(function*() {
      const store = yield* openFile(directory)
      yield* store.commit("s", 3)
      yield* openError(directory, directory, "already open in this process")
    }))
    const reopened = yield* Effect.scoped(Effect.flatMap(openFile(directory), (store) => store.get("s")))
    assert.equal(Option.getOrThrow(reopened).seq, 3)
    // another live process holds it (the parent of this test process stands in for it)
    const locked = path.join(directory, "other")
    yield* Effect.promise(async () => {
      await fs.mkdir(locked)
      const nonce = "00000000-0000-4000-8000-000000000001"
      await fs.writeFile(path.join(locked, "LOCK"), JSON.stringify({ pid: process.ppid, host: os.hostname(), thread: 0, nonce }))
    })
    yield* openError(locked, `locked by process ${process.ppid} on host ${os.hostname()}`, path.join(locked, "LOCK"))
  }))

fileTest("a damaged entry file (bytes flipped, truncated, under another name's file) fails the open naming it; nothing is deleted", (directory) =>
  Effect.gen(function*() {
    yield* Effect.scoped(Effect.gen(function*() {
      const store = yield* openFile(directory)
      yield* store.commit("a", 1)
      yield* store.acquire("b", "owner", 1_000)
    }))
    const [a, b] = (yield* files(directory)).map((file) => path.join(directory, file))
    assert.deepEqual([a, b].map((file) => path.basename(file!)), ["61.cursor", "62.cursor"], "hex of the UTF-8 name")
    const original = new Uint8Array(yield* Effect.promise(() => fs.readFile(a!)))
    const damage = (bytes: Uint8Array, ...mentions: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        yield* Effect.promise(() => fs.writeFile(a!, bytes))
        yield* openError(directory, a!, "damaged", ...mentions)
        assert.deepEqual(yield* files(directory), ["61.cursor", "62.cursor"])
      })
    const flipped = original.slice()
    flipped[flipped.length - 3]! ^= 0x10
    yield* damage(flipped, "checksum")
    yield* damage(original.subarray(0, original.length - 4))
    yield* damage(original.subarray(0, 5))
    yield* damage(new Uint8Array(0))
    yield* damage(new Uint8Array(yield* Effect.promise(() => fs.readFile(b!))), '"b"', "62.cursor")
    yield* Effect.promise(() => fs.writeFile(a!, original))
    const store = yield* openFile(directory)
    assert.deepEqual((yield* store.list).map((c) => [c.name, c.seq]), [["a", 1]])
  }))

fileTest("temporary files left by a crash are removed at open; other files are left alone", (directory) =>
  Effect.gen(function*() {
    yield* Effect.scoped(Effect.flatMap(openFile(directory), (store) => store.commit("a", 1)))
    yield* Effect.promise(async () => {
      await fs.writeFile(path.join(directory, "3f2a-crash.tmp"), "half an entry")
      await fs.writeFile(path.join(directory, "61.cursor.tmp"), "")
      await fs.writeFile(path.join(directory, "notes.txt"), "mine")
    })
    const store = yield* openFile(directory)
    assert.deepEqual(yield* files(directory), ["61.cursor", "LOCK", "notes.txt"])
    assert.equal(Option.getOrThrow(yield* store.get("a")).seq, 1)
  }))

fileTest("names that need escaping round-trip across a reopen, each in one short file directly in the directory", (directory) =>
  Effect.gen(function*() {
    const names = ["../x", "a/b", "/abs", ".", "..", "a\\b", "C:x", "CON", "日本語 ✓", "\u{1F600}", "x".repeat(256), "é".repeat(256), "A", "a"]
    yield* Effect.scoped(Effect.gen(function*() {
      const store = yield* openFile(directory)
      for (const [i, name] of names.entries()) yield* store.commit(name, i + 1)
    }))
    const stored = (yield* files(directory)).filter((file) => file.endsWith(".cursor"))
    assert.equal(stored.length, names.length, "one file per name")
    for (const file of stored) {
      assert.match(file, /^(?:[0-9a-f]{2,200}|sha256-[0-9a-f]{64})\.cursor$/)
      assert.ok((yield* Effect.promise(() => fs.stat(path.join(directory, file)))).isFile())
    }
    assert.equal(
      (yield* Effect.promise(() => fs.readdir(path.dirname(directory)))).filter((f) => f === "x").length,
      0,
      "nothing written outside the directory"
    )
    const store = yield* openFile(directory)
    assert.deepEqual(
      (yield* store.list).map((c) => [c.name, c.seq]),
      names.map((name, i) => [name, i + 1]).sort(([a], [b]) => (a! < b! ? -1 : 1))
    )
  }))

fileTest("a failed write fails the operation naming the file, and the previous entry stays", (directory) =>
  Effect.gen(function*() {
    const store = yield* openFile(directory)
    yield* store.commit("s", 1)
    yield* Effect.promise(() => fs.rm(directory, { recursive: true }))
    const file = path.join(directory, "73.cursor")
    const failed = yield* expectError(store.commit("s", 2), "CursorStoreError", "CursorStore.commit", file, '"s"')
    assert.equal(failed.method, "commit")
    yield* expectError(store.acquire("s", "A", 1_000), "CursorStoreError", file)
    assert.equal(Option.getOrThrow(yield* store.get("s")).seq, 1)
    yield* Effect.promise(() => fs.mkdir(directory))
    yield* store.acquire("s", "B", 1_000)
    yield* store.commit("s", 2)
    assert.deepEqual(yield* files(directory), ["73.cursor"])
  }))

// ---------------------------------------------------------------------------------------------
// Mutation test: the suite must catch every one of these deliberately broken stores.
// ---------------------------------------------------------------------------------------------

/** A broken store made by rewriting a correct memory store's operations (a fresh store per build). */
const mutant = (name: string, mutate: (base: Service) => Partial<Service>): Fixture<CursorStorage> => ({
  name,
  durable: false,
  storage: Effect.succeed({
    layer: Layer.effect(CursorStore.CursorStore, Effect.map(CursorStore.makeMemory, (base) => ({ ...base, ...mutate(base) })))
  })
})

/** A store whose reads show `shown(name, stored cursor)` for every name committed since it was opened. */
const shadowed = (
  base: Service,
  record: (name: string, seq: number, now: number, shown: CursorStore.Cursor | undefined) => CursorStore.Cursor
): Partial<Service> => {
  const shown = new Map<string, CursorStore.Cursor>()
  const show = (cursor: CursorStore.Cursor) => shown.get(cursor.name) ?? cursor
  return {
    commit: (name, seq, lease) =>
      Effect.andThen(base.commit(name, seq, lease), Effect.map(Clock.currentTimeMillis, (now) => void shown.set(name, record(name, seq, now, shown.get(name))))),
    get: (name) => Effect.map(base.get(name), Option.map(show)),
    list: Effect.map(base.list, (all) => all.map(show)),
    delete: (name) => Effect.andThen(base.delete(name), Effect.sync(() => void shown.delete(name)))
  }
}

const mutants: ReadonlyArray<Fixture<CursorStorage>> = [
  mutant("a cursor moves back (commit keeps the last seq given)", (base) =>
    shadowed(base, (name, seq, now) => ({ name, seq, updatedAt: now }))),
  mutant("an ignored commit still moves updatedAt", (base) =>
    shadowed(base, (name, seq, now, shown) => ({ name, seq: Math.max(seq, shown?.seq ?? seq), updatedAt: now }))),
  mutant("commit does not check the lease", (base) => ({ commit: (name, seq) => base.commit(name, seq) })),
  mutant("commit swallows LeaseLost", (base) => ({
    commit: (name, seq, lease) => Effect.catchTag(base.commit(name, seq, lease), "LeaseLost", () => Effect.void)
  })),
  mutant("commit ignores bad input", (base) => ({
    commit: (name, seq, lease) => Effect.catchTag(base.commit(name, seq, lease), "CursorStoreError", () => Effect.void)
  })),
  mutant("acquire ignores a live lease", (base) => ({
    acquire: (name, owner, ttlMs) =>
      Effect.catchTag(base.acquire(name, owner, ttlMs), "LeaseHeld", (held) =>
        Effect.andThen(base.release(name, held.owner), base.acquire(name, owner, ttlMs)))
  })),
  mutant("a renewal changes the token", (base) => ({
    acquire: (name, owner, ttlMs) => Effect.andThen(base.release(name, owner), base.acquire(name, owner, ttlMs))
  })),
  mutant("a lease expires a millisecond late", (base) => ({
    acquire: (name, owner, ttlMs) => Effect.map(base.acquire(name, owner, ttlMs + 1), (lease) => ({ ...lease, until: lease.until - 1 }))
  })),
  mutant("release by anyone frees the name", (base) => ({
    release: (name, owner) =>
      Effect.flatMap(Effect.result(base.acquire(name, `${owner}-probe`, 1)), (probe) =>
        base.release(name, Result.isSuccess(probe) ? probe.success.owner : (probe.failure as CursorStore.LeaseHeld).owner))
  })),
  mutant("delete is a no-op", () => ({ delete: () => Effect.void })),
  mutant("list is ordered by name descending", (base) => ({ list: Effect.map(base.list, (all) => [...all].reverse()) }))
]

test("CursorStore suite: the memory store passes every case, and every broken store fails at least one", async () => {
  assert.deepEqual(await failingCases(memory, cursorStoreCases), [], "the memory store must pass every case")
  const reopenable: Fixture<CursorStorage> = {
    name: "memory reopened",
    durable: true,
    storage: Effect.map(CursorStore.makeMemory, (store) => ({ layer: Layer.succeed(CursorStore.CursorStore, store) }))
  }
  assert.deepEqual(await failingCases(reopenable, cursorStoreCases), [], "a store that keeps its data across builds must pass every case")
  const amnesiac = await failingCases({ ...memory, name: "memory posing as durable", durable: true }, cursorStoreCases)
  assert.deepEqual(amnesiac, cursorStoreCases.filter((c) => c.durableOnly === true).map((c) => c.name), "forgetting fails exactly the reopen cases")
  const survivors: Array<string> = []
  for (const fixture of mutants) {
    if ((await failingCases(fixture, cursorStoreCases)).length === 0) survivors.push(fixture.name)
  }
  assert.deepEqual(survivors, [], `these broken stores passed the whole suite: ${survivors.join("; ")}`)
})
