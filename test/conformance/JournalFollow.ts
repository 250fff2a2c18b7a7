/**
 * `Journal.follow` conformance cases (DESIGN §2): the replay, then every record as it settles, once,
 * in seq order, none skipped — from any start, while writers race the switch from replay to live,
 * for many followers at once and for a slow one (which holds nothing while it pauses), never a
 * record before its append returned (also for a follower whose handler appends), and woken by the
 * append rather than a timer or a loop (the cases run under a TestClock, and every wait is bounded
 * by the wall clock, so a polling follower fails in seconds instead of hanging the run; a waiting
 * follower must leave the CPU idle), and not starved by a writer appending in a tight loop.
 * Truncation, bad arguments, interruption, closing and restore: `JournalFollowEdges.ts`.
 */
import { Effect, Fiber, Stream } from "effect"
import assert from "node:assert/strict"
import process from "node:process"
import type { Journal, JournalRecord } from "../../src/Journal.ts"
import { prng } from "../support/ledger.ts"
import {
  acknowledged,
  appendLogged,
  assertDelivered,
  assertRunning,
  expectedFrom,
  followCase,
  followStream,
  followTo,
  label,
  puller,
  totalOf,
  turns,
  wallSleep,
  within,
  writeConcurrently
} from "./followSupport.ts"
import { journalFollowEdgeCases } from "./JournalFollowEdges.ts"
import { type Case, expectError } from "./harness.ts"
import type { JournalStorage } from "./Journal.ts"

type Service = Journal

const IDLE_MS = 200

/**
 * Asserts that the process spends well under a third of `IDLE_MS` on the CPU while the followers
 * wait (a follower that re-checks in a loop takes all of it; one that sleeps on Effect's clock would
 * never wake, which the wall-clock bounds catch). Up to three windows, one of which must be quiet:
 * a spinning follower fills every window, while the process's other work (a collection, a client
 * another test left to wind down) comes and goes — it once took 93 ms of one window on Deno.
 */
const assertIdle = (what: string) =>
  Effect.gen(function*() {
    yield* turns(2)
    const windows: Array<number> = []
    while (windows.length < 3) {
      const before = process.cpuUsage()
      yield* wallSleep(IDLE_MS)
      const used = process.cpuUsage(before)
      windows.push((used.user + used.system) / 1000)
      if (windows[windows.length - 1]! < IDLE_MS / 3) return
    }
    assert.fail(`${what}: the process used ${windows.map((ms) => ms.toFixed(0)).join(", ")} ms of CPU in three windows of ${IDLE_MS} ms of waiting (a follower spins)`)
  })

/** Seqs 1..6 over three streams: a@1-2, b@1, a@3, c@1-2. */
const appendSix = (journal: Service, acks = acknowledged()) =>
  Effect.as(
    Effect.forEach(
      [["a", 2], ["b", 1], ["a", 1], ["c", 2]] as const,
      ([id, n], i) => appendLogged(journal, acks, followStream(id), n, `six.${i}`),
      { discard: true }
    ),
    acks
  )

/** Every Journal.follow conformance case. */
export const journalFollowCases: ReadonlyArray<Case<JournalStorage>> = [
  followCase("follow from 0, 1, the middle, exactly lastSeq + 1 and far past the end: the replay, then each new record as it arrives", (journal) =>
    Effect.gen(function*() {
      const acks = yield* appendSix(journal)
      assert.deepEqual(expectedFrom(acks, 0), ["#1 a@1", "#2 a@2", "#3 b@1", "#4 a@3", "#5 c@1", "#6 c@2"])
      const starts = [0, 1, 4, 7, 26]
      const fibers = yield* Effect.forEach(starts, (from) => Effect.forkChild(followTo(journal, from, 30)))
      yield* turns(3)
      starts.forEach((from, i) => assertRunning(fibers[i]!, `follow(${from}) before seq 30 exists`))
      for (let i = 0; i < 24; i++) {
        yield* appendLogged(journal, acks, followStream(["a", "b", "c"][i % 3]!), 1, `live.${i}`)
        if (i % 5 === 0) yield* turns(1)
      }
      assert.equal(acks.records.length, 30)
      for (const [i, from] of starts.entries()) {
        const got = yield* within(`follow(${from})`, Fiber.join(fibers[i]!))
        assertDelivered(`follow(${from})`, got, expectedFrom(acks, from))
        assert.deepEqual(got.map((r) => r.seq), Array.from({ length: 31 - Math.max(from, 1) }, (_, k) => Math.max(from, 1) + k))
      }
    })),

  followCase("a follower past the end delivers nothing until the log reaches its fromSeq, then exactly from there", (journal) =>
    Effect.gen(function*() {
      const acks = yield* appendSix(journal)
      const follower = yield* puller(journal.follow(10), "follow(10)")
      const first = yield* Effect.forkChild(follower.next)
      yield* turns(3)
      assertRunning(first, "the first pull of follow(10) on a journal at seq 6")
      for (let i = 0; i < 3; i++) yield* appendLogged(journal, acks, followStream("d"), 1, `below.${i}`)
      yield* turns(3)
      assertRunning(first, "the first pull of follow(10) with the journal at seq 9")
      yield* appendLogged(journal, acks, followStream("d"), 2, "reaches")
      assert.deepEqual((yield* within("follow(10)", Fiber.join(first))).map(label), ["#10 d@4", "#11 d@5"])
    })),

  followCase("waiting followers cost no CPU (no spinning, no timer): follow(0) on an empty journal, and at and past the end of a journal", (journal) =>
    Effect.gen(function*() {
      const acks = acknowledged()
      const onEmpty = yield* Effect.forkChild(followTo(journal, 0, 1))
      yield* assertIdle("follow(0) waiting on an empty journal")
      yield* appendLogged(journal, acks, followStream("a"), 1, "first")
      assertDelivered("follow(0) on an empty journal", yield* within("follow(0)", Fiber.join(onEmpty)), expectedFrom(acks, 0))
      const atEnd = yield* Effect.forkChild(followTo(journal, 2, 2))
      const pastEnd = yield* Effect.forkChild(followTo(journal, 5, 5))
      yield* assertIdle("follow(2) and follow(5) waiting on a journal at seq 1")
      for (let i = 0; i < 4; i++) yield* appendLogged(journal, acks, followStream("a"), 1, `more.${i}`)
      assertDelivered("follow(2)", yield* within("follow(2)", Fiber.join(atEnd)), expectedFrom(acks, 2).slice(0, 1))
      assertDelivered("follow(5)", yield* within("follow(5)", Fiber.join(pastEnd)), expectedFrom(acks, 5))
    })),

  followCase("a gap in seqs (setCheckpoint past the end) is not the end: a waiting follower gets the record after it", (journal) =>
    Effect.gen(function*() {
      const acks = yield* appendSix(journal)
      const fromEnd = yield* puller(journal.follow(7), "follow(7)")
      const waiting = yield* Effect.forkChild(fromEnd.next)
      const fromStart = yield* Effect.forkChild(followTo(journal, 0, 20))
      yield* turns(2)
      yield* journal.setCheckpoint(20)
      yield* turns(2)
      assertRunning(waiting, "follow(7) after setCheckpoint(20)")
      yield* appendLogged(journal, acks, followStream("a"), 1, "after the gap")
      assert.deepEqual((yield* within("follow(7)", Fiber.join(waiting))).map(label), ["#20 a@4"])
      assertDelivered("follow(0)", yield* within("follow(0)", Fiber.join(fromStart)), expectedFrom(acks, 0))
    })),

  followCase("followers starting at random moments while writers race each other see gap-free, duplicate-free runs equal to replayFrom", (journal) =>
    Effect.gen(function*() {
      const random = prng(20_260_917)
      const acks = acknowledged()
      const options = { writers: 4, appends: 40, eventsPer: (k: number) => 1 + (k % 3) }
      const total = totalOf(options)
      const followers = Array.from({ length: 10 }, (_, i) => ({ delay: Math.floor(random() * 40), pick: random(), i }))
      const started: Array<{ readonly from: number; readonly fiber: Fiber.Fiber<Array<JournalRecord>, unknown> }> = []
      yield* Effect.all([
        writeConcurrently(journal, acks, options),
        Effect.forEach(followers, ({ delay, pick, i }) =>
          Effect.gen(function*() {
            yield* turns(delay)
            const last = yield* journal.lastSeq
            // From the start, from inside the replay, from the exact end, from just past it.
            const from = Math.min(total, [0, 1, Math.floor(pick * last), last, last + 1, last + 2][i % 6]!)
            // In the case's scope: a child of this short-lived fiber would be interrupted when it ends.
            started.push({ from, fiber: yield* Effect.forkScoped(followTo(journal, from, total)) })
          }), { concurrency: "unbounded", discard: true })
      ], { concurrency: "unbounded", discard: true })
      assert.equal(acks.records.length, total)
      const replayed = (yield* Stream.runCollect(journal.replayFrom(0))).map(label)
      assert.deepEqual(replayed, expectedFrom(acks, 0), "replayFrom(0) after the writers differs from what was acknowledged")
      for (const { from, fiber } of started) {
        const got = yield* within(`follow(${from})`, Fiber.join(fiber))
        assertDelivered(`follow(${from})`, got, (yield* Stream.runCollect(journal.replayFrom(from))).map(label))
      }
    })),

  followCase("20 followers at once all get the same sequence, the one that was appended", (journal) =>
    Effect.gen(function*() {
      const acks = yield* appendSix(journal)
      const options = { writers: 3, appends: 20, eventsPer: (k: number) => 1 + (k % 2) }
      const total = 6 + totalOf(options)
      const fibers = yield* Effect.forEach(Array.from({ length: 20 }, () => 0), () => Effect.forkChild(followTo(journal, 0, total)))
      yield* writeConcurrently(journal, acks, options)
      assert.equal(acks.records.length, total)
      for (const [i, fiber] of fibers.entries()) {
        assertDelivered(`follower ${i}`, yield* within(`follower ${i}`, Fiber.join(fiber)), expectedFrom(acks, 0))
      }
    })),

  followCase("a slow follower (a pause between pulls) keeps up with thousands of records, in order", (journal) =>
    Effect.gen(function*() {
      const acks = yield* appendSix(journal)
      const options = { writers: 4, appends: 60, eventsPer: () => 20 }
      const total = 6 + totalOf(options)
      const slow = yield* puller(journal.follow(1), "the slow follower")
      const got: Array<JournalRecord> = []
      const reading = yield* Effect.forkChild(Effect.gen(function*() {
        while ((got[got.length - 1]?.seq ?? 0) < total) {
          got.push(...yield* slow.next)
          yield* wallSleep(2)
        }
      }))
      yield* writeConcurrently(journal, acks, options)
      // Every pull is bounded already; the reading as a whole may take longer than one wait.
      yield* Fiber.join(reading)
      assertDelivered("the slow follower", got, expectedFrom(acks, 1))
    })),

  followCase("a paused follower holds nothing: records appended and truncated while it waits between pulls fail as truncated, none comes from memory", (journal) =>
    Effect.gen(function*() {
      const acks = yield* appendSix(journal)
      const paused = yield* puller(journal.follow(0), "the paused follower")
      const first = yield* paused.next
      assertDelivered("the first pull", first, expectedFrom(acks, 0).slice(0, first.length))
      const position = first[first.length - 1]!.seq + 1
      // Thousands of records while it does not pull: a follower that buffers them has them by now.
      yield* writeConcurrently(journal, acks, { writers: 4, appends: 25, eventsPer: () => 20 })
      yield* turns(5)
      const end = yield* journal.lastSeq
      assert.equal(end, 6 + 2000)
      yield* journal.truncateBefore(end + 1)
      const error = yield* expectError(paused.next, "JournalTruncated", `seq ${position}`, `seq ${end + 1}`)
      assert.deepEqual({ fromSeq: error.fromSeq, truncatedBefore: error.truncatedBefore }, { fromSeq: position, truncatedBefore: end + 1 })
    })),

  followCase("never a record before its append returned: every delivered seq was acknowledged first", (journal) =>
    Effect.gen(function*() {
      const acks = acknowledged()
      const early: Array<number> = []
      const options = { writers: 6, appends: 15, eventsPer: (k: number) => 1 + (k % 2) }
      const total = totalOf(options)
      const fibers = yield* Effect.forEach([0, 0, 1], (from) =>
        Effect.forkChild(Stream.runCollect(Stream.takeUntil(
          Stream.tap(journal.follow(from), (r) => Effect.sync(() => void (acks.seqs.has(r.seq) || early.push(r.seq)))),
          (r) => r.seq >= total
        ))))
      yield* writeConcurrently(journal, acks, options)
      for (const fiber of fibers) assertDelivered("a follower", Array.from(yield* within("a follower", Fiber.join(fiber))), expectedFrom(acks, 0))
      assert.deepEqual(early, [], `followers delivered seqs ${early.slice(0, 5).join(", ")} before their appends returned`)
    })),

  followCase("a follower whose handler appends: every append still returns its own seqs, and seqs stay unique", (journal) =>
    Effect.gen(function*() {
      const acks = acknowledged()
      const echoes = acknowledged()
      const rounds = 30
      // For every record of stream "src", the handler appends one record to stream "echo".
      const echo = yield* Effect.forkChild(Stream.runForEach(
        Stream.filter(journal.follow(0), (r) => r.id === "src"),
        (r) => appendLogged(journal, echoes, followStream("echo"), 1, `echo of ${r.seq}`)
      ))
      for (let i = 0; i < rounds; i++) {
        // Two appends in one step, so that one of them may find the other's records in flight.
        yield* Effect.all([
          appendLogged(journal, acks, followStream("src"), 1, `src.${i}`),
          appendLogged(journal, acks, followStream("other"), 2, `other.${i}`)
        ], { concurrency: "unbounded", discard: true })
        // The echoing follower catches up and waits again before the next round wakes it.
        yield* turns(1)
      }
      yield* within("the echoes", Effect.gen(function*() {
        while (echoes.records.length < rounds) {
          assertRunning(echo, "the echoing follower")
          yield* wallSleep(1)
        }
      }))
      yield* Fiber.interrupt(echo)
      const all = [...acks.records, ...echoes.records].sort((a, b) => a.seq - b.seq)
      assert.equal(new Set(all.map((r) => r.seq)).size, all.length, "two acknowledged appends were given the same seq (an append returned seqs of the one its follower made inside it, or the journal assigned a seq twice)")
      assert.deepEqual((yield* Stream.runCollect(journal.replayFrom(0))).map(label), all.map(label))
    })),

  followCase("a writer appending in a tight loop does not starve its follower: each record reaches it within a few appends", (journal) =>
    Effect.gen(function*() {
      const acks = acknowledged()
      const appends = 300
      // For each record: how many appends had returned when the follower got it, past the record's own.
      const behind: Array<number> = []
      const follower = yield* Effect.forkChild(Stream.runForEach(
        Stream.take(journal.follow(1), appends),
        (r) => Effect.sync(() => void behind.push(acks.records.length - r.seq))
      ))
      yield* turns(1)
      for (let i = 0; i < appends; i++) yield* appendLogged(journal, acks, followStream("tight"), 1, `tight.${i}`)
      yield* within("the follower", Fiber.join(follower))
      assert.equal(behind.length, appends)
      // A starving writer runs on for the scheduler's budget (~80 appends) before its follower gets a
      // turn, again and again: the typical lag is most of that (a median of 75 measured without the
      // yield). A follower that reads over the network, or a machine busy with other test processes,
      // lags by up to a few dozen appends now and then (a median of 35 seen once under a full CI run
      // with microsecond "interval" appends), so the bound sits between the two.
      const sorted = [...behind].sort((a, b) => a - b)
      const typical = sorted[Math.floor(sorted.length / 2)]!
      assert.ok(typical <= 55, `the follower typically got a record ${typical} appends after it had returned (worst ${sorted.at(-1)}): starved by the writer`)
    })),

  ...journalFollowEdgeCases
]
