/**
 * The read-only opens of the file stores (`makeReadOnly` of FileJournal, FileSnapshotStore and
 * FileCursorStore, `DirectoryArchive.layerReadOnly`), beside a writer:
 *
 * - a writer child process appends (its segments rotating) while a read-only journal of this
 *   process follows: every record arrives once, in seq order, and the reads agree with the writer's
 *   final state;
 * - the reader changes nothing on disk (every file's name, size and bytes are the same after a
 *   session of reads, a leftover temp file and a torn tail included), takes no lock (a writable open
 *   succeeds beside it), and a partial append at the tail is "not written yet", seen once complete;
 * - segments the writer's truncation deletes: the records still there read as before, `follow`
 *   from a truncated seq fails with `JournalTruncated`;
 * - damage in the middle of a segment fails with the file and offset; writes and a missing
 *   directory fail with a typed error naming the directory;
 * - the snapshot store, cursor store and archive read what their writers stored and refuse writes,
 *   changing nothing on disk.
 */
import { Effect, Fiber, Logger, Option, References, Stream } from "effect"
import assert from "node:assert/strict"
import * as fs from "node:fs"
import * as path from "node:path"
import { test } from "node:test"
import { Archive } from "../src/Archive.ts"
import { DirectoryArchive, FileCursorStore, FileJournal, FileSnapshotStore } from "../src/file/index.ts"
import { nodeFileIo } from "../src/file/internal/fileIo.ts"
import { openReadOnly } from "../src/file/internal/readOnlyJournal.ts"
import type { Journal, JournalRecord, StreamRef } from "../src/Journal.ts"
import { spawnChild, withTimeout } from "./support/childProcess.ts"
import { tempDirectory } from "./support/tempDirectory.ts"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** A record as plain comparable data. */
const plain = (r: JournalRecord) => ({ seq: r.seq, stream: `${r.namespace}/${r.id}`, version: r.version, type: r.type, payload: decoder.decode(r.payload) })

const streamOf = (i: number): StreamRef => ({ namespace: "ro", id: `s${i}` })

const replayAll = (journal: Journal, fromSeq = 1) => Effect.map(Stream.runCollect(journal.replayFrom(fromSeq)), (rs) => rs.map(plain))

/** Appends `count` one-event appends to ro/s0…s2 (`label` in the payloads). */
const appendSome = (journal: Journal, count: number, label: string) =>
  Effect.forEach(Array.from({ length: count }, (_, i) => i), (i) =>
    journal.append(streamOf(i % 3), "any", [{ type: "Written", payload: encoder.encode(`${label}${i}`) }]), { discard: true })

/** Every file below `directory` (its path inside it) with its size and bytes (hex), sorted by path. */
const listing = (directory: string): Array<{ name: string; size: number; bytes: string }> =>
  fs.readdirSync(directory).sort().flatMap((name) => {
    const file = path.join(directory, name)
    if (fs.statSync(file).isDirectory()) return listing(file).map((entry) => ({ ...entry, name: `${name}/${entry.name}` }))
    const bytes = fs.readFileSync(file)
    return [{ name, size: bytes.length, bytes: bytes.toString("hex") }]
  })

/** The byte offsets of the frames of a segment file's bytes. */
const frameOffsets = (bytes: Uint8Array) => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const offsets: Array<number> = []
  for (let at = 24; at < bytes.length; at += 8 + view.getUint32(at, true)) offsets.push(at)
  return offsets
}

/** Waits (polling, up to 5 s) until `condition` holds. */
const eventually = (condition: () => boolean, what: string) =>
  Effect.promise(() =>
    withTimeout((async () => {
      while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5))
    })(), 5_000, what)
  )

/** Runs `effect` with warnings (a writable open cutting a torn tail) kept out of the test output. */
const quiet = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, References.CurrentLoggers, new Set([Logger.make(() => {})]))

const run = <A, E>(effect: Effect.Effect<A, E, import("effect").Scope.Scope>) => Effect.runPromise(quiet(Effect.scoped(effect)))

/** The failure of `effect`, which must fail with an error tagged `tag`. */
const failure = <A, E extends { readonly _tag: string }, R>(tag: string, effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.flip(effect), (error) => {
    assert.equal(error._tag, tag, String(error))
    return error as E & { readonly message: string; readonly method: string }
  })

/** The failure of `effect`, which must fail with a JournalError. */
const journalError = <A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>) => failure("JournalError", effect)

test("FileJournal read-only: follows a writer child process through segment rotations, every record once and in order; reads agree with the writer", () =>
  run(Effect.gen(function*() {
    const directory = yield* tempDirectory("ro-follow")
    // A journal with history, and its writer gone: the child opens it while the reader holds it.
    yield* Effect.scoped(Effect.flatMap(FileJournal.make({ directory, durability: "os", segmentBytes: 2048 }), (j) => appendSome(j, 20, "before")))
    const reader = yield* FileJournal.makeReadOnly({ directory, pollMs: 10 })
    const followed: Array<ReturnType<typeof plain>> = []
    const follower = yield* Effect.forkChild(Stream.runForEach(reader.follow(1), (r) => Effect.sync(() => void followed.push(plain(r)))))

    const child = yield* spawnChild("fileWriterChild", [directory, "4000", "512"])
    // The child's writable open succeeded beside the reader: the reader holds no lock.
    yield* Effect.promise(() => withTimeout(child.line(/^ready$/), 30_000, "the writer child's open"))
    // Meanwhile, replays from the start never skip a seq: a directory listing made while the writer
    // creates segments may miss one and show a later one (readdir is not atomic).
    let replays = 0
    let skipped: string | undefined
    const replaying = yield* Effect.forkChild(Effect.forever(Effect.flatMap(replayAll(reader), (records) =>
      Effect.sync(() => {
        replays++
        const gap = records.findIndex((r, i) => r.seq !== i + 1)
        if (gap >= 0) skipped ??= `replay ${replays} went from seq ${gap} to ${records[gap]!.seq}`
      }))))
    const done = yield* Effect.promise(() => withTimeout(child.line(/^done (\d+) (\d+) (\d+) (\d+)$/), 30_000, "the writer child's appends"))
    yield* Fiber.interrupt(replaying)
    assert.equal(skipped, undefined)
    assert.ok(replays > 0, "no replay ran while the writer wrote")
    const exit = yield* Effect.promise(() => child.closed)
    assert.equal(exit.code, 0, child.stderr())
    const lastSeq = Number(done[1])
    yield* eventually(() => (followed[followed.length - 1]?.seq ?? 0) >= lastSeq, `the follower to reach seq ${lastSeq}`)
    yield* Fiber.interrupt(follower)

    assert.ok(fs.readdirSync(directory).filter((n) => n.endsWith(".segment")).length > 5, "the writer rotated its segments")
    const replayed = yield* replayAll(reader)
    assert.deepEqual(followed, replayed, "follow delivered what replayFrom(1) reads, every record once")
    assert.deepEqual(followed.map((r) => r.seq), Array.from({ length: lastSeq }, (_, i) => i + 1), "seqs 1..lastSeq in order")
    assert.equal(yield* reader.lastSeq, lastSeq)
    for (let s = 0; s < 3; s++) {
      assert.equal(yield* reader.version(streamOf(s)), Number(done[2 + s]), `version of s${s}`)
      const records = (yield* Stream.runCollect(reader.read(streamOf(s)))).map(plain)
      assert.deepEqual(records, replayed.filter((r) => r.stream === `ro/s${s}`), `read(s${s})`)
    }
    const writer = yield* FileJournal.make({ directory, durability: "os" })
    assert.deepEqual(yield* replayAll(writer), replayed, "a writable open reads the same")
  })))

test("FileJournal read-only: changes nothing on disk and takes no lock; a torn tail is not cut, only not written yet", () =>
  run(Effect.gen(function*() {
    const directory = yield* tempDirectory("ro-quiet")
    const writer = yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* FileJournal.make({ directory, durability: "os", segmentBytes: 1024 })
      yield* appendSome(journal, 30, "x")
      yield* journal.truncateBefore(5)
      yield* appendSome(journal, 2, "y")
      return yield* replayAll(journal)
    }))
    // A crash's leftovers: a temp file, and the last append torn in half.
    fs.writeFileSync(path.join(directory, "checkpoint.tmp"), "left by a crash")
    const segments = fs.readdirSync(directory).filter((n) => n.endsWith(".segment")).sort()
    const last = path.join(directory, segments[segments.length - 1]!)
    const whole = fs.readFileSync(last)
    // Every frame here is longer than 60 bytes: cutting 10 tears the last append only.
    fs.truncateSync(last, whole.length - 10)
    const before = listing(directory)

    yield* Effect.scoped(Effect.gen(function*() {
      const reader = yield* FileJournal.makeReadOnly({ directory })
      const expected = writer.slice(0, -1)
      assert.deepEqual(yield* replayAll(reader), expected, "the torn append is not there")
      assert.deepEqual(yield* replayAll(reader, 20), expected.filter((r) => r.seq >= 20))
      assert.equal(yield* reader.lastSeq, expected[expected.length - 1]!.seq)
      assert.equal(yield* reader.checkpoint, 5)
      assert.equal(yield* reader.version(streamOf(1)), expected.filter((r) => r.stream === "ro/s1").length + 1, "s1 keeps its truncated versions")
      assert.deepEqual((yield* Stream.runCollect(reader.read(streamOf(2), { from: 3, max: 2 }))).map(plain), expected.filter((r) => r.stream === "ro/s2" && r.version >= 3).slice(0, 2))
      assert.deepEqual((yield* Stream.runCollect(Stream.take(reader.follow(5), 3))).map(plain), expected.slice(0, 3))
      assert.deepEqual((yield* Stream.runCollect(reader.replayUntil(1, Number.MAX_SAFE_INTEGER))).map(plain), expected)
      assert.deepEqual(listing(directory), before, "every file as it was: nothing cut, cleaned or created")

      // The rest of the torn append arrives, as from a writer that was in the middle of it.
      fs.appendFileSync(last, whole.subarray(whole.length - 10))
      assert.deepEqual(yield* replayAll(reader), writer, "the append is seen once complete")
      assert.equal(yield* reader.lastSeq, writer[writer.length - 1]!.seq)

      // No lock: a writable open beside the reader works, and the reader sees its appends.
      yield* Effect.scoped(Effect.flatMap(FileJournal.make({ directory, durability: "os", segmentBytes: 1024 }), (j) => appendSome(j, 3, "z")))
      assert.equal(yield* reader.lastSeq, writer[writer.length - 1]!.seq + 3)
    }))
  })))

test("FileJournal read-only: segments the writer's truncation deletes — the records still there read as before, follow from a truncated seq fails with JournalTruncated", () =>
  run(Effect.gen(function*() {
    const directory = yield* tempDirectory("ro-truncate")
    const writer = yield* FileJournal.make({ directory, durability: "os", segmentBytes: 1024 })
    yield* appendSome(writer, 60, "a")
    const reader = yield* FileJournal.makeReadOnly({ directory, pollMs: 5 })
    assert.equal((yield* replayAll(reader)).length, 60)
    const followed: Array<number> = []
    const follower = yield* Effect.forkChild(Stream.runForEach(reader.follow(1), (r) => Effect.sync(() => void followed.push(r.seq))))
    const fromEnd: Array<number> = []
    const tailFollower = yield* Effect.forkChild(Stream.runForEach(reader.follow(55), (r) => Effect.sync(() => void fromEnd.push(r.seq))))
    yield* eventually(() => followed.length === 60 && fromEnd.length === 6, "the followers to reach the end")

    const segmentsBefore = fs.readdirSync(directory).filter((n) => n.endsWith(".segment")).length
    yield* writer.truncateBefore(40)
    yield* appendSome(writer, 5, "b")
    assert.ok(fs.readdirSync(directory).filter((n) => n.endsWith(".segment")).length < segmentsBefore, "the truncation deleted segments")
    const expected = yield* replayAll(writer)
    assert.deepEqual(yield* replayAll(reader), expected, "replayFrom(1) reads the records still there")
    for (let s = 0; s < 3; s++) {
      assert.deepEqual((yield* Stream.runCollect(reader.read(streamOf(s)))).map(plain), yield* Effect.map(Stream.runCollect(writer.read(streamOf(s))), (rs) => rs.map(plain)))
      assert.equal(yield* reader.version(streamOf(s)), yield* writer.version(streamOf(s)), "versions survive the truncation")
    }
    const truncated = yield* Effect.flip(Stream.runDrain(reader.follow(10)))
    assert.equal(truncated._tag, "JournalTruncated")
    // The followers had passed the truncation point: they go on.
    yield* eventually(() => followed.length === 65 && fromEnd.length === 11, "the followers to see the new appends")
    assert.deepEqual(fromEnd, [55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65])
    assert.deepEqual(followed, Array.from({ length: 65 }, (_, i) => i + 1))

    // A truncation past the end: the writer starts a new segment and deletes every one before it.
    const versions = yield* Effect.forEach([0, 1, 2], (s) => reader.version(streamOf(s)))
    yield* writer.truncateBefore(66)
    assert.deepEqual(yield* replayAll(reader), [])
    assert.equal(yield* reader.lastSeq, 65)
    assert.deepEqual(yield* Effect.forEach([0, 1, 2], (s) => reader.version(streamOf(s))), versions)
    yield* appendSome(writer, 2, "c")
    yield* eventually(() => followed.length === 67, "the follower to see the appends after the truncation")
    assert.deepEqual((yield* replayAll(reader)).map((r) => r.seq), [66, 67])
    yield* Fiber.interrupt(follower)
    yield* Fiber.interrupt(tailFollower)
  })))

test("FileJournal read-only: a read that finds its segment deleted by a truncation after it caught up reads again, without the truncated records", () =>
  run(Effect.gen(function*() {
    const directory = yield* tempDirectory("ro-vanish")
    const snapshot = () => new Map(fs.readdirSync(directory).map((n) => [n, fs.readFileSync(path.join(directory, n))]))
    const restoreFiles = (files: ReadonlyMap<string, Uint8Array>) => {
      for (const name of fs.readdirSync(directory)) if (!files.has(name)) fs.rmSync(path.join(directory, name))
      for (const [name, bytes] of files) fs.writeFileSync(path.join(directory, name), bytes)
    }
    // The directory before and after a truncation that deletes the first segments.
    const [untruncated, truncated] = yield* Effect.scoped(Effect.gen(function*() {
      const writer = yield* FileJournal.make({ directory, durability: "os", segmentBytes: 1024 })
      yield* appendSome(writer, 60, "v")
      const before = snapshot()
      yield* writer.truncateBefore(40)
      return [before, snapshot()] as const
    }))
    restoreFiles(untruncated)
    const first = path.join(directory, [...untruncated.keys()].filter((n) => n.endsWith(".segment")).sort()[0]!)
    let armed = false
    let truncations = 0
    // Once open, the truncation lands when the reader opens the first segment to read it: after it caught up.
    const io = {
      ...nodeFileIo,
      openSync: (file: string, flags: string) => {
        if (armed && file === first && truncations++ === 0) restoreFiles(truncated)
        return nodeFileIo.openSync(file, flags)
      }
    }
    const reader = yield* openReadOnly({ directory }, io)
    armed = true
    assert.deepEqual((yield* replayAll(reader)).map((r) => r.seq), Array.from({ length: 21 }, (_, i) => 40 + i))
    assert.equal(truncations, 1, "the read met the deleted segment")
    assert.equal(yield* reader.lastSeq, 60)
  })))

test("FileJournal read-only: damage in the middle of a segment fails with the file and offset, at the open and on a later read", () =>
  run(Effect.gen(function*() {
    const directory = yield* tempDirectory("ro-damage")
    yield* Effect.scoped(Effect.flatMap(FileJournal.make({ directory, durability: "os", segmentBytes: 1024 }), (j) => appendSome(j, 40, "d")))
    const segments = fs.readdirSync(directory).filter((n) => n.endsWith(".segment")).sort()
    const flip = (file: string, offset: number) => {
      const bytes = fs.readFileSync(file)
      bytes[offset] = bytes[offset]! ^ 0xff
      fs.writeFileSync(file, bytes)
    }
    const sealed = path.join(directory, segments[0]!)
    const original = fs.readFileSync(sealed)
    flip(sealed, 24 + 20)
    const atOpen = yield* journalError(Effect.scoped(FileJournal.makeReadOnly({ directory })))
    assert.ok(atOpen.message.includes(`bad record at byte offset 24 of ${sealed} (a sealed segment)`), atOpen.message)
    fs.writeFileSync(sealed, original)

    const reader = yield* FileJournal.makeReadOnly({ directory })
    assert.equal((yield* replayAll(reader)).length, 40)
    // A record in the middle of the last segment goes bad, then the writer appends after it.
    yield* Effect.scoped(Effect.flatMap(FileJournal.make({ directory, durability: "os", segmentBytes: 1 << 20 }), (j) => appendSome(j, 3, "e")))
    const last = path.join(directory, fs.readdirSync(directory).filter((n) => n.endsWith(".segment")).sort().pop()!)
    const frames = frameOffsets(fs.readFileSync(last))
    const offset = frames[frames.length - 3]!
    flip(last, offset + 30)
    const later = yield* journalError(reader.lastSeq)
    assert.match(later.message, /bad record at byte offset \d+ of .*, followed by intact records/)
    assert.ok(later.message.includes(last), later.message)
    const again = yield* journalError(Stream.runDrain(reader.replayFrom(1)))
    assert.equal(again.message.includes(last), true, "every later read fails with it")
  })))

test("FileJournal read-only: writes fail with a JournalError naming the directory; so does a missing directory, and bad options", () =>
  run(Effect.gen(function*() {
    const directory = yield* tempDirectory("ro-writes")
    yield* Effect.scoped(Effect.flatMap(FileJournal.make({ directory }), (j) => appendSome(j, 2, "w")))
    const before = listing(directory)
    const reader = yield* FileJournal.makeReadOnly({ directory })
    const record = (yield* Stream.runCollect(reader.replayFrom(1)))[0]!
    for (
      const [method, write] of [
        ["append", reader.append(streamOf(0), "any", [{ type: "Written", payload: new Uint8Array(1) }])],
        ["truncateBefore", reader.truncateBefore(2)],
        ["setCheckpoint", reader.setCheckpoint(2)],
        ["restore", reader.restore([{ ...record, seq: 10 }])]
      ] as const
    ) {
      const error = yield* journalError(write as Effect.Effect<unknown, { readonly _tag: string }>)
      assert.equal(error.method, method)
      assert.ok(error.message.includes(directory) && error.message.includes("read-only"), error.message)
    }
    assert.deepEqual(listing(directory), before, "nothing written")

    const missing = path.join(directory, "nowhere")
    const error = yield* journalError(Effect.scoped(FileJournal.makeReadOnly({ directory: missing })))
    assert.ok(error.message.includes(missing) && error.message.includes("no such directory"), error.message)
    assert.equal(fs.existsSync(missing), false, "not created")
    yield* journalError(Effect.scoped(FileJournal.makeReadOnly({ directory: "" })))
    yield* journalError(Effect.scoped(FileJournal.makeReadOnly({ directory, pollMs: 0 })))
  })))

test("FileSnapshotStore, FileCursorStore and DirectoryArchive read-only: reads work, writes fail with the module's error, nothing on disk changes", () =>
  run(Effect.gen(function*() {
    const root = yield* tempDirectory("ro-stores")
    const snapshots = path.join(root, "snapshots")
    const cursors = path.join(root, "cursors")
    const archive = path.join(root, "archive")
    const snapshot = (version: number) => ({ namespace: "ro", id: "s0", version, seq: version, timestamp: version, schemaVersion: 1, state: new Uint8Array([version]) })
    const writable = yield* FileSnapshotStore.make({ directory: snapshots, keep: 2 })
    yield* writable.put(snapshot(1))
    yield* writable.put(snapshot(2))
    const streamDirectory = path.join(snapshots, fs.readdirSync(snapshots)[0]!)
    fs.writeFileSync(path.join(streamDirectory, fs.readdirSync(streamDirectory)[0]!, "left-by-a-crash.tmp"), "x")
    // The cursor store's writer holds its lock while the reader opens beside it.
    const cursorWriter = yield* FileCursorStore.make({ directory: cursors })
    yield* cursorWriter.commit("projection", 7)
    fs.writeFileSync(path.join(cursors, "left-by-a-crash.tmp"), "x")
    const records = (yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* FileJournal.make({ directory: path.join(root, "journal"), durability: "os" })
      yield* appendSome(journal, 3, "r")
      return yield* Stream.runCollect(journal.replayFrom(1))
    })))
    const archived = yield* Effect.provide(
      Effect.gen(function*() {
        return yield* (yield* Archive).put({ startSeq: 1, endSeq: 3, records })
      }),
      DirectoryArchive.layer({ directory: archive })
    )
    const before = listing(root)

    const snapshotReader = yield* FileSnapshotStore.makeReadOnly({ directory: snapshots })
    assert.deepEqual(Option.map(yield* snapshotReader.get("ro", "s0"), (s) => s.version), Option.some(2))
    assert.deepEqual(Option.map(yield* snapshotReader.get("ro", "s0", { maxVersion: 1 }), (s) => s.version), Option.some(1))
    assert.deepEqual((yield* Stream.runCollect(snapshotReader.scan("ro"))).map((s) => s.version), [2])
    const snapshotWrites: ReadonlyArray<Effect.Effect<unknown, { readonly _tag: string }>> = [snapshotReader.put(snapshot(3)), snapshotReader.delete("ro", "s0")]
    for (const write of snapshotWrites) {
      const error = yield* failure("SnapshotStoreError", write)
      assert.ok(error.message.includes(snapshots) && error.message.includes("read-only"), error.message)
    }

    const cursorReader = yield* FileCursorStore.makeReadOnly({ directory: cursors })
    assert.deepEqual(Option.map(yield* cursorReader.get("projection"), (c) => c.seq), Option.some(7))
    yield* cursorWriter.commit("projection", 9)
    assert.deepEqual(Option.map(yield* cursorReader.get("projection"), (c) => c.seq), Option.some(9), "reads see the writer's later commits")
    assert.deepEqual((yield* cursorReader.list).map((c) => [c.name, c.seq]), [["projection", 9]])
    const afterCommit = listing(root)
    const cursorWrites: ReadonlyArray<Effect.Effect<unknown, { readonly _tag: string }>> = [
      cursorReader.commit("projection", 10),
      cursorReader.acquire("projection", "cli", 1000),
      cursorReader.delete("projection")
    ]
    for (const write of cursorWrites) {
      const error = yield* failure("CursorStoreError", write)
      assert.ok(error.message.includes(cursors) && error.message.includes("read-only"), error.message)
    }

    yield* Effect.provide(
      Effect.gen(function*() {
        const reader = yield* Archive
        assert.deepEqual(yield* reader.list(), [archived])
        assert.deepEqual((yield* reader.get(archived)).map((r) => r.seq), [1, 2, 3])
        const error = yield* failure("ArchiveError", reader.put({ startSeq: 4, endSeq: 4, records: [{ ...records[0]!, seq: 4 }] }))
        assert.ok(error.message.includes(archive) && error.message.includes("read-only"), error.message)
      }),
      DirectoryArchive.layerReadOnly({ directory: archive })
    )
    assert.deepEqual(listing(root).filter((f) => !f.name.startsWith("cursors/")), before.filter((f) => !f.name.startsWith("cursors/")), "nothing changed")
    assert.deepEqual(listing(root), afterCommit, "nothing changed but the writer's own commit")

    const missing = path.join(root, "nowhere")
    assert.ok((yield* failure("SnapshotStoreError", FileSnapshotStore.makeReadOnly({ directory: missing }))).message.includes(missing))
    assert.ok((yield* failure("CursorStoreError", FileCursorStore.makeReadOnly({ directory: missing }))).message.includes(missing))
    const archiveError = yield* failure("ArchiveError", Effect.provide(Effect.asVoid(Archive.use(() => Effect.void)), DirectoryArchive.layerReadOnly({ directory: missing })))
    assert.ok(archiveError.message.includes(missing), archiveError.message)
    assert.equal(fs.existsSync(missing), false, "not created")
  })))
