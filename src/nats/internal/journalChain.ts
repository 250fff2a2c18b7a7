/**
 * The NATS journal's writer: every message (an append, a marker, a position message) moves the
 * journal's position by compare-and-set on the stream's last message, so seqs are handed out in
 * the order messages are stored, in every process. A message expects the stream's last sequence
 * (`Nats-Expected-Last-Sequence`) and, on an annals stream's subject, that subject's last sequence
 * (`Nats-Expected-Last-Subject-Sequence`: the version check); its id (`Nats-Msg-Id`) makes a retry
 * after a lost reply a no-op when the first try was stored.
 *
 * Appends of one process are pipelined: the next message is sent before the one before it is
 * acknowledged, expecting it as the stream's last message — by sequence and by id
 * (`Nats-Expected-Last-Msg-Id`), so that if it fails, no message chained on it can be stored in
 * its place. A failure of the chain (another process stored a message first, or a reply was lost)
 * makes the next send read the stream's last message again ("refresh"); what the chain assumed of
 * each subject is kept apart from what was acknowledged, and dropped at a refresh.
 *
 * @internal
 */
import { JetStreamApiError, type PubAck } from "@nats-io/jetstream"
import { headers } from "@nats-io/transport-node"
import * as Effect from "effect/Effect"
import * as Semaphore from "effect/Semaphore"
import { JournalError, type VersionConflict } from "../../Journal.ts"
import type { NatsClient } from "../NatsClient.ts"
import { describeNatsFailure } from "./errors.ts"
import { encodeMessage, type JournalMessage, LAST_SEQ_HEADER, type Position } from "./journalMessages.ts"
import type { JournalReads, SubjectState, Tail } from "./journalReads.ts"

/** Server codes of a failed expectation: last sequence, last message id, unknown last sequence. */
const CHAIN_CODES = new Set([10071, 10070, 10164])

/** The cause of a `JournalError` whose message may or may not have been stored (its reply was lost). */
export class OutcomeUnknown extends Error {
  readonly lost: unknown
  constructor(lost: unknown) {
    super(describeNatsFailure(lost))
    this.lost = lost
  }
}

/** What the chain knows of a subject, and where from. */
export interface Known extends SubjectState {
  /** True when it comes from a message of ours not yet acknowledged. */
  readonly inFlight: boolean
  /** True when the server was read for this step (an in-flight state then is at least as new as the server's). */
  readonly fresh: boolean
}

/** What a step does, given the position and (on an annals stream's subject) what is known of it. */
export type Decision<A, E> =
  | { readonly _tag: "Fail"; readonly error: E }
  | { readonly _tag: "Done"; readonly result: A }
  /** What is known of the subject may be stale: read it and decide again. */
  | { readonly _tag: "Stale" }
  | { readonly _tag: "Send"; readonly message: JournalMessage; readonly done: (stored: JournalMessage) => A }

/** A message to write. */
export interface Step<A, E> {
  readonly method: string
  readonly subject: string
  /** Whether the subject is an annals stream's (expect its last sequence). */
  readonly streamSubject: boolean
  readonly msgId: string
  readonly decide: (position: Position, known: Known | undefined) => Decision<A, E>
}

const CONFIRMED_SUBJECTS = 10_000

/** The chain of one journal; `retries` bounds the sends of one message whose reply was lost. */
export const journalChain = (client: NatsClient, reads: JournalReads, retries: number) =>
  Effect.gen(function*() {
    const lock = yield* Semaphore.make(1)
    let tail: (Tail & { readonly speculative: boolean }) | undefined
    let generation = 0
    /** Subjects as acknowledged (bounded, least recently set dropped first). */
    const confirmed = new Map<string, SubjectState>()
    /** Subjects as messages in flight left them, in this generation. */
    const assumed = new Map<string, SubjectState>()

    const confirm = (subject: string, state: SubjectState) => {
      confirmed.delete(subject)
      confirmed.set(subject, state)
      if (confirmed.size > CONFIRMED_SUBJECTS) confirmed.delete(confirmed.keys().next().value!)
    }
    const broken = (sentIn: number) => {
      if (sentIn === generation) tail = undefined
    }
    /** The newer of what messages in flight assume and what was acknowledged or read (`fresh`: read for this step). */
    const known = (subject: string, fresh: boolean): Known | undefined => {
      const inFlight = assumed.get(subject)
      const acked = confirmed.get(subject)
      // Versions only rise: a message in flight that would not raise the version past the one read or acknowledged was
      // stored already, or was built on a stale state and will fail; what was read is then the newer.
      if (inFlight !== undefined && (acked === undefined || inFlight.version > acked.version)) return { ...inFlight, inFlight: true, fresh }
      return acked === undefined ? undefined : { ...acked, inFlight: false, fresh }
    }
    const fetch = (method: string, subject: string) => Effect.map(reads.subjectState(method, subject), (state) => confirm(subject, state))

    /** Sends the step's message (or ends it) under the lock: the order of sends is the order of expectations. */
    const send = <A, E>(step: Step<A, E>) =>
      Semaphore.withPermits(lock, 1)(Effect.gen(function*() {
        let at: NonNullable<typeof tail>
        let fresh: boolean
        let decision: Decision<A, E>
        for (;;) {
          if (tail === undefined) {
            tail = { ...(yield* reads.tail(step.method)), speculative: false }
            generation++
            assumed.clear()
          }
          at = tail
          fresh = false
          if (step.streamSubject && known(step.subject, false) === undefined) {
            yield* fetch(step.method, step.subject)
            fresh = true
          }
          decision = step.decide(at.position, step.streamSubject ? known(step.subject, fresh) : undefined)
          if (decision._tag === "Stale") {
            yield* fetch(step.method, step.subject)
            decision = step.decide(at.position, known(step.subject, true))
          }
          // A message sent before broke the chain while this step read (its outcome comes outside the lock): read the tail again.
          if (tail === at) break
        }
        if (decision._tag === "Stale") return yield* Effect.die(new Error(`Journal.${step.method}: a step found the state it had just read stale`))
        if (decision._tag !== "Send") return decision
        const { message } = decision
        const body = encodeMessage(message)
        const maxPayload = client.connection.info?.max_payload
        if (maxPayload !== undefined && body.byteLength > maxPayload) {
          return {
            _tag: "Refused" as const,
            error: new JournalError({
              method: step.method,
              message: `Journal.${step.method}: the message to ${step.subject} would be ${body.byteLength} bytes, above the server's max_payload of ${maxPayload}; nothing was stored`
            })
          }
        }
        const subjectSeq = step.streamSubject ? known(step.subject, fresh)!.streamSeq : undefined
        const h = headers()
        h.set(LAST_SEQ_HEADER, String(message.position.lastSeq))
        const acked = client.jetstream.publish(step.subject, body, {
          msgID: step.msgId,
          headers: h,
          expect: {
            lastSequence: at.streamSeq,
            ...(at.speculative && at.msgId !== undefined ? { lastMsgID: at.msgId } : {}),
            ...(subjectSeq !== undefined ? { lastSubjectSequence: subjectSeq } : {})
          }
        }).then((ack): { readonly ack: PubAck } => ({ ack }), (error: unknown): { readonly error: unknown } => ({ error }))
        const streamSeq = at.streamSeq + 1
        tail = { streamSeq, msgId: step.msgId, position: message.position, speculative: true }
        if (message.stream !== undefined) assumed.set(step.subject, { streamSeq, version: message.stream.version })
        return { _tag: "Sent" as const, acked, streamSeq, sentIn: generation, decision }
      }))

    /** The failure of a step whose reply was lost, and then `why`: it may or may not have been stored. */
    const lostReply = (step: Step<unknown, unknown>, why: string, cause: unknown) =>
      new JournalError({
        method: step.method,
        message: `Journal.${step.method}: the reply to message ${step.msgId} on ${step.subject} (at ${client.servers}) was lost and ${why}; it may or may not have been stored`,
        cause: new OutcomeUnknown(cause)
      })

    /** Writes the step's message, retrying past other writers and lost replies; its result. */
    const write = <A, E>(step: Step<A, E>): Effect.Effect<A, E | JournalError> =>
      Effect.gen(function*() {
        let lost = 0
        for (let attempt = 1;; attempt++) {
          // After a lost reply, a retry that fails before the outcome is known leaves it unknown.
          const sent = yield* (lost === 0 ? send(step) : Effect.mapError(send(step), (error) => lostReply(step, `its retry failed (${error.message})`, error)))
          if (sent._tag === "Fail") return yield* Effect.fail(sent.error)
          if (sent._tag === "Refused") return yield* Effect.fail(sent.error)
          if (sent._tag === "Done") return sent.result
          const outcome = yield* Effect.promise(() => sent.acked)
          if (assumed.get(step.subject)?.streamSeq === sent.streamSeq) assumed.delete(step.subject)
          if ("ack" in outcome) {
            const { ack } = outcome
            if (!ack.duplicate && ack.seq === sent.streamSeq) {
              if (sent.decision.message.stream !== undefined) confirm(step.subject, { streamSeq: ack.seq, version: sent.decision.message.stream.version })
              return sent.decision.done(sent.decision.message)
            }
            // An earlier send of this message was stored: the chain assumed another place for it.
            broken(sent.sentIn)
            const stored = yield* reads.next(step.method, ack.seq, step.subject)
            if (stored === undefined || stored.streamSeq !== ack.seq) {
              return yield* new JournalError({ method: step.method, message: `Journal.${step.method}: message ${ack.seq} of ${step.subject}, stored by an earlier try, cannot be read back` })
            }
            return sent.decision.done(stored.message)
          }
          const { error } = outcome
          broken(sent.sentIn)
          if (error instanceof JetStreamApiError) {
            if (!CHAIN_CODES.has(error.code)) {
              return yield* new JournalError({ method: step.method, message: `Journal.${step.method}: the server refused the message to ${step.subject}: ${describeNatsFailure(error)}; nothing was stored`, cause: error })
            }
            confirmed.delete(step.subject)
            // Another writer came first: go again at once, then with a growing random pause.
            if (attempt > 3) yield* Effect.sleep(Math.min(50, attempt) * Math.random())
            continue
          }
          if (++lost > retries) return yield* lostReply(step, `${retries} retries did not reach the server (${describeNatsFailure(error)})`, error)
          yield* Effect.sleep(200 * 2 ** (lost - 1))
        }
      })

    return { write }
  })

/** The writer of one journal. */
export type JournalChain = Effect.Success<ReturnType<typeof journalChain>>

/** `decide` with the payloads of the message it sends kept in the object `blob` (when there is one). */
export const withBlob = <A, E>(
  decide: (position: Position, known: Known | undefined) => Decision<A, E>,
  blob: { readonly name: string; readonly lengths: ReadonlyArray<number> } | undefined
) =>
(position: Position, known: Known | undefined): Decision<A, E> => {
  const decision = decide(position, known)
  return blob === undefined || decision._tag !== "Send" ? decision : { ...decision, message: { ...decision.message, blob } }
}

/** True when an error says the message was not stored (a refusal or conflict, not a lost reply). */
export const storedNothing = (error: JournalError | VersionConflict) => error._tag !== "JournalError" || !(error.cause instanceof OutcomeUnknown)
