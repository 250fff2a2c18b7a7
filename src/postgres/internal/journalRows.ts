/**
 * Records as PostgreSQL rows and back. Numbers come back from `bigint` columns as strings (or
 * bigints, with a client configured so): every one is turned into a safe-integer `number`.
 * Metadata is stored as `jsonb` (queryable) with its keys in order beside it (`jsonb` sorts them),
 * so a record reads back with exactly the keys it was appended with, in the same order.
 * @internal
 */
import { Buffer } from "node:buffer"
import type { EventData, JournalRecord } from "../../Journal.ts"

/** A row of the records table as postgres.js returns it. @internal */
export interface RecordRow {
  readonly seq: unknown
  readonly namespace: string
  readonly id: string
  readonly version: unknown
  readonly type: string
  readonly timestamp: unknown
  readonly payload: Uint8Array
  readonly metadata: unknown
  readonly metadata_keys: unknown
}

/** The columns a query selects to build records. @internal */
export const RECORD_COLUMNS = "seq, namespace, id, version, type, timestamp, payload, metadata, metadata_keys"

/** A bigint column's value as a number (throws past the safe range: the journal never stores one). @internal */
export const toNumber = (value: unknown): number => {
  const number = typeof value === "number" ? value : Number(value)
  if (!Number.isSafeInteger(number)) throw new Error(`the database returned ${String(value)} where a safe integer was expected`)
  return number
}

/** Parses a JSON column that a client may return as text. */
const json = (value: unknown): unknown => typeof value === "string" ? JSON.parse(value) : value

/** The plain object of `keys` in order (`"__proto__"` an own key like any other) from `values`. */
const ordered = (keys: ReadonlyArray<string>, values: Record<string, string>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const key of keys) {
    Object.defineProperty(out, key, { value: Object.getOwnPropertyDescriptor(values, key)?.value, enumerable: true, writable: true, configurable: true })
  }
  return out
}

/** A record from its row. @internal */
export const fromRow = (row: RecordRow): JournalRecord => {
  const metadata = json(row.metadata) as Record<string, string> | null
  const record: JournalRecord = {
    seq: toNumber(row.seq),
    namespace: row.namespace,
    id: row.id,
    version: toNumber(row.version),
    type: row.type,
    timestamp: toNumber(row.timestamp),
    payload: plainBytes(row.payload)
  }
  return metadata === null || metadata === undefined
    ? record
    : { ...record, metadata: ordered(json(row.metadata_keys) as ReadonlyArray<string>, metadata) }
}

/** A plain `Uint8Array` view (Node's driver returns `Buffer`s, which compare unequal to `Uint8Array`s). */
const plainBytes = (bytes: Uint8Array): Uint8Array =>
  Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** The columns of many records, as arrays for one `INSERT … SELECT FROM unnest(…)`. @internal */
export interface RecordColumns {
  readonly seq: Array<string>
  readonly namespace: Array<string>
  readonly id: Array<string>
  readonly version: Array<string>
  readonly type: Array<string>
  readonly timestamp: Array<string>
  readonly payload: Array<string>
  readonly metadata: Array<string | null>
  readonly metadataKeys: Array<string | null>
}

/** `records` as column arrays (numbers as text, payloads as hex, metadata as JSON text). @internal */
export const toColumns = (records: ReadonlyArray<JournalRecord>): RecordColumns => {
  const columns: RecordColumns = {
    seq: [],
    namespace: [],
    id: [],
    version: [],
    type: [],
    timestamp: [],
    payload: [],
    metadata: [],
    metadataKeys: []
  }
  for (const record of records) {
    columns.seq.push(String(record.seq))
    columns.namespace.push(record.namespace)
    columns.id.push(record.id)
    columns.version.push(String(record.version))
    columns.timestamp.push(String(record.timestamp))
    pushEvent(columns, record)
  }
  return columns
}

/** The columns of events to append (the append function gives them seqs, versions and timestamps). @internal */
export type EventColumns = Pick<RecordColumns, "type" | "payload" | "metadata" | "metadataKeys">

/** Adds `event`'s type, payload (hex) and metadata (JSON text, and its keys in order) to `columns`. @internal */
export const pushEvent = (columns: EventColumns, event: EventData): void => {
  columns.type.push(event.type)
  columns.payload.push(hex(event.payload))
  columns.metadata.push(event.metadata === undefined ? null : JSON.stringify(event.metadata))
  columns.metadataKeys.push(event.metadata === undefined ? null : JSON.stringify(Object.keys(event.metadata)))
}

/** `bytes` as lowercase hex (what `decode(…, 'hex')` reads). */
const hex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")
