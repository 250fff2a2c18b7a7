/**
 * Records to and from the fields of Redis Stream entries (see `journalScripts.ts` for the layout):
 * payloads as base64, metadata as JSON (own keys exactly, `"__proto__"` included).
 *
 * @internal
 */
import { Buffer } from "node:buffer"
import type { EventData, JournalRecord } from "../../Journal.ts"
import type { Entry } from "./journalScripts.ts"
import { base64InJson, type Limits, type Size, sizeOf, sizeProblem, sum } from "./limits.ts"

/** One row of a JSON argument: short strings, then a payload (base64), then metadata (JSON, as a string); its size known before it is built. */
export interface Row {
  readonly size: Size
  readonly build: () => string
}

/** The row `[...fields, payload (base64), metadata (JSON or "")]`. */
export const payloadRow = (fields: ReadonlyArray<string>, payload: Uint8Array, metadata: Readonly<Record<string, string>> | undefined): Row => {
  const head = JSON.stringify(fields).slice(0, -1)
  const meta = JSON.stringify(metadata === undefined ? "" : JSON.stringify(metadata))
  return { size: sum([sizeOf(head), base64InJson(payload.byteLength), sizeOf(meta)], 3), build: () => `${head},"${base64(payload)}",${meta}]` }
}

/** The size of the JSON array of rows whose sizes add up to `rowsTotal`: brackets and commas added. */
export const arraySize = (rowsTotal: Size, count: number): Size => sum([rowsTotal], count === 0 ? 2 : count + 1)

/** The size of the JSON array of `rows`. */
export const rowsSize = (rows: ReadonlyArray<Row>): Size => arraySize(sum(rows.map((row) => row.size)), rows.length)

/** The JSON array of `rows`. */
export const buildRows = (rows: ReadonlyArray<Row>): string => `[${rows.map((row) => row.build()).join(",")}]`

/**
 * Events as the append script takes them, one JSON argument of `[type, payload (base64), metadata
 * (JSON or "")]` rows; or why it cannot be sent, found before it is built.
 */
export const encodeEvents = (events: ReadonlyArray<EventData>, limits: Limits): { readonly json: string } | { readonly problem: string } => {
  const rows = events.map((event) => payloadRow([event.type], event.payload, event.metadata))
  const problem = sizeProblem(`its ${events.length} event(s)`, rowsSize(rows), limits)
  return problem === undefined ? { json: buildRows(rows) } : { problem }
}

/** `bytes` as base64. */
export const base64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")

/** The fields of an entry that the layouts use (of a name given twice, the last one counts). */
interface Fields {
  n: string | undefined
  i: string | undefined
  v: string | undefined
  s: string | undefined
  t: string | undefined
  y: string | undefined
  p: string | undefined
  m: string | undefined
}

/** An entry's flat field list by name (one object of one shape: decoding runs once per record read). */
const fieldsOf = (fields: ReadonlyArray<string>): Fields => {
  const f: Fields = { n: undefined, i: undefined, v: undefined, s: undefined, t: undefined, y: undefined, p: undefined, m: undefined }
  for (let k = 0; k + 1 < fields.length; k += 2) {
    const value = fields[k + 1]!
    switch (fields[k]) {
      case "n":
        f.n = value
        break
      case "i":
        f.i = value
        break
      case "v":
        f.v = value
        break
      case "s":
        f.s = value
        break
      case "t":
        f.t = value
        break
      case "y":
        f.y = value
        break
      case "p":
        f.p = value
        break
      case "m":
        f.m = value
    }
  }
  return f
}

/** Names an entry in errors (built only when one is thrown). */
type Where = () => string

const seqOfId = (id: string): number => Number(id.slice(0, id.indexOf("-")))

const decodeMetadata = (json: string | undefined, where: Where): Record<string, string> | undefined => {
  if (json === undefined) return undefined
  const value: unknown = JSON.parse(json)
  if (typeof value !== "object" || value === null || Array.isArray(value) || Object.values(value).some((v) => typeof v !== "string")) {
    throw new Error(`${where()}: its metadata is not an object of strings`)
  }
  return value as Record<string, string>
}

const integer = (text: string | undefined, what: string, where: Where): number => {
  const n = Number(text)
  if (text === undefined || !Number.isSafeInteger(n)) throw new Error(`${where()}: its ${what} ${JSON.stringify(text)} is not a safe integer`)
  return n
}

const record = (
  seq: number,
  namespace: string,
  id: string,
  version: number,
  f: Fields,
  where: Where
): JournalRecord => {
  const type = f.y
  const payload = f.p
  if (type === undefined || payload === undefined) throw new Error(`${where()}: it has no type or payload field`)
  const metadata = decodeMetadata(f.m, where)
  return {
    seq,
    namespace,
    id,
    version,
    type,
    timestamp: integer(f.t, "timestamp", where),
    payload: new Uint8Array(Buffer.from(payload, "base64")),
    ...(metadata === undefined ? {} : { metadata })
  }
}

/** The stream, seq and version of an entry of the log; throws naming the entry if one is missing or malformed. */
const logPosition = (entryId: string, f: Fields, where: Where) => {
  if (f.n === undefined || f.i === undefined) throw new Error(`${where()}: it has no namespace or id field`)
  return { namespace: f.n, id: f.i, seq: integer(String(seqOfId(entryId)), "seq", where), version: integer(f.v, "version", where) }
}

/** A record from an entry of the log (`key` names it in errors); throws naming the entry if it is malformed. */
export const fromLogEntry = ([entryId, fields]: Entry, key: string): JournalRecord => {
  const where = () => `entry ${entryId} of ${key}`
  const f = fieldsOf(fields)
  const { id, namespace, seq, version } = logPosition(entryId, f, where)
  return record(seq, namespace, id, version, f, where)
}

/** A record from an entry of one stream's copy. */
export const fromStreamEntry = ([entryId, fields]: Entry, namespace: string, id: string, key: string): JournalRecord => {
  const where = () => `entry ${entryId} of ${key}`
  const f = fieldsOf(fields)
  return record(integer(f.s, "seq", where), namespace, id, integer(String(seqOfId(entryId)), "version", where), f, where)
}

/**
 * What trimming a batch of log entries removes: the log through the batch's last seq, and each
 * stream's copy (key from `copyOf`) through its last version in the batch. Throws naming a malformed
 * entry.
 */
export const trimOf = (
  entries: ReadonlyArray<Entry>,
  key: string,
  copyOf: (namespace: string, id: string) => string
): { readonly through: number; readonly copies: ReadonlyArray<readonly [string, number]> } => {
  const copies = new Map<string, number>()
  let through = 0
  for (const [entryId, fields] of entries) {
    const { id, namespace, seq, version } = logPosition(entryId, fieldsOf(fields), () => `entry ${entryId} of ${key}`)
    copies.set(copyOf(namespace, id), version)
    through = seq
  }
  return { through, copies: [...copies] }
}
