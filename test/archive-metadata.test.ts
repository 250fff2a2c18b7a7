/**
 * Archive segment objects keep record metadata exactly, like every Journal layer: every key comes
 * back, `"__proto__"` (which msgpackr's object decoding renames) included; and metadata that is not
 * a plain object of strings is refused by `put`.
 */
import { Effect } from "effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import { Archive } from "../src/index.ts"
import type { JournalRecord } from "../src/Journal.ts"

const record = (seq: number, metadata?: unknown): JournalRecord => ({
  seq,
  namespace: "cart",
  id: "1",
  version: seq,
  type: "A",
  timestamp: seq,
  payload: new Uint8Array([seq]),
  ...(metadata !== undefined ? { metadata: metadata as Record<string, string> } : {})
})

test(`Archive: metadata keys come back exactly, "__proto__" and "__proto_" included`, () =>
  Effect.runPromise(Effect.gen(function*() {
    const archive = yield* Archive.make(Archive.makeObjectStoreMemory())
    const metadata = JSON.parse('{"__proto__":"p","__proto_":"q","constructor":"c","":"e","1":"one"}') as Record<string, string>
    const ref = yield* archive.put({ startSeq: 1, endSeq: 2, records: [record(1, metadata), record(2)] })
    const [first, second] = yield* archive.get(ref)
    assert.equal(Object.getPrototypeOf(first!.metadata), Object.prototype)
    assert.deepEqual(Object.entries(first!.metadata!), Object.entries(metadata))
    assert.ok(Object.hasOwn(first!.metadata!, "__proto__"))
    assert.equal(second!.metadata, undefined)
  })))

test("Archive: put refuses metadata that is not a plain object of strings", () =>
  Effect.runPromise(Effect.gen(function*() {
    const archive = yield* Archive.make(Archive.makeObjectStoreMemory())
    for (const metadata of [new Map([["a", "b"]]), new Date(0), { n: 1 }, Object.create({ a: "b" })]) {
      const error = yield* Effect.flip(archive.put({ startSeq: 1, endSeq: 1, records: [record(1, metadata)] }))
      assert.equal(error._tag, "ArchiveError")
      assert.match(error.message, /metadata/)
    }
    assert.deepEqual(yield* archive.list(), [])
  })))
