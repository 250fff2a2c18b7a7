/**
 * The file Journal under crashes and damage, on the bytes it leaves on disk:
 *
 * - cut: the last segment truncated at every byte offset of its last appends (a torn tail) reopens
 *   with exactly the appends that end at or before the cut, and appending continues from there;
 * - flip: a damaged byte that is not a torn tail (inside a sealed segment, before the last append
 *   of the last segment, in a segment header) fails the open with the file and the byte offset,
 *   and changes nothing on disk;
 * - SIGKILL: a child process appending with durability "always" is killed at a random moment;
 *   every append it acknowledged is there after reopening (past its stale LOCK);
 * - the directory lock: a second open in the same process fails while the first is open.
 *
 * Seeded and repeatable: ANNALS_CRASH_SEED changes the seed, ANNALS_CRASH_RUNS the number of
 * SIGKILL runs (default 12). Every assertion message carries the seed.
 */
import { Effect, Logger, References, Stream } from "effect"
import assert from "node:assert/strict"
import { Buffer } from "node:buffer"
import * as fs from "node:fs"
import * as path from "node:path"
import process from "node:process"
import { test } from "node:test"
import { FileJournal } from "../src/file/index.ts"
import type { AppendResult, EventData, Journal, JournalRecord, StreamRef } from "../src/Journal.ts"
import { crc32 } from "../src/internal/crc32.ts"
import { type CrashAck, crashEvent, crashRecordProblem, crashStreams, parseAck } from "./support/crashWorkload.ts"
import { prng } from "./support/ledger.ts"
import { type RunningChild, spawnChild, withTimeout } from "./support/childProcess.ts"
import { tempDirectory } from "./support/tempDirectory.ts"

const SEED = Number(process.env["ANNALS_CRASH_SEED"] ?? 20_240_611)
const RUNS = Number(process.env["ANNALS_CRASH_RUNS"] ?? 12)

// ---------------------------------------------------------------------------------------------
// Helpers: records, directory contents, the segment format

/** A record as plain comparable data (payload as hex: Buffer and Uint8Array compare unequal). */
interface Plain {
  readonly seq: number
  readonly namespace: string
  readonly id: string
  readonly version: number
  readonly type: string
  readonly timestamp: number
  readonly payload: string
  readonly metadata: Readonly<Record<string, string>> | null
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")

const plain = (r: JournalRecord): Plain => ({
  seq: r.seq,
  namespace: r.namespace,
  id: r.id,
  version: r.version,
  type: r.type,
  timestamp: r.timestamp,
  payload: hex(r.payload),
  metadata: r.metadata ?? null
})

/** The records an append stored, as `plain` would read them back. */
const appended = (stream: StreamRef, events: ReadonlyArray<EventData>, result: AppendResult): Array<Plain> =>
  events.map((event, i) => ({
    seq: result.firstSeq + i,
    namespace: stream.namespace,
    id: stream.id,
    version: result.version - events.length + 1 + i,
    type: event.type,
    timestamp: result.timestamp,
    payload: hex(event.payload),
    metadata: event.metadata ?? null
  }))

const key = (stream: StreamRef) => `${stream.namespace}/${stream.id}`

const replayAll = (journal: Journal) => Effect.map(Stream.runCollect(journal.replayFrom(1)), (records) => records.map(plain))

/** Opens the journal in the current scope. */
const openJournal = (directory: string, extra: Partial<Omit<FileJournal.FileJournalOptions, "directory">> = {}) =>
  FileJournal.make({ directory, durability: "os", ...extra })

/** Opens the journal expecting a JournalError (anything else fails the test with `context`); returns it. */
const openFailure = (directory: string, extra: Partial<Omit<FileJournal.FileJournalOptions, "directory">>, context: string) =>
  Effect.map(Effect.result(Effect.scoped(openJournal(directory, extra))), (result) => {
    assert.ok(result._tag === "Failure", `${context}: the open should fail, but it succeeded`)
    assert.equal(result.failure._tag, "JournalError", `${context}: expected a JournalError, got ${String(result.failure)}`)
    return result.failure
  })

/** Checks that `journal` holds exactly `expected`: replay, lastSeq and every stream's version. */
const expectContents = (journal: Journal, expected: ReadonlyArray<Plain>, streams: ReadonlyArray<StreamRef>, context: string) =>
  Effect.gen(function*() {
    const records = yield* replayAll(journal)
    assert.deepEqual(records, expected, `${context}: replayFrom(1)`)
    assert.equal(yield* journal.lastSeq, expected.length === 0 ? 0 : expected[expected.length - 1]!.seq, `${context}: lastSeq`)
    for (const stream of streams) {
      const version = expected.filter((r) => r.namespace === stream.namespace && r.id === stream.id).length
      assert.equal(yield* journal.version(stream), version, `${context}: version of ${key(stream)}`)
    }
  })

const segmentNames = (directory: string) => fs.readdirSync(directory).filter((n) => n.endsWith(".segment")).sort()

const lastSegment = (directory: string) => {
  const names = segmentNames(directory)
  assert.ok(names.length > 0, `no segment file in ${directory}`)
  return path.join(directory, names[names.length - 1]!)
}

/** Every file of a directory and its bytes (without LOCK, which names the process holding the directory, if asked). */
const readFiles = (directory: string, options: { readonly withoutLock?: boolean } = {}): Map<string, Buffer> =>
  new Map(
    fs.readdirSync(directory)
      .filter((n) => !(options.withoutLock === true && n === "LOCK"))
      .sort()
      .map((n) => [n, fs.readFileSync(path.join(directory, n))])
  )

/** Makes `directory` hold exactly `files` (rewritten in place: cheaper than removing and creating them). */
const writeFiles = (directory: string, files: ReadonlyMap<string, Uint8Array>) => {
  for (const name of fs.readdirSync(directory)) {
    if (!files.has(name)) fs.rmSync(path.join(directory, name), { recursive: true, force: true })
  }
  for (const [name, bytes] of files) fs.writeFileSync(path.join(directory, name), bytes)
}

const assertSameFiles = (actual: ReadonlyMap<string, Buffer>, expected: ReadonlyMap<string, Buffer>, context: string) => {
  assert.deepEqual([...actual.keys()], [...expected.keys()], `${context}: the directory's files`)
  for (const [name, bytes] of expected) {
    const now = actual.get(name)!
    assert.ok(now.equals(bytes), `${context}: ${name} changed (${bytes.length} bytes before, ${now.length} after)`)
  }
}

const HEADER = 24

/** One frame of a segment: where it starts and ends. */
interface Frame {
  readonly offset: number
  readonly end: number
}

/**
 * The frames of a segment (only the fixed framing is read: the header magic, then u32 LE length,
 * u32 LE CRC-32 of the length bytes and the body, body), checking that they are intact and tile the file.
 */
const parseSegment = (bytes: Uint8Array, file: string): Array<Frame> => {
  assert.ok(bytes.length >= HEADER, `${file}: shorter than a header`)
  assert.equal(Buffer.from(bytes.subarray(0, 8)).toString("latin1"), "ANNALSJL", `${file}: magic`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const frames: Array<Frame> = []
  let offset = HEADER
  while (offset < bytes.length) {
    const length = view.getUint32(offset, true)
    const end = offset + 8 + length
    assert.ok(end <= bytes.length, `${file}: frame at ${offset} runs past the end`)
    const crc = crc32(bytes.subarray(offset + 8, end), crc32(bytes.subarray(offset, offset + 4)))
    assert.equal(view.getUint32(offset + 4, true), crc, `${file}: frame at ${offset} checksum`)
    frames.push({ offset, end })
    offset = end
  }
  return frames
}

/** Collects the warnings (and worse) logged by `effect`, instead of printing them. */
const collectingWarnings = (warnings: Array<string>) =>
  Effect.provideService(
    References.CurrentLoggers,
    new Set([
      Logger.make((options) => {
        if (options.logLevel === "Warn" || options.logLevel === "Error" || options.logLevel === "Fatal") {
          warnings.push(Array.isArray(options.message) ? options.message.map(String).join(" ") : String(options.message))
        }
      })
    ])
  )

// ---------------------------------------------------------------------------------------------
// 1. Cut: a torn tail at every byte offset of the last appends

test("FileJournal crash: the last segment cut at every byte of its last appends reopens with exactly the complete appends, and appending continues", () => {
  const warnings: Array<string> = []
  return Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const seed = SEED
    const random = prng(seed)
    const directory = yield* tempDirectory("journal-cut")
    const streams: ReadonlyArray<StreamRef> = [
      { namespace: "account", id: "1" },
      { namespace: "account", id: "2" },
      { namespace: "cart", id: "x" },
      { namespace: "cart", id: "y" }
    ]
    // 16 seeded appends, then a fixed tail mixing multi- and single-event appends.
    const plan: Array<number> = [
      ...Array.from({ length: 16 }, () => (random() < 0.4 ? 2 + Math.floor(random() * 3) : 1)),
      3,
      1,
      2,
      1
    ]
    const TAIL = 4
    const versions = new Map<string, number>()
    const appends: Array<{ readonly records: ReadonlyArray<Plain>; readonly end: number }> = []
    let segmentName = ""
    let snapshot = new Map<string, Buffer>()

    yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* openJournal(directory)
      for (const count of plan) {
        const stream = streams[Math.floor(random() * streams.length)]!
        const current = versions.get(key(stream)) ?? 0
        const events: Array<EventData> = Array.from({ length: count }, (_, i) => {
          const size = Math.floor(random() * 30)
          return {
            type: `T${Math.floor(random() * 5)}`,
            payload: Uint8Array.from({ length: size }, () => Math.floor(random() * 256)),
            ...(random() < 0.3 ? { metadata: { n: String(current + i + 1) } } : {})
          }
        })
        const result = yield* journal.append(stream, current, events)
        versions.set(key(stream), result.version)
        appends.push({ records: appended(stream, events, result), end: fs.statSync(lastSegment(directory)).size })
      }
      segmentName = path.basename(lastSegment(directory))
      // What a crash would leave: the files as they are while the journal is open (no LOCK).
      snapshot = readFiles(directory, { withoutLock: true })
    }))

    const segmentBytes = snapshot.get(segmentName)!
    assert.equal(segmentNames(directory).length, 1, `seed ${seed}: one segment at the default segment size`)
    // The sizes seen after each acknowledged append end its frames: one frame per record.
    const frameEnds = parseSegment(segmentBytes, segmentName).map((f) => f.end)
    assert.deepEqual(
      appends.map((a) => frameEnds.indexOf(a.end) + 1),
      appends.map((_, i) => appends.slice(0, i + 1).reduce((n, a) => n + a.records.length, 0)),
      `seed ${seed}: every append is one frame per record, ending at the file size seen after it`
    )
    assert.equal(segmentBytes.length, appends[appends.length - 1]!.end)

    const work = yield* tempDirectory("journal-cut-work")
    const workSegment = path.join(work, segmentName)
    const from = appends[appends.length - TAIL - 1]!.end
    const to = segmentBytes.length
    const fresh: StreamRef = { namespace: "fresh", id: "after-cut" }
    const allStreams = [...streams, fresh]
    for (let cut = from; cut <= to; cut++) {
      const context = `seed ${seed}, cut at byte ${cut} of ${to}`
      writeFiles(work, new Map(snapshot).set(segmentName, segmentBytes.subarray(0, cut)))
      const kept = appends.filter((a) => a.end <= cut)
      const expected = kept.flatMap((a) => a.records)
      const lastSeq = expected[expected.length - 1]!.seq
      const target = streams[cut % streams.length]!
      const targetVersion = expected.filter((r) => r.namespace === target.namespace && r.id === target.id).length

      const keptEnd = kept[kept.length - 1]!.end
      warnings.length = 0
      const added = yield* Effect.scoped(Effect.gen(function*() {
        const journal = yield* openJournal(work)
        yield* expectContents(journal, expected, allStreams, `${context}, reopened`)
        assert.equal(fs.statSync(workSegment).size, keptEnd, `${context}: the segment is truncated to the end of the last complete append`)
        if (cut > keptEnd) {
          assert.ok(
            warnings.length === 1 && warnings[0]!.includes(workSegment),
            `${context}: the cut of a torn append is logged once, naming the file: ${JSON.stringify(warnings)}`
          )
        } else {
          assert.deepEqual(warnings, [], `${context}: nothing to cut, nothing logged`)
        }
        const two: Array<EventData> = [
          { type: "AfterCut", payload: new Uint8Array([cut & 0xff, 1]) },
          { type: "AfterCut", payload: new Uint8Array([cut & 0xff, 2]), metadata: { cut: String(cut) } }
        ]
        const first = yield* journal.append(target, targetVersion, two)
        assert.deepEqual(
          [first.firstSeq, first.lastSeq, first.version],
          [lastSeq + 1, lastSeq + 2, targetVersion + 2],
          `${context}: the first append after the cut`
        )
        const one: Array<EventData> = [{ type: "Fresh", payload: new Uint8Array([cut & 0xff]) }]
        const second = yield* journal.append(fresh, 0, one)
        assert.deepEqual([second.firstSeq, second.lastSeq, second.version], [lastSeq + 3, lastSeq + 3, 1], `${context}: the second append`)
        return [...appended(target, two, first), ...appended(fresh, one, second)]
      }))

      warnings.length = 0
      yield* Effect.scoped(Effect.gen(function*() {
        const journal = yield* openJournal(work)
        yield* expectContents(journal, [...expected, ...added], allStreams, `${context}, appended and reopened`)
      }))
      assert.deepEqual(warnings, [], `${context}: the second reopen finds nothing to repair`)
    }
  })).pipe(collectingWarnings(warnings)))
})

// ---------------------------------------------------------------------------------------------
// 2. Flip: damage that is not a torn tail fails the open and changes nothing

test("FileJournal crash: a damaged byte in a sealed segment, in the middle of the last segment or in a header fails the open with file and offset, and changes nothing", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const seed = SEED + 1
    const random = prng(seed)
    const directory = yield* tempDirectory("journal-flip")
    const streams = crashStreams.slice(0, 5)
    const segmentBytes = 1024
    let total = 0
    /** Where each append ended: its segment and the segment's size after it. */
    const ends: Array<{ readonly name: string; readonly end: number }> = []

    yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* openJournal(directory, { segmentBytes })
      const versions = streams.map(() => 0)
      const appendOne = (count: number) =>
        Effect.gen(function*() {
          const k = Math.floor(random() * streams.length)
          const events = Array.from({ length: count }, (_, i) => crashEvent(streams[k]!, versions[k]! + i + 1))
          const result = yield* journal.append(streams[k]!, versions[k]!, events)
          versions[k] = result.version
          total += count
          const file = lastSegment(directory)
          ends.push({ name: path.basename(file), end: fs.statSync(file).size })
        })
      for (let i = 0; i < 120; i++) yield* appendOne(random() < 0.4 ? 2 + Math.floor(random() * 3) : 1)
      // Make sure the last segment holds a few appends, so there are frames before its last one.
      const inLast = () => ends.filter((e) => e.name === ends[ends.length - 1]!.name).length
      while (inLast() < 4) yield* appendOne(1)
    }))

    const names = segmentNames(directory)
    assert.ok(names.length >= 5, `seed ${seed}: expected several segments at segmentBytes ${segmentBytes}, got ${names.length}`)
    const before = readFiles(directory)
    const parsed = names.map((name) => ({ name, frames: parseSegment(before.get(name)!, name) }))
    const sealed = parsed.slice(0, -1)
    const last = parsed[parsed.length - 1]!
    const lastEnds = ends.filter((e) => e.name === last.name)
    assert.equal(lastEnds[lastEnds.length - 1]!.end, before.get(last.name)!.length, `seed ${seed}: the last append ends the last segment`)
    // The frames of the last segment before its last append: damage there is followed by intact appends.
    const beforeLastGroup = last.frames.filter((f) => f.end <= lastEnds[lastEnds.length - 2]!.end)

    interface Damage {
      readonly what: string
      readonly name: string
      readonly position: number
      readonly xor: number
      /** The byte offset the error must name (a damaged header: only the file). */
      readonly offset: number | undefined
    }
    const pick = <A>(items: ReadonlyArray<A>): A => items[Math.floor(random() * items.length)]!
    const inFrame = (what: string, name: string, frame: Frame): Damage => ({
      what,
      name,
      position: frame.offset + Math.floor(random() * (frame.end - frame.offset)),
      xor: 1 + Math.floor(random() * 255),
      offset: frame.offset
    })
    const damages: Array<Damage> = []
    for (let i = 0; i < 8; i++) {
      const segment = pick(sealed)
      damages.push(inFrame("a frame of a sealed segment", segment.name, pick(segment.frames)))
      damages.push(inFrame("a frame before the last append of the last segment", last.name, pick(beforeLastGroup)))
      const headed = pick(parsed)
      damages.push({
        what: "a segment header",
        name: headed.name,
        position: Math.floor(random() * HEADER),
        xor: 1 + Math.floor(random() * 255),
        offset: undefined
      })
    }
    // A length field damaged to point past the end of the file, with valid appends after it: not a torn tail.
    const early = beforeLastGroup[0]!
    damages.push({ what: "a length field of the last segment pointing past its end", name: last.name, position: early.offset + 2, xor: 0x40, offset: early.offset })
    // The last frame of a sealed segment (the tail of a segment that is not the last is never torn).
    const lastSealed = sealed[sealed.length - 1]!
    const sealedTail = lastSealed.frames[lastSealed.frames.length - 1]!
    damages.push({ what: "the last frame of a sealed segment", name: lastSealed.name, position: sealedTail.end - 1, xor: 0x01, offset: sealedTail.offset })

    for (const damage of damages) {
      const file = path.join(directory, damage.name)
      const context = `seed ${seed}: ${damage.what}, byte ${damage.position} of ${damage.name} xor ${damage.xor}`
      const damaged = Buffer.from(before.get(damage.name)!)
      damaged[damage.position] = damaged[damage.position]! ^ damage.xor
      fs.writeFileSync(file, damaged)
      const expectedFiles = new Map(before)
      expectedFiles.set(damage.name, damaged)

      const error = yield* openFailure(directory, { segmentBytes }, context)
      assert.ok(error.message.includes(file), `${context}: the message "${error.message}" should name ${file}`)
      assert.ok(
        damage.offset === undefined || error.message.includes(`byte offset ${damage.offset} of ${file}`),
        `${context}: the message "${error.message}" should name "byte offset ${damage.offset} of ${file}"`
      )
      assertSameFiles(readFiles(directory), expectedFiles, `${context}: after the failed open`)
      fs.writeFileSync(file, before.get(damage.name)!)
    }

    // Undamaged again: everything is there (and no failed open left the directory locked).
    yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* openJournal(directory, { segmentBytes })
      const records = yield* Stream.runCollect(journal.replayFrom(1))
      assert.equal(records.length, total, `seed ${seed}: records after the damage is repaired`)
      for (const record of records) assert.equal(crashRecordProblem(record), undefined, `seed ${seed}`)
    }))
  }))))

// ---------------------------------------------------------------------------------------------
// 3. SIGKILL: a child appending with durability "always" killed at a random moment

/** The child's `ack` lines so far (a last, incomplete line is not one yet). */
const acksOf = (running: RunningChild): Array<CrashAck> =>
  running.lines().map(parseAck).filter((ack): ack is CrashAck => ack !== undefined)

/** One run: spawn, wait for the first ack plus a seeded delay, SIGKILL, reopen and check. */
const killRun = (run: number) =>
  Effect.scoped(Effect.gen(function*() {
    const seed = SEED + 1000 + run
    const random = prng(seed)
    const segmentBytes = random() < 0.5 ? undefined : 2048 + Math.floor(random() * 4096)
    const delay = 50 + Math.floor(random() * 350)
    const context = `seed ${seed} (run ${run}, segmentBytes ${segmentBytes ?? "default"}, kill ${delay} ms after the first ack)`
    const directory = yield* tempDirectory("journal-kill")

    const running = yield* spawnChild("appendChild", [directory, String(seed), segmentBytes === undefined ? "default" : String(segmentBytes)])
    yield* Effect.tryPromise(() => withTimeout(running.line(/^ack /), 30_000, "the child's first ack")).pipe(
      Effect.mapError((error) => new Error(`${context}: ${String(error)}; stderr: ${running.stderr()}`))
    )
    yield* Effect.sleep(delay)
    running.child.kill("SIGKILL")
    const exit = yield* Effect.promise(() => running.closed)
    assert.equal(exit.signal, "SIGKILL", `${context}: the child should die of SIGKILL, but ended with code ${exit.code}; stderr: ${running.stderr()}`)
    const acks = acksOf(running)
    assert.ok(acks.length > 0, context)
    assert.ok(fs.existsSync(path.join(directory, "LOCK")), `${context}: the killed child leaves its LOCK behind`)

    const check = (journal: Journal, what: string) =>
      Effect.gen(function*() {
        const records = yield* Stream.runCollect(journal.replayFrom(1))
        const bySeq = new Map(records.map((r) => [r.seq, r]))
        for (let i = 1; i < records.length; i++) {
          assert.ok(records[i]!.seq > records[i - 1]!.seq, `${context}, ${what}: seqs increase (${records[i - 1]!.seq} then ${records[i]!.seq})`)
        }
        const versions = new Map<string, number>()
        for (const record of records) {
          const k = key(record)
          const version = (versions.get(k) ?? 0) + 1
          assert.equal(record.version, version, `${context}, ${what}: ${k} seq ${record.seq} has version ${record.version}, not the dense ${version}`)
          versions.set(k, version)
          if (record.type !== "AfterKill") assert.equal(crashRecordProblem(record), undefined, `${context}, ${what}`)
        }
        for (const ack of acks) {
          for (let seq = ack.firstSeq; seq <= ack.lastSeq; seq++) {
            const record = bySeq.get(seq)
            const version = ack.version - (ack.lastSeq - seq)
            const where = `${context}, ${what}: acknowledged ${ack.namespace}/${ack.id} v${version} at seq ${seq}`
            assert.ok(record !== undefined, `${where} is missing (lastSeq ${records[records.length - 1]?.seq ?? 0}, ${acks.length} acks)`)
            assert.deepEqual([record.namespace, record.id, record.version], [ack.namespace, ack.id, version], where)
          }
        }
        const lastSeq = yield* journal.lastSeq
        assert.equal(lastSeq, records[records.length - 1]!.seq, `${context}, ${what}: lastSeq`)
        assert.ok(lastSeq >= Math.max(...acks.map((a) => a.lastSeq)), `${context}, ${what}: lastSeq covers every ack`)
        for (const stream of crashStreams) {
          assert.equal(yield* journal.version(stream), versions.get(key(stream)) ?? 0, `${context}, ${what}: version of ${key(stream)}`)
        }
        return { lastSeq, versions }
      })

    const target = crashStreams[run % crashStreams.length]!
    const after = yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* FileJournal.make({ directory, durability: "always", ...(segmentBytes !== undefined ? { segmentBytes } : {}) })
      const { lastSeq, versions } = yield* check(journal, "after the kill")
      const version = versions.get(key(target)) ?? 0
      const result = yield* journal.append(target, version, [{ type: "AfterKill", payload: new Uint8Array([run]) }])
      assert.deepEqual([result.firstSeq, result.version], [lastSeq + 1, version + 1], `${context}: the append after the kill`)
      return result
    }))
    yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* FileJournal.make({ directory, durability: "always", ...(segmentBytes !== undefined ? { segmentBytes } : {}) })
      const { lastSeq } = yield* check(journal, "reopened after the append")
      assert.equal(lastSeq, after.lastSeq, `${context}: lastSeq after the append and reopen`)
      assert.equal(yield* journal.version(target), after.version, `${context}: version after the append and reopen`)
    }))
    return acks.length
  }))

test(`FileJournal crash: SIGKILL while appending (durability "always") loses no acknowledged append, ${RUNS} runs`, () =>
  Effect.runPromise(Effect.gen(function*() {
    // Two runs at a time: most of a run is waiting for the child to start and to be killed.
    const acked = yield* Effect.forEach(Array.from({ length: RUNS }, (_, run) => run), killRun, { concurrency: 2 })
    assert.ok(acked.every((n) => n > 0), `seed ${SEED}: at least one ack per run`)
  })))

// ---------------------------------------------------------------------------------------------
// 4. The directory lock

test("FileJournal crash: a second open of the same directory fails on the lock while the first is open, and works after it closes", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const directory = yield* tempDirectory("journal-lock")
    const stream: StreamRef = { namespace: "cart", id: "1" }
    yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* openJournal(directory)
      yield* journal.append(stream, 0, [{ type: "Opened", payload: new Uint8Array([1]) }])
      const error = yield* openFailure(directory, {}, "a second open")
      assert.match(error.message, /lock/i, `the message "${error.message}" should mention the lock`)
      assert.ok(error.message.includes(directory), `the message "${error.message}" should name the directory`)
      // The failed open took nothing from the first: it still appends and reads.
      yield* journal.append(stream, 1, [{ type: "Added", payload: new Uint8Array([2]) }])
      assert.equal((yield* Stream.runCollect(journal.replayFrom(1))).length, 2)
    }))
    yield* Effect.scoped(Effect.gen(function*() {
      const journal = yield* openJournal(directory)
      assert.equal(yield* journal.version(stream), 2)
      assert.equal(yield* journal.lastSeq, 2)
      yield* journal.append(stream, 2, [{ type: "Added", payload: new Uint8Array([3]) }])
    }))
  }))))
