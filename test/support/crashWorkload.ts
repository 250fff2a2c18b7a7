/**
 * The workload of the SIGKILL crash test, shared by the child that appends it (`appendChild.ts`)
 * and the parent that checks what survived: the streams, the event stored at each version (so
 * every record read back can be checked byte for byte) and the `ack` line format.
 */
import type { EventData, JournalRecord, StreamRef } from "../../src/Journal.ts"

/** The streams the child appends to; stream `i` belongs to fiber `i % fibers`. */
export const crashStreams: ReadonlyArray<StreamRef> = [
  { namespace: "account", id: "a" },
  { namespace: "account", id: "b" },
  { namespace: "cart", id: "c" },
  { namespace: "cart", id: "d" },
  { namespace: "order", id: "e" },
  { namespace: "order", id: "f" },
  { namespace: "account", id: "g" }
]

const encoder = new TextEncoder()

/** The payload of `stream` at `version`: 10 to 200 bytes, different for every (stream, version). */
export const crashPayload = (stream: StreamRef, version: number): Uint8Array =>
  encoder.encode(`${stream.namespace}/${stream.id}#${version};`.repeat(1 + ((version * 7) % 13)))

export const crashType = (version: number): string => `Event${version % 3}`

export const crashMetadata = (stream: StreamRef, version: number): Record<string, string> | undefined =>
  version % 4 === 0 ? { version: String(version), stream: stream.id } : undefined

/** The event `stream` gets at `version`. */
export const crashEvent = (stream: StreamRef, version: number): EventData => {
  const metadata = crashMetadata(stream, version)
  return { type: crashType(version), payload: crashPayload(stream, version), ...(metadata !== undefined ? { metadata } : {}) }
}

/** Why `record` is not the event its stream gets at its version, or undefined when it is. */
export const crashRecordProblem = (record: JournalRecord): string | undefined => {
  const stream = { namespace: record.namespace, id: record.id }
  const what = `seq ${record.seq} (${record.namespace}/${record.id} v${record.version})`
  if (record.type !== crashType(record.version)) return `${what} has type ${record.type}`
  const payload = crashPayload(stream, record.version)
  if (record.payload.length !== payload.length || record.payload.some((b, i) => b !== payload[i])) {
    return `${what} has a different payload`
  }
  if (JSON.stringify(record.metadata ?? null) !== JSON.stringify(crashMetadata(stream, record.version) ?? null)) {
    return `${what} has metadata ${JSON.stringify(record.metadata)}`
  }
  return undefined
}

/** One acknowledged append, as the child prints it. */
export interface CrashAck {
  readonly firstSeq: number
  readonly lastSeq: number
  readonly namespace: string
  readonly id: string
  readonly version: number
}

export const formatAck = (ack: CrashAck): string =>
  `ack ${ack.firstSeq} ${ack.lastSeq} ${ack.namespace} ${ack.id} ${ack.version}\n`

/** Parses one complete `ack` line, or undefined for anything else. */
export const parseAck = (line: string): CrashAck | undefined => {
  const match = /^ack (\d+) (\d+) (\S+) (\S+) (\d+)$/.exec(line)
  if (match === null) return undefined
  return {
    firstSeq: Number(match[1]),
    lastSeq: Number(match[2]),
    namespace: match[3]!,
    id: match[4]!,
    version: Number(match[5])
  }
}
