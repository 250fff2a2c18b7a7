/**
 * Codecs turn typed events and states into the bytes the storage services keep, and back: the
 * value is encoded with its Schema, then packed as msgpack. Decoding reverses both steps and checks
 * the value against the Schema, so a payload that no longer matches fails loudly — with a
 * `CodecError` naming the stream, version and seq — instead of folding garbage into a state.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import * as SchemaParser from "effect/SchemaParser"
import * as SchemaJITCompiler from "effect/schema/SchemaJITCompiler"
import type { EventData, JournalRecord, StreamRef } from "./Journal.ts"
import * as Msgpack from "./internal/msgpack.ts"
import type { Snapshot } from "./SnapshotStore.ts"
import type { TaggedErrorClass } from "./internal/errors.ts"

/**
 * A Schema-checked msgpack codec for values of type `A`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Codec<A> {
  /** Encodes with the Schema, then packs; fails with the Schema's or msgpack's error. */
  readonly encode: (value: A) => Result.Result<Uint8Array, unknown>
  /** Unpacks, then decodes with the Schema; fails with msgpack's or the Schema's error. */
  readonly decode: (bytes: Uint8Array) => Result.Result<A, unknown>
}

/**
 * The fields of a `CodecError`.
 *
 * @since 0.1.0
 * @category errors
 */
export interface CodecErrorFields {
  readonly method: "encodeEvent" | "decodeEvent" | "encodeState" | "decodeState"
  readonly namespace: string
  readonly id: string
  readonly version?: number | undefined
  readonly seq?: number | undefined
  /** The event type (a record's `type`, an event's `_tag`). */
  readonly type?: string | undefined
  readonly cause: unknown
}

const CodecErrorBase: TaggedErrorClass<"CodecError", CodecErrorFields> = Data.TaggedError("CodecError")

/**
 * An event or state failed to encode or decode. Carries the stream and, for stored data, the
 * version and seq of the record or snapshot, so the bad bytes can be found.
 *
 * @since 0.1.0
 * @category errors
 */
export class CodecError extends CodecErrorBase {
  override get message(): string {
    const what = this.method.endsWith("Event") ? "event" : "state"
    const verb = this.method.startsWith("encode") ? "encode" : "decode"
    const where = [
      this.version !== undefined ? `version ${this.version}` : undefined,
      this.seq !== undefined ? `seq ${this.seq}` : undefined,
      this.type !== undefined ? `type ${JSON.stringify(this.type)}` : undefined
    ].filter((part) => part !== undefined)
    const cause = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `Cannot ${verb} ${what} of stream ${this.namespace}/${this.id}` +
      (where.length > 0 ? ` (${where.join(", ")})` : "") + `: ${cause}`
  }
}

/**
 * A codec for any Schema without service requirements.
 *
 * The Schema's decoder and encoder are compiled once, here, by Effect's `SchemaJITCompiler` (where
 * the runtime allows `new Function`; elsewhere Effect interprets the Schema as before): every value
 * is still checked against the Schema and goes through its transformations, with the same errors.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A, I>(schema: Schema.Codec<A, I>): Codec<A> => {
  SchemaJITCompiler.enable(schema.ast)
  SchemaJITCompiler.enable(SchemaAST.flip(schema.ast))
  // The synchronous adapters run the compiled code directly; on a failure (rare: a bad value or bad
  // stored data) the Result adapter runs again for the Schema's issue, which the CodecError carries.
  const encodeFast = SchemaParser.encodeUnknownSync(schema)
  const encodeIssue = Schema.encodeUnknownResult(schema)
  const decodeFast = SchemaParser.decodeUnknownSync(schema)
  const decodeIssue = Schema.decodeUnknownResult(schema)
  const unpack = Msgpack.makeUnpacker()
  return {
    encode: (value) => {
      let encoded: I
      try {
        encoded = encodeFast(value)
      } catch {
        const checked = encodeIssue(value)
        if (Result.isFailure(checked)) return Result.fail(checked.failure)
        encoded = checked.success
      }
      try {
        return Result.succeed(Msgpack.pack(encoded))
      } catch (cause) {
        return Result.fail(cause)
      }
    },
    decode: (bytes) => {
      let unpacked: unknown
      try {
        unpacked = unpack(bytes)
      } catch (cause) {
        return Result.fail(cause)
      }
      try {
        return Result.succeed(decodeFast(unpacked))
      } catch {
        return decodeIssue(unpacked)
      }
    }
  }
}

/**
 * Encodes events for `Journal.append`; each record's `type` is the event's `_tag`.
 *
 * @since 0.1.0
 * @category events
 */
export const encodeEvents = <A extends { readonly _tag: string }>(
  codec: Codec<A>,
  stream: StreamRef,
  events: ReadonlyArray<NoInfer<A>>
): Effect.Effect<ReadonlyArray<EventData>, CodecError> =>
  Effect.suspend(() => {
    const out: Array<EventData> = []
    for (const event of events) {
      const payload = codec.encode(event)
      if (Result.isFailure(payload)) {
        return Effect.fail(
          new CodecError({ method: "encodeEvent", ...streamOf(stream), type: String(event?._tag), cause: payload.failure })
        )
      }
      out.push({ type: event._tag, payload: payload.success })
    }
    return Effect.succeed(out)
  })

/**
 * Decodes a journal record's payload; also checks that the decoded event's `_tag` is the record's `type`.
 *
 * @since 0.1.0
 * @category events
 */
export const decodeRecord = <A extends { readonly _tag: string }>(
  codec: Codec<A>,
  record: JournalRecord
): Result.Result<A, CodecError> => {
  const event = codec.decode(record.payload)
  // A success is handed on as it is (its error type is unused): no second Result per record.
  if (Result.isSuccess(event) && event.success._tag === record.type) return event as Result.Result<A, never>
  return Result.fail(
    new CodecError({
      method: "decodeEvent",
      ...streamOf(record),
      version: record.version,
      seq: record.seq,
      type: record.type,
      cause: Result.isFailure(event)
        ? event.failure
        : new Error(`the payload decodes to a ${JSON.stringify(event.success._tag)} event, not ${JSON.stringify(record.type)}`)
    })
  )
}

/**
 * Encodes an aggregate state for a snapshot of `stream` at `version`.
 *
 * @since 0.1.0
 * @category states
 */
export const encodeState = <S>(
  codec: Codec<S>,
  stream: StreamRef,
  version: number,
  state: NoInfer<S>
): Result.Result<Uint8Array, CodecError> =>
  Result.mapError(
    codec.encode(state),
    (cause) => new CodecError({ method: "encodeState", ...streamOf(stream), version, cause })
  )

/**
 * Decodes a snapshot's state.
 *
 * @since 0.1.0
 * @category states
 */
export const decodeSnapshot = <S>(codec: Codec<S>, snapshot: Snapshot): Result.Result<S, CodecError> =>
  Result.mapError(
    codec.decode(snapshot.state),
    (cause) =>
      new CodecError({ method: "decodeState", ...streamOf(snapshot), version: snapshot.version, seq: snapshot.seq, cause })
  )

const streamOf = (stream: StreamRef) => ({ namespace: stream.namespace, id: stream.id })
