/**
 * What the `Journal.follow` conformance cases share: waits bounded by the wall clock (the cases run
 * under a TestClock, so a follower that polls on a timer would hang them), appends that remember what
 * each acknowledgement assigned, followers run to a seq or pulled by hand, and the one check every
 * follower's output gets: gap-free, duplicate-free, in seq order, equal to what was appended.
 */
import { Cause, Effect, type Fiber, type Scope, Stream } from "effect"
import assert from "node:assert/strict"
import { type AppendResult, Journal, type JournalRecord, type StreamRef } from "../../src/Journal.ts"
import { type Case, open } from "./harness.ts"
import type { JournalStorage } from "./Journal.ts"

/** How long any single wait of a case may take, in wall-clock milliseconds. */
const WAIT_MS = 5_000

/** A follow case: `body` gets the fixture's journal, opened in the case's scope. */
export const followCase = (
  name: string,
  body: (journal: Journal) => Effect.Effect<void, unknown, Scope.Scope>,
  durableOnly = false
): Case<JournalStorage> => ({ name, durableOnly, run: (storage) => Effect.flatMap(open(Journal, storage.layer), body) })

/** The streams the follow cases append to. */
export const followStream = (id: string): StreamRef => ({ namespace: "follow", id })

/** `n` events of one append, their payloads naming `tag`. */
const followEvents = (tag: string, n = 1) =>
  Array.from({ length: n }, (_, i) => ({ type: "Noted", payload: new TextEncoder().encode(`${tag}.${i}`) }))

/** Sleeps `ms` of wall-clock time (a `setTimeout`, not Effect's Clock); interruptible. */
export const wallSleep = (ms: number): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), ms)
    return Effect.sync(() => clearTimeout(timer))
  })

/** Gives the event loop `n` turns (timers, I/O completions, other fibers). */
export const turns = (n: number): Effect.Effect<void> =>
  Effect.forEach(Array.from({ length: n }, (_, i) => i), () => wallSleep(0), { discard: true })

/** `effect`, failing the case (a defect naming `what`) when it takes longer than `WAIT_MS` of wall-clock time. */
export const within = <A, E, R>(what: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.raceFirst(
    effect,
    Effect.andThen(
      wallSleep(WAIT_MS),
      Effect.die(
        new Error(
          `${what}: still waiting after ${WAIT_MS} ms of wall-clock time (the case runs under a TestClock: a follower that polls on a timer never wakes)`
        )
      )
    )
  )

/** A record as the cases compare them: seq, stream and version. */
export const label = (r: { readonly seq: number; readonly id: string; readonly version: number }): string => `#${r.seq} ${r.id}@${r.version}`

/** What the journal acknowledged, record by record (filled as acknowledgements arrive). */
export interface Acknowledged {
  readonly records: Array<{ readonly seq: number; readonly id: string; readonly version: number }>
  readonly seqs: Set<number>
}

/** An empty acknowledgement log. */
export const acknowledged = (): Acknowledged => ({ records: [], seqs: new Set() })

/**
 * Appends `n` events to `stream` and logs the records the acknowledgement assigned, in the same
 * synchronous step that sees the acknowledgement (so `acks.seqs` holds a seq exactly once its
 * append has returned).
 */
export const appendLogged = (journal: Journal, acks: Acknowledged, stream: StreamRef, n: number, tag: string) =>
  Effect.tap(journal.append(stream, "any", followEvents(tag, n)), (result: AppendResult) =>
    Effect.sync(() => {
      for (let seq = result.firstSeq; seq <= result.lastSeq; seq++) {
        acks.records.push({ seq, id: stream.id, version: result.version - (result.lastSeq - seq) })
        acks.seqs.add(seq)
      }
    }))

/** The logged records with `seq ≥ fromSeq`, in seq order, as labels. */
export const expectedFrom = (acks: Acknowledged, fromSeq: number): Array<string> =>
  acks.records.filter((r) => r.seq >= fromSeq).sort((a, b) => a.seq - b.seq).map(label)

/**
 * `writers` fibers appending concurrently, each `appends` times `eventsPer(k)` events to one of four
 * streams, a turn of the event loop after every append (so that followers interleave with them).
 */
export const writeConcurrently = (
  journal: Journal,
  acks: Acknowledged,
  options: { readonly writers: number; readonly appends: number; readonly eventsPer: (k: number) => number }
) =>
  Effect.forEach(
    Array.from({ length: options.writers }, (_, w) => w),
    (w) =>
      Effect.forEach(Array.from({ length: options.appends }, (_, k) => k), (k) =>
        Effect.andThen(
          appendLogged(journal, acks, followStream(`s${(w + k) % 4}`), options.eventsPer(k), `w${w}.${k}`),
          wallSleep(0)
        ), { discard: true }),
    { concurrency: "unbounded", discard: true }
  )

/** How many records `writeConcurrently` with these options appends. */
export const totalOf = (options: { readonly writers: number; readonly appends: number; readonly eventsPer: (k: number) => number }): number =>
  options.writers * Array.from({ length: options.appends }, (_, k) => options.eventsPer(k)).reduce((a, b) => a + b, 0)

/** Follows from `fromSeq` until a record with seq ≥ `lastSeq` arrives; every record delivered until then. */
export const followTo = (journal: Journal, fromSeq: number, lastSeq: number) =>
  Effect.map(Stream.runCollect(Stream.takeUntil(journal.follow(fromSeq), (r) => r.seq >= lastSeq)), (rs) => Array.from(rs))

/** Asserts that `fiber` is still running (a follower waiting for records), naming it and how it ended otherwise. */
export const assertRunning = (fiber: Fiber.Fiber<unknown, unknown>, what: string): void => {
  const exit = fiber.pollUnsafe()
  assert.equal(exit, undefined, `${what} should still be waiting, but it ended: ${String(exit)}`)
}

/**
 * Asserts that a follower delivered exactly `expected` (labels in seq order): first that it never went
 * back or repeated a seq, then that it skipped none, then the full list.
 */
export const assertDelivered = (what: string, got: ReadonlyArray<JournalRecord>, expected: ReadonlyArray<string>): void => {
  for (let i = 1; i < got.length; i++) {
    assert.ok(
      got[i]!.seq > got[i - 1]!.seq,
      `${what} delivered seq ${got[i]!.seq} after seq ${got[i - 1]!.seq}: ${got[i]!.seq === got[i - 1]!.seq ? "a duplicate" : "out of order"}`
    )
  }
  const delivered = new Set(got.map(label))
  const skipped = expected.filter((l) => !delivered.has(l))
  assert.deepEqual(skipped, [], `${what} skipped ${skipped.length} record(s): ${skipped.slice(0, 5).join(", ")}`)
  assert.deepEqual(got.map(label), expected, `${what} delivered other records than expected`)
}

/** A follower pulled by hand, chunk by chunk; each pull bounded by the wall clock. */
export interface Puller<E> {
  /** The next chunk (fails with the follow's error; a follow that ends is a defect). */
  readonly next: Effect.Effect<ReadonlyArray<JournalRecord>, E>
  /** Pulls until a record with seq ≥ `lastSeq` arrived; every record pulled. */
  readonly upTo: (lastSeq: number) => Effect.Effect<ReadonlyArray<JournalRecord>, E>
}

/** A follow stream as a `Puller` (its resources belong to the current scope). */
export const puller = <E>(stream: Stream.Stream<JournalRecord, E>, what: string) =>
  Effect.map(Stream.toPull(stream), (pull): Puller<E> => {
    const next = within(
      `${what}: the next pull`,
      Effect.catchIf(
        pull,
        Cause.isDone,
        () => Effect.die(new Error(`${what} ended, but a follow never ends`))
      )
    )
    return {
      next,
      upTo: (lastSeq) =>
        Effect.gen(function*() {
          const out: Array<JournalRecord> = []
          while ((out[out.length - 1]?.seq ?? -1) < lastSeq) out.push(...yield* next)
          return out
        })
    }
  })
