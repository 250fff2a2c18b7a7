/**
 * The Journal conformance suite (DESIGN §2), written once and run against every Journal layer.
 */
import { Effect, Fiber, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import { Buffer } from "node:buffer"
import type { EventData, JournalRecord, StreamRef } from "../../src/Journal.ts"
import { Journal } from "../../src/Journal.ts"
import { type Case, expectError, open } from "./harness.ts"
import { journalInFlightCases } from "./JournalInFlight.ts"
import { journalInputCases } from "./JournalInputs.ts"

/** How a fixture opens a Journal: every build of `layer` opens the fixture's storage. */
export interface JournalStorage {
  readonly layer: Layer.Layer<Journal, unknown>
}

type Service = Journal

const cart = (id: string): StreamRef => ({ namespace: "cart", id })
const event = (type: string, text: string, metadata?: Record<string, string>): EventData => ({
  type,
  payload: new TextEncoder().encode(text),
  ...(metadata !== undefined ? { metadata } : {})
})
const text = (record: JournalRecord) => new TextDecoder().decode(record.payload)
const collect = <A, E>(stream: Stream.Stream<A, E>) => Stream.runCollect(stream)
const summary = (records: ReadonlyArray<JournalRecord>) => records.map((r) => `${r.namespace}/${r.id}@${r.version}#${r.seq}`)

/** Appends `n` single-event calls to `stream`, at increasing TestClock times starting at `start`. */
const appendMany = (journal: Service, stream: StreamRef, n: number) =>
  Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) =>
    Effect.andThen(TestClock.adjust(10), journal.append(stream, "any", [event("Added", `${stream.id}-${i + 1}`)])))

const withJournal = (name: string, body: (journal: Service) => Effect.Effect<void, unknown>, durableOnly = false): Case<JournalStorage> => ({
  name,
  durableOnly,
  run: (storage) => Effect.flatMap(open(Journal, storage.layer), body)
})

/** Every Journal conformance case: the ones below, the input rules (`JournalInputs.ts`) and reads with appends in flight (`JournalInFlight.ts`). */
export const journalCases: ReadonlyArray<Case<JournalStorage>> = [
  withJournal("a new journal is empty: lastSeq 0, checkpoint 0, nothing to replay", (journal) =>
    Effect.gen(function*() {
      assert.equal(yield* journal.lastSeq, 0)
      assert.equal(yield* journal.checkpoint, 0)
      assert.deepEqual(yield* collect(journal.replayFrom(0)), [])
      assert.deepEqual(yield* collect(journal.replayUntil(1, Number.MAX_SAFE_INTEGER)), [])
    })),

  withJournal("append then read returns every field, payload and metadata intact", (journal) =>
    Effect.gen(function*() {
      yield* TestClock.setTime(1_700_000_000_000)
      const payload = new Uint8Array([0, 1, 2, 253, 254, 255])
      const result = yield* journal.append(cart("a"), 0, [
        { type: "Opened", payload, metadata: { user: "ann", "trace-id": "t1" } },
        { type: "Added", payload: new Uint8Array(0) }
      ])
      assert.deepEqual(result, { firstSeq: 1, lastSeq: 2, version: 2, timestamp: 1_700_000_000_000 })
      payload[0] = 99 // the journal must have copied what it stored
      const records = yield* collect(journal.read(cart("a")))
      assert.equal(records.length, 2)
      assert.deepEqual({ ...records[0], payload: Array.from(records[0]!.payload) }, {
        seq: 1,
        namespace: "cart",
        id: "a",
        version: 1,
        type: "Opened",
        timestamp: 1_700_000_000_000,
        payload: [0, 1, 2, 253, 254, 255],
        metadata: { user: "ann", "trace-id": "t1" }
      })
      assert.deepEqual(
        { seq: records[1]!.seq, version: records[1]!.version, type: records[1]!.type, size: records[1]!.payload.length },
        { seq: 2, version: 2, type: "Added", size: 0 }
      )
      assert.equal(records[1]!.metadata, undefined)
      assert.ok(records[0]!.payload instanceof Uint8Array)
      assert.equal(yield* journal.version(cart("a")), 2)
      assert.equal(yield* journal.lastSeq, 2)
    })),

  withJournal("Node Buffer payloads are copied on append and restore and read back as plain Uint8Arrays", (journal) =>
    Effect.gen(function*() {
      const payload = Buffer.from([1, 2, 3])
      yield* journal.append(cart("buffer"), 0, [{ type: "A", payload }])
      payload[0] = 99
      const restored = Buffer.from([4, 5])
      yield* journal.restore([
        { seq: 10, namespace: "cart", id: "restored", version: 1, type: "B", timestamp: 0, payload: restored }
      ])
      restored[0] = 99
      const records = yield* collect(journal.replayFrom(0))
      assert.deepEqual(records.map((r) => Array.from(r.payload)), [[1, 2, 3], [4, 5]])
      for (const record of records) assert.equal(Object.getPrototypeOf(record.payload), Uint8Array.prototype)
    })),

  withJournal("a 1 MiB payload round-trips", (journal) =>
    Effect.gen(function*() {
      const payload = new Uint8Array(1024 * 1024).map((_, i) => (i * 31) & 0xff)
      yield* journal.append(cart("big"), 0, [{ type: "Blob", payload }])
      const [record] = yield* collect(journal.read(cart("big")))
      assert.deepEqual(record!.payload, payload)
    })),

  withJournal("a read or replay Stream is a description: each run of the same value reads afresh, with max counted per run, across pages", (journal) =>
    Effect.gen(function*() {
      const many = Array.from({ length: 2_500 }, (_, i) => event("Added", `p-${i + 1}`))
      yield* journal.append(cart("p"), 0, many)
      const capped = journal.read(cart("p"), { from: 2, max: 2_200 })
      const all = journal.read(cart("p"))
      const replay = journal.replayFrom(0)
      for (let run = 1; run <= 2; run++) {
        const versions = (yield* collect(capped)).map((r) => r.version)
        assert.equal(versions.length, 2_200, `run ${run}: max 2,200 gives 2,200 records`)
        assert.deepEqual([versions[0], versions[versions.length - 1]], [2, 2_201])
        assert.equal((yield* collect(all)).length, 2_500 + run - 1, `run ${run} of the whole stream sees what is there now`)
        assert.equal((yield* collect(replay)).length, 2_500 + run - 1)
        yield* journal.append(cart("p"), "any", [event("Added", `extra-${run}`)])
      }
    })),

  withJournal("read bounds are inclusive: from, to, max, from==to, from>to, max=0", (journal) =>
    Effect.gen(function*() {
      yield* appendMany(journal, cart("r"), 10)
      const versions = (options: Parameters<Service["read"]>[1]) =>
        Effect.map(collect(journal.read(cart("r"), options)), (rs) => rs.map((r) => r.version))
      assert.deepEqual(yield* versions(undefined), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
      assert.deepEqual(yield* versions({ from: 3 }), [3, 4, 5, 6, 7, 8, 9, 10])
      assert.deepEqual(yield* versions({ to: 3 }), [1, 2, 3])
      assert.deepEqual(yield* versions({ from: 3, to: 5 }), [3, 4, 5])
      assert.deepEqual(yield* versions({ from: 4, to: 4 }), [4])
      assert.deepEqual(yield* versions({ from: 6, to: 5 }), [])
      assert.deepEqual(yield* versions({ from: 2, max: 3 }), [2, 3, 4])
      assert.deepEqual(yield* versions({ from: 2, to: 3, max: 5 }), [2, 3])
      assert.deepEqual(yield* versions({ max: 0 }), [])
      assert.deepEqual(yield* versions({ from: 0, to: 1 }), [1])
      assert.deepEqual(yield* versions({ from: 10 }), [10])
      assert.deepEqual(yield* versions({ from: 11 }), [])
      assert.deepEqual(yield* versions({ to: 0 }), [])
    })),

  withJournal("an unknown stream reads empty and is at version 0", (journal) =>
    Effect.gen(function*() {
      yield* appendMany(journal, cart("known"), 2)
      assert.deepEqual(yield* collect(journal.read(cart("unknown"))), [])
      assert.equal(yield* journal.version(cart("unknown")), 0)
      assert.deepEqual(yield* collect(journal.read({ namespace: "nothing-here", id: "known" })), [])
    })),

  withJournal("streams are separate: exact namespaces, no prefix mixing", (journal) =>
    Effect.gen(function*() {
      yield* journal.append({ namespace: "cart", id: "1" }, 0, [event("A", "cart")])
      yield* journal.append({ namespace: "cart2", id: "1" }, 0, [event("A", "cart2")])
      yield* journal.append({ namespace: "car", id: "t1" }, 0, [event("A", "car")])
      yield* journal.append({ namespace: "cart", id: "1" }, 1, [event("B", "cart again")])
      assert.deepEqual((yield* collect(journal.read({ namespace: "cart", id: "1" }))).map(text), ["cart", "cart again"])
      assert.deepEqual((yield* collect(journal.read({ namespace: "cart2", id: "1" }))).map(text), ["cart2"])
      assert.deepEqual((yield* collect(journal.read({ namespace: "car", id: "t1" }))).map(text), ["car"])
      assert.equal(yield* journal.version({ namespace: "cart2", id: "1" }), 1)
      assert.equal(yield* journal.version({ namespace: "cart", id: "1" }), 2)
    })),

  withJournal("expectedVersion 0 creates a stream and fails on an existing one", (journal) =>
    Effect.gen(function*() {
      assert.equal((yield* journal.append(cart("n"), 0, [event("A", "1")])).version, 1)
      const conflict = yield* expectError(journal.append(cart("n"), 0, [event("A", "2")]), "VersionConflict", "cart/n")
      assert.deepEqual([conflict.stream, conflict.expected, conflict.actual], [cart("n"), 0, 1])
    })),

  withJournal("a stale expectedVersion fails with VersionConflict and stores nothing", (journal) =>
    Effect.gen(function*() {
      yield* appendMany(journal, cart("s"), 3)
      const before = yield* journal.lastSeq
      const conflict = yield* expectError(
        journal.append(cart("s"), 1, [event("A", "x"), event("B", "y")]),
        "VersionConflict",
        "cart/s",
        "1",
        "3"
      )
      assert.equal(conflict.expected, 1)
      assert.equal(conflict.actual, 3)
      yield* expectError(journal.append(cart("s"), 4, [event("A", "ahead")]), "VersionConflict")
      yield* expectError(journal.append(cart("new"), 2, [event("A", "ahead")]), "VersionConflict")
      assert.equal(yield* journal.lastSeq, before)
      assert.equal(yield* journal.version(cart("s")), 3)
      assert.equal(yield* journal.version(cart("new")), 0)
      assert.equal((yield* collect(journal.read(cart("s")))).length, 3)
      assert.equal((yield* collect(journal.replayFrom(1))).length, 3)
      const ok = yield* journal.append(cart("s"), 3, [event("C", "z")])
      assert.deepEqual({ ...ok, timestamp: 0 }, { firstSeq: before + 1, lastSeq: before + 1, version: 4, timestamp: 0 })
    })),

  withJournal(`expectedVersion "any" appends at whatever version the stream is`, (journal) =>
    Effect.gen(function*() {
      assert.equal((yield* journal.append(cart("any"), "any", [event("A", "1")])).version, 1)
      assert.equal((yield* journal.append(cart("any"), "any", [event("A", "2"), event("A", "3")])).version, 3)
      assert.deepEqual((yield* collect(journal.read(cart("any")))).map((r) => r.version), [1, 2, 3])
    })),

  withJournal("a multi-event append is atomic: consecutive seqs, dense versions, one timestamp", (journal) =>
    Effect.gen(function*() {
      yield* journal.append(cart("other"), 0, [event("A", "o")])
      yield* TestClock.setTime(5_000)
      const result = yield* journal.append(cart("m"), 0, [event("A", "1"), event("B", "2"), event("C", "3")])
      assert.deepEqual(result, { firstSeq: 2, lastSeq: 4, version: 3, timestamp: 5_000 })
      const records = yield* collect(journal.read(cart("m")))
      assert.deepEqual(records.map((r) => [r.seq, r.version, r.type, r.timestamp]), [
        [2, 1, "A", 5_000],
        [3, 2, "B", 5_000],
        [4, 3, "C", 5_000]
      ])
    })),

  withJournal("an append with one invalid event stores none of them", (journal) =>
    Effect.gen(function*() {
      yield* expectError(
        journal.append(cart("bad"), 0, [event("A", "ok"), { type: "", payload: new Uint8Array(1) }]),
        "JournalError",
        "cart/bad",
        "event 1"
      )
      yield* expectError(
        journal.append(cart("bad"), 0, [event("A", "ok"), { type: "B", payload: "nope" as unknown as Uint8Array }]),
        "JournalError",
        "payload"
      )
      yield* expectError(
        journal.append(cart("bad"), 0, [{ type: "A", payload: new Uint8Array(1), metadata: { n: 1 as unknown as string } }]),
        "JournalError",
        "metadata"
      )
      yield* expectError(journal.append(cart("bad"), 0, []), "JournalError", "non-empty")
      assert.equal(yield* journal.version(cart("bad")), 0)
      assert.equal(yield* journal.lastSeq, 0)
    })),

  withJournal("invalid stream names and arguments fail with a JournalError naming them", (journal) =>
    Effect.gen(function*() {
      yield* expectError(journal.append({ namespace: "", id: "x" }, 0, [event("A", "1")]), "JournalError", "namespace")
      yield* expectError(journal.append({ namespace: "cart", id: "" }, 0, [event("A", "1")]), "JournalError", "id")
      yield* expectError(journal.append({ namespace: "ca\u0000rt", id: "x" }, 0, [event("A", "1")]), "JournalError", "NUL")
      yield* expectError(journal.append({ namespace: "cart", id: "x".repeat(257) }, 0, [event("A", "1")]), "JournalError", "257")
      yield* expectError(journal.append(cart("x"), -1, [event("A", "1")]), "JournalError", "expectedVersion")
      yield* expectError(journal.append(cart("x"), 1.5, [event("A", "1")]), "JournalError", "expectedVersion")
      yield* expectError(collect(journal.read({ namespace: "", id: "x" })), "JournalError", "namespace")
      yield* expectError(collect(journal.read(cart("x"), { from: -1 })), "JournalError", "from")
      yield* expectError(collect(journal.read(cart("x"), { max: 0.5 })), "JournalError", "max")
      yield* expectError(journal.version({ namespace: "cart", id: "" }), "JournalError", "id")
      yield* expectError(collect(journal.replayFrom(-1)), "JournalError", "fromSeq")
      yield* expectError(journal.truncateBefore(Number.NaN), "JournalError", "seq")
      yield* expectError(journal.setCheckpoint(-5), "JournalError", "seq")
      assert.equal(yield* journal.lastSeq, 0)
      // a name of exactly 256 characters is fine
      yield* journal.append({ namespace: "n".repeat(256), id: "i".repeat(256) }, 0, [event("A", "1")])
    })),

  withJournal("names, types and metadata with an unpaired surrogate (no UTF-8 form) fail and store nothing", (journal) =>
    Effect.gen(function*() {
      yield* expectError(journal.append({ namespace: "cart\uD800", id: "x" }, 0, [event("A", "1")]), "JournalError", "surrogate")
      yield* expectError(journal.append(cart("x\uDC00y"), 0, [event("A", "1")]), "JournalError", "surrogate")
      yield* expectError(journal.append(cart("x"), 0, [event("A\uD83D", "1")]), "JournalError", "surrogate")
      yield* expectError(journal.append(cart("x"), 0, [event("A", "1", { k: "v\uDE00" })]), "JournalError", "surrogate")
      yield* expectError(journal.version(cart("\uD800")), "JournalError", "surrogate")
      assert.equal(yield* journal.lastSeq, 0)
    })),

  {
    name: "names, types and metadata come back exactly, also with a leading U+FEFF and beyond the BMP, after a reopen",
    durableOnly: false,
    run: (storage) =>
      Effect.gen(function*() {
        const stream = { namespace: "\uFEFFcart", id: "\u{1F600}-\uFEFF-é" }
        const type = "\uFEFFAdded\u{1F4E6}"
        const metadata = { "\uFEFFkey": "\uFEFFvalue \u{1F600}" }
        yield* Effect.scoped(Effect.gen(function*() {
          const journal = yield* open(Journal, storage.layer)
          yield* journal.append(stream, 0, [event(type, "1", metadata)])
          yield* journal.append(cart("\u{1F600}-\uFEFF-é".slice(2)), 0, [event("A", "2")]) // the same id without its first character
        }))
        const journal = yield* open(Journal, storage.layer)
        const records = yield* collect(journal.replayFrom(1))
        if (records.length === 0) return // a memory layer: every build is new
        assert.deepEqual(records.map((r) => [r.namespace, r.id, r.type]), [
          [stream.namespace, stream.id, type],
          ["cart", "-\uFEFF-é", "A"]
        ])
        assert.deepEqual(records[0]!.metadata, metadata)
        assert.equal(yield* journal.version(stream), 1)
        assert.equal(yield* journal.version({ namespace: "cart", id: stream.id }), 0)
        assert.deepEqual((yield* collect(journal.read(stream))).map(text), ["1"])
        yield* expectError(journal.append(stream, 0, [event("A", "again")]), "VersionConflict")
      })
  },

  withJournal("replayFrom returns every record from a seq on, in seq order, across streams", (journal) =>
    Effect.gen(function*() {
      for (let i = 1; i <= 4; i++) {
        yield* journal.append(cart("x"), "any", [event("A", `x${i}`)])
        yield* journal.append(cart("y"), "any", [event("A", `y${i}`), event("B", `y${i}b`)])
      }
      const all = yield* collect(journal.replayFrom(0))
      assert.deepEqual(all.map((r) => r.seq), Array.from({ length: 12 }, (_, i) => i + 1))
      assert.deepEqual((yield* collect(journal.replayFrom(1))).map((r) => r.seq), all.map((r) => r.seq))
      assert.deepEqual((yield* collect(journal.replayFrom(7))).map(text), ["x3", "y3", "y3b", "x4", "y4", "y4b"])
      assert.deepEqual((yield* collect(journal.replayFrom(12))).map(text), ["y4b"])
      assert.deepEqual(yield* collect(journal.replayFrom(13)), [])
      assert.deepEqual(yield* collect(journal.replayFrom(1_000)), [])
    })),

  withJournal("replayUntil includes equal timestamps and excludes later ones", (journal) =>
    Effect.gen(function*() {
      yield* TestClock.setTime(1_000)
      yield* journal.append(cart("t"), "any", [event("A", "a1"), event("A", "a2")]) // seqs 1-2 at 1000
      yield* journal.append(cart("u"), "any", [event("A", "b")]) // seq 3 at 1000
      yield* TestClock.setTime(2_000)
      yield* journal.append(cart("t"), "any", [event("A", "c")]) // seq 4 at 2000
      yield* TestClock.setTime(3_000)
      yield* journal.append(cart("t"), "any", [event("A", "d")]) // seq 5 at 3000
      const until = (from: number, ms: number) => Effect.map(collect(journal.replayUntil(from, ms)), (rs) => rs.map(text))
      assert.deepEqual(yield* until(1, 999), [])
      assert.deepEqual(yield* until(1, 1_000), ["a1", "a2", "b"])
      assert.deepEqual(yield* until(1, 1_999), ["a1", "a2", "b"])
      assert.deepEqual(yield* until(1, 2_000), ["a1", "a2", "b", "c"])
      assert.deepEqual(yield* until(2, 2_000), ["a2", "b", "c"])
      assert.deepEqual(yield* until(4, 2_500), ["c"])
      assert.deepEqual(yield* until(0, 10_000), ["a1", "a2", "b", "c", "d"])
      assert.deepEqual(yield* until(6, 10_000), [])
    })),

  withJournal("a clock step back never gives a record a lower timestamp than the one before it", (journal) =>
    Effect.gen(function*() {
      yield* TestClock.setTime(10_000)
      yield* journal.append(cart("c"), "any", [event("A", "1")])
      yield* TestClock.setTime(5_000) // the wall clock jumps back
      yield* journal.append(cart("c"), "any", [event("A", "2")])
      yield* TestClock.setTime(12_000)
      yield* journal.append(cart("c"), "any", [event("A", "3")])
      const records = yield* collect(journal.replayFrom(1))
      assert.deepEqual(records.map((r) => r.timestamp), [10_000, 10_000, 12_000])
      assert.deepEqual((yield* collect(journal.replayUntil(1, 10_000))).map(text), ["1", "2"])
      assert.deepEqual((yield* collect(journal.replayUntil(1, 9_999))).map(text), [])
    })),

  withJournal("truncateBefore(0) and (1) remove nothing", (journal) =>
    Effect.gen(function*() {
      yield* appendMany(journal, cart("z"), 3)
      yield* journal.truncateBefore(0)
      yield* journal.truncateBefore(1)
      assert.equal((yield* collect(journal.replayFrom(0))).length, 3)
      assert.equal((yield* collect(journal.read(cart("z")))).length, 3)
      assert.equal(yield* journal.checkpoint, 1)
    })),

  withJournal("truncateBefore in the middle removes exactly the lower seqs; versions and lastSeq stay", (journal) =>
    Effect.gen(function*() {
      for (let i = 0; i < 5; i++) {
        yield* journal.append(cart("p"), "any", [event("A", `p${i + 1}`)])
        yield* journal.append(cart("q"), "any", [event("A", `q${i + 1}`)])
      }
      yield* journal.truncateBefore(6) // removes seqs 1..5: p1 q1 p2 q2 p3
      assert.deepEqual((yield* collect(journal.replayFrom(0))).map((r) => r.seq), [6, 7, 8, 9, 10])
      assert.deepEqual((yield* collect(journal.read(cart("p")))).map((r) => [r.version, text(r)]), [[4, "p4"], [5, "p5"]])
      assert.deepEqual((yield* collect(journal.read(cart("q")))).map((r) => r.version), [3, 4, 5])
      assert.deepEqual((yield* collect(journal.read(cart("q"), { to: 3 }))).map((r) => r.version), [3])
      assert.deepEqual((yield* collect(journal.read(cart("q"), { from: 1, max: 1 }))).map((r) => r.version), [3])
      assert.equal(yield* journal.version(cart("p")), 5)
      assert.equal(yield* journal.version(cart("q")), 5)
      assert.equal(yield* journal.lastSeq, 10)
      assert.ok((yield* journal.checkpoint) >= 6)
      assert.deepEqual((yield* collect(journal.replayUntil(0, Number.MAX_SAFE_INTEGER))).map((r) => r.seq), [6, 7, 8, 9, 10])
      yield* expectError(journal.append(cart("p"), 4, [event("A", "stale")]), "VersionConflict")
      assert.equal((yield* journal.append(cart("p"), 5, [event("A", "p6")])).version, 6)
    })),

  withJournal("truncateBefore past the end removes everything; numbering continues after it", (journal) =>
    Effect.gen(function*() {
      yield* appendMany(journal, cart("e"), 4)
      yield* journal.truncateBefore(100)
      assert.deepEqual(yield* collect(journal.replayFrom(0)), [])
      assert.deepEqual(yield* collect(journal.read(cart("e"))), [])
      assert.equal(yield* journal.version(cart("e")), 4)
      assert.equal(yield* journal.lastSeq, 4)
      assert.ok((yield* journal.checkpoint) >= 100)
      yield* expectError(journal.append(cart("e"), 0, [event("A", "again")]), "VersionConflict")
      const result = yield* journal.append(cart("e"), 4, [event("A", "e5")])
      assert.equal(result.version, 5)
      assert.ok(result.firstSeq > 4, "seq continues above the old lastSeq")
      assert.ok(result.firstSeq >= (yield* journal.checkpoint), "a new record is never below the checkpoint")
      assert.equal(yield* journal.lastSeq, result.lastSeq)
      assert.deepEqual((yield* collect(journal.replayFrom(0))).map(text), ["e5"])
      assert.deepEqual((yield* collect(journal.replayFrom(result.firstSeq))).map(text), ["e5"])
      assert.deepEqual((yield* collect(journal.read(cart("e")))).map((r) => r.version), [5])
      const second = yield* journal.append(cart("f"), 0, [event("A", "f1")])
      assert.equal(second.firstSeq, result.lastSeq + 1)
    })),

  withJournal("truncating everything then reading a stream by version range still works", (journal) =>
    Effect.gen(function*() {
      yield* appendMany(journal, cart("g"), 3)
      const lastSeq = yield* journal.lastSeq
      yield* journal.truncateBefore(lastSeq + 1)
      assert.deepEqual(yield* collect(journal.read(cart("g"), { from: 1, to: 3 })), [])
      yield* journal.append(cart("g"), 3, [event("A", "g4")])
      assert.deepEqual((yield* collect(journal.read(cart("g"), { from: 1, to: 10 }))).map((r) => r.version), [4])
    })),

  withJournal("the checkpoint only moves forward", (journal) =>
    Effect.gen(function*() {
      yield* appendMany(journal, cart("k"), 5)
      yield* journal.setCheckpoint(3)
      assert.equal(yield* journal.checkpoint, 3)
      yield* journal.setCheckpoint(2)
      assert.equal(yield* journal.checkpoint, 3)
      yield* journal.setCheckpoint(5)
      assert.equal(yield* journal.checkpoint, 5)
      yield* journal.truncateBefore(4) // below the checkpoint: the checkpoint stays
      assert.equal(yield* journal.checkpoint, 5)
      assert.deepEqual((yield* collect(journal.replayFrom(0))).map((r) => r.seq), [4, 5])
      // setting a checkpoint does not remove records by itself
      yield* journal.setCheckpoint(6)
      assert.deepEqual((yield* collect(journal.replayFrom(0))).map((r) => r.seq), [4, 5])
    })),

  {
    name: "checkpoint, truncation, lastSeq and versions persist across a reopen",
    durableOnly: true,
    run: (storage) =>
      Effect.gen(function*() {
        yield* Effect.scoped(Effect.gen(function*() {
          const journal = yield* open(Journal, storage.layer)
          yield* appendMany(journal, cart("d"), 6)
          yield* journal.setCheckpoint(3)
          yield* journal.truncateBefore(5)
        }))
        const journal = yield* open(Journal, storage.layer)
        assert.equal(yield* journal.checkpoint, 5)
        assert.equal(yield* journal.lastSeq, 6)
        assert.equal(yield* journal.version(cart("d")), 6)
        assert.deepEqual((yield* collect(journal.read(cart("d")))).map((r) => r.version), [5, 6])
        assert.equal((yield* journal.append(cart("d"), 6, [event("A", "7")])).firstSeq, 7)
      })
  },

  withJournal("restore into an empty journal keeps seq, version, timestamp, payload and metadata", (journal) =>
    Effect.gen(function*() {
      const records: Array<JournalRecord> = [
        { seq: 3, namespace: "cart", id: "r", version: 4, type: "A", timestamp: 100, payload: new Uint8Array([1]) },
        {
          seq: 4,
          namespace: "cart",
          id: "s",
          version: 1,
          type: "B",
          timestamp: 150,
          payload: new Uint8Array([2, 3]),
          metadata: { k: "v" }
        },
        { seq: 9, namespace: "cart", id: "r", version: 5, type: "C", timestamp: 200, payload: new Uint8Array([]) }
      ]
      yield* journal.restore(records)
      const back = yield* collect(journal.replayFrom(0))
      assert.deepEqual(
        back.map((r) => ({ ...r, payload: Array.from(r.payload) })),
        records.map((r) => ({ ...r, payload: Array.from(r.payload) }))
      )
      assert.equal(yield* journal.lastSeq, 9)
      assert.equal(yield* journal.version(cart("r")), 5)
      assert.equal(yield* journal.version(cart("s")), 1)
      assert.deepEqual((yield* collect(journal.read(cart("r")))).map((r) => r.version), [4, 5])
      assert.deepEqual((yield* collect(journal.replayUntil(0, 150))).map((r) => r.seq), [3, 4])
      // appends continue after the restored history, never below it in time
      yield* TestClock.setTime(50)
      const next = yield* journal.append(cart("r"), 5, [event("D", "after")])
      assert.deepEqual(next, { firstSeq: 10, lastSeq: 10, version: 6, timestamp: 200 })
      const [appended] = yield* collect(journal.read(cart("r"), { from: 6 }))
      assert.equal(appended!.timestamp, 200)
    })),

  withJournal("restore continues after earlier restores and rejects bad batches whole", (journal) =>
    Effect.gen(function*() {
      const record = (seq: number, id: string, version: number): JournalRecord => ({
        seq,
        namespace: "cart",
        id,
        version,
        type: "A",
        timestamp: seq,
        payload: new Uint8Array([seq])
      })
      yield* journal.restore([record(1, "a", 1), record(2, "a", 2)])
      yield* journal.restore([record(3, "a", 3), record(5, "b", 1)])
      assert.equal(yield* journal.lastSeq, 5)
      yield* expectError(journal.restore([record(6, "a", 4), record(6, "b", 2)]), "JournalError", "seq 6")
      yield* expectError(journal.restore([record(4, "c", 1)]), "JournalError", "seq 4")
      yield* expectError(journal.restore([record(7, "a", 4), record(8, "a", 6)]), "JournalError", "version 6")
      yield* expectError(journal.restore([record(7, "a", 4), { ...record(8, "b", 2), namespace: "" }]), "JournalError")
      yield* expectError(
        journal.restore([{ ...record(7, "a", 4), payload: null as unknown as Uint8Array }]),
        "JournalError",
        "payload"
      )
      assert.equal(yield* journal.lastSeq, 5, "a rejected batch stores nothing")
      assert.equal(yield* journal.version(cart("a")), 3)
      assert.deepEqual((yield* collect(journal.replayFrom(0))).map((r) => r.seq), [1, 2, 3, 5])
    })),

  withJournal("gaps in seq are never taken for the end of the log", (journal) =>
    Effect.gen(function*() {
      const record = (seq: number, version: number): JournalRecord => ({
        seq,
        namespace: "cart",
        id: "gap",
        version,
        type: "A",
        timestamp: seq * 10,
        payload: new Uint8Array([version])
      })
      yield* journal.restore([record(1, 1), record(5, 2), record(6, 3), record(20, 4), record(1_000, 5)])
      const seqs = (from: number) => Effect.map(collect(journal.replayFrom(from)), (rs) => rs.map((r) => r.seq))
      assert.deepEqual(yield* seqs(0), [1, 5, 6, 20, 1_000])
      assert.deepEqual(yield* seqs(2), [5, 6, 20, 1_000])
      assert.deepEqual(yield* seqs(7), [20, 1_000])
      assert.deepEqual(yield* seqs(21), [1_000])
      assert.deepEqual((yield* collect(journal.replayUntil(2, 200))).map((r) => r.seq), [5, 6, 20])
      assert.deepEqual((yield* collect(journal.read(cart("gap"), { from: 2, to: 4 }))).map((r) => r.seq), [5, 6, 20])
      yield* journal.truncateBefore(10)
      assert.deepEqual(yield* seqs(0), [20, 1_000])
      const next = yield* journal.append(cart("gap"), 5, [event("A", "next")])
      assert.equal(next.firstSeq, 1_001)
    })),

  withJournal("concurrent appends to one stream: exactly one wins per version, none lost or duplicated", (journal) =>
    Effect.gen(function*() {
      const writers = 32
      const rounds = 8
      // Every writer tries to append at every version; for each version exactly one must win.
      const outcomes = yield* Effect.forEach(
        Array.from({ length: writers }, (_, w) => w),
        (w) =>
          Effect.gen(function*() {
            const won: Array<number> = []
            let conflicts = 0
            for (let round = 0; round < rounds; round++) {
              const current = yield* journal.version(cart("hot"))
              const result = yield* Effect.result(journal.append(cart("hot"), current, [event("A", `w${w}-v${current + 1}`)]))
              if (result._tag === "Success") won.push(result.success.version)
              else if (result.failure._tag === "VersionConflict") conflicts++
              else return yield* Effect.fail(result.failure)
              yield* Effect.yieldNow
            }
            return { won, conflicts }
          }),
        { concurrency: "unbounded" }
      )
      const wonVersions = outcomes.flatMap((o) => o.won).sort((a, b) => a - b)
      const records = yield* collect(journal.read(cart("hot")))
      assert.deepEqual(records.map((r) => r.version), Array.from({ length: records.length }, (_, i) => i + 1))
      assert.deepEqual(wonVersions, records.map((r) => r.version), "every success is stored once, every stored record was a success")
      assert.equal(new Set(records.map((r) => r.seq)).size, records.length)
      assert.equal(records.length + outcomes.reduce((n, o) => n + o.conflicts, 0), writers * rounds)
      for (const record of records) assert.match(text(record), new RegExp(`-v${record.version}$`))
      assert.equal(yield* journal.version(cart("hot")), records.length)
    })),

  withJournal("appends issued at once on several streams (one group commit where there is one): each gets its own result or conflict, and conflicts take no seqs", (journal) =>
    Effect.gen(function*() {
      const calls: ReadonlyArray<readonly [string, number | "any", number]> = [
        ["s1", 0, 1], ["s3", "any", 1], ["s1", 0, 1], ["s2", 0, 2], ["s4", 7, 1], ["s3", "any", 1], ["s1", 0, 1], ["s2", 0, 2], ["s3", "any", 1]
      ]
      const results = yield* Effect.forEach(calls, ([id, expected, n], c) =>
        Effect.result(journal.append(cart(id), expected, Array.from({ length: n }, (_, k) => event("A", `${c}.${k}`)))), { concurrency: "unbounded" })
      const byStream = (id: string) => results.filter((_, c) => calls[c]![0] === id)
      const conflicts = (id: string) => byStream(id).flatMap((r) => r._tag === "Failure" && r.failure._tag === "VersionConflict" ? [r.failure.actual] : [])
      assert.deepEqual(conflicts("s1"), [1, 1], "one of three wins at version 0; the others see version 1")
      assert.deepEqual(conflicts("s2"), [2], "one of two 2-event appends wins; the other sees version 2")
      assert.deepEqual(conflicts("s4"), [0])
      assert.deepEqual(byStream("s3").map((r) => r._tag === "Success" ? r.success.version : -1).sort(), [1, 2, 3])
      const log = yield* collect(journal.replayFrom(0))
      assert.deepEqual(log.map((r) => r.seq), [1, 2, 3, 4, 5, 6], "six records stored, seqs dense")
      for (const result of results) {
        if (result._tag === "Failure") continue
        const mine = log.filter((r) => r.seq >= result.success.firstSeq && r.seq <= result.success.lastSeq)
        assert.equal(mine[mine.length - 1]!.version, result.success.version)
        assert.ok(mine.every((r) => r.timestamp === result.success.timestamp))
      }
      for (const id of ["s1", "s2", "s3"]) {
        assert.deepEqual((yield* collect(journal.read(cart(id)))).map((r) => r.version), Array.from({ length: yield* journal.version(cart(id)) }, (_, i) => i + 1))
      }
    })),

  withJournal(`concurrent "any" appends from many fibers all land, densely numbered`, (journal) =>
    Effect.gen(function*() {
      const fibers = yield* Effect.forEach(
        Array.from({ length: 64 }, (_, i) => i),
        (i) => Effect.forkChild(journal.append(cart("many"), "any", [event("A", `${i}a`), event("B", `${i}b`)]))
      )
      const results = yield* Effect.forEach(fibers, Fiber.join)
      const records = yield* collect(journal.read(cart("many")))
      assert.equal(records.length, 128)
      assert.deepEqual(records.map((r) => r.version), Array.from({ length: 128 }, (_, i) => i + 1))
      // the two events of each call stay adjacent and in order
      for (const result of results) {
        const mine = records.filter((r) => r.seq >= result.firstSeq && r.seq <= result.lastSeq)
        assert.deepEqual(mine.map((r) => r.type), ["A", "B"])
        assert.equal(text(mine[0]!).slice(0, -1), text(mine[1]!).slice(0, -1))
      }
      const seqs = (yield* collect(journal.replayFrom(0))).map((r) => r.seq)
      assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b))
      assert.equal(new Set(seqs).size, 128)
      assert.deepEqual(summary(records).length, 128)
    })),
  ...journalInputCases,
  ...journalInFlightCases
]
