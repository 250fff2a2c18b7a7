/**
 * Which records a projection reads and how their payloads decode: one event codec per namespace,
 * from the aggregates it names or from the event Schemas it is given.
 * @internal
 */
import * as Result from "effect/Result"
import type * as Schema from "effect/Schema"
import type * as Aggregate from "../Aggregate.ts"
import * as Codec from "../Codec.ts"
import type { JournalRecord, StreamRef } from "../Journal.ts"
import { nameProblem } from "./validate.ts"

/** What a handler gets beside the decoded event: where the record is, when, and its metadata. @internal */
export interface RecordInfo {
  readonly stream: StreamRef
  readonly version: number
  readonly seq: number
  readonly timestamp: number
  readonly type: string
  readonly metadata: Readonly<Record<string, string>>
}

/** The event codec of each namespace a projection reads. @internal */
export type Decoders<E> = ReadonlyMap<string, Codec.Codec<E>>

const NO_METADATA: Readonly<Record<string, string>> = Object.freeze({})

/**
 * The codecs of `aggregates` or of `events` (exactly one of them, non-empty, each namespace once),
 * or what is wrong with them. @internal
 */
export const decoders = <E>(
  aggregates: ReadonlyArray<Aggregate.Any> | undefined,
  events: Readonly<Record<string, Schema.Codec<{ readonly _tag: string }, unknown>>> | undefined
): Decoders<E> | string => {
  if ((aggregates === undefined) === (events === undefined)) return "give either aggregates or events (one of them)"
  const out = new Map<string, Codec.Codec<E>>()
  if (aggregates !== undefined) {
    if (!Array.isArray(aggregates) || aggregates.length === 0) return "aggregates must be a non-empty array of aggregates"
    for (const aggregate of aggregates) {
      if (out.has(aggregate.namespace)) return `aggregates name the namespace ${JSON.stringify(aggregate.namespace)} twice`
      out.set(aggregate.namespace, aggregate.eventCodec as Codec.Codec<E>)
    }
    return out
  }
  const entries = events === null || typeof events !== "object" ? [] : Object.entries(events)
  if (entries.length === 0) return "events must map at least one namespace to its event Schema"
  for (const [namespace, schema] of entries) {
    const problem = nameProblem("events: a namespace", namespace)
    if (problem !== undefined) return problem
    out.set(namespace, Codec.make(schema) as unknown as Codec.Codec<E>)
  }
  return out
}

/** The record's place, time and metadata, as handlers see them. @internal */
export const recordInfo = (record: JournalRecord): RecordInfo => ({
  stream: { namespace: record.namespace, id: record.id },
  version: record.version,
  seq: record.seq,
  timestamp: record.timestamp,
  type: record.type,
  metadata: record.metadata ?? NO_METADATA
})

/**
 * The decoded event of `record`, `undefined` for a namespace the projection does not read, or the
 * `CodecError` naming its stream, version and seq. @internal
 */
export const decode = <E>(decoders: Decoders<E>, record: JournalRecord): Result.Result<E | undefined, Codec.CodecError> => {
  const codec = decoders.get(record.namespace)
  if (codec === undefined) return Result.succeed(undefined)
  return Codec.decodeRecord(codec as Codec.Codec<E & { readonly _tag: string }>, record)
}
