/**
 * The file SnapshotStore: the whole SnapshotStore conformance suite over a fresh directory per case
 * (durable: every build reopens the same directory), plus what only files can do wrong — crash
 * leftovers, damaged files, and a file removed by a concurrent put between a read's listing and its read.
 */
import { Effect, Option, Stream } from "effect"
import assert from "node:assert/strict"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { test } from "node:test"
import { tempDirectory as makeTempDirectory } from "./support/tempDirectory.ts"
import { FileSnapshotStore } from "../src/file/index.ts"
import { nodeSnapshotReads, open as openDirectory, type SnapshotReads } from "../src/file/internal/snapshotDirectory.ts"
import { SnapshotStore } from "../src/index.ts"
import { open, register } from "./conformance/harness.ts"
import { type SnapshotStorage, snapshotStoreCases } from "./conformance/SnapshotStore.ts"

const tempDirectory = makeTempDirectory("snapshots")

register("SnapshotStore", {
  name: "file",
  durable: true,
  storage: Effect.map(tempDirectory, (directory): SnapshotStorage => ({
    layer: (options) => FileSnapshotStore.layer({ ...options, directory })
  }))
}, snapshotStoreCases)

const snapshot = (version: number, state: ReadonlyArray<number>): SnapshotStore.Snapshot => ({
  namespace: "cart",
  id: "42",
  version,
  seq: version * 10,
  timestamp: version * 100,
  schemaVersion: 1,
  state: new Uint8Array(state)
})

/** Every file below `directory` (relative paths). */
const files = async (directory: string): Promise<Array<string>> =>
  (await fs.readdir(directory, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => path.relative(directory, path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)))
    .sort()

test("FileSnapshotStore: temporary files left by a crash are removed at start", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const directory = yield* tempDirectory
    const store = yield* open(SnapshotStore.SnapshotStore, FileSnapshotStore.layer({ directory }))
    yield* store.put(snapshot(1, [1]))
    const [file] = yield* Effect.promise(() => files(directory))
    const leftover = path.join(directory, path.dirname(file!), "0b7c-crash.tmp")
    yield* Effect.promise(() => fs.writeFile(leftover, "half a snapshot"))
    yield* open(SnapshotStore.SnapshotStore, FileSnapshotStore.layer({ directory }))
    assert.deepEqual(yield* Effect.promise(() => files(directory)), [file])
  }))))

test("FileSnapshotStore: a damaged snapshot file is skipped for the next older one, or none", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const directory = yield* tempDirectory
    const store = yield* open(SnapshotStore.SnapshotStore, FileSnapshotStore.layer({ directory, keep: 2 }))
    yield* store.put(snapshot(1, [1, 1]))
    yield* store.put(snapshot(2, [2, 2]))
    const all = yield* Effect.promise(() => files(directory))
    assert.equal(all.length, 2)
    const newest = path.join(directory, all.find((f) => f.includes("00000000000000000002-"))!)
    const bytes = new Uint8Array(yield* Effect.promise(() => fs.readFile(newest)))
    bytes[bytes.length - 2]! ^= 0xff // inside the state or checksum
    yield* Effect.promise(() => fs.writeFile(newest, bytes))
    const found = yield* store.get("cart", "42")
    assert.equal(Option.getOrThrow(found).version, 1, "falls back to the older snapshot")
    assert.deepEqual((yield* Stream.runCollect(store.scan("cart"))).map((s) => s.version), [1])
    yield* Effect.promise(() => fs.writeFile(path.join(directory, all.find((f) => f.includes("00000000000000000001-"))!), "garbage"))
    assert.ok(Option.isNone(yield* store.get("cart", "42")), "no readable snapshot: none, so the state is rebuilt from the journal")
    assert.equal((yield* Effect.promise(() => files(directory))).length, 2, "damaged files are reported, never deleted")
  }))))

test("FileSnapshotStore: a get or scan whose listed file is replaced by a newer one before it reads it returns the newer one", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const directory = yield* tempDirectory
    // Before the first read of a snapshot file, a put at version 2 replaces version 1 (keep 1).
    let before: (() => Promise<void>) | undefined
    const reads: SnapshotReads = {
      ...nodeSnapshotReads,
      readFile: async (file) => {
        const run = before
        before = undefined
        if (run !== undefined) await run()
        return nodeSnapshotReads.readFile(file)
      }
    }
    const store = yield* openDirectory({ directory }, reads)
    yield* store.put(snapshot(1, [1]))
    before = () => Effect.runPromise(store.put(snapshot(2, [2])))
    assert.equal(Option.getOrThrow(yield* store.get("cart", "42")).version, 2, "get: the snapshot that replaced the listed one")
    before = () => Effect.runPromise(store.put(snapshot(3, [3])))
    assert.deepEqual((yield* Stream.runCollect(store.scan("cart"))).map((s) => s.version), [3], "scan: likewise")
    assert.equal(before, undefined, "both puts ran between a listing and a read")
  }))))

test("FileSnapshotStore: a listed snapshot name that cannot be read even when listed again is skipped", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const directory = yield* tempDirectory
    // The directory keeps listing a version 9 whose file is never there.
    const phantom = "00000000000000000009-00000000000000000900.snapshot"
    const listings: Array<string> = []
    const reads: SnapshotReads = {
      ...nodeSnapshotReads,
      readdir: async (dir) => {
        const names = await nodeSnapshotReads.readdir(dir)
        if (!names.some((name) => name.endsWith(".snapshot"))) return names
        listings.push(dir)
        return [...names, phantom]
      }
    }
    const store = yield* openDirectory({ directory, keep: 2 }, reads)
    yield* store.put(snapshot(1, [1]))
    listings.length = 0
    assert.equal(Option.getOrThrow(yield* store.get("cart", "42")).version, 1, "the readable older snapshot")
    assert.equal(listings.length, 2, "listed once more after the phantom was missing, then skipped it")
  }))))
