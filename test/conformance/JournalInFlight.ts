/**
 * Journal conformance cases for DESIGN §2 "Consistency of reads", with appends in flight: many
 * overlapping appends (so that a layer with group commit really shares flushes and has appends
 * waiting for one) while other fibers call every read operation and `truncateBefore`. They assert:
 *
 * - `read(stream)` and `version(stream)` agree: the version is that of the last visible record;
 * - `lastSeq` agrees with `replayFrom` / `replayUntil`: a replay taken after reading `lastSeq` holds
 *   every record at or below it that will ever exist (no record appears later below a `lastSeq`
 *   seen before);
 * - `truncateBefore` never removes a record that is not yet visible: every acknowledged record is
 *   still there at the end, unless a truncation past it started after it was acknowledged;
 * - an acknowledged append is visible to the reads after it, and none is ever lost.
 *
 * On a layer whose appends complete at once (memory) nothing is ever in flight and these hold
 * trivially; they bite on layers that wait for a device or a database.
 */
import { Effect, Fiber, Stream } from "effect"
import assert from "node:assert/strict"
import type { AppendResult, EventData, StreamRef } from "../../src/Journal.ts"
import { Journal } from "../../src/Journal.ts"
import { type Case, open } from "./harness.ts"
import type { JournalStorage } from "./Journal.ts"

type Service = Journal

const WRITERS = 12
const APPENDS_PER_WRITER = 15
const STREAMS = 4
const READERS = 3

const streams: ReadonlyArray<StreamRef> = Array.from({ length: STREAMS }, (_, i) => ({ namespace: "flight", id: `s${i}` }))
const events = (writer: number, k: number): ReadonlyArray<EventData> =>
  Array.from({ length: 1 + (k % 2) }, (_, i) => ({ type: "E", payload: new TextEncoder().encode(`w${writer}-${k}-${i}`) }))
const collect = <A, E>(stream: Stream.Stream<A, E>) => Effect.map(Stream.runCollect(stream), (rs) => Array.from(rs))

/** Gives the event loop a turn (real time: the cases run under a TestClock, and flushes are real I/O). */
const pause = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 0)))

interface Ack {
  readonly stream: StreamRef
  readonly result: AppendResult
  /** When it was acknowledged, on the case's own tick counter. */
  readonly tick: number
}

/** A replay taken after reading `lastSeq`: the seqs it held at or below that `lastSeq`. */
interface Observation {
  readonly what: string
  readonly lastSeq: number
  readonly seen: ReadonlySet<number>
}

/** What one run of writers and readers recorded. */
interface Run {
  readonly acks: Array<Ack>
  readonly observations: Array<Observation>
  /** Each `truncateBefore(before)` call: when it started, and the seqs a replay just before it showed. */
  readonly truncations: Array<{ readonly before: number; readonly tick: number; readonly visible: ReadonlySet<number> }>
}

/**
 * Runs `WRITERS` fibers of overlapping appends (`checkAfterAck` after each acknowledgement) while
 * `background` fibers loop until every writer is done.
 */
const runInFlight = (
  journal: Service,
  checkAfterAck: (ack: Ack) => Effect.Effect<void, unknown>,
  background: (run: Run, next: () => number, writing: () => boolean) => ReadonlyArray<Effect.Effect<void, unknown>>
) =>
  Effect.gen(function*() {
    let tick = 0
    let writing = true
    const run: Run = { acks: [], observations: [], truncations: [] }
    const next = () => tick++
    const fibers = yield* Effect.forEach(background(run, next, () => writing), (loop) => Effect.forkChild(loop))
    yield* Effect.forEach(
      Array.from({ length: WRITERS }, (_, w) => w),
      (w) =>
        Effect.forEach(Array.from({ length: APPENDS_PER_WRITER }, (_, k) => k), (k) =>
          Effect.gen(function*() {
            const stream = streams[(w + k) % STREAMS]!
            const result = yield* journal.append(stream, "any", events(w, k))
            const ack = { stream, result, tick: next() }
            run.acks.push(ack)
            yield* checkAfterAck(ack)
          }), { discard: true }),
      { concurrency: "unbounded", discard: true }
    ).pipe(Effect.ensuring(Effect.sync(() => void (writing = false))))
    yield* Effect.forEach(fibers, Fiber.join, { discard: true })
    return run
  })

/** Reads `lastSeq`, then replays with `replay`, and records what the replay held at or below it. */
const observe = (journal: Service, run: Run, what: string, replay: Stream.Stream<{ readonly seq: number }, unknown>) =>
  Effect.gen(function*() {
    const lastSeq = yield* journal.lastSeq
    const records = yield* collect(replay)
    for (let i = 1; i < records.length; i++) {
      assert.ok(records[i]!.seq > records[i - 1]!.seq, `${what} is out of seq order at ${records[i]!.seq}`)
    }
    run.observations.push({ what, lastSeq, seen: new Set(records.map((r) => r.seq).filter((seq) => seq <= lastSeq)) })
    return lastSeq
  })

/** Asserts that no replay missed a record at or below the `lastSeq` read before it, that exists now. */
const assertReplaysAgreeWithLastSeq = (run: Run, final: ReadonlyArray<number>) => {
  for (const { what, lastSeq, seen } of run.observations) {
    const missed = final.filter((seq) => seq <= lastSeq && !seen.has(seq))
    assert.deepEqual(
      missed,
      [],
      `${what} after lastSeq was ${lastSeq} missed seqs ${missed.join(", ")}, which exist now: lastSeq counted records the replay did not show`
    )
  }
}

/** Checks `read(stream)` against `version(stream)` read before and after it (no truncation). */
const readAgreesWithVersion = (journal: Service, stream: StreamRef) =>
  Effect.gen(function*() {
    const before = yield* journal.version(stream)
    const records = yield* collect(journal.read(stream))
    const after = yield* journal.version(stream)
    assert.deepEqual(records.map((r) => r.version), records.map((_, i) => i + 1), `read(${stream.id}) is not dense from 1`)
    const last = records.length
    assert.ok(
      before <= last && last <= after,
      `version(${stream.id}) was ${before} before read and ${after} after it, but read's last visible version is ${last}`
    )
  })

const withJournal = (name: string, body: (journal: Service) => Effect.Effect<void, unknown>): Case<JournalStorage> => ({
  name,
  run: (storage) => Effect.flatMap(open(Journal, storage.layer), body)
})

/** The cases with appends in flight; part of `journalCases`. */
export const journalInFlightCases: ReadonlyArray<Case<JournalStorage>> = [
  withJournal("with appends in flight, read agrees with version, and replayFrom and replayUntil with lastSeq; nothing acknowledged is lost", (journal) =>
    Effect.gen(function*() {
      const run = yield* runInFlight(
        journal,
        // Acknowledged means visible to every later read.
        ({ stream, result }) =>
          Effect.gen(function*() {
            const mine = yield* collect(journal.read(stream, { from: result.version, to: result.version }))
            assert.deepEqual(mine.map((r) => r.seq), [result.lastSeq], `acknowledged seq ${result.lastSeq} is not readable`)
            assert.ok((yield* journal.version(stream)) >= result.version, `version is below acknowledged ${result.version}`)
          }),
        (run, _next, writing) =>
          Array.from({ length: READERS }, (_, r) =>
            Effect.gen(function*() {
              let previous = 0
              for (let round = 0; writing() || round === 0; round++) {
                yield* readAgreesWithVersion(journal, streams[(r + round) % STREAMS]!)
                const lastSeq = yield* observe(journal, run, "replayFrom(0)", journal.replayFrom(0))
                assert.ok(lastSeq >= previous, `lastSeq went down from ${previous} to ${lastSeq}`)
                previous = yield* observe(journal, run, "replayUntil(0, MAX_SAFE_INTEGER)", journal.replayUntil(0, Number.MAX_SAFE_INTEGER))
                yield* pause
              }
            }))
      )
      const final = (yield* collect(journal.replayFrom(0))).map((r) => r.seq)
      const present = new Set(final)
      for (const { result } of run.acks) {
        for (let seq = result.firstSeq; seq <= result.lastSeq; seq++) assert.ok(present.has(seq), `acknowledged seq ${seq} is lost`)
      }
      assert.equal(final.length, run.acks.reduce((n, { result }) => n + result.lastSeq - result.firstSeq + 1, 0))
      assertReplaysAgreeWithLastSeq(run, final)
      for (const stream of streams) {
        const acked = Math.max(...run.acks.filter((a) => a.stream.id === stream.id).map((a) => a.result.version))
        yield* readAgreesWithVersion(journal, stream)
        assert.equal(yield* journal.version(stream), acked)
      }
    })),

  withJournal("with appends in flight, truncateBefore(lastSeq + 1) never removes a record that was not yet visible", (journal) =>
    Effect.gen(function*() {
      const run = yield* runInFlight(journal, () => Effect.void, (run, next, writing) => [
        Effect.gen(function*() {
          let previous = 0
          while (writing()) {
            const lastSeq = yield* journal.lastSeq
            assert.ok(lastSeq >= previous, `lastSeq went down from ${previous} to ${lastSeq}`)
            previous = lastSeq
            // Every record at or below lastSeq is visible by now, so this replay shows each one the truncation may remove.
            const visible = new Set((yield* collect(journal.replayFrom(0))).map((r) => r.seq))
            const tick = next()
            yield* journal.truncateBefore(lastSeq + 1)
            run.truncations.push({ before: lastSeq + 1, tick, visible })
            yield* pause
          }
        }),
        ...Array.from({ length: READERS }, () =>
          Effect.gen(function*() {
            while (writing()) {
              yield* observe(journal, run, "replayFrom(0) while truncating", journal.replayFrom(0))
              yield* pause
            }
          }))
      ])
      const final = (yield* collect(journal.replayFrom(0))).map((r) => r.seq)
      const present = new Set(final)
      for (const { result, tick } of run.acks) {
        for (let seq = result.firstSeq; seq <= result.lastSeq; seq++) {
          // Gone is fine only when a truncation past it started once it was visible: after it was
          // acknowledged, or after a replay showed it.
          const removedWhenVisible = run.truncations.some((t) => t.before > seq && (t.tick > tick || t.visible.has(seq)))
          assert.ok(
            present.has(seq) || removedWhenVisible,
            `acknowledged seq ${seq} is gone, but every truncation past it started while it was not yet visible (in flight)`
          )
        }
      }
      assertReplaysAgreeWithLastSeq(run, final)
      for (const stream of streams) {
        const acked = Math.max(...run.acks.filter((a) => a.stream.id === stream.id).map((a) => a.result.version))
        assert.equal(yield* journal.version(stream), acked, `version(${stream.id}) after truncations`)
      }
    }))
]
