/**
 * The projection export artifact (`src/internal/projectionArtifact.ts`): the write protocol's result on
 * disk, reading back, the choice of the newest round, projection names that no file system takes
 * as they are, every kind of damage reported with the file it is in, a round exported twice, and the
 * leftovers of crashed exports; and where a fold's exports go: `{ artifacts: ArtifactStore.directory(root) }`
 * is the same as `{ directory: root }`, and a bad location is a `ProjectionError` saying what is wrong.
 */
import { Effect, Layer, Option } from "effect"
import assert from "node:assert/strict"
import { Buffer } from "node:buffer"
import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { test } from "node:test"
import { ArtifactStore, CursorStore, Journal, Projection, SnapshotStore } from "../src/index.ts"
import { ARTIFACT_FORMAT, ARTIFACT_FORMAT_VERSION, type ArtifactInput } from "../src/internal/projectionArtifact.ts"
import { expectError } from "./conformance/harness.ts"
import { appendConcurrently, balances } from "./support/balances.ts"
import { listArtifacts, readLatestArtifact, removeIncomplete, writeArtifact } from "./support/directoryArtifacts.ts"
import { tempDirectory } from "./support/tempDirectory.ts"

/** Runs `body` with a fresh root directory, removed afterwards; `body`'s failure is the test's. */
const withRoot = (body: (root: string) => Promise<void>) =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(tempDirectory("artifact"), (root) => Effect.tryPromise({ try: () => body(root), catch: (e) => e }))))

const bytes = (text: string) => new Uint8Array(Buffer.from(text, "utf8"))

/** An artifact input of `projection`@`version`, round `round`, with three data files (one empty). */
const input = (projection: string, version: number, round: number, writer = "owner-a"): ArtifactInput => ({
  projection,
  version,
  round,
  cursor: 40 + round,
  timestamp: 1_700_000_000_000 + round,
  schemaVersion: 1,
  writer,
  createdAt: 1_800_000_000_000,
  files: [
    { name: "state.bin", bytes: bytes(`state of ${projection}@${version} round ${round}`) },
    { name: "index.msgpack", bytes: new Uint8Array([0, 1, 2, 255, round & 0xff]) },
    { name: "empty", bytes: new Uint8Array(0) }
  ]
})

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex")

/** Checks that `actual` holds exactly the data files of `expected`. */
const assertFiles = (actual: ReadonlyMap<string, Uint8Array>, expected: ArtifactInput, context: string) =>
  assert.deepEqual(
    [...actual.entries()].map(([name, data]) => [name, Buffer.from(data).toString("hex")]),
    expected.files.map((file) => [file.name, Buffer.from(file.bytes).toString("hex")]),
    `${context}: the data files`
  )

/** Expects `promise` to reject with a message matching every pattern; returns the message. */
const rejects = async (promise: Promise<unknown>, patterns: ReadonlyArray<RegExp | string>, context: string) => {
  let message: string | undefined
  try {
    await promise
  } catch (error) {
    message = error instanceof Error ? error.message : String(error)
  }
  assert.ok(message !== undefined, `${context}: should fail, but succeeded`)
  for (const pattern of patterns) {
    if (typeof pattern === "string") assert.ok(message.includes(pattern), `${context}: the message "${message}" should name ${pattern}`)
    else assert.match(message, pattern, `${context}`)
  }
  return message
}

test("projection artifact: a written artifact reads back with its manifest and data; the layout on disk", () =>
  withRoot(async (root) => {
    const written = await writeArtifact(path.join(root, "nested", "exports"), input("orders", 2, 7))
    const exportRoot = path.join(root, "nested", "exports")
    const projectionDir = path.join(exportRoot, `${Buffer.from("orders").toString("hex")}@2`)
    assert.equal(written.directory, path.join(projectionDir, "00000000000000000007"))
    assert.deepEqual(written.manifest, {
      format: ARTIFACT_FORMAT,
      formatVersion: ARTIFACT_FORMAT_VERSION,
      projection: "orders",
      version: 2,
      round: 7,
      cursor: 47,
      timestamp: 1_700_000_000_007,
      schemaVersion: 1,
      writer: "owner-a",
      createdAt: 1_800_000_000_000,
      files: input("orders", 2, 7).files.map((file) => ({ name: file.name, size: file.bytes.length, sha256: sha256(file.bytes) }))
    })
    assert.deepEqual(await fs.readdir(projectionDir), ["00000000000000000007"], "no temporary directory is left")
    assert.deepEqual((await fs.readdir(written.directory)).sort(), ["MANIFEST.json", "empty", "index.msgpack", "state.bin"])
    const onDisk = JSON.parse(await fs.readFile(path.join(written.directory, "MANIFEST.json"), "utf8"))
    assert.deepEqual(onDisk, written.manifest, "MANIFEST.json holds the manifest")

    const read = await readLatestArtifact(exportRoot, "orders", 2)
    assert.ok(read !== undefined)
    assert.equal(read.directory, written.directory)
    assert.deepEqual(read.manifest, written.manifest)
    assertFiles(read.files, input("orders", 2, 7), "read back")
    assert.ok(read.files.get("state.bin")!.constructor === Uint8Array, "data comes back as plain Uint8Array")
    assert.deepEqual(await listArtifacts(exportRoot, "orders", 2), [written])
  }))

test("projection artifact: nothing exported reads as undefined and lists as empty; a missing root too", () =>
  withRoot(async (root) => {
    assert.equal(await readLatestArtifact(path.join(root, "absent"), "orders", 1), undefined)
    assert.deepEqual(await listArtifacts(path.join(root, "absent"), "orders", 1), [])
    assert.equal(await removeIncomplete(path.join(root, "absent"), "orders", 1), 0)
    await writeArtifact(root, input("orders", 1, 0))
    assert.equal(await readLatestArtifact(root, "orders", 2), undefined, "another version")
    assert.equal(await readLatestArtifact(root, "Orders", 1), undefined, "another name")
  }))

test("projection artifact: the newest round is read, whatever order rounds were written in; listArtifacts sorts by round", () =>
  withRoot(async (root) => {
    for (const round of [3, 0, 12, 9]) await writeArtifact(root, input("orders", 1, round, `owner-${round}`))
    await writeArtifact(root, input("orders", 2, 1))
    const latest = await readLatestArtifact(root, "orders", 1)
    assert.equal(latest?.manifest.round, 12)
    assert.equal(latest?.manifest.writer, "owner-12")
    assertFiles(latest!.files, input("orders", 1, 12), "round 12")
    assert.deepEqual((await listArtifacts(root, "orders", 1)).map((a) => a.manifest.round), [0, 3, 9, 12])
    assert.deepEqual((await listArtifacts(root, "orders", 2)).map((a) => a.manifest.round), [1])
  }))

test("projection artifact: projection names with '/', '@', '..', spaces, unicode, case and great length each get their own directory", () =>
  withRoot(async (root) => {
    const names = ["a/b", "..", ".", "x@1", "x", " spaced out ", "Zürich 🎉 日本", "A", "a", "a".repeat(256), "a".repeat(255) + "b", "%2F", "con"]
    for (const [i, name] of names.entries()) await writeArtifact(root, input(name, 1, i))
    const entries = await fs.readdir(root)
    assert.equal(entries.length, names.length, `one directory per name: ${entries.join(", ")}`)
    for (const entry of entries) assert.match(entry, /^(?:[0-9a-f]+|sha256-[0-9a-f]{64})@1$/, "directory names are safe on every file system")
    for (const [i, name] of names.entries()) {
      const latest = await readLatestArtifact(root, name, 1)
      assert.equal(latest?.manifest.projection, name, `the artifact of ${JSON.stringify(name)}`)
      assert.equal(latest?.manifest.round, i, `the round of ${JSON.stringify(name)}`)
      assertFiles(latest!.files, input(name, 1, i), JSON.stringify(name))
      assert.equal((await listArtifacts(root, name, 1)).length, 1, `only its own artifact for ${JSON.stringify(name)}`)
    }
  }))

test("projection artifact: bad input is refused before anything is written", () =>
  withRoot(async (root) => {
    const base = input("orders", 1, 0)
    const cases: Array<[string, ArtifactInput, RegExp]> = [
      ["an empty file name", { ...base, files: [{ name: "", bytes: new Uint8Array(1) }] }, /must not be empty/],
      ["a file name with /", { ...base, files: [{ name: "a/b", bytes: new Uint8Array(1) }] }, /"a\/b" must not contain/],
      ["a file name with \\", { ...base, files: [{ name: "a\\b", bytes: new Uint8Array(1) }] }, /must not contain/],
      ["the file name ..", { ...base, files: [{ name: "..", bytes: new Uint8Array(1) }] }, /must not be "\." or contain "\.\."/],
      ["a file name with ..", { ...base, files: [{ name: "x..y", bytes: new Uint8Array(1) }] }, /contain "\.\."/],
      ["the file name .", { ...base, files: [{ name: ".", bytes: new Uint8Array(1) }] }, /must not be "\."/],
      ["the file name MANIFEST.json", { ...base, files: [{ name: "MANIFEST.json", bytes: new Uint8Array(1) }] }, /reserved for the manifest/],
      ["the file name manifest.JSON", { ...base, files: [{ name: "manifest.JSON", bytes: new Uint8Array(1) }] }, /reserved for the manifest/],
      ["two names equal but for case", { ...base, files: [{ name: "State", bytes: new Uint8Array(1) }, { name: "state", bytes: new Uint8Array(1) }] }, /"State" and "state"/],
      ["a repeated name", { ...base, files: [{ name: "s", bytes: new Uint8Array(1) }, { name: "s", bytes: new Uint8Array(1) }] }, /"s" and "s"/],
      ["bytes that are not a Uint8Array", { ...base, files: [{ name: "s", bytes: "text" as unknown as Uint8Array }] }, /must be a Uint8Array/],
      ["version 0", { ...base, version: 0 }, /version must be a safe integer ≥ 1/],
      ["round -1", { ...base, round: -1 }, /round must be a safe integer ≥ 0/],
      ["a fractional cursor", { ...base, cursor: 1.5 }, /cursor must be a safe integer/],
      ["an empty projection name", { ...base, projection: "" }, /projection must not be empty/],
      ["an empty writer", { ...base, writer: "" }, /writer must not be empty/]
    ]
    for (const [what, bad, pattern] of cases) await rejects(writeArtifact(root, bad), [/^writeArtifact: /, pattern], what)
    assert.deepEqual(await fs.readdir(root), [], "nothing was written")
    await rejects(readLatestArtifact(root, "orders", 0), [/^readLatestArtifact: version/], "readLatestArtifact at version 0")
    await rejects(listArtifacts(root, "", 1), [/^listArtifacts: projection must not be empty/], "listArtifacts of an empty name")
  }))

test("projection artifact: a round exported already is refused, naming its writer, and stays as it was", () =>
  withRoot(async (root) => {
    const first = await writeArtifact(root, input("orders", 1, 4, "owner-a"))
    const second = { ...input("orders", 1, 4, "owner-b"), files: [{ name: "other", bytes: bytes("other") }] }
    await rejects(writeArtifact(root, second), ['round 4 of "orders"@1 was already exported by "owner-a"', first.directory], "the second export")
    const latest = await readLatestArtifact(root, "orders", 1)
    assert.deepEqual(latest?.manifest, first.manifest)
    assertFiles(latest!.files, input("orders", 1, 4), "after the refused export")
    assert.deepEqual(await fs.readdir(path.dirname(first.directory)), [path.basename(first.directory)], "the refused export left nothing")
    // A round directory without a manifest (not made by writeArtifact) is not replaced either.
    await fs.mkdir(path.join(path.dirname(first.directory), "00000000000000000005"))
    await rejects(writeArtifact(root, input("orders", 1, 5)), ["already exists without a manifest", "00000000000000000005"], "over a manifest-less directory")
  }))

/** Writes rounds 1 and 2 of "orders"@1 and returns round 2's directory. */
const twoRounds = async (root: string) => {
  await writeArtifact(root, input("orders", 1, 1))
  return (await writeArtifact(root, input("orders", 1, 2))).directory
}

/** Damage, and what the error must name besides the damaged file. */
const damages: ReadonlyArray<{ what: string; file: string; damage: (directory: string) => Promise<void>; says: RegExp }> = [
  {
    what: "a truncated data file",
    file: "state.bin",
    damage: async (directory) => fs.truncate(path.join(directory, "state.bin"), 5),
    says: /damaged: it holds 5 bytes, .*MANIFEST\.json says \d+/
  },
  {
    what: "a flipped byte",
    file: "index.msgpack",
    damage: async (directory) => {
      const file = path.join(directory, "index.msgpack")
      const data = await fs.readFile(file)
      data[2] = data[2]! ^ 0x10
      await fs.writeFile(file, data)
    },
    says: /damaged: its SHA-256 is [0-9a-f]{64}, .*MANIFEST\.json says [0-9a-f]{64}/
  },
  { what: "a missing data file", file: "empty", damage: (directory) => fs.rm(path.join(directory, "empty")), says: /is missing/ },
  {
    what: "a manifest listing a file that is not there",
    file: "ghost.bin",
    damage: async (directory) => {
      const file = path.join(directory, "MANIFEST.json")
      const manifest = JSON.parse(await fs.readFile(file, "utf8"))
      manifest.files.push({ name: "ghost.bin", size: 3, sha256: "0".repeat(64) })
      await fs.writeFile(file, JSON.stringify(manifest))
    },
    says: /ghost\.bin is missing \(.*MANIFEST\.json lists it\)/
  },
  {
    what: "a manifest that is not JSON",
    file: "MANIFEST.json",
    damage: async (directory) => {
      const file = path.join(directory, "MANIFEST.json")
      await fs.writeFile(file, (await fs.readFile(file, "utf8")).slice(0, 40))
    },
    says: /is damaged: it is not valid UTF-8 JSON/
  },
  {
    what: "an unknown formatVersion",
    file: "MANIFEST.json",
    damage: async (directory) => {
      const file = path.join(directory, "MANIFEST.json")
      await fs.writeFile(file, JSON.stringify({ ...JSON.parse(await fs.readFile(file, "utf8")), formatVersion: 2 }))
    },
    says: /has formatVersion 2, which this version of annals cannot read \(it reads 1\)/
  },
  {
    what: "a manifest of another format",
    file: "MANIFEST.json",
    damage: (directory) => fs.writeFile(path.join(directory, "MANIFEST.json"), JSON.stringify({ format: "something.else" })),
    says: /its format is "something.else"/
  },
  {
    what: "a manifest field of the wrong type",
    file: "MANIFEST.json",
    damage: async (directory) => {
      const file = path.join(directory, "MANIFEST.json")
      await fs.writeFile(file, JSON.stringify({ ...JSON.parse(await fs.readFile(file, "utf8")), cursor: "12" }))
    },
    says: /cursor must be a safe integer ≥ 0, got string/
  },
  {
    what: "a manifest with a bad sha256",
    file: "MANIFEST.json",
    damage: async (directory) => {
      const file = path.join(directory, "MANIFEST.json")
      const manifest = JSON.parse(await fs.readFile(file, "utf8"))
      manifest.files[0].sha256 = "ABC"
      await fs.writeFile(file, JSON.stringify(manifest))
    },
    says: /files\[0\]\.sha256 must be 64 lowercase hex digits/
  },
  {
    what: "a manifest copied from another round",
    file: "MANIFEST.json",
    damage: (directory) => fs.copyFile(path.join(path.dirname(directory), "00000000000000000001", "MANIFEST.json"), path.join(directory, "MANIFEST.json")),
    says: /damaged or misplaced: its round is 1, but it lies where round 2 of "orders"@1 belongs/
  }
]

for (const { what, file, damage, says } of damages) {
  test(`projection artifact: ${what} in the newest round is an error naming ${file}, with no fall back to the older round`, () =>
    withRoot(async (root) => {
      const directory = await twoRounds(root)
      await damage(directory)
      await rejects(readLatestArtifact(root, "orders", 1), [path.join(directory, file), says], `readLatestArtifact after ${what}`)
      if (file === "MANIFEST.json") {
        await rejects(listArtifacts(root, "orders", 1), [path.join(directory, file), says], `listArtifacts after ${what}`)
      } else {
        assert.deepEqual((await listArtifacts(root, "orders", 1)).map((a) => a.manifest.round), [1, 2], `listArtifacts does not read data files (${what})`)
      }
    }))
}

test("projection artifact: temporary directories and manifest-less rounds are ignored by readers and removed by removeIncomplete", () =>
  withRoot(async (root) => {
    const complete = await twoRounds(root)
    const parent = path.dirname(complete)
    const temp = path.join(parent, ".00000000000000000003.0123abcd.tmp")
    await fs.mkdir(temp)
    await fs.writeFile(path.join(temp, "state.bin"), "half written")
    await fs.writeFile(path.join(temp, "MANIFEST.json"), "{")
    const tempWithoutManifest = path.join(parent, ".00000000000000000004.ffee.tmp")
    await fs.mkdir(tempWithoutManifest)
    const bare = path.join(parent, "00000000000000000009")
    await fs.mkdir(bare)
    await fs.writeFile(path.join(bare, "state.bin"), "no manifest")
    const other = path.join(parent, "README")
    await fs.writeFile(other, "not ours to remove")

    assert.equal((await readLatestArtifact(root, "orders", 1))?.manifest.round, 2, "the newest complete round")
    assert.deepEqual((await listArtifacts(root, "orders", 1)).map((a) => a.manifest.round), [1, 2])
    assert.equal(await removeIncomplete(root, "orders", 1), 3)
    assert.deepEqual((await fs.readdir(parent)).sort(), ["00000000000000000001", "00000000000000000002", "README"])
    assert.equal(await removeIncomplete(root, "orders", 1), 0, "nothing left to remove")
    assert.equal((await readLatestArtifact(root, "orders", 1))?.manifest.round, 2, "complete rounds untouched")
    await writeArtifact(root, input("orders", 1, 3))
    assert.equal((await readLatestArtifact(root, "orders", 1))?.manifest.round, 3, "a round whose temporary directory was removed can be exported")
  }))

test("projection artifact: a fold exports to { artifacts: ArtifactStore.directory(root) } as to { directory: root }; bad locations are refused", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const root = yield* tempDirectory("artifact")
    yield* appendConcurrently(yield* Journal.Journal, 2, 20)
    const { projection } = balances()
    const running = yield* Projection.run(projection, { replica: "a" })
    yield* running.awaitCaughtUp
    const first = Option.getOrThrow(yield* running.exportState({ artifacts: ArtifactStore.directory(root), round: 1 }))
    const second = Option.getOrThrow(yield* running.exportState({ directory: root, round: 2 }))
    assert.deepEqual((yield* Effect.promise(() => listArtifacts(root, "balances", 1))).map((entry) => entry.manifest), [first, second])
    assert.deepEqual(yield* Projection.importLatest(projection, { artifacts: ArtifactStore.directory(root), replica: "b" }), Option.some(second))

    const bad: ReadonlyArray<readonly [ArtifactStore.Location, string]> = [
      [{ directory: "" }, "directory must not be empty"],
      [{ artifacts: {} as ArtifactStore.ArtifactStore }, "artifacts must be an ArtifactStore"],
      [{ directory: root, artifacts: ArtifactStore.directory(root) } as unknown as ArtifactStore.Location, "either directory or artifacts"]
    ]
    for (const [location, says] of bad) {
      yield* expectError(running.exportState({ ...location, round: 3 }), "ProjectionError", "Cannot export balances@1", says)
      yield* expectError(Projection.importLatest(projection, { ...location, replica: "c" }), "ProjectionError", "balances@1#c", says)
    }
    assert.throws(() => ArtifactStore.directory(""), /ArtifactStore\.directory: directory must not be empty/)
  }).pipe(Effect.provide(Layer.mergeAll(Journal.layerMemory, SnapshotStore.layerMemory(), CursorStore.layerMemory))))))
