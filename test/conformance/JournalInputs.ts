/**
 * Journal conformance cases for the input rules every layer shares (DESIGN §1): metadata is a plain
 * object of strings and comes back exactly; every bad argument is a typed `JournalError`, never a
 * throw; no seq, version or timestamp beyond `Number.MAX_SAFE_INTEGER` is ever assigned or accepted.
 */
import { Effect, Exit, Stream } from "effect"
import { TestClock } from "effect/testing"
import assert from "node:assert/strict"
import type { EventData, JournalRecord, StreamRef } from "../../src/Journal.ts"
import { Journal } from "../../src/Journal.ts"
import { type Case, expectError, open } from "./harness.ts"
import type { JournalStorage } from "./Journal.ts"

type Service = Journal

const cart = (id: string): StreamRef => ({ namespace: "cart", id })
const payload = new Uint8Array([1, 2, 3])
const collect = <A, E>(stream: Stream.Stream<A, E>) => Stream.runCollect(stream)
const MAX = Number.MAX_SAFE_INTEGER

/** Metadata with every awkward key: `__proto__` (own), its msgpackr rename, `constructor`, empty, numeric. */
const awkwardMetadata = (): Record<string, string> =>
  JSON.parse('{"__proto__":"p","__proto_":"q","constructor":"c","toString":"t","":"empty","1":"one","a":"b"}')

/** Asserts that `metadata` is a plain object with exactly the own entries of `expected`, in the same order. */
const assertSameMetadata = (metadata: unknown, expected: Record<string, string>, where: string) => {
  assert.ok(metadata !== null && typeof metadata === "object", `${where}: metadata is missing`)
  assert.equal(Object.getPrototypeOf(metadata), Object.prototype, `${where}: metadata must be a plain object`)
  assert.deepEqual(Object.entries(metadata), Object.entries(expected), `${where}: metadata entries`)
  assert.ok(Object.hasOwn(metadata, "__proto__") === Object.hasOwn(expected, "__proto__"), `${where}: own "__proto__"`)
}

class Tags {
  readonly user = "ann"
}

/** Metadata values that pass a naive "object of strings" check but are not plain objects of strings. */
const badMetadata = (): ReadonlyArray<readonly [string, unknown]> => {
  const symbolKey = { a: "b", [Symbol("s")]: "v" }
  const getter = Object.defineProperty({}, "user", { get: () => "ann", enumerable: true })
  const hidden = Object.defineProperty({ a: "b" }, "user", { value: "ann", enumerable: false })
  const inherited = Object.create({ user: "ann" }) as object
  return [
    ["a Map", new Map([["user", "ann"]])],
    ["a Date", new Date(0)],
    ["a class instance", new Tags()],
    ["an array", ["ann"]],
    ["null", null],
    ["a string", "user=ann"],
    ["a number value", { n: 1 }],
    ["a nested object", { user: { name: "ann" } }],
    ["a symbol key", symbolKey],
    ["a getter", getter],
    ["a non-enumerable property", hidden],
    ["an object with a custom prototype", inherited],
    ["a Uint8Array", new Uint8Array(1)]
  ]
}

const withJournal = (name: string, body: (journal: Service) => Effect.Effect<void, unknown>): Case<JournalStorage> => ({
  name,
  run: (storage) => Effect.flatMap(open(Journal, storage.layer), body)
})

/** Fails the case if calling `operation` throws or dies instead of failing with a `JournalError` naming `mentions`. */
const expectJournalError = <A, E extends { readonly _tag: string; readonly message: string }>(
  what: string,
  operation: () => Effect.Effect<A, E>,
  ...mentions: ReadonlyArray<string>
) =>
  Effect.gen(function*() {
    let effect: Effect.Effect<A, E>
    try {
      effect = operation()
    } catch (cause) {
      return assert.fail(`${what}: threw ${String(cause)} instead of failing with a JournalError`)
    }
    const exit = yield* Effect.exit(effect)
    assert.ok(Exit.isFailure(exit), `${what}: succeeded`)
    const error = exit.cause.reasons[0]
    assert.ok(error?._tag === "Fail", `${what}: died (${error?._tag === "Die" ? String(error.defect) : "interrupted"}) instead of failing`)
    yield* expectError(Effect.fail(error.error), "JournalError", ...mentions)
  })

const record = (seq: number, fields?: Partial<JournalRecord>): JournalRecord => ({
  seq,
  namespace: "cart",
  id: "restored",
  version: seq,
  type: "A",
  timestamp: seq,
  payload,
  ...fields
})

/** The input-rule cases; part of `journalCases`. */
export const journalInputCases: ReadonlyArray<Case<JournalStorage>> = [
  withJournal("metadata that is not a plain object of strings (Map, Date, class instance, symbol key, getter …) is rejected by append and restore", (journal) =>
    Effect.gen(function*() {
      for (const [what, metadata] of badMetadata()) {
        const events = [{ type: "A", payload, metadata }] as unknown as ReadonlyArray<EventData>
        yield* expectJournalError(`append with ${what}`, () => journal.append(cart("m"), 0, events), "metadata", "cart/m")
        const records = [record(1, { metadata: metadata as Record<string, string> })]
        yield* expectJournalError(`restore with ${what}`, () => journal.restore(records), "metadata")
      }
      assert.equal(yield* journal.lastSeq, 0, "nothing was stored")
      assert.deepEqual(yield* collect(journal.replayFrom(0)), [])
      // What is accepted: plain objects, also empty or with a null prototype.
      const bare = Object.assign(Object.create(null) as Record<string, string>, { user: "ann" })
      yield* journal.append(cart("m"), 0, [{ type: "A", payload, metadata: {} }, { type: "B", payload, metadata: bare }])
      const [empty, fromBare] = yield* collect(journal.read(cart("m")))
      assertSameMetadata(empty!.metadata, {}, "empty metadata")
      assertSameMetadata(fromBare!.metadata, { user: "ann" }, "null-prototype metadata")
    })),

  {
    name: `metadata keys come back exactly ("__proto__", "__proto_", "constructor", "", "1"), from append and restore, after a reopen`,
    run: (storage) =>
      Effect.gen(function*() {
        const expected = awkwardMetadata()
        const check = (records: ReadonlyArray<JournalRecord>, where: string) => {
          assert.equal(records.length, 2, `${where}: both records`)
          for (const r of records) assertSameMetadata(r.metadata, expected, `${where} seq ${r.seq}`)
        }
        yield* Effect.scoped(Effect.gen(function*() {
          const journal = yield* open(Journal, storage.layer)
          yield* journal.append(cart("p"), 0, [{ type: "A", payload, metadata: awkwardMetadata() }])
          yield* journal.restore([record(10, { metadata: awkwardMetadata() })])
          check(yield* collect(journal.replayFrom(0)), "replayFrom")
          check([...yield* collect(journal.read(cart("p"))), ...yield* collect(journal.read(cart("restored")))], "read")
        }))
        const journal = yield* open(Journal, storage.layer)
        const records = yield* collect(journal.replayFrom(0))
        if (records.length > 0) check(records, "replayFrom after a reopen") // a memory layer: every build is new
      })
  },

  withJournal("bad append arguments (null and missing events, sparse arrays, non-arrays, wrong payloads, throwing getters) fail with a JournalError, never a throw", (journal) =>
    Effect.gen(function*() {
      const ok: EventData = { type: "A", payload }
      const sparse: Array<EventData> = [ok]
      sparse[2] = ok
      const throwing = Object.defineProperty({ payload }, "type", {
        get: () => {
          throw new Error("boom")
        }
      })
      const revoked = Proxy.revocable({}, {})
      revoked.revoke()
      const cases: ReadonlyArray<readonly [string, unknown, unknown, ReadonlyArray<string>]> = [
        ["[null]", cart("x"), [null], ["event 0"]],
        ["[undefined]", cart("x"), [undefined], ["event 0"]],
        ["[, event] (sparse)", cart("x"), [, ok], ["event 0", "sparse"]],
        ["new Array(2)", cart("x"), new Array(2), ["event 0", "sparse"]],
        ["[event, , event] (sparse)", cart("x"), sparse, ["event 1", "sparse"]],
        ["a string", cart("x"), "events", ["events"]],
        ["an object", cart("x"), { 0: ok, length: 1 }, ["events"]],
        ["undefined events", cart("x"), undefined, ["events"]],
        ["a number payload", cart("x"), [{ type: "A", payload: 5 }], ["event 0", "payload"]],
        ["an array payload", cart("x"), [{ type: "A", payload: [1, 2] }], ["event 0", "payload"]],
        ["an ArrayBuffer payload", cart("x"), [{ type: "A", payload: new ArrayBuffer(2) }], ["event 0", "payload"]],
        ["a missing payload", cart("x"), [{ type: "A" }], ["event 0", "payload"]],
        ["a number type", cart("x"), [{ type: 1, payload }], ["event 0", "type"]],
        ["a string event", cart("x"), ["A"], ["event 0"]],
        ["a throwing getter", cart("x"), [ok, throwing], ["boom"]],
        ["a revoked Proxy event", cart("x"), [revoked.proxy], ["event 0"]],
        ["a null stream", null, [ok], ["stream"]],
        ["a string stream", "cart/x", [ok], ["stream"]],
        ["a stream with a throwing getter", Object.defineProperty({ id: "x" }, "namespace", { get: () => { throw new Error("bang") } }), [ok], ["bang"]]
      ]
      for (const [what, stream, events, mentions] of cases) {
        yield* expectJournalError(
          `append(${what})`,
          () => journal.append(stream as StreamRef, 0, events as ReadonlyArray<EventData>),
          ...mentions
        )
      }
      yield* expectJournalError("append with expectedVersion null", () => journal.append(cart("x"), null as unknown as number, [ok]), "expectedVersion")
      assert.equal(yield* journal.lastSeq, 0, "nothing was stored")
      assert.equal(yield* journal.version(cart("x")), 0)
    })),

  withJournal("bad restore and read arguments fail with a JournalError, never a throw, and store nothing", (journal) =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, unknown, ReadonlyArray<string>]> = [
        ["[null]", [null], ["record"]],
        ["[record, null]", [record(1), null], ["record"]],
        ["a sparse array", [record(1), , record(3)], ["record"]],
        ["a number", 42, ["iterable"]],
        ["null", null, ["iterable"]],
        ["a record without a stream", [{ ...record(1), namespace: undefined }], ["namespace"]],
        ["a record with a string seq", [{ ...record(1), seq: "1" }], ["seq"]]
      ]
      for (const [what, records, mentions] of cases) {
        yield* expectJournalError(`restore(${what})`, () => journal.restore(records as Iterable<JournalRecord>), ...mentions)
      }
      yield* expectJournalError("read with null options", () => Stream.runCollect(journal.read(cart("x"), null as never)), "options")
      yield* expectJournalError("version(null)", () => journal.version(null as unknown as StreamRef), "stream")
      assert.equal(yield* journal.lastSeq, 0, "nothing was stored")
    })),

  withJournal("restore below the truncation point is refused", (journal) =>
    Effect.gen(function*() {
      yield* journal.truncateBefore(10)
      yield* expectError(journal.restore([record(5)]), "JournalError", "seq 5", "truncation point 10")
      yield* journal.restore([record(10)])
      assert.deepEqual((yield* collect(journal.replayFrom(0))).map((r) => r.seq), [10])
    })),

  {
    name: "truncateBefore(MAX_SAFE_INTEGER): one more record fits at MAX_SAFE_INTEGER, the next append fails and stores nothing; all of it survives a reopen",
    run: (storage) =>
      Effect.gen(function*() {
        yield* Effect.scoped(Effect.gen(function*() {
          const journal = yield* open(Journal, storage.layer)
          yield* journal.append(cart("s"), 0, [{ type: "A", payload }])
          yield* journal.truncateBefore(MAX)
          yield* expectError(
            journal.append(cart("s"), 1, [{ type: "A", payload }, { type: "B", payload }]),
            "JournalError",
            "MAX_SAFE_INTEGER",
            "cart/s"
          )
          const last = yield* journal.append(cart("s"), 1, [{ type: "A", payload }])
          assert.deepEqual([last.firstSeq, last.lastSeq, last.version], [MAX, MAX, 2])
          yield* expectError(journal.append(cart("s"), 2, [{ type: "A", payload }]), "JournalError", "MAX_SAFE_INTEGER")
          yield* expectError(journal.append(cart("t"), 0, [{ type: "A", payload }]), "JournalError", "MAX_SAFE_INTEGER")
          assert.equal(yield* journal.lastSeq, MAX)
          assert.deepEqual((yield* collect(journal.replayFrom(0))).map((r) => r.seq), [MAX])
        }))
        const journal = yield* open(Journal, storage.layer)
        if ((yield* journal.lastSeq) === 0) return // a memory layer: every build is new
        assert.equal(yield* journal.lastSeq, MAX, "the acknowledged record at MAX_SAFE_INTEGER is kept")
        assert.deepEqual((yield* collect(journal.read(cart("s")))).map((r) => [r.seq, r.version]), [[MAX, 2]])
        assert.equal(yield* journal.version(cart("t")), 0)
      })
  },

  withJournal("a stream at version MAX_SAFE_INTEGER takes no more records; restore refuses unsafe numbers", (journal) =>
    Effect.gen(function*() {
      yield* journal.restore([record(1, { version: MAX - 1 })])
      yield* expectError(
        journal.append(cart("restored"), "any", [{ type: "A", payload }, { type: "B", payload }]),
        "JournalError",
        "version",
        "MAX_SAFE_INTEGER"
      )
      assert.equal((yield* journal.append(cart("restored"), MAX - 1, [{ type: "A", payload }])).version, MAX)
      yield* expectError(journal.append(cart("restored"), "any", [{ type: "A", payload }]), "JournalError", "MAX_SAFE_INTEGER")
      for (const [what, fields] of [["seq", { seq: MAX + 1 }], ["version", { version: MAX + 1 }], ["timestamp", { timestamp: MAX + 1 }], [
        "timestamp",
        { timestamp: -1 }
      ]] as const) {
        yield* expectError(journal.restore([record(5, { id: "other", ...fields })]), "JournalError", what)
      }
      assert.equal(yield* journal.lastSeq, 2)
    })),

  withJournal("a Clock time that is not a safe integer ≥ 0 fails the append and stores nothing", (journal) =>
    Effect.gen(function*() {
      for (const time of [-1, 1.5, MAX + 2]) {
        yield* TestClock.setTime(time)
        yield* expectError(journal.append(cart("c"), 0, [{ type: "A", payload }]), "JournalError", "Clock", String(time))
      }
      assert.equal(yield* journal.lastSeq, 0)
      yield* TestClock.setTime(MAX)
      assert.equal((yield* journal.append(cart("c"), 0, [{ type: "A", payload }])).timestamp, MAX)
      const [stored] = yield* collect(journal.read(cart("c")))
      assert.equal(stored!.timestamp, MAX)
    }))
]
