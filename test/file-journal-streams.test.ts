/**
 * The file Journal's per-stream state, at scale and across crashes (issue 9):
 *
 * - the record index against a plain model, with many streams and names of every shape;
 * - the memory an open keeps per stream (a journal of 100,000 one-record streams);
 * - a truncation writes bytes in proportion to the streams it touches, not to the truncated history;
 * - the `streams` log: a crash at every operation of a truncation, and its last frame cut at every
 *   byte, reopen with every stream's version and either all records or those at or after the
 *   truncation point; damage before its tail fails the open; the format of earlier versions is read.
 *
 * Runs on the simulated file system (test/support/simulatedFs.ts).
 */
import { Effect, Exit, Stream } from "effect"
import assert from "node:assert/strict"
import * as path from "node:path"
import process from "node:process"
import { test } from "node:test"
import type { FileIo } from "../src/file/internal/fileIo.ts"
import { open } from "../src/file/internal/fileJournal.ts"
import { RecordIndex } from "../src/file/internal/recordIndex.ts"
import { encodeState } from "../src/file/internal/segmentFormat.ts"
import type { Journal, JournalRecord, StreamRef } from "../src/Journal.ts"
import { spawnChild, withTimeout } from "./support/childProcess.ts"
import { prng } from "./support/ledger.ts"
import { SimulatedFs } from "./support/simulatedFs.ts"
import { tempDirectory } from "./support/tempDirectory.ts"

const DIR = "/journal"
const LOG = `${DIR}/streams`
const SEED = Number(process.env["ANNALS_CRASH_SEED"] ?? 9)

const payload = (n: number) => new Uint8Array([n & 0xff, (n >> 8) & 0xff])

/** Runs `body` on the journal on `disk`, then closes it. */
const withJournal = <A>(disk: FileIo, body: (journal: Journal) => Effect.Effect<A, unknown>, segmentBytes = 256) =>
  Effect.scoped(Effect.flatMap(open({ directory: DIR, durability: "always", segmentBytes }, disk), body))

/** What a journal holds: every record (seq, stream, version), lastSeq, and every stream's version and read. */
const contents = (journal: Journal, streams: ReadonlyArray<StreamRef>) =>
  Effect.gen(function*() {
    const line = (r: JournalRecord) => `${r.seq} ${r.namespace}/${r.id} v${r.version}`
    const records = (yield* Stream.runCollect(journal.replayFrom(1))).map(line)
    const versions: Record<string, number> = {}
    const reads: Record<string, Array<string>> = {}
    for (const s of streams) {
      versions[`${s.namespace}/${s.id}`] = yield* journal.version(s)
      reads[`${s.namespace}/${s.id}`] = (yield* Stream.runCollect(journal.read(s))).map(line)
    }
    return { records, lastSeq: yield* journal.lastSeq, versions, reads }
  })

type Contents = Effect.Success<ReturnType<typeof contents>>

/** `before` with only the records at or after `seq`. */
const truncatedAt = (before: Contents, seq: number): Contents => {
  const keep = (line: string) => Number(line.split(" ")[0]) >= seq
  return {
    records: before.records.filter(keep),
    lastSeq: before.lastSeq,
    versions: before.versions,
    reads: Object.fromEntries(Object.entries(before.reads).map(([k, lines]) => [k, lines.filter(keep)]))
  }
}

/** Names of every shape: ASCII, non-ASCII, a surrogate pair, the longest allowed, a leading BOM. */
const NAMES: ReadonlyArray<StreamRef> = [
  { namespace: "account", id: "1" },
  { namespace: "account", id: "2" },
  { namespace: "cart", id: "1" },
  { namespace: "cärt", id: "ünïcode-id" },
  { namespace: "cart", id: "emoji-😀" },
  { namespace: "cart", id: "x".repeat(256) },
  { namespace: "cart", id: "\uFEFFbom" },
  { namespace: "a", id: "b\u0001c" }
]

/**
 * A journal of small segments: `count` streams with 1–3 records each (and the names above), written in
 * a seeded order. Returns the streams.
 */
const populate = (journal: Journal, random: () => number, count: number) =>
  Effect.gen(function*() {
    const streams = [...NAMES, ...Array.from({ length: count }, (_, i) => ({ namespace: `ns${i % 3}`, id: `stream-${i}` }))]
    const versions = new Map<StreamRef, number>()
    for (let i = 0; i < streams.length * 2; i++) {
      const s = streams[Math.floor(random() * streams.length)]!
      const v = versions.get(s) ?? 0
      if (v >= 3) continue
      const events = Array.from({ length: 1 + Math.floor(random() * 2) }, (_, k) => ({ type: "E", payload: payload(i + k) }))
      yield* journal.append(s, v, events)
      versions.set(s, v + events.length)
    }
    return streams
  })

// ─── The index ─────────────────────────────────────────────────────────────────────────────────

test("RecordIndex: streams, versions and live records agree with a plain model through adds, truncations and kept versions", () => {
  const random = prng(SEED)
  const index = new RecordIndex()
  const names = [...NAMES, ...Array.from({ length: 3000 }, (_, i) => ({ namespace: `n${i % 7}`, id: `id-${i * 7919}` }))]
  const model = new Map<string, { version: number; records: Array<{ seq: number; version: number }>; truncated: number }>()
  const key = (s: StreamRef) => `${s.namespace}\u0000${s.id}`
  let seq = 0
  let truncatedBefore = 1
  for (let step = 0; step < 20_000; step++) {
    const r = random()
    const name = names[Math.floor(random() * names.length)]!
    const known = model.get(key(name))
    const m = known ?? { version: 0, records: [], truncated: 0 }
    if (r < 0.9 || r >= 0.97) model.set(key(name), m)
    if (r < 0.9) {
      seq += 1 + Math.floor(random() * 2)
      m.version++
      m.records.push({ seq, version: m.version })
      index.add(index.streamOrCreate(name.namespace, name.id), m.version, seq, 0, seq * 10, 10)
    } else if (r < 0.97) {
      truncatedBefore = Math.max(truncatedBefore, seq - Math.floor(random() * 200))
      const touched = new Set(index.dropBefore(truncatedBefore).map((s) => key({ namespace: index.namespace(s), id: index.id(s) })))
      const expected = new Set<string>()
      for (const [k, stream] of model) {
        const dropped = stream.records.filter((x) => x.seq < truncatedBefore)
        if (dropped.length === 0) continue
        expected.add(k)
        stream.truncated = dropped[dropped.length - 1]!.version
        stream.records = stream.records.filter((x) => x.seq >= truncatedBefore)
      }
      assert.deepEqual([...touched].sort(), [...expected].sort(), `step ${step}: the streams a truncation touched`)
    } else {
      // A version from the streams file: below what the stream has, it changes nothing.
      const s = index.streamOrCreate(name.namespace, name.id)
      const v = Math.floor(random() * (m.version + 1))
      index.keepTruncated(s, v)
      if (m.records.length === 0 && v > m.truncated) m.truncated = v
      m.version = Math.max(m.version, v)
    }
  }
  let truncatedStreams = 0
  for (const name of names) {
    const m = model.get(key(name))
    const s = index.stream(name.namespace, name.id)
    if (m === undefined) {
      assert.equal(s, -1, `${key(name)} is unknown`)
      continue
    }
    assert.ok(s >= 0)
    assert.equal(index.namespace(s), name.namespace)
    assert.equal(index.id(s), name.id)
    assert.equal(index.version(s), m.version, `version of ${key(name)}`)
    assert.equal(index.versionOf(name.namespace, name.id), m.version)
    assert.equal(index.truncatedVersion(s), m.records.length > 0 ? m.records[0]!.version - 1 : m.version, `truncated version of ${key(name)}`)
    assert.equal(index.liveCount(s), m.records.length, `live records of ${key(name)}`)
    m.records.forEach((x, i) => assert.equal(index.seq(index.recordOf(s, i)), x.seq, `record ${i} of ${key(name)}`))
    if (index.truncatedVersion(s) > 0) truncatedStreams++
  }
  assert.equal(index.truncatedCount, truncatedStreams)
  assert.equal([...index.truncatedStreams()].length, truncatedStreams)
  assert.equal(index.stream("account", "never"), -1)
  assert.equal(index.stream("no-such-namespace", "1"), -1)
  assert.equal(index.versionOf("no-such-namespace", "1"), 0)
})

// ─── Memory ───────────────────────────────────────────────────────────────────────────────────

test("FileJournal: each one-record stream an open indexes keeps well under the old index's 400 bytes (80,000 against 190,000 streams)", {
  skip: "Bun" in globalThis ? false : "only Bun's collector gives a stable figure (see the comment)"
}, () =>
  Effect.gen(function*() {
    // Each journal built, and each open measured, in a process of its own (support/streamIndexCost.ts):
    // in a runner's process, or after building a journal, other allocations skewed the figure
    // (measured in one process, the difference came out negative in some busy runs).
    const directory = yield* tempDirectory("journal-streams")
    const run = (args: ReadonlyArray<string>, pattern: RegExp) =>
      Effect.scoped(Effect.flatMap(spawnChild("streamIndexCost", args), (child) =>
        Effect.promise(() => withTimeout(child.line(pattern), 120_000, `the child ${args.join(" ")}`))))
    const sizes = [80_000, 190_000] as const
    for (const size of sizes) yield* run(["build", path.join(directory, String(size)), String(size)], /^built$/)
    // The least of three fresh processes each: garbage a collection left behind only ever adds.
    const least = (size: number) =>
      Effect.map(
        Effect.forEach([1, 2, 3], () => run(["measure", path.join(directory, String(size)), String(size)], /^cost (-?\d+)$/)),
        (lines) => Math.min(...lines.map((line) => Number(line[1])))
      )
    const bytes = ((yield* least(sizes[1])) - (yield* least(sizes[0]))) / (sizes[1] - sizes[0])
    // The old index (an object, a Map entry, a key string and an array per stream) kept over 400 bytes.
    // Only Bun's collector (Bun.gc) gives a figure stable enough to assert on: Deno exposes no
    // collection to the script (the figure comes out near 0), and Node's, switched on at run time,
    // measured 127, 287 and 1,432 bytes in three runs of the same code. bench/file.ts measures the
    // resident memory of an open of 1M streams on all three.
    // Measured this way: 129 bytes, the same to the byte in three processes each. The bound is set
    // between that and the old index's 400 and more, which is what this test guards against.
    assert.ok(bytes > 0 && bytes < 320, `an open keeps ${bytes.toFixed(0)} bytes per stream`)
  }).pipe(Effect.scoped, Effect.runPromise))

// ─── Truncation cost ───────────────────────────────────────────────────────────────────────────

/** `disk` as a FileIo that counts the bytes written to the `streams` file (and its temp file). */
const countingStreamsWrites = (disk: SimulatedFs) => {
  const paths = new Map<number, string>()
  const counter = { bytes: 0 }
  const io: FileIo = {
    ...disk,
    openSync: (path, flags) => {
      const fd = disk.openSync(path, flags)
      paths.set(fd, path)
      return fd
    },
    writeSync: (fd, buffer, offset, length, position) => {
      const written = disk.writeSync(fd, buffer, offset, length, position)
      if (paths.get(fd)?.startsWith(LOG) === true) counter.bytes += written
      return written
    }
  }
  return { io, counter }
}

test("FileJournal: a truncation writes bytes in proportion to the streams it touches, not to the truncated history", () =>
  Effect.gen(function*() {
    const OTHERS = 2000
    const disk = new SimulatedFs()
    const { io, counter } = countingStreamsWrites(disk)
    const hot: StreamRef = { namespace: "hot", id: "1" }
    yield* withJournal(io, (journal) =>
      Effect.gen(function*() {
        for (let i = 0; i < OTHERS; i++) yield* journal.append({ namespace: "cold", id: `c${i}` }, 0, [{ type: "E", payload: payload(i) }])
        yield* journal.truncateBefore((yield* journal.lastSeq) + 1)
        const start = counter.bytes
        for (let round = 0; round < 20; round++) {
          yield* journal.append(hot, round, [{ type: "E", payload: payload(round) }])
          yield* journal.truncateBefore((yield* journal.lastSeq) + 1)
        }
        const perTruncation = (counter.bytes - start) / 20
        assert.ok(perTruncation < 200, `a truncation touching one stream wrote ${perTruncation} bytes of the streams file`)
      }), 64 * 1024)
    // Everything is still known after a reopen.
    yield* withJournal(disk, (journal) =>
      Effect.gen(function*() {
        assert.equal(yield* journal.version(hot), 20)
        assert.equal(yield* journal.version({ namespace: "cold", id: `c${OTHERS - 1}` }), 1)
        assert.equal(yield* journal.lastSeq, OTHERS + 20)
      }))
  }).pipe(Effect.runPromise))

test("FileJournal: the streams file is compacted: many truncations of the same streams keep it small", () =>
  Effect.gen(function*() {
    const disk = new SimulatedFs()
    const streams = Array.from({ length: 10 }, (_, i) => ({ namespace: "s", id: String(i) }))
    yield* withJournal(disk, (journal) =>
      Effect.gen(function*() {
        for (let round = 0; round < 600; round++) {
          for (const s of streams) yield* journal.append(s, round, [{ type: "E", payload: payload(round) }])
          yield* journal.truncateBefore((yield* journal.lastSeq) + 1)
        }
      }), 64 * 1024)
    // 6,000 entries appended; never more than 4 × 1,024 of them kept.
    const size = disk.contentOf(LOG)!.length
    assert.ok(size < 4 * 1024 * 20 + 600 * 32, `the streams file holds ${size} bytes`)
    yield* withJournal(disk, (journal) =>
      Effect.gen(function*() {
        for (const s of streams) assert.equal(yield* journal.version(s), 600)
        assert.equal(yield* journal.lastSeq, 6000)
      }))
  }).pipe(Effect.runPromise))

// ─── Crashes ───────────────────────────────────────────────────────────────────────────────────

/**
 * `disk` as a FileIo that, while `armed`, counts operations and at operation number `at` takes the
 * disk as a power loss would leave it (`image`) and throws; the process "goes on" afterwards on the
 * old disk (its journal is poisoned), so that the scope can close.
 */
const powerLossAt = (disk: SimulatedFs, at: number, random: () => number) => {
  const state: { armed: boolean; count: number; image: SimulatedFs | undefined } = { armed: false, count: 0, image: undefined }
  const tick = () => {
    if (!state.armed || state.image !== undefined) return
    if (state.count++ === at) {
      state.image = disk.crash(random)
      throw new Error("power loss")
    }
  }
  const io = Object.fromEntries(
    Object.entries(disk as unknown as Record<string, unknown>)
      .filter(([, member]) => typeof member === "function")
      .map(([name, member]) => [name, (...args: Array<unknown>) => {
        tick()
        return (member as (...a: Array<unknown>) => unknown)(...args)
      }])
  ) as unknown as FileIo
  return { io, state }
}

/** A populated journal on a disk of its own after `truncations` earlier truncations; its contents and streams. */
const prepared = (random: () => number, truncations: number) =>
  Effect.gen(function*() {
    const disk = new SimulatedFs()
    const setup = yield* withJournal(disk, (journal) =>
      Effect.gen(function*() {
        const streams = yield* populate(journal, random, 40)
        const lastSeq = yield* journal.lastSeq
        for (let t = 1; t <= truncations; t++) yield* journal.truncateBefore(Math.floor((lastSeq * t) / (truncations + 2)))
        return { streams, lastSeq, before: yield* contents(journal, streams) }
      }))
    return { disk, ...setup }
  })

for (const earlier of [0, 1]) {
  test(`FileJournal crash: a power loss at every operation of a truncation (${earlier === 0 ? "the streams file created" : "a frame appended to it"}) reopens with every version and all records or those after the point`, () =>
    Effect.gen(function*() {
      const random = prng(SEED + earlier)
      const { disk: base, streams, lastSeq, before } = yield* prepared(random, earlier)
      const point = Math.floor((lastSeq * (earlier + 1)) / (earlier + 2))
      const after = truncatedAt(before, point)
      let completed = false
      for (let at = 0; !completed; at++) {
        const context = `seed ${SEED + earlier}, power loss at operation ${at} of truncateBefore(${point})`
        const disk = base.crash()
        const { io, state } = powerLossAt(disk, at, random)
        yield* withJournal(io, (journal) =>
          Effect.gen(function*() {
            state.armed = true
            yield* Effect.exit(journal.truncateBefore(point))
            state.armed = false
          }))
        completed = state.image === undefined
        const image = state.image ?? disk.crash()
        const found = yield* withJournal(image, (journal) => contents(journal, streams))
        assert.deepEqual(found.versions, before.versions, `${context}: versions`)
        assert.equal(found.lastSeq, before.lastSeq, `${context}: lastSeq`)
        const expected = found.records.length === before.records.length ? before : after
        assert.deepEqual(found, expected, `${context}: all records, or those from seq ${point} on`)
        if (completed) assert.deepEqual(found, after, `${context}: the completed truncation`)
        // Truncating again and appending work on what the crash left, across another reopen.
        const fresh = streams[at % streams.length]!
        const version = before.versions[`${fresh.namespace}/${fresh.id}`]!
        yield* withJournal(image, (journal) =>
          Effect.gen(function*() {
            yield* journal.truncateBefore(point)
            yield* journal.append(fresh, version, [{ type: "After", payload: payload(at) }])
          }))
        const again = yield* withJournal(image, (journal) => contents(journal, streams))
        assert.deepEqual(
          again.versions,
          { ...before.versions, [`${fresh.namespace}/${fresh.id}`]: version + 1 },
          `${context}: versions after truncating again and appending`
        )
        assert.deepEqual(again.records.slice(0, -1), after.records, `${context}: records after truncating again`)
      }
    }).pipe(Effect.runPromise))
}

test("FileJournal crash: the streams file's last frame cut at every byte reopens with the state before that truncation, and truncating again repairs it", () =>
  Effect.gen(function*() {
    const random = prng(SEED + 2)
    const { disk, streams, lastSeq, before } = yield* prepared(random, 1)
    const point = Math.floor((lastSeq * 2) / 3)
    const previous = disk.contentOf(LOG)!
    // The whole truncation, to learn the frame it appends.
    const done = disk.crash()
    yield* withJournal(done, (journal) => journal.truncateBefore(point))
    const appended = done.contentOf(LOG)!
    assert.ok(appended.length > previous.length + 20, "the truncation appended a frame")
    assert.deepEqual(appended.subarray(0, previous.length), previous, "…and left the frames before it as they were")
    for (let cut = previous.length; cut <= appended.length; cut++) {
      const context = `seed ${SEED + 2}, the streams file cut at byte ${cut} of ${appended.length}`
      // A crash before the checkpoint: the truncation did not happen.
      const image = disk.crash()
      image.writeDurably(LOG, appended.subarray(0, cut))
      assert.deepEqual(yield* withJournal(image, (journal) => contents(journal, streams)), before, `${context}: reopened`)
      yield* withJournal(image, (journal) => journal.truncateBefore(point))
      assert.deepEqual(
        yield* withJournal(image, (journal) => contents(journal, streams)),
        truncatedAt(before, point),
        `${context}: truncated again and reopened`
      )
    }
  }).pipe(Effect.runPromise))

test("FileJournal crash: a damaged byte in the streams file before its last frame fails the open, naming the file and offset", () =>
  Effect.gen(function*() {
    const { disk } = yield* prepared(prng(SEED + 3), 2)
    const bytes = disk.contentOf(LOG)!
    // Inside the first frame (the header is 12 bytes, the frame's head 8).
    for (const offset of [0, 9, 12, 30]) {
      const image = disk.crash()
      const damaged = bytes.slice()
      damaged[offset] ^= 0x40
      image.writeDurably(LOG, damaged)
      const exit = yield* Effect.exit(withJournal(image, () => Effect.void))
      assert.ok(Exit.isFailure(exit), `a damaged byte at offset ${offset}: the open fails`)
      const error = String(exit.cause)
      assert.ok(error.includes(LOG), `the error names the file: ${error}`)
      if (offset >= 12) assert.ok(error.includes("byte offset 12"), `the error names the offset of the bad frame: ${error}`)
      assert.deepEqual(image.contentOf(LOG), damaged, "nothing was changed")
    }
  }).pipe(Effect.runPromise))

test("FileJournal: a streams file in the format of earlier versions is read, and replaced by a log on the next truncation", () =>
  Effect.gen(function*() {
    const { disk, streams, lastSeq, before } = yield* prepared(prng(SEED + 4), 1)
    const touched = streams.filter((s) => before.reads[`${s.namespace}/${s.id}`]!.length < before.versions[`${s.namespace}/${s.id}`]!)
    assert.ok(touched.length > 0, "the earlier truncation touched streams")
    // What the earlier versions wrote: every truncated stream's version, the last seq and timestamp truncated.
    const versions = touched.map((s) => {
      const firstLive = before.reads[`${s.namespace}/${s.id}`]![0]
      const v = firstLive === undefined ? before.versions[`${s.namespace}/${s.id}`]! : Number(firstLive.split(" v")[1]) - 1
      return [s.namespace, s.id, v]
    })
    const firstLiveSeq = Number(before.records[0]!.split(" ")[0])
    disk.writeDurably(LOG, encodeState({ lastSeq: firstLiveSeq - 1, lastTimestamp: 0, versions }))
    assert.deepEqual(yield* withJournal(disk, (journal) => contents(journal, streams)), before)
    const point = Math.floor((lastSeq * 2) / 3)
    yield* withJournal(disk, (journal) => journal.truncateBefore(point))
    assert.equal(new TextDecoder().decode(disk.contentOf(LOG)!.subarray(0, 8)), "ANNALSSL")
    assert.deepEqual(yield* withJournal(disk, (journal) => contents(journal, streams)), truncatedAt(before, point))
  }).pipe(Effect.runPromise))
