/**
 * The file Journal's frame codec: each journal owns its buffers (two codecs never share one), the
 * encode buffer it keeps is bounded, and metadata is read back exactly — also as msgpackr wrote it
 * into format-version-1 segments before the journal encoded metadata itself.
 */
import assert from "node:assert/strict"
import { test } from "node:test"
import type { JournalRecord } from "../src/Journal.ts"
import { pack } from "../src/internal/msgpack.ts"
import { decodeMetadata } from "../src/file/internal/metadataFormat.ts"
import { FrameCodec, view } from "../src/file/internal/segmentFormat.ts"

const record = (seq: number, payload: Uint8Array, metadata?: Record<string, string>): JournalRecord => ({
  seq,
  namespace: "cart",
  id: "1",
  version: seq,
  type: "A",
  timestamp: 1_000,
  payload,
  ...(metadata !== undefined ? { metadata } : {})
})

const decodeAll = (codec: FrameCodec, data: Uint8Array): Array<JournalRecord> => {
  const out: Array<JournalRecord> = []
  const dv = view(data)
  let offset = 0
  while (offset < data.length) {
    const decoded = codec.decodeFrame(data, dv, offset, data.length)
    assert.ok(decoded !== undefined, `frame at ${offset} decodes`)
    out.push(decoded)
    offset += dv.getUint32(offset, true) + 8
  }
  return out
}

test("FrameCodec: two journals' codecs share no encode buffer", () => {
  const a = new FrameCodec()
  const b = new FrameCodec()
  const first = a.encodeFrames([record(1, new Uint8Array([1, 1, 1]))])
  const copy = first.slice()
  b.encodeFrames([record(1, new Uint8Array([2, 2, 2]))])
  assert.deepEqual(first, copy, "encoding in another codec did not overwrite this one's frames")
})

test("FrameCodec: an append over 1 MiB gets a buffer of its own; the one kept stays at most 1 MiB", () => {
  const codec = new FrameCodec()
  const big = codec.encodeFrames([record(1, new Uint8Array(3 * 1024 * 1024).fill(7))])
  assert.ok(big.buffer.byteLength >= 3 * 1024 * 1024)
  const small = codec.encodeFrames([record(2, new Uint8Array(10))])
  assert.ok(small.buffer.byteLength <= 1024 * 1024, `kept ${small.buffer.byteLength} bytes`)
  assert.notEqual(small.buffer, big.buffer)
  const medium = codec.encodeFrames([record(3, new Uint8Array(900 * 1024))])
  assert.ok(medium.buffer.byteLength <= 1024 * 1024)
  assert.equal(decodeAll(codec, big)[0]!.payload.length, 3 * 1024 * 1024)
})

test("FrameCodec: metadata round-trips exactly, every header size and awkward key included", () => {
  const codec = new FrameCodec()
  const many = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, "v".repeat(i * 20)]))
  const cases: ReadonlyArray<Record<string, string>> = [
    {},
    JSON.parse('{"__proto__":"p","__proto_":"q","constructor":"c","":"","1":"one"}'),
    many,
    { long: "x".repeat(70_000), "é\u{1F600}\uFEFF": "\uFEFF\u{1F4E6}" }
  ]
  const records = cases.map((m, i) => record(i + 1, new Uint8Array([i]), m))
  const back = decodeAll(codec, codec.encodeFrames(records).slice())
  back.forEach((r, i) => {
    assert.equal(Object.getPrototypeOf(r.metadata), Object.prototype)
    assert.deepEqual(Object.entries(r.metadata!), Object.entries(cases[i]!))
  })
  assert.ok(Object.hasOwn(back[1]!.metadata!, "__proto__"))
})

test("metadataFormat: reads the maps msgpackr wrote (segments of format version 1), and refuses anything else", () => {
  const written = [{ a: "b" }, { s: "x".repeat(40), t: "y".repeat(300), u: "z".repeat(70_000) }, Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`${i}k`, `${i}`]))]
  for (const metadata of written) {
    const bytes = pack(metadata)
    assert.deepEqual(decodeMetadata(bytes, view(bytes), 0, bytes.length), metadata)
  }
  for (const other of [pack([1]), pack({ a: 1 }), pack(new Date(0)), pack({ a: { b: "c" } }), pack("s"), new Uint8Array([0x81, 0xa1, 0x61])]) {
    assert.equal(decodeMetadata(other, view(other), 0, other.length), undefined)
  }
  const trailing = new Uint8Array([...pack({ a: "b" }), 0])
  assert.equal(decodeMetadata(trailing, view(trailing), 0, trailing.length), undefined)
  const repeated = new Uint8Array([0x82, 0xa1, 0x61, 0xa1, 0x62, 0xa1, 0x61, 0xa1, 0x63])
  assert.equal(decodeMetadata(repeated, view(repeated), 0, repeated.length), undefined)
  const badUtf8 = new Uint8Array([0x81, 0xa1, 0xff, 0xa1, 0x62])
  assert.equal(decodeMetadata(badUtf8, view(badUtf8), 0, badUtf8.length), undefined)
})
