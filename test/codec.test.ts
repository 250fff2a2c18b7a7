import { Effect, Result, Schema } from "effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import { Codec, type Journal, type SnapshotStore } from "../src/index.ts"

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
