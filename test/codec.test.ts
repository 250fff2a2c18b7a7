import { Effect, Result, Schema } from "effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import { Codec, type Journal, type SnapshotStore } from "../src/index.ts"
import * as Msgpack from "../src/internal/msgpack.ts"

const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Finite })
const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Finite })
const AccountEvent = Schema.Union([Deposited, Withdrawn])
type AccountEvent = typeof AccountEvent.Type

const AccountState = Schema.Struct({
  owner: Schema.String,
  balance: Schema.Finite,
  history: Schema.Array(Schema.Finite),
  closed: Schema.Boolean
})
type AccountState = typeof AccountState.Type

const events = Codec.make(AccountEvent)
const states = Codec.make(AccountState)
const account = { namespace: "account", id: "alice" }

/** A journal record of `account` holding `payload`, at version 3 and seq 17. */
const record = (type: string, payload: Uint8Array): Journal.JournalRecord => ({
  seq: 17,
  namespace: account.namespace,
  id: account.id,
  version: 3,
  type,
  timestamp: 1_000,
  payload
})

/** A snapshot of `account` holding `state`, at version 4 and seq 40. */
const snapshot = (state: Uint8Array): SnapshotStore.Snapshot => ({
  namespace: account.namespace,
  id: account.id,
  version: 4,
  seq: 40,
  timestamp: 2_000,
  schemaVersion: 1,
  state
})

const failure = <A>(result: Result.Result<A, Codec.CodecError>): Codec.CodecError => {
  assert.ok(Result.isFailure(result), "expected a CodecError, but decoding succeeded")
  assert.ok(result.failure instanceof Codec.CodecError)
  assert.equal(result.failure._tag, "CodecError")
  return result.failure
}

const success = <A>(result: Result.Result<A, unknown>): A => {
  assert.ok(Result.isSuccess(result), Result.isFailure(result) ? `expected a success, got ${String(result.failure)}` : "")
  return result.success
}

/** Asserts a decodeEvent error of `record(type, …)`: every field, and a message naming stream, version and seq. */
const assertDecodeEventError = (error: Codec.CodecError, type: string, ...mentions: ReadonlyArray<string>) => {
  assert.equal(error.method, "decodeEvent")
  assert.deepEqual(
    { namespace: error.namespace, id: error.id, version: error.version, seq: error.seq, type: error.type },
    { namespace: "account", id: "alice", version: 3, seq: 17, type }
  )
  assert.notEqual(error.cause, undefined)
  for (const mention of ["account/alice", "version 3", "seq 17", ...mentions]) {
    assert.ok(error.message.includes(mention), `the message "${error.message}" should mention "${mention}"`)
  }
}

const encodeAll = (stream: Journal.StreamRef, batch: ReadonlyArray<AccountEvent>) =>
  Effect.runPromise(Effect.result(Codec.encodeEvents(events, stream, batch)))

test("Codec: encodeEvents gives each record the event's _tag as type; decodeRecord gives the event back", async () => {
  const batch: ReadonlyArray<AccountEvent> = [
    { _tag: "Deposited", amount: 100 },
    { _tag: "Withdrawn", amount: 30.5 },
    { _tag: "Deposited", amount: -0.25 }
  ]
  const encoded = await Effect.runPromise(Codec.encodeEvents(events, account, batch))
  assert.deepEqual(encoded.map((e) => e.type), ["Deposited", "Withdrawn", "Deposited"])
  for (const [i, data] of encoded.entries()) {
    assert.equal(Object.getPrototypeOf(data.payload), Uint8Array.prototype, "payloads must be plain Uint8Arrays")
    assert.equal(data.metadata, undefined)
    assert.deepEqual(success(Codec.decodeRecord(events, record(data.type, data.payload))), batch[i])
  }
  assert.notDeepEqual(encoded[0]!.payload, encoded[1]!.payload)
  assert.deepEqual(await Effect.runPromise(Codec.encodeEvents(events, account, [])), [])
})

test("Codec: a payload that is not msgpack fails with a decodeEvent CodecError naming stream, version and seq", () => {
  const valid = success(events.encode({ _tag: "Deposited", amount: 1 }))
  const notMsgpack = [
    new Uint8Array([0x92, 0x01]), // an array of two with one element: truncated
    new Uint8Array(0), // nothing at all
    new Uint8Array([...valid, 0x00]), // a valid event followed by a stray byte
    new TextEncoder().encode("{\"_tag\":\"Deposited\",\"amount\":1}") // JSON, not msgpack
  ]
  for (const payload of notMsgpack) {
    assertDecodeEventError(failure(Codec.decodeRecord(events, record("Deposited", payload))), "Deposited")
  }
})

test("Codec: msgpack that does not match the schema fails with a decodeEvent CodecError", () => {
  const loose = Codec.make(Schema.Unknown)
  const payload = (value: unknown) => success(loose.encode(value))
  const mismatches: ReadonlyArray<[unknown, string]> = [
    [{ _tag: "Deposited", amount: "ten" }, "amount"],
    [{ _tag: "Deposited" }, "amount"],
    [{ _tag: "Refunded", amount: 1 }, "Refunded"],
    [{ amount: 1 }, "_tag"],
    [42, "42"],
    [null, "null"]
  ]
  for (const [value, mention] of mismatches) {
    const error = failure(Codec.decodeRecord(events, record("Deposited", payload(value))))
    assertDecodeEventError(error, "Deposited")
    const prefix = "Cannot decode event of stream account/alice"
    assert.ok(error.message.length > prefix.length, `${mention}: the cause should be in the message "${error.message}"`)
  }
})

test("Codec: a payload whose _tag differs from the record's type fails with a decodeEvent CodecError", () => {
  const deposited = success(events.encode({ _tag: "Deposited", amount: 5 }))
  const error = failure(Codec.decodeRecord(events, record("Withdrawn", deposited)))
  assertDecodeEventError(error, "Withdrawn", "Deposited", "Withdrawn")
  // with the right type the same payload decodes
  assert.deepEqual(success(Codec.decodeRecord(events, record("Deposited", deposited))), { _tag: "Deposited", amount: 5 })
})

test("Codec: encodeState and decodeSnapshot round-trip a state", () => {
  const state: AccountState = { owner: "alice", balance: 74.5, history: [100, -30.5, 5], closed: false }
  const bytes = success(Codec.encodeState(states, account, 4, state))
  assert.equal(Object.getPrototypeOf(bytes), Uint8Array.prototype, "the state must be a plain Uint8Array")
  assert.deepEqual(success(Codec.decodeSnapshot(states, snapshot(bytes))), state)
  const empty: AccountState = { owner: "", balance: 0, history: [], closed: true }
  assert.deepEqual(success(Codec.decodeSnapshot(states, snapshot(success(Codec.encodeState(states, account, 1, empty))))), empty)
})

test("Codec: a corrupt or mismatched snapshot state fails with a decodeState CodecError naming stream, version and seq", () => {
  const good = success(Codec.encodeState(states, account, 4, { owner: "a", balance: 1, history: [], closed: false }))
  const loose = Codec.make(Schema.Unknown)
  const corrupt = [
    new Uint8Array([0x92, 0x01]),
    new Uint8Array(0),
    good.slice(0, good.length - 1),
    success(loose.encode({ owner: 1, balance: 1, history: [], closed: false }))
  ]
  for (const state of corrupt) {
    const error = failure(Codec.decodeSnapshot(states, snapshot(state)))
    assert.equal(error.method, "decodeState")
    assert.deepEqual(
      { namespace: error.namespace, id: error.id, version: error.version, seq: error.seq },
      { namespace: "account", id: "alice", version: 4, seq: 40 }
    )
    assert.notEqual(error.cause, undefined)
    for (const mention of ["state", "account/alice", "version 4", "seq 40"]) {
      assert.ok(error.message.includes(mention), `the message "${error.message}" should mention "${mention}"`)
    }
  }
})

test("Codec: an event the schema rejects fails the whole batch with an encodeEvent CodecError", async () => {
  const result = await encodeAll({ namespace: "account", id: "bob" }, [
    { _tag: "Deposited", amount: 1 },
    { _tag: "Withdrawn", amount: Number.NaN }
  ])
  assert.ok(Result.isFailure(result), "expected an encodeEvent CodecError")
  const error = result.failure
  assert.ok(error instanceof Codec.CodecError)
  assert.equal(error.method, "encodeEvent")
  assert.deepEqual(
    { namespace: error.namespace, id: error.id, type: error.type },
    { namespace: "account", id: "bob", type: "Withdrawn" }
  )
  assert.notEqual(error.cause, undefined)
  for (const mention of ["encode event", "account/bob", "Withdrawn"]) {
    assert.ok(error.message.includes(mention), `the message "${error.message}" should mention "${mention}"`)
  }
  // a value of the wrong shape altogether (cast past the types)
  const wrong = await encodeAll(account, [{ _tag: "Deposited", amount: "ten" } as unknown as AccountEvent])
  assert.ok(Result.isFailure(wrong))
  assert.equal(wrong.failure.method, "encodeEvent")
  assert.equal(wrong.failure.type, "Deposited")
  // the error is a yieldable failure in an Effect (and a literal batch is typed by the codec, no annotation needed)
  const flipped = await Effect.runPromise(
    Effect.flip(Codec.encodeEvents(events, account, [{ _tag: "Deposited", amount: Infinity }]))
  )
  assert.equal(flipped._tag, "CodecError")
  assert.equal(flipped.method, "encodeEvent")
})

test("Codec: encoding a state the schema rejects fails with an encodeState CodecError", () => {
  const error = failure(
    Codec.encodeState(states, account, 6, { owner: "alice", balance: Number.NaN, history: [], closed: false })
  )
  assert.equal(error.method, "encodeState")
  assert.deepEqual(
    { namespace: error.namespace, id: error.id, version: error.version },
    { namespace: "account", id: "alice", version: 6 }
  )
  for (const mention of ["encode state", "account/alice", "version 6"]) {
    assert.ok(error.message.includes(mention), `the message "${error.message}" should mention "${mention}"`)
  }
})

test("Codec: binary data inside a state decodes as a plain Uint8Array", () => {
  const codec = Codec.make(Schema.Struct({ blob: Schema.Uint8Array }))
  const blob = new Uint8Array([0, 1, 2, 255])
  const bytes = success(Codec.encodeState(codec, account, 1, { blob }))
  const decoded = success(Codec.decodeSnapshot(codec, snapshot(bytes)))
  assert.deepEqual(Array.from(decoded.blob), [0, 1, 2, 255])
  assert.equal(Object.getPrototypeOf(decoded.blob), Uint8Array.prototype, "no Node Buffer may leak out of a codec")
})

// ─── The compiled decoder (issue 17) ───────────────────────────────────────────────────────────────
// `Codec.make` compiles its Schema (Effect's SchemaJITCompiler). A structurally equal Schema built
// separately is never compiled: Effect's interpreter decodes it, as annals did before, and the two
// must agree on every input — the same value out, or the same issue.

/** Schemas of many kinds, each built fresh by its factory (so one copy can stay interpreted). */
const shapes: ReadonlyArray<readonly [string, () => Schema.Codec<any, any>]> = [
  ["a tagged struct of a string and numbers", () => Schema.TaggedStruct("ItemAdded", { sku: Schema.String, qty: Schema.Number, price: Schema.Number })],
  ["a union of tagged structs with Int and optional fields", () =>
    Schema.Union([
      Schema.TaggedStruct("Credited", { amount: Schema.Int }),
      Schema.TaggedStruct("Debited", { amount: Schema.Int, note: Schema.optional(Schema.String) }),
      Schema.TaggedStruct("Closed", { reason: Schema.optionalKey(Schema.Literals(["fraud", "request"])) })
    ])],
  ["a struct with nested arrays, records, nulls and checks", () =>
    Schema.Struct({
      owner: Schema.String.check(Schema.isMinLength(1)),
      lines: Schema.Array(Schema.Struct({ sku: Schema.String, qty: Schema.Int.check(Schema.isGreaterThan(0)) })),
      tags: Schema.Record(Schema.String, Schema.Boolean),
      parent: Schema.NullOr(Schema.String),
      score: Schema.Finite
    })],
  ["a struct with transformations (renamed key, decoding default, finite number from string)", () =>
    Schema.Struct({
      sku: Schema.String,
      qty: Schema.FiniteFromString,
      price: Schema.Number.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0)))
    }).pipe(Schema.encodeKeys({ sku: "code" }))]
]

/** A small seeded generator (xorshift32), so that every run tries the same inputs. */
const random = (seed: number) => () => {
  seed ^= seed << 13
  seed ^= seed >>> 17
  seed ^= seed << 5
  return (seed >>> 0) / 0x1_0000_0000
}

/** Values of every kind msgpack carries, good and bad for the shapes above. */
const anyValue = (next: () => number, depth = 0): unknown => {
  const leaves: ReadonlyArray<() => unknown> = [
    () => Math.floor(next() * 200) - 100,
    () => next() * 100,
    () => [Number.NaN, Infinity, -Infinity, -0, 2 ** 53][Math.floor(next() * 5)],
    () => ["", "sku-1", "ItemAdded", "Credited", "Debited", "Closed", "fraud", "request", "12", "x".repeat(40), "é🙂"][Math.floor(next() * 11)],
    () => next() < 0.5,
    () => null,
    () => new Uint8Array([1, 2, 3])
  ]
  if (depth < 2 && next() < 0.3) {
    if (next() < 0.3) return Array.from({ length: Math.floor(next() * 3) }, () => anyValue(next, depth + 1))
    return objectOf(next, depth + 1)
  }
  return leaves[Math.floor(next() * leaves.length)]!()
}

const KEYS = ["_tag", "sku", "code", "qty", "price", "amount", "note", "reason", "owner", "lines", "tags", "parent", "score", "extra"]

/** An object with some of the keys the shapes use (and some they do not), with values of any kind. */
const objectOf = (next: () => number, depth = 0): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const key of KEYS) if (next() < 0.45) out[key] = anyValue(next, depth + 1)
  return out
}

/** A value the shape's Schema accepts, or nearly: a valid value with one field changed, dropped or added. */
const nearValue = (name: string, next: () => number): unknown => {
  const valid: Record<string, unknown> = name.startsWith("a tagged struct")
    ? { _tag: "ItemAdded", sku: "sku-7", qty: 3, price: 9.99 }
    : name.startsWith("a union")
    ? [{ _tag: "Credited", amount: 10 }, { _tag: "Debited", amount: 5, note: "fee" }, { _tag: "Debited", amount: 5 }, { _tag: "Closed" }, {
      _tag: "Closed",
      reason: "fraud"
    }][Math.floor(next() * 5)]!
    : name.startsWith("a struct with nested")
    ? { owner: "ann", lines: [{ sku: "a", qty: 2 }], tags: { vip: true }, parent: null, score: 1.5 }
    : { code: "sku-9", qty: "4", ...(next() < 0.5 ? { price: 2.5 } : {}) }
  const keys = Object.keys(valid)
  const copy = { ...valid }
  const roll = next()
  if (roll < 0.25) return copy
  if (roll < 0.5) copy[keys[Math.floor(next() * keys.length)]!] = anyValue(next)
  else if (roll < 0.7) delete copy[keys[Math.floor(next() * keys.length)]!]
  else copy[KEYS[Math.floor(next() * KEYS.length)]!] = anyValue(next)
  return copy
}

test("Codec: the compiled decoder agrees with Effect's interpreter on valid, invalid and excess input, for every kind of Schema", () => {
  const loose = Codec.make(Schema.Unknown)
  for (const [name, build] of shapes) {
    const compiled = Codec.make(build())
    const interpreted = Schema.decodeUnknownResult(build())
    const next = random(0x9e3779b9)
    let accepted = 0
    let rejected = 0
    for (let i = 0; i < 1_500; i++) {
      const input = i % 3 === 0 ? objectOf(next) : i % 3 === 1 ? nearValue(name, next) : anyValue(next)
      const bytes = success(loose.encode(input))
      const expected = interpreted(Msgpack.unpack(bytes))
      const actual = compiled.decode(bytes)
      if (Result.isSuccess(expected)) {
        accepted++
        assert.deepStrictEqual(success(actual), expected.success, `${name}: input ${i} ${JSON.stringify(input)}`)
      } else {
        rejected++
        assert.ok(Result.isFailure(actual), `${name}: input ${i} ${JSON.stringify(input)} decoded, the interpreter rejects it`)
        assert.equal(String(actual.failure), String(expected.failure), `${name}: input ${i}`)
      }
    }
    // The generator must exercise both sides of every shape, or the comparison shows little.
    assert.ok(accepted >= 100 && rejected >= 100, `${name}: ${accepted} accepted and ${rejected} rejected inputs`)
  }
})

test("Codec: the compiled encoder agrees with Effect's interpreter (the same bytes, or the same issue)", () => {
  for (const [name, build] of shapes) {
    const compiled = Codec.make(build())
    const reference = build()
    const decode = Schema.decodeUnknownResult(reference)
    const encode = Schema.encodeUnknownResult(reference)
    const next = random(0x2545f491)
    let encoded = 0
    for (let i = 0; i < 600; i++) {
      // Decoded values of near-valid inputs, and arbitrary objects the encoder must refuse.
      const decoded = decode(nearValue(name, next))
      const value = Result.isSuccess(decoded) && i % 4 !== 0 ? decoded.success : objectOf(next)
      const expected = encode(value)
      const actual = compiled.encode(value)
      if (Result.isSuccess(expected)) {
        encoded++
        assert.deepEqual(Array.from(success(actual)), Array.from(Msgpack.pack(expected.success)), `${name}: value ${i}`)
      } else {
        assert.ok(Result.isFailure(actual), `${name}: value ${i} encoded, the interpreter refuses it`)
        assert.equal(String(actual.failure), String(expected.failure), `${name}: value ${i}`)
      }
    }
    assert.ok(encoded >= 100, `${name}: only ${encoded} values encoded`)
  }
})

test("Codec: events an older Schema wrote decode through the new Schema's transformations; a bad one names stream, version and seq", () => {
  // v1 stored { _tag, code, qty } with qty as a string; v2 calls the key sku, decodes qty to a
  // number and defaults the price it added.
  const v1 = Codec.make(Schema.TaggedStruct("ItemAdded", { code: Schema.String, qty: Schema.String }))
  const v2 = Codec.make(
    Schema.TaggedStruct("ItemAdded", {
      sku: Schema.String,
      qty: Schema.FiniteFromString,
      price: Schema.Number.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0)))
    }).pipe(Schema.encodeKeys({ sku: "code" }))
  )
  const old = success(v1.encode({ _tag: "ItemAdded", code: "sku-1", qty: "3" }))
  assert.deepEqual(success(Codec.decodeRecord(v2, record("ItemAdded", old))), { _tag: "ItemAdded", sku: "sku-1", qty: 3, price: 0 })
  const now = success(v2.encode({ _tag: "ItemAdded", sku: "sku-2", qty: 4, price: 1.5 }))
  assert.deepEqual(Msgpack.unpack(now), { _tag: "ItemAdded", code: "sku-2", qty: "4", price: 1.5 })
  assert.deepEqual(success(Codec.decodeRecord(v2, record("ItemAdded", now))), { _tag: "ItemAdded", sku: "sku-2", qty: 4, price: 1.5 })
  const bad = success(v1.encode({ _tag: "ItemAdded", code: "sku-3", qty: "three" }))
  assertDecodeEventError(failure(Codec.decodeRecord(v2, record("ItemAdded", bad))), "ItemAdded", "qty")
})

test("Codec: a crafted payload that reads past its end finds nothing of the payload decoded before it", () => {
  // msgpackr's bundled-strings extension (fixext4 type 0x62) moves the read position back after the
  // main value, so a str8/bin8 that runs past the payload's end is not caught; the codec decodes
  // from a buffer of its own, which must not still hold the previous payload's bytes.
  const Note = Codec.make(Schema.Struct({ _tag: Schema.Literal("Note"), text: Schema.String, blob: Schema.optional(Schema.Uint8Array) }))
  const utf8 = (text: string) => {
    const bytes = new TextEncoder().encode(text)
    return [0xa0 | bytes.length, ...bytes]
  }
  const crafted = (key: "text" | "blob"): Uint8Array => {
    const main = key === "text"
      ? [0x82, ...utf8("_tag"), ...utf8("Note"), ...utf8("text"), 0xd9, 200]
      : [0x83, ...utf8("_tag"), ...utf8("Note"), ...utf8("text"), ...utf8("t"), ...utf8("blob"), 0xc4, 200]
    const size = main.length + 4
    return new Uint8Array([0xd6, 0x62, (size >>> 24) & 255, (size >>> 16) & 255, (size >>> 8) & 255, size & 255, ...main, 0xa0, 0xa0])
  }
  const secret = success(Note.encode({ _tag: "Note", text: "SECRET of another stream ".repeat(10) }))
  for (const key of ["text", "blob"] as const) {
    success(Note.decode(secret))
    const decoded = Note.decode(crafted(key))
    const shown = Result.isSuccess(decoded) ? new TextDecoder().decode(key === "text" ? new TextEncoder().encode(decoded.success.text) : decoded.success.blob ?? new Uint8Array(0)) : ""
    assert.ok(!shown.includes("SECRET"), `${key}: the crafted payload decoded to ${JSON.stringify(shown)}`)
  }
})
