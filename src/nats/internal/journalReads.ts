/**
 * Reads of the NATS journal's stream: its last message (where the journal stands), the last
 * message of one subject (an annals stream's version), the first message holding a seq (a binary
 * search over stream sequences: positions never go down), and runs of messages between two stream
 * sequences through an ordered consumer.
 *
 * @internal
 */
import { DeliverPolicy, type JsMsg, type StoredMsg } from "@nats-io/jetstream"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { JournalError } from "../../Journal.ts"
import { describeNatsFailure } from "./errors.ts"
import type { ObjectStore } from "@nats-io/obj"
import { decodeMessage, EMPTY, type JournalMessage, type Position, withPayloads } from "./journalMessages.ts"
import { readObject } from "./objects.ts"
import type { StoreNames } from "./names.ts"
import type { NatsClient } from "../NatsClient.ts"

/** The last message of the stream: its stream sequence and id, and the journal's position after it. */
/**
 * How long each pull of a read's ordered consumer lasts (the client's heartbeats come at half of
 * it): a pull lost with a restarted server is noticed, and the consumer reset, within about two of
 * them (with the client's default of 30 s, a read under way during a restart stalled for 40 s).
 */
const PULL_MS = 2_000

/**
 * The most a read's consumer asks for at once, in bytes (a count of messages instead would not bound
 * them: 1,000 large appends, up to the server's max payload each, exceed the 64 MiB a connection may
 * have pending, and the server closes a connection past it as a slow consumer; a replay of
 * 1,000-event appends hung so).
 */
const PULL_BYTES = 8 * 1024 * 1024

export interface Tail {
  readonly streamSeq: number
  readonly msgId: string | undefined
  readonly position: Position
}

/** Where an annals stream's subject stands: its last message's stream sequence (0: none) and the stream's version. */
export interface SubjectState {
  readonly streamSeq: number
  readonly version: number
}

/** A message of the stream with its stream sequence. */
export interface Delivered {
  readonly streamSeq: number
  readonly message: JournalMessage
}

/**
 * The reads over `client` for the store `names`; failures are `JournalError`s of `method`.
 * `payloads` opens the object store of large appends' payloads (when a message refers to one).
 */
export const journalReads = (client: NatsClient, names: StoreNames, payloads: Effect.Effect<ObjectStore, JournalError>) => {
  const stream = names.journalStream
  const failed = (method: string, what: string) => (cause: unknown) =>
    new JournalError({ method, message: `Journal.${method}: cannot ${what} (stream ${stream} at ${client.servers}): ${describeNatsFailure(cause)}`, cause })
  const request = <A>(method: string, what: string, run: () => Promise<A>) => Effect.tryPromise({ try: run, catch: failed(method, what) })

  /** The message decoded (`full`: with the payloads of a large append, read from its object), or a failure naming its subject and sequence. */
  const decode = (method: string, subject: string, streamSeq: number, data: Uint8Array, full: boolean): Effect.Effect<JournalMessage, JournalError> => {
    const damaged = (problem: string) =>
      new JournalError({ method, message: `Journal.${method}: message ${streamSeq} (${subject}) of stream ${stream} is damaged: ${problem}` })
    const decoded = decodeMessage(data)
    if (typeof decoded === "string") return Effect.fail(damaged(decoded))
    const blob = decoded.blob
    if (blob === undefined || !full) return Effect.succeed(decoded)
    return Effect.gen(function*() {
      const store = yield* payloads
      const bytes = yield* request(method, `read the payloads of message ${streamSeq} (object ${blob.name} of ${names.payloadStore})`, () => readObject(store, blob.name))
      if (bytes === undefined) return yield* damaged(`its payloads (object ${blob.name} of ${names.payloadStore}) are missing`)
      const records = withPayloads(decoded, bytes)
      return typeof records === "string" ? yield* damaged(records) : { ...decoded, records }
    })
  }
  const stored = (method: string, msg: StoredMsg, full: boolean) =>
    Effect.map(decode(method, msg.subject, msg.seq, msg.data, full), (message) => ({ streamSeq: msg.seq, message }))

  const tail = (method: string): Effect.Effect<Tail, JournalError> =>
    Effect.flatMap(
      request(method, "read the journal's position", () => client.manager.streams.getMessage(stream, { last_by_subj: names.journalSubjects })),
      (msg) =>
        msg === null
          // An empty stream (new, or emptied by hand): the next message still follows its last sequence.
          ? Effect.map(
            request(method, "read the stream's state", () => client.manager.streams.info(stream)),
            (info) => ({ streamSeq: info.state.last_seq, msgId: undefined, position: EMPTY })
          )
          : Effect.map(stored(method, msg, false), ({ message }) => ({ streamSeq: msg.seq, msgId: msg.header.get("Nats-Msg-Id") || undefined, position: message.position }))
    )

  const subjectState = (method: string, subject: string): Effect.Effect<SubjectState, JournalError> =>
    Effect.flatMap(
      request(method, `read the last message of ${subject}`, () => client.manager.streams.getMessage(stream, { last_by_subj: subject })),
      (msg) =>
        msg === null
          ? Effect.succeed({ streamSeq: 0, version: 0 })
          : Effect.map(stored(method, msg, false), ({ message }) => ({ streamSeq: msg.seq, version: message.stream?.version ?? 0 }))
    )

  /** The stream sequence of the last message on `filter` (0: none). */
  const lastOn = (method: string, filter: string): Effect.Effect<number, JournalError> =>
    Effect.map(
      request(method, `read the last message of ${filter}`, () => client.manager.streams.getMessage(stream, { last_by_subj: filter })),
      (msg) => msg?.seq ?? 0
    )

  /** The first message at or after stream sequence `from` on `filter`, if any (`full`: with its payloads). */
  const next = (method: string, from: number, filter: string, full = true): Effect.Effect<Delivered | undefined, JournalError> =>
    Effect.flatMap(
      request(method, "read a message", () => client.manager.direct.getMessage(stream, { seq: Math.max(from, 1), next_by_subj: filter })),
      (msg) => (msg === null ? Effect.succeed(undefined) : stored(method, msg, full))
    )

  /**
   * The stream sequence of the first message whose position reaches `seq` (every record at or
   * above `seq` is in it or after it), up to `end` (the tail's sequence): `end + 1` when none does.
   */
  const findSeq = (method: string, seq: number, end: number): Effect.Effect<number, JournalError> =>
    Effect.gen(function*() {
      let low = 1
      let high = end + 1
      while (low < high) {
        const mid = low + Math.floor((high - low) / 2)
        const found = yield* next(method, mid, names.journalSubjects, false)
        if (found === undefined || found.streamSeq > end) high = mid
        else if (found.message.position.lastSeq >= seq) high = mid
        // Every sequence from `mid` to `found` leads to `found`, which does not reach `seq`.
        else low = found.streamSeq + 1
      }
      return low
    })

  /**
   * The messages on `filter` from stream sequence `from` through `end`, in order, through an
   * ordered consumer (removed when the stream ends). `end` must be a message on `filter`: the
   * consumer stops when it delivers it (or nothing is pending).
   */
  const between = (method: string, from: number, end: number, filter: string, full = true): Stream.Stream<Delivered, JournalError> =>
    from > end
      ? Stream.empty
      : Stream.unwrap(Effect.gen(function*() {
        const first = yield* next(method, from, filter, full)
        if (first === undefined || first.streamSeq > end) return Stream.empty
        if (first.streamSeq === end) return Stream.make(first)
        const messages = yield* Effect.acquireRelease(
          request(method, "start an ordered consumer", async () => {
            const consumer = await client.jetstream.consumers.get(stream, {
              filter_subjects: filter,
              deliver_policy: DeliverPolicy.StartSequence,
              opt_start_seq: first.streamSeq + 1
            })
            return consumer.consume({ max_bytes: PULL_BYTES, expires: PULL_MS })
          }),
          // Not awaited: the close of messages never iterated waits for an iteration that never comes.
          (messages) => Effect.sync(() => void messages.close().catch(() => undefined))
        )
        const rest = Stream.fromAsyncIterable(messages as AsyncIterable<JsMsg>, failed(method, "read messages")).pipe(
          Stream.takeUntil((msg) => msg.seq >= end || msg.info.pending === 0),
          Stream.filter((msg) => msg.seq <= end),
          Stream.mapEffect((msg) => Effect.map(decode(method, msg.subject, msg.seq, msg.data, full), (message) => ({ streamSeq: msg.seq, message })))
        )
        return Stream.concat(Stream.make(first), rest)
      }))

  return { tail, subjectState, lastOn, next, findSeq, between }
}

/** The reads of one store. */
export type JournalReads = ReturnType<typeof journalReads>
