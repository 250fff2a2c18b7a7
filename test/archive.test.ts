import { Effect, Layer } from "effect"
import assert from "node:assert/strict"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { test } from "node:test"
import { tempDirectory as makeTempDirectory } from "./support/tempDirectory.ts"
import { DirectoryArchive } from "../src/file/index.ts"
import { Archive } from "../src/index.ts"
import type { JournalRecord } from "../src/Journal.ts"
import { type ArchiveStorage, archiveCases } from "./conformance/Archive.ts"
import { type Fixture, failingCases, open, register } from "./conformance/harness.ts"

type Service = Archive.Archive

// ---------------------------------------------------------------------------------------------
// memory: one Map per case, shared by every build of the layer

interface Breakage {
  readonly store?: (store: Archive.ObjectStore, objects: Map<string, Uint8Array>) => Archive.ObjectStore
  readonly service?: (archive: Service) => Service
}

const memoryFixture = (name: string, breakage: Breakage = {}): Fixture<ArchiveStorage> => ({
  name,
  durable: true,
  storage: Effect.sync((): ArchiveStorage => {
    const objects = new Map<string, Uint8Array>()
    const base = Archive.makeObjectStoreMemory(objects)
    const store = breakage.store?.(base, objects) ?? base
    return {
      layer: (options) =>
        Layer.effect(
          Archive.Archive,
          Effect.map(Archive.make(store, options), (archive) => breakage.service?.(archive) ?? archive)
        ),
      damage: (key, mutate) =>
        Effect.suspend(() => {
          const bytes = objects.get(key)
          if (bytes === undefined) return Effect.fail(new Error(`no object ${key} to damage`))
          objects.set(key, mutate(bytes.slice()))
          return Effect.void
        })
    }
  })
})

register("Archive", memoryFixture("memory"), archiveCases)

// ---------------------------------------------------------------------------------------------
// directory: a fresh temp directory per case

const tempDirectory = makeTempDirectory("archive")

const directoryStorage = (directory: string): ArchiveStorage => ({
  layer: (options) => DirectoryArchive.layer({ ...options, directory }),
  damage: (key, mutate) =>
    Effect.promise(async () => {
      const file = path.join(directory, ...key.split("/"))
      const bytes = new Uint8Array(await fs.readFile(file))
      await fs.writeFile(file, mutate(bytes))
    })
})

register("Archive", { name: "directory", durable: true, storage: Effect.map(tempDirectory, directoryStorage) }, archiveCases)

test("Archive [directory] a crash leftover temp file is not listed and does not block the put", async () => {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), "annals-archive-"))
  try {
    const key = "00000000000000000001-00000000000000000003.msgpack"
    await fs.mkdir(path.join(directory, "journal"))
    // what a writer killed between writing its temp file and linking it leaves behind
    const partial = new Uint8Array([0x89, 0xa6, 0x66, 0x6f])
    await fs.writeFile(path.join(directory, `${key}.0b5e7c3a-1d2f-4e5a-9b8c-7d6e5f4a3b2c.tmp`), partial)
    await fs.writeFile(path.join(directory, "journal", `${key}.0b5e7c3a-1d2f-4e5a-9b8c-7d6e5f4a3b2c.tmp`), partial)
    await fs.writeFile(path.join(directory, "00000000000000000004-00000000000000000005.tmp"), partial)
    const records: ReadonlyArray<JournalRecord> = [
      { seq: 2, namespace: "cart", id: "a", version: 1, type: "Added", timestamp: 5, payload: new Uint8Array([1, 2]) }
    ]
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      for (const prefix of ["", "journal/"]) {
        const archive = yield* open(Archive.Archive, DirectoryArchive.layer({ directory, prefix }))
        assert.deepEqual(yield* archive.list(), [], `prefix ${JSON.stringify(prefix)}: only temp files so far`)
        const ref = yield* archive.put({ startSeq: 1, endSeq: 3, records })
        assert.equal(ref.key, `${prefix}${key}`)
        const listed = yield* archive.list()
        assert.deepEqual(listed.map((r) => r.key), [`${prefix}${key}`])
        assert.deepEqual(yield* archive.get(listed[0]!), records)
      }
    })))
    // the archive's own temp files are gone after the puts; the crash leftovers are still ignored
    const names = (await fs.readdir(directory)).sort()
    assert.deepEqual(names.filter((n) => n.endsWith(".tmp")).length, 2)
    assert.ok(names.includes(key))
  } finally {
    await fs.rm(directory, { recursive: true, force: true })
  }
})

// ---------------------------------------------------------------------------------------------
// the suite catches broken archives

const mapRecords = (archive: Service, f: (records: ReadonlyArray<JournalRecord>) => ReadonlyArray<JournalRecord>): Service => ({
  ...archive,
  get: (ref) => Effect.map(archive.get(ref), f)
})

class NotPlain extends Uint8Array {}

const BROKEN: ReadonlyArray<readonly [string, Breakage]> = [
  ["putIfAbsent overwrites silently", {
    store: (store, objects) => ({
      ...store,
      putIfAbsent: (key, bytes) =>
        Effect.sync(() => {
          objects.set(key, bytes.slice())
          return true
        })
    })
  }],
  ["list unsorted", { service: (archive) => ({ ...archive, list: (from) => Effect.map(archive.list(from), (refs) => [...refs].reverse()) }) }],
  ["list(fromSeq) excludes the segment ending at fromSeq", {
    service: (archive) => ({
      ...archive,
      list: (from) => Effect.map(archive.list(from), (refs) => refs.filter((ref) => from === undefined || ref.endSeq > from))
    })
  }],
  ["list ignores fromSeq", { service: (archive) => ({ ...archive, list: () => archive.list() }) }],
  ["get drops the last record", { service: (archive) => mapRecords(archive, (records) => records.slice(0, -1)) }],
  ["get drops metadata", {
    service: (archive) => mapRecords(archive, (records) => records.map(({ metadata: _, ...rest }) => rest))
  }],
  ["get returns payloads as a Uint8Array subclass", {
    service: (archive) => mapRecords(archive, (records) => records.map((r) => ({ ...r, payload: new NotPlain(r.payload) })))
  }],
  ["errors lose their key", {
    service: (archive) => ({
      ...archive,
      get: (ref) =>
        Effect.mapError(archive.get(ref), (error) => new Archive.ArchiveError({ method: error.method, message: error.message }))
    })
  }],
  ["put swallows errors", {
    service: (archive) => ({
      ...archive,
      put: (segment) =>
        Effect.catch(archive.put(segment), () =>
          Effect.succeed({ startSeq: segment.startSeq, endSeq: segment.endSeq, key: "ignored" }))
    })
  }],
  ["get of a missing segment returns no records", {
    service: (archive) => ({
      ...archive,
      get: (ref) =>
        Effect.catch(archive.get(ref), (error) =>
          error.message.includes("does not exist") ? Effect.succeed([]) : Effect.fail(error))
    })
  }]
]

test("Archive conformance suite: the correct memory archive passes every case", async () => {
  assert.deepEqual(await failingCases(memoryFixture("memory"), archiveCases), [])
})

test("Archive conformance suite: every deliberately broken archive fails at least one case", async () => {
  const survivors: Array<string> = []
  for (const [name, breakage] of BROKEN) {
    const failed = await failingCases(memoryFixture(name, breakage), archiveCases)
    if (failed.length === 0) survivors.push(name)
  }
  assert.deepEqual(survivors, [], `broken archives the suite does not catch: ${survivors.join("; ")}`)
})

// ---------------------------------------------------------------------------------------------
// the object format: every single-byte change anywhere in an object is detected

test("Archive format: flipping any one byte of a stored object makes get fail naming the key", async () => {
  const objects = new Map<string, Uint8Array>()
  const program = Effect.gen(function*() {
    const archive = yield* Archive.make(Archive.makeObjectStoreMemory(objects), { writerId: "writer-1" })
    const records: Array<JournalRecord> = [
      { seq: 7, namespace: "cart", id: "a", version: 1, type: "Added", timestamp: 1_000, payload: new Uint8Array([1, 2, 3]) },
      { seq: 9, namespace: "cart", id: "b", version: 4, type: "Removed", timestamp: 1_001, payload: new Uint8Array([4]), metadata: { k: "v" } }
    ]
    const ref = yield* archive.put({ startSeq: 7, endSeq: 9, records })
    const original = objects.get(ref.key)!
    const undetected: Array<string> = []
    for (let offset = 0; offset < original.length; offset++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const damaged = original.slice()
        damaged[offset] = damaged[offset]! ^ mask
        objects.set(ref.key, damaged)
        const result = yield* Effect.result(archive.get(ref))
        if (result._tag === "Success") undetected.push(`offset ${offset} ^ 0x${mask.toString(16)}`)
        else assert.equal(result.failure.key, ref.key)
      }
    }
    objects.set(ref.key, original)
    assert.equal((yield* archive.get(ref)).length, 2)
    assert.deepEqual(undetected, [], `undetected damage in a ${original.length}-byte object`)
  })
  await Effect.runPromise(program)
})
