/**
 * The messages of the NATS journal's JetStream stream. Every message carries the journal's
 * position after it, so the last message of the stream says where the journal stands, and each
 * step (an append, a marker, a checkpoint) moves it by compare-and-set on the stream's last
 * sequence (`journalChain.ts`):
 *
 * - an append (or a restored run) on the subject of its annals stream: the stream's name, its
 *   version after the message, and the records, each with its seq, version and timestamp;
 * - a marker on the subject of an annals stream: its version and no records (written before a
 *   truncation removes the stream's last message, so its version survives);
 * - a position message on the meta subject: a checkpoint or truncation, no stream.
 *
 * Body: msgpack `["annals.nats.journal", 1, [lastSeq, lastTimestamp, checkpoint, truncatedBefore,
 * removedBefore], namespace | null, id | null, version | null, [[seq, version, timestamp, type,
 * payload, metadata JSON | null], …], blob | null]`. An append too large for one message (the
 * server's `max_payload`) keeps its payloads, one after the other, in the object `blob` of the
 * journal's payload store, and each record's payload field is then its length. The header
 * `Annals-Last-Seq` repeats `lastSeq` for watchers that read headers only.
 *
 * @internal
 */
import type { JournalRecord } from "../../Journal.ts"
import { pack, unpack } from "../../internal/msgpack.ts"
import { metadataProblem } from "../../internal/validate.ts"

const FORMAT = "annals.nats.journal"
const FORMAT_VERSION = 1

/** The header that repeats a message's `lastSeq`. */
export const LAST_SEQ_HEADER = "Annals-Last-Seq"

/** Where the journal stands after a message (the fields every layer keeps). */
export interface Position {
  readonly lastSeq: number
  readonly lastTimestamp: number
  readonly checkpoint: number
  readonly truncatedBefore: number
  readonly removedBefore: number
}

/** The position of an empty journal. */
export const EMPTY: Position = { lastSeq: 0, lastTimestamp: 0, checkpoint: 0, truncatedBefore: 0, removedBefore: 0 }

/** A message of the journal's stream, decoded. */
export interface JournalMessage {
  readonly position: Position
  /** The annals stream of an append or marker, with its version after the message. */
  readonly stream?: { readonly namespace: string; readonly id: string; readonly version: number } | undefined
  readonly records: ReadonlyArray<JournalRecord>
  /** The object holding the records' payloads, in order (the records then carry empty payloads until filled). */
  readonly blob?: { readonly name: string; readonly lengths: ReadonlyArray<number> } | undefined
}

/** The body of `message`; with `blob`, the payloads are left out (they are in the object). */
export const encodeMessage = (message: JournalMessage): Uint8Array => {
  const { position: p, stream } = message
  return pack([
    FORMAT,
    FORMAT_VERSION,
    [p.lastSeq, p.lastTimestamp, p.checkpoint, p.truncatedBefore, p.removedBefore],
    stream?.namespace ?? null,
    stream?.id ?? null,
    stream?.version ?? null,
    message.records.map((r) => [
      r.seq,
      r.version,
      r.timestamp,
      r.type,
      message.blob === undefined ? r.payload : r.payload.byteLength,
      r.metadata === undefined ? null : JSON.stringify(r.metadata)
    ]),
    message.blob?.name ?? null
  ])
}

const isInteger = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0

/** The message a body holds, or a sentence naming what is wrong with it. */
export const decodeMessage = (data: Uint8Array): JournalMessage | string => {
  let value: unknown
  try {
    value = unpack(data)
  } catch (cause) {
    return `it is not msgpack (${cause instanceof Error ? cause.message : String(cause)})`
  }
  if (!Array.isArray(value) || value.length !== 8 || value[0] !== FORMAT) return "it is not an annals journal message"
  if (value[1] !== FORMAT_VERSION) return `its format version ${String(value[1])} is not supported`
  const [, , p, namespace, id, version, rows, blob] = value as Array<unknown>
  if (blob !== null && typeof blob !== "string") return "its blob is not an object name"
  if (!Array.isArray(p) || p.length !== 5 || !p.every(isInteger)) return "its position is not five safe integers"
  const position: Position = { lastSeq: p[0], lastTimestamp: p[1], checkpoint: p[2], truncatedBefore: p[3], removedBefore: p[4] }
  if (!Array.isArray(rows)) return "its records are not a list"
  const hasStream = typeof namespace === "string" && typeof id === "string" && isInteger(version)
  if (!hasStream && (namespace !== null || id !== null || version !== null)) return "its stream is not a namespace, an id and a version"
  if (!hasStream && rows.length > 0) return "it has records but no stream"
  const records: Array<JournalRecord> = []
  const lengths: Array<number> = []
  const slab = payloadSlab(rows)
  let slabUsed = 0
  for (const row of rows as Array<unknown>) {
    if (!Array.isArray(row) || row.length !== 6) return "a record is not [seq, version, timestamp, type, payload, metadata]"
    const [seq, v, timestamp, type, payload, json] = row as Array<unknown>
    const payloadOk = blob === null ? payload instanceof Uint8Array : isInteger(payload)
    if (!isInteger(seq) || !isInteger(v) || !isInteger(timestamp) || typeof type !== "string" || !payloadOk) {
      return `record ${JSON.stringify(seq)} has a malformed seq, version, timestamp, type or payload`
    }
    let metadata: Record<string, string> | undefined
    if (json !== null) {
      try {
        metadata = typeof json === "string" ? JSON.parse(json) : undefined
      } catch {
        metadata = undefined
      }
      if (metadata === undefined || metadataProblem(metadata) !== undefined) return `record ${seq} has malformed metadata`
    }
    records.push({
      seq,
      namespace: namespace as string,
      id: id as string,
      version: v,
      type,
      timestamp,
      payload: payload instanceof Uint8Array ? copyInto(slab, slabUsed, payload) : new Uint8Array(0),
      ...(metadata === undefined ? {} : { metadata })
    })
    if (payload instanceof Uint8Array) slabUsed += payload.byteLength
    else lengths.push(payload as number)
  }
  return {
    position,
    ...(hasStream ? { stream: { namespace: namespace as string, id: id as string, version: version as number } } : {}),
    records,
    ...(typeof blob === "string" ? { blob: { name: blob, lengths } } : {})
  }
}

/**
 * One buffer for the inline payloads of a message's rows, each record's payload a view of it: one
 * allocation per message instead of one per record (a payload kept by the caller pins its
 * message's payloads, never the message's bytes, which may be a view of the client's read buffer).
 */
const payloadSlab = (rows: ReadonlyArray<unknown>): Uint8Array => {
  let total = 0
  for (const row of rows) {
    const payload = Array.isArray(row) ? row[4] : undefined
    if (payload instanceof Uint8Array) total += payload.byteLength
  }
  return new Uint8Array(total)
}

/** `payload` copied into `slab` at `at`: the view of the copy (a plain `Uint8Array`, never a Node `Buffer`). */
const copyInto = (slab: Uint8Array, at: number, payload: Uint8Array): Uint8Array => {
  const copy = slab.subarray(at, at + payload.byteLength)
  copy.set(payload)
  return copy
}

/**
 * The records of a message with a blob, their payloads views of the blob's bytes `data` (which the
 * caller hands over: the object's own buffer, one allocation for all of them); a sentence when they
 * do not add up.
 */
export const withPayloads = (message: JournalMessage, data: Uint8Array): ReadonlyArray<JournalRecord> | string => {
  const lengths = message.blob?.lengths ?? []
  const total = lengths.reduce((sum, n) => sum + n, 0)
  if (total !== data.byteLength) return `its payloads add up to ${total} bytes, but the object ${message.blob?.name} holds ${data.byteLength}`
  let at = 0
  return message.records.map((record, i) => {
    const payload = data.subarray(at, at + lengths[i]!)
    at += lengths[i]!
    return { ...record, payload }
  })
}
