/**
 * Journal records as lines of text: the readable form of `dump`, `read` and `tail` (the payload
 * decoded from msgpack to JSON), and the exact form of `export`/`import` (the payload's bytes in
 * base64, every field kept, keys in a fixed order, so an export → import → export round-trips byte
 * for byte).
 * @internal
 */
import { Buffer } from "node:buffer"
import type { JournalRecord } from "../../Journal.ts"
import { unpack } from "../../internal/msgpack.ts"

/** Bytes as base64. @internal */
export const toBase64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")

/** A decoded msgpack value as JSON: bytes as `{ "$bytes": base64 }`, maps as objects, bigints as strings. @internal */
export const toJson = (value: unknown): unknown => {
  if (value instanceof Uint8Array) return { $bytes: toBase64(value) }
  if (typeof value === "bigint") return value.toString()
  if (value instanceof Date) return value.toISOString()
  if (value === undefined) return null
  if (Array.isArray(value)) return value.map(toJson)
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), toJson(v)]))
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]))
  }
  return value
}

/**
 * A value as one line of JSON: U+2028 and U+2029, which JSON leaves as they are but some line readers
 * take for line ends, escaped. @internal
 */
export const jsonLine = (value: unknown): string => JSON.stringify(value).replace(/[\u2028\u2029]/g, (c) => c === "\u2028" ? "\\u2028" : "\\u2029")

/** The fields every line form starts with, in this order. */
const head = (record: JournalRecord) => ({
  seq: record.seq,
  namespace: record.namespace,
  id: record.id,
  version: record.version,
  type: record.type,
  timestamp: record.timestamp
})

/**
 * The readable form: the payload decoded from msgpack (`payload`), or, when it is not msgpack, its
 * bytes (`payloadBase64`); the time also as ISO 8601. @internal
 */
export const readable = (record: JournalRecord): Record<string, unknown> => {
  let payload: Record<string, unknown>
  try {
    payload = { payload: toJson(unpack(record.payload)) }
  } catch {
    payload = { payloadBase64: toBase64(record.payload) }
  }
  return {
    ...head(record),
    time: new Date(record.timestamp).toISOString(),
    ...payload,
    ...(record.metadata !== undefined ? { metadata: record.metadata } : {})
  }
}

/** The export line of a record (no newline). @internal */
export const exportLine = (record: JournalRecord): string =>
  jsonLine({
    ...head(record),
    payload: toBase64(record.payload),
    ...(record.metadata !== undefined ? { metadata: record.metadata } : {})
  })

const FIELDS = new Set(["seq", "namespace", "id", "version", "type", "timestamp", "payload", "metadata"])

const isInteger = (value: unknown, min: number): value is number => Number.isSafeInteger(value) && (value as number) >= min

/** Parses an export line, or says what is wrong with it. @internal */
export const parseExportLine = (line: string): JournalRecord | string => {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch (error) {
    return `not JSON (${(error as Error).message})`
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "not a JSON object"
  const o = value as Record<string, unknown>
  const unknown = Object.keys(o).find((key) => !FIELDS.has(key))
  if (unknown !== undefined) return `unknown field ${JSON.stringify(unknown)}`
  if (!isInteger(o.seq, 1)) return "seq is not an integer ≥ 1"
  if (typeof o.namespace !== "string" || typeof o.id !== "string") return "namespace or id is not a string"
  if (!isInteger(o.version, 1)) return "version is not an integer ≥ 1"
  if (typeof o.type !== "string") return "type is not a string"
  if (!isInteger(o.timestamp, 0)) return "timestamp is not an integer ≥ 0"
  if (typeof o.payload !== "string" || o.payload.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(o.payload)) return "payload is not base64"
  const metadata = o.metadata
  if (
    metadata !== undefined &&
    (typeof metadata !== "object" || metadata === null || Array.isArray(metadata) ||
      Object.values(metadata).some((v) => typeof v !== "string"))
  ) return "metadata is not an object of strings"
  const bytes = Buffer.from(o.payload, "base64")
  return {
    seq: o.seq,
    namespace: o.namespace,
    id: o.id,
    version: o.version,
    type: o.type,
    timestamp: o.timestamp,
    payload: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    ...(metadata !== undefined ? { metadata: metadata as Record<string, string> } : {})
  }
}
