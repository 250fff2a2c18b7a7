/**
 * The Archive conformance suite (DESIGN §4), written once and run against every Archive layer.
 */
import { Effect, type Layer, type Scope } from "effect"
import assert from "node:assert/strict"
import type { ArchiveOptions, Segment, SegmentRef } from "../../src/Archive.ts"
import { Archive } from "../../src/Archive.ts"
import type { JournalRecord } from "../../src/Journal.ts"
import { type Case, expectError, open } from "./harness.ts"

/**
 * How a fixture opens an Archive. Every build of `layer(...)` reaches the same stored objects, so two
 * builds with different writerIds are two writers on one bucket or directory. `damage` rewrites a
 * stored object's bytes in place, to simulate corruption.
 */
export interface ArchiveStorage {
  readonly layer: (options?: ArchiveOptions) => Layer.Layer<Archive, unknown>
  readonly damage: (key: string, mutate: (bytes: Uint8Array) => Uint8Array) => Effect.Effect<void, unknown>
}

type Service = Archive

const encoder = new TextEncoder()

/** A record at `seq`, with fields derived from it so that every field differs between records. */
const record = (seq: number, overrides?: Partial<JournalRecord>): JournalRecord => ({
  seq,
  namespace: "cart",
  id: `c${seq % 7}`,
  version: seq,
  type: "Added",
  timestamp: 1_700_000_000_000 + seq,
  payload: encoder.encode(`payload of ${seq}`),
  ...overrides
})

/** A segment holding a record at each of `seqs`. */
const segment = (startSeq: number, endSeq: number, seqs: ReadonlyArray<number> = []): Segment => ({
  startSeq,
  endSeq,
  records: seqs.map((seq) => record(seq))
})

const range = (from: number, to: number): Array<number> => Array.from({ length: to - from + 1 }, (_, i) => from + i)

/** The key a segment must be stored under, spelled out here rather than computed by the module under test. */
const key20 = (n: number) => String(n).padStart(20, "0")

const summary = (refs: ReadonlyArray<SegmentRef>) => refs.map((ref) => `${ref.startSeq}..${ref.endSeq}`)

/** Asserts that `records` equal `expected` field for field, with payloads as plain `Uint8Array`s. */
const assertRecords = (records: ReadonlyArray<JournalRecord>, expected: ReadonlyArray<JournalRecord>) => {
  assert.equal(records.length, expected.length, "record count")
  for (let i = 0; i < expected.length; i++) {
    const actual = records[i]!
    assert.equal(
      Object.getPrototypeOf(actual.payload),
      Uint8Array.prototype,
      `record ${i}: payload must be a plain Uint8Array (not a Buffer or other subclass)`
    )
    assert.deepEqual(actual, expected[i], `record ${i} (seq ${expected[i]!.seq})`)
  }
}

/** Opens an Archive over the fixture's storage (a new build: a new writer on the same objects). */
const openArchive = (storage: ArchiveStorage, options?: ArchiveOptions): Effect.Effect<Service, unknown, Scope.Scope> =>
  open(Archive, storage.layer(options))

const withArchive = (
  name: string,
  body: (archive: Service, storage: ArchiveStorage) => Effect.Effect<void, unknown, Scope.Scope>
): Case<ArchiveStorage> => ({
  name,
  run: (storage) => Effect.flatMap(openArchive(storage), (archive) => body(archive, storage))
})

/** A segment whose stored object is mostly record bytes, so that its middle byte lies in the checksummed part. */
const damageTarget = (): Segment => ({
  startSeq: 1,
  endSeq: 3,
  records: [1, 2, 3].map((seq) => record(seq, { payload: new Uint8Array(200).map((_, i) => (seq * 17 + i) & 0xff) }))
})

/** Deterministic pseudo-random bytes (a linear congruential generator), so that failures reproduce. */
const pseudoRandom = (length: number, seed: number): Uint8Array => {
  const out = new Uint8Array(length)
  let state = seed >>> 0
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0
    out[i] = state >>> 24
  }
  return out
}

const DAMAGE: ReadonlyArray<readonly [string, (bytes: Uint8Array) => Uint8Array]> = [
  ["one byte in the middle flipped", (bytes) => {
    const copy = bytes.slice()
    const middle = bytes.length >> 1
    copy[middle] = copy[middle]! ^ 0xff
    return copy
  }],
  ["truncated to half", (bytes) => bytes.slice(0, bytes.length >> 1)],
  ["missing its last byte", (bytes) => bytes.slice(0, bytes.length - 1)],
  ["garbage appended", (bytes) => {
    const copy = new Uint8Array(bytes.length + 5)
    copy.set(bytes)
    copy.set([0xc1, 0x00, 0xff, 0x13, 0x37], bytes.length)
    return copy
  }],
  ["replaced by random bytes", (bytes) => pseudoRandom(bytes.length, 0xa11a5)],
  ["emptied", () => new Uint8Array(0)]
]

const INVALID_SEGMENTS: ReadonlyArray<readonly [string, Segment, string]> = [
  ["endSeq below startSeq", segment(5, 4), "endSeq"],
  ["startSeq 0", segment(0, 3, [1]), "startSeq"],
  ["a fractional endSeq", segment(1, 2.5, [1]), "endSeq"],
  ["a record seq below startSeq", segment(5, 10, [4, 6]), "seq 4"],
  ["a record seq above endSeq", segment(5, 10, [6, 11]), "seq 11"],
  ["records out of order", segment(1, 10, [3, 2]), "seq 2"],
  ["a duplicate record seq", segment(1, 10, [2, 2]), "seq 2"],
  ["a record with an empty namespace", { startSeq: 1, endSeq: 3, records: [record(1), record(2, { namespace: "" })] }, "namespace"],
  ["a record with an empty type", { startSeq: 1, endSeq: 3, records: [record(2, { type: "" })] }, "type"],
  ["a record whose payload is not bytes", {
    startSeq: 1,
    endSeq: 3,
    records: [record(2, { payload: "nope" as unknown as Uint8Array })]
  }, "payload"]
]

const INVALID_PREFIXES: ReadonlyArray<string> = ["../x", "/abs", "a/../b", "./x", "a/./b", "x/.."]

/** Every Archive conformance case. */
export const archiveCases: ReadonlyArray<Case<ArchiveStorage>> = [
  withArchive("a new archive lists nothing", (archive) =>
    Effect.gen(function*() {
      assert.deepEqual(yield* archive.list(), [])
      assert.deepEqual(yield* archive.list(0), [])
      assert.deepEqual(yield* archive.list(1_000), [])
    })),

  withArchive("put, list, get round-trips every record field: payload bytes, metadata, gaps, empty payload", (archive) =>
    Effect.gen(function*() {
      const payload = new Uint8Array(256).map((_, i) => i)
      const records: ReadonlyArray<JournalRecord> = [
        {
          seq: 3,
          namespace: "cart",
          id: "a",
          version: 1,
          type: "Opened",
          timestamp: 1_700_000_000_000,
          payload,
          metadata: { user: "ann", "trace-id": "t1", empty: "" }
        },
        { seq: 4, namespace: "cart", id: "a", version: 2, type: "Emptied", timestamp: 1_700_000_000_001, payload: new Uint8Array(0) },
        {
          seq: 9,
          namespace: "ünïcode/ns",
          id: "id with spaces ✓",
          version: 41,
          type: "Renamed",
          timestamp: 0,
          payload: encoder.encode("héllo"),
          metadata: { "κλειδί": "τιμή" }
        },
        { seq: 12, namespace: "cart", id: "b", version: 7, type: "Added", timestamp: 1_700_000_000_999, payload: new Uint8Array([0, 0, 0]) }
      ]
      const expected = records.map((r) => ({ ...r, payload: r.payload.slice() }))
      const ref = yield* archive.put({ startSeq: 2, endSeq: 15, records })
      payload[0] = 99 // what was archived must not change with the caller's buffer
      assert.equal(ref.key, `${key20(2)}-${key20(15)}.msgpack`)
      assert.equal(ref.startSeq, 2)
      assert.equal(ref.endSeq, 15)
      const listed = yield* archive.list()
      assert.equal(listed.length, 1)
      assert.deepEqual(
        { startSeq: listed[0]!.startSeq, endSeq: listed[0]!.endSeq, key: listed[0]!.key },
        { startSeq: 2, endSeq: 15, key: ref.key }
      )
      if (listed[0]!.size !== undefined && ref.size !== undefined) assert.equal(listed[0]!.size, ref.size)
      const got = yield* archive.get(listed[0]!)
      assertRecords(got, expected)
      assert.equal(got[1]!.payload.length, 0)
      assert.equal(got[1]!.metadata, undefined)
      assert.ok(!("metadata" in got[1]!) || got[1]!.metadata === undefined)
      // the records returned are the caller's: changing them does not change the archive
      got[0]!.payload[1] = 77
      assertRecords(yield* archive.get(ref), expected)
      // the ref returned by put works as well as the listed one
      assertRecords(yield* archive.get(ref), expected)
    })),

  withArchive("a segment that is all gaps (no records) round-trips", (archive) =>
    Effect.gen(function*() {
      const ref = yield* archive.put(segment(10, 19))
      assert.equal(ref.key, `${key20(10)}-${key20(19)}.msgpack`)
      assert.deepEqual(summary(yield* archive.list()), ["10..19"])
      assert.deepEqual(yield* archive.get(ref), [])
    })),

  withArchive("a single-seq segment (startSeq == endSeq) round-trips", (archive) =>
    Effect.gen(function*() {
      const ref = yield* archive.put(segment(7, 7, [7]))
      assert.equal(ref.key, `${key20(7)}-${key20(7)}.msgpack`)
      assertRecords(yield* archive.get(ref), [record(7)])
    })),

  withArchive("the key is {startSeq:020}-{endSeq:020}.msgpack, with and without a prefix", (archive, storage) =>
    Effect.gen(function*() {
      assert.equal((yield* archive.put(segment(1, 100, [1, 50]))).key, "00000000000000000001-00000000000000000100.msgpack")
      assert.equal(
        (yield* archive.put(segment(12_345_678_901, 12_345_678_999, [12_345_678_902]))).key,
        "00000000012345678901-00000000012345678999.msgpack"
      )
      assert.equal(
        (yield* archive.put(segment(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER))).key,
        "00009007199254740991-00009007199254740991.msgpack"
      )
      assert.deepEqual((yield* archive.list()).map((ref) => ref.key), [
        "00000000000000000001-00000000000000000100.msgpack",
        "00000000012345678901-00000000012345678999.msgpack",
        "00009007199254740991-00009007199254740991.msgpack"
      ])

      const journal = yield* openArchive(storage, { prefix: "journal/" })
      const ref = yield* journal.put(segment(101, 200, [101, 150, 200]))
      assert.equal(ref.key, "journal/00000000000000000101-00000000000000000200.msgpack")
      assert.deepEqual((yield* journal.list()).map((r) => r.key), [
        "journal/00000000000000000101-00000000000000000200.msgpack"
      ])
      assertRecords(yield* journal.get(ref), [record(101), record(150), record(200)])

      const nested = yield* openArchive(storage, { prefix: "a/b/" })
      const nestedRef = yield* nested.put(segment(3, 4, [4]))
      assert.equal(nestedRef.key, "a/b/00000000000000000003-00000000000000000004.msgpack")
      assert.deepEqual((yield* nested.list()).map((r) => r.key), ["a/b/00000000000000000003-00000000000000000004.msgpack"])
      assertRecords(yield* nested.get(nestedRef), [record(4)])

      const bare = yield* openArchive(storage, { prefix: "journal" })
      assert.equal(
        (yield* bare.put(segment(5, 6, [5]))).key,
        "journal00000000000000000005-00000000000000000006.msgpack"
      )

      // the objects really are stored under those literal names (damage fails for a missing object)
      for (
        const key of [
          "00000000000000000001-00000000000000000100.msgpack",
          "journal/00000000000000000101-00000000000000000200.msgpack",
          "a/b/00000000000000000003-00000000000000000004.msgpack",
          "journal00000000000000000005-00000000000000000006.msgpack"
        ]
      ) {
        yield* storage.damage(key, (bytes) => bytes)
      }
      assertRecords(yield* journal.get(ref), [record(101), record(150), record(200)])

      // each archive sees only its own objects
      assert.deepEqual(summary(yield* archive.list()), ["1..100", "12345678901..12345678999", "9007199254740991..9007199254740991"])
      assert.deepEqual(summary(yield* journal.list()), ["101..200"])
      assert.deepEqual(summary(yield* nested.list()), ["3..4"])
      assert.deepEqual(summary(yield* bare.list()), ["5..6"])
    })),

  withArchive("list is ordered by startSeq even when segments are put out of order", (archive) =>
    Effect.gen(function*() {
      for (const [start, end] of [[21, 30], [1, 10], [41, 50], [11, 20], [31, 40], [100, 1_000], [51, 99]] as const) {
        yield* archive.put(segment(start, end, [start, end]))
      }
      const refs = yield* archive.list()
      assert.deepEqual(summary(refs), ["1..10", "11..20", "21..30", "31..40", "41..50", "51..99", "100..1000"])
      for (const ref of refs) {
        assert.equal(ref.key, `${key20(ref.startSeq)}-${key20(ref.endSeq)}.msgpack`)
        assert.deepEqual((yield* archive.get(ref)).map((r) => r.seq), [ref.startSeq, ref.endSeq])
      }
    })),

  withArchive("list(fromSeq) returns the segments holding seqs ≥ fromSeq, including one ending at fromSeq", (archive) =>
    Effect.gen(function*() {
      for (const [start, end] of [[31, 40], [1, 10], [21, 30], [11, 20]] as const) {
        yield* archive.put(segment(start, end, [start]))
      }
      const from = (fromSeq?: number) => Effect.map(archive.list(fromSeq), summary)
      const all = ["1..10", "11..20", "21..30", "31..40"]
      assert.deepEqual(yield* from(), all)
      assert.deepEqual(yield* from(0), all)
      assert.deepEqual(yield* from(1), all)
      assert.deepEqual(yield* from(9), all)
      assert.deepEqual(yield* from(10), all, "the segment whose endSeq == fromSeq holds fromSeq")
      assert.deepEqual(yield* from(11), ["11..20", "21..30", "31..40"], "a segment ending below fromSeq is left out")
      assert.deepEqual(yield* from(15), ["11..20", "21..30", "31..40"])
      assert.deepEqual(yield* from(20), ["11..20", "21..30", "31..40"])
      assert.deepEqual(yield* from(21), ["21..30", "31..40"])
      assert.deepEqual(yield* from(40), ["31..40"])
      assert.deepEqual(yield* from(41), [])
      assert.deepEqual(yield* from(1_000_000), [])
    })),

  withArchive("list rejects a negative or fractional fromSeq", (archive) =>
    Effect.gen(function*() {
      yield* archive.put(segment(1, 2, [1]))
      yield* expectError(archive.list(-1), "ArchiveError", "fromSeq")
      yield* expectError(archive.list(1.5), "ArchiveError", "fromSeq")
      yield* expectError(archive.list(Number.NaN), "ArchiveError", "fromSeq")
    })),

  withArchive("objects under another prefix or with non-matching names are not listed", (archive, storage) =>
    Effect.gen(function*() {
      const journal = yield* openArchive(storage, { prefix: "journal/" })
      const old = yield* openArchive(storage, { prefix: "journal/old/" })
      const other = yield* openArchive(storage, { prefix: "journal2/" })
      const dashed = yield* openArchive(storage, { prefix: "journal-" })
      const bare = yield* openArchive(storage, { prefix: "journal" })
      const x = yield* openArchive(storage, { prefix: "x" })
      yield* journal.put(segment(1, 10, [1]))
      yield* old.put(segment(11, 20, [11]))
      yield* other.put(segment(21, 30, [21]))
      yield* dashed.put(segment(31, 40, [31]))
      yield* x.put(segment(41, 50, [41]))
      yield* archive.put(segment(51, 60, [51]))
      yield* bare.put(segment(61, 70, [61]))
      assert.deepEqual((yield* journal.list()).map((r) => r.key), ["journal/00000000000000000001-00000000000000000010.msgpack"])
      assert.deepEqual(summary(yield* old.list()), ["11..20"])
      assert.deepEqual(summary(yield* other.list()), ["21..30"])
      assert.deepEqual(summary(yield* dashed.list()), ["31..40"])
      assert.deepEqual(summary(yield* x.list()), ["41..50"])
      assert.deepEqual(summary(yield* archive.list()), ["51..60"], "the unprefixed archive sees only names that are exactly keys")
      assert.deepEqual(summary(yield* bare.list()), ["61..70"])
      assert.deepEqual(summary(yield* journal.list(0)), ["1..10"])
      // a ref of another prefix is not a key of this archive
      const foreign = (yield* old.list())[0]!
      const error = yield* expectError(journal.get(foreign), "ArchiveError", foreign.key)
      assert.equal(error.key, foreign.key)
    })),

  ...DAMAGE.map(([kind, mutate]): Case<ArchiveStorage> =>
    withArchive(`a damaged object (${kind}) is an ArchiveError naming its key`, (archive, storage) =>
      Effect.gen(function*() {
        const target = damageTarget()
        const ref = yield* archive.put(target)
        const neighbour = yield* archive.put(segment(4, 6, [4, 5, 6]))
        assertRecords(yield* archive.get(ref), target.records)
        yield* storage.damage(ref.key, mutate)
        const listed = yield* archive.list()
        assert.deepEqual(summary(listed), ["1..3", "4..6"])
        for (const candidate of [ref, listed[0]!]) {
          const error = yield* expectError(archive.get(candidate), "ArchiveError", ref.key)
          assert.equal(error.key, ref.key)
        }
        // a fresh writer sees the same damage, and putting the segment again does not paper over it
        const second = yield* openArchive(storage, { writerId: "second-writer" })
        const again = yield* expectError(second.get(ref), "ArchiveError", ref.key)
        assert.equal(again.key, ref.key)
        const reput = yield* expectError(second.put(target), "ArchiveError", ref.key)
        assert.equal(reput.key, ref.key)
        // the other segment is unaffected
        assertRecords(yield* archive.get(neighbour), [record(4), record(5), record(6)])
      }))
  ),

  withArchive("get of a missing segment is an ArchiveError naming its key", (archive) =>
    Effect.gen(function*() {
      yield* archive.put(segment(1, 10, [1]))
      const key = `${key20(11)}-${key20(20)}.msgpack`
      const error = yield* expectError(archive.get({ startSeq: 11, endSeq: 20, key }), "ArchiveError", key)
      assert.equal(error.key, key)
      const other = `${key20(1)}-${key20(11)}.msgpack`
      assert.equal((yield* expectError(archive.get({ startSeq: 1, endSeq: 11, key: other }), "ArchiveError", other)).key, other)
    })),

  withArchive("putting an identical segment again is a no-op, also from a second writer", (archive, storage) =>
    Effect.gen(function*() {
      const target = segment(1, 10, [1, 4, 9])
      const first = yield* archive.put(target)
      const again = yield* archive.put(segment(1, 10, [1, 4, 9]))
      assert.equal(again.key, first.key)
      assert.deepEqual([again.startSeq, again.endSeq], [1, 10])
      const second = yield* openArchive(storage, { writerId: "writer-two" })
      const fromSecond = yield* second.put(segment(1, 10, [1, 4, 9]))
      assert.equal(fromSecond.key, first.key)
      assert.deepEqual(summary(yield* archive.list()), ["1..10"])
      assert.deepEqual(summary(yield* second.list()), ["1..10"])
      assertRecords(yield* archive.get(first), target.records)
      assertRecords(yield* second.get(first), target.records)
    })),

  withArchive("a second writer putting different records under an existing key fails and leaves the object alone", (_, storage) =>
    Effect.gen(function*() {
      const one = yield* openArchive(storage, { writerId: "writer-one" })
      const two = yield* openArchive(storage, { writerId: "writer-two" })
      const original = segment(1, 10, [1, 2, 3])
      const ref = yield* one.put(original)
      const variants: ReadonlyArray<Segment> = [
        segment(1, 10, [1, 2]),
        segment(1, 10, [1, 2, 3, 4]),
        segment(1, 10),
        { startSeq: 1, endSeq: 10, records: [record(1), record(2), record(3, { payload: encoder.encode("other") })] },
        { startSeq: 1, endSeq: 10, records: [record(1), record(2), record(3, { metadata: { k: "v" } })] }
      ]
      for (const variant of variants) {
        const error = yield* expectError(two.put(variant), "ArchiveError", ref.key, "writer-one", "writer-two")
        assert.equal(error.key, ref.key)
        // the first writer is held to the same rule
        assert.equal((yield* expectError(one.put(variant), "ArchiveError", ref.key)).key, ref.key)
      }
      assert.deepEqual(summary(yield* one.list()), ["1..10"])
      assertRecords(yield* one.get(ref), original.records)
      assertRecords(yield* two.get(ref), original.records)
      // identical is still fine afterwards
      yield* two.put(segment(1, 10, [1, 2, 3]))
    })),

  withArchive("gzip: the key ends .msgpack.gz, every field round-trips, a writer without compression reads it, and a re-put is a no-op", (_, storage) =>
    Effect.gen(function*() {
      const gzip = yield* openArchive(storage, { compression: "gzip", writerId: "gz" })
      const plain = yield* openArchive(storage, { writerId: "plain" })
      const target: Segment = {
        startSeq: 1,
        endSeq: 6,
        records: [record(1, { metadata: { __proto__: "kept", k: "v" } }), record(2, { payload: new Uint8Array(0) }), record(5, { payload: new Uint8Array(5_000).fill(7) })]
      }
      const ref = yield* gzip.put(target)
      assert.equal(ref.key, `${key20(1)}-${key20(6)}.msgpack.gz`)
      const later = yield* plain.put(segment(7, 9, [7, 9]))
      assert.equal(later.key, `${key20(7)}-${key20(9)}.msgpack`, "each writer keeps its own codec; one archive holds both")
      assert.deepEqual((yield* plain.list()).map((r) => r.key), [ref.key, later.key])
      assertRecords(yield* plain.get(ref), target.records)
      assertRecords(yield* gzip.get(later), segment(7, 9, [7, 9]).records)
      yield* gzip.put(target)
      assert.ok((ref.size ?? 0) < 5_000, `the 5,000 repeated bytes compress (object of ${ref.size} bytes)`)
    })),

  withArchive("a damaged gzip object (every kind of damage, each on its own segment) is an ArchiveError naming its key", (_, storage) =>
    Effect.gen(function*() {
      const gzip = yield* openArchive(storage, { compression: "gzip" })
      for (const [i, [kind, mutate]] of DAMAGE.entries()) {
        const target: Segment = { ...damageTarget(), startSeq: 10 * i + 1, endSeq: 10 * i + 3, records: damageTarget().records.map((r) => ({ ...r, seq: r.seq + 10 * i })) }
        const ref = yield* gzip.put(target)
        yield* storage.damage(ref.key, mutate)
        const error = yield* expectError(gzip.get(ref), "ArchiveError", ref.key)
        assert.equal(error.key, ref.key, kind)
      }
    })),

  withArchive("an unknown compression option fails with an ArchiveError naming it", (_, storage) =>
    Effect.gen(function*() {
      const opened = yield* Effect.result(Effect.scoped(openArchive(storage, { compression: "brotli" as never })))
      assert.ok(opened._tag === "Failure")
      assert.match(String((opened.failure as { message?: unknown }).message), /compression "brotli"/)
    })),

  withArchive("two writers racing to put one key: exactly one object wins, whole", (_, storage) =>
    Effect.gen(function*() {
      const one = yield* openArchive(storage, { writerId: "writer-one" })
      const two = yield* openArchive(storage, { writerId: "writer-two" })
      const a = segment(1, 100, range(1, 50))
      const b = segment(1, 100, range(51, 100))
      const [ra, rb] = yield* Effect.all([Effect.result(one.put(a)), Effect.result(two.put(b))], { concurrency: "unbounded" })
      assert.equal([ra, rb].filter((r) => r._tag === "Success").length, 1, "exactly one put succeeds")
      const loser = ra._tag === "Failure" ? ra.failure : rb._tag === "Failure" ? rb.failure : undefined
      assert.equal(loser?._tag, "ArchiveError")
      assert.equal(loser?.key, `${key20(1)}-${key20(100)}.msgpack`)
      const winner = ra._tag === "Success" ? a : b
      const [ref] = yield* one.list()
      assertRecords(yield* two.get(ref!), winner.records)
      // identical concurrent puts from both writers both succeed
      const c = segment(101, 200, range(101, 200))
      const both = yield* Effect.all([one.put(c), two.put(c), one.put(c), two.put(c)], { concurrency: "unbounded" })
      assert.deepEqual(new Set(both.map((r) => r.key)).size, 1)
      assert.deepEqual(summary(yield* two.list()), ["1..100", "101..200"])
      assertRecords(yield* one.get(both[0]!), c.records)
    })),

  withArchive("invalid segments fail with ArchiveError and store nothing", (archive) =>
    Effect.gen(function*() {
      for (const [what, invalid, mention] of INVALID_SEGMENTS) {
        const result = yield* Effect.result(archive.put(invalid))
        assert.ok(result._tag === "Failure", `a segment with ${what} must be rejected`)
        assert.equal(result.failure._tag, "ArchiveError", what)
        assert.ok(
          result.failure.message.includes(mention),
          `${what}: the message "${result.failure.message}" should mention "${mention}"`
        )
        assert.deepEqual(yield* archive.list(), [], `${what}: nothing may be stored`)
      }
    })),

  ({
    name: "an invalid prefix fails when the layer is built",
    run: (storage) =>
      Effect.gen(function*() {
        for (const prefix of INVALID_PREFIXES) {
          const result = yield* Effect.result(Effect.scoped(openArchive(storage, { prefix })))
          assert.ok(result._tag === "Failure", `prefix ${JSON.stringify(prefix)} must be rejected`)
          const error = result.failure as { readonly _tag?: unknown; readonly message?: unknown }
          assert.equal(error?._tag, "ArchiveError", `prefix ${JSON.stringify(prefix)}`)
          assert.ok(
            typeof error.message === "string" && error.message.includes(JSON.stringify(prefix)),
            `the message ${String(error.message)} should name the prefix ${JSON.stringify(prefix)}`
          )
        }
        // and nothing was written by the attempts
        assert.deepEqual(yield* (yield* openArchive(storage)).list(), [])
      })
  }),

  withArchive("a segment with a 1 MiB payload round-trips", (archive) =>
    Effect.gen(function*() {
      const payload = new Uint8Array(1024 * 1024).map((_, i) => (i * 31 + (i >> 8)) & 0xff)
      const records = [record(1), record(2, { payload, type: "Blob" }), record(3)]
      const ref = yield* archive.put({ startSeq: 1, endSeq: 3, records })
      assert.ok(ref.size === undefined || ref.size > 1024 * 1024)
      const [listed] = yield* archive.list()
      assert.ok(listed!.size === undefined || listed!.size > 1024 * 1024)
      const got = yield* archive.get(listed!)
      assert.equal(got[1]!.payload.length, payload.length)
      assertRecords(got, records)
    })),

  withArchive("a segment with 5,000 records round-trips", (archive) =>
    Effect.gen(function*() {
      const records = Array.from({ length: 5_000 }, (_, i) =>
        record(10 + i * 2, {
          namespace: `ns${i % 3}`,
          id: `s${i % 101}`,
          version: 1 + Math.floor(i / 101),
          ...(i % 5 === 0 ? { metadata: { i: String(i) } } : {})
        }))
      const ref = yield* archive.put({ startSeq: 10, endSeq: 10_010, records })
      assert.equal(ref.key, `${key20(10)}-${key20(10_010)}.msgpack`)
      const [listed] = yield* archive.list()
      const got = yield* archive.get(listed!)
      assert.equal(got.length, 5_000)
      assertRecords(got, records)
    }))
]
