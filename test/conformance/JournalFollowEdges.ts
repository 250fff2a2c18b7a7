/**
 * `Journal.follow` at its edges (DESIGN §2): truncated history fails with `JournalTruncated` naming
 * both seqs — at the start, while a follower lags behind a cut, and after a reopen — and is never
 * skipped, while a follower at or past the cut goes on (also when the cut lies past the end of the
 * log: the seqs up to it never existed); bad `fromSeq`s fail with a `JournalError`; interrupted
 * followers leave the others and the journal working; a durable journal that closes fails its
 * followers instead of leaving them hanging; a restore wakes a waiting follower. Part of
 * `journalFollowCases`.
 */
import { Effect, Exit, Fiber, Scope, Stream } from "effect"
import assert from "node:assert/strict"
import { Journal } from "../../src/Journal.ts"
import {
  type Acknowledged,
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
  turns,
  within
} from "./followSupport.ts"
import { type Case, expectError, open } from "./harness.ts"
import type { JournalStorage } from "./Journal.ts"

type Service = Journal


/** Appends `n` single-event records to stream `id`, logging them in `acks`. */
const appendN = (journal: Service, acks: Acknowledged, id: string, n: number) =>
  Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) => appendLogged(journal, acks, followStream(id), 1, `${id}.${i}`), {
    discard: true
  })

/** Asserts that following from `fromSeq` fails at once with `JournalTruncated { fromSeq, truncatedBefore }`. */
const expectTruncated = (journal: Service, fromSeq: number, truncatedBefore: number) =>
  Effect.gen(function*() {
    const error = yield* expectError(
      within(`follow(${fromSeq})`, Stream.runCollect(Stream.take(journal.follow(fromSeq), 1))),
      "JournalTruncated",
      `seq ${fromSeq}`,
      `seq ${truncatedBefore}`
    )
    assert.deepEqual({ method: error.method, fromSeq: error.fromSeq, truncatedBefore: error.truncatedBefore }, {
      method: "follow",
      fromSeq,
      truncatedBefore
    })
  })

/** The edge cases; part of `journalFollowCases`. */
export const journalFollowEdgeCases: ReadonlyArray<Case<JournalStorage>> = [
  followCase("follow from below the truncation point fails with JournalTruncated naming fromSeq and truncatedBefore; from the cut on it works", (journal) =>
    Effect.gen(function*() {
      const acks = acknowledged()
      yield* appendN(journal, acks, "a", 10)
      yield* journal.truncateBefore(6)
      for (const from of [0, 1, 5]) yield* expectTruncated(journal, from, 6)
      const starts = [6, 8, 11]
      const followers = yield* Effect.forEach(starts, (from) => Effect.forkChild(followTo(journal, from, 11)))
      yield* turns(2)
      starts.forEach((from, i) => assertRunning(followers[i]!, `follow(${from}) on a journal at seq 10`))
      yield* appendN(journal, acks, "b", 1)
      for (const [i, from] of starts.entries()) {
        assertDelivered(`follow(${from})`, yield* within(`follow(${from})`, Fiber.join(followers[i]!)), expectedFrom(acks, from))
      }
    })),

  followCase("follow(0) and follow(1) on a journal truncated before 1 lose nothing: nothing was removed", (journal) =>
    Effect.gen(function*() {
      const acks = acknowledged()
      yield* appendN(journal, acks, "a", 3)
      yield* journal.truncateBefore(1)
      for (const from of [0, 1]) {
        assertDelivered(`follow(${from})`, yield* within(`follow(${from})`, followTo(journal, from, 3)), expectedFrom(acks, 1))
      }
    })),

  followCase("truncateBefore while followers wait: one behind the cut fails with JournalTruncated (never skips), ones at or past the cut go on", (journal) =>
    Effect.gen(function*() {
      const acks = acknowledged()
      yield* appendN(journal, acks, "a", 5)
      const behind = yield* puller(journal.follow(0), "the follower behind the cut")
      assert.deepEqual((yield* behind.upTo(5)).map(label), expectedFrom(acks, 0))
      yield* appendN(journal, acks, "a", 5)
      const atCut = yield* puller(journal.follow(0), "the follower at the cut")
      assert.deepEqual((yield* atCut.upTo(10)).map(label), expectedFrom(acks, 0))
      const past = yield* puller(journal.follow(15), "the follower past the cut")
      const pastFirst = yield* Effect.forkChild(past.upTo(20))
      yield* appendN(journal, acks, "b", 10)
      yield* journal.truncateBefore(11)
      // It had reached seq 6: records 6..10 are gone, and it must say so rather than go on at 11.
      const error = yield* expectError(behind.next, "JournalTruncated", "seq 6", "seq 11")
      assert.deepEqual({ fromSeq: error.fromSeq, truncatedBefore: error.truncatedBefore }, { fromSeq: 6, truncatedBefore: 11 })
      assert.deepEqual((yield* atCut.upTo(20)).map(label), expectedFrom(acks, 11))
      assert.deepEqual((yield* within("the follower past the cut", Fiber.join(pastFirst))).map(label), expectedFrom(acks, 15))
      yield* appendN(journal, acks, "c", 1)
      assert.deepEqual((yield* atCut.next).map(label), ["#21 c@1"])
      assert.deepEqual((yield* past.next).map(label), ["#21 c@1"])
      yield* expectTruncated(journal, 10, 11)
      assert.deepEqual((yield* within("follow(11)", followTo(journal, 11, 21))).map(label), expectedFrom(acks, 11))
    })),

  followCase("truncateBefore past the end while a follower waits at the end removes nothing it would see: it gets the next record", (journal) =>
    Effect.gen(function*() {
      const acks = acknowledged()
      yield* appendN(journal, acks, "a", 5)
      const atEnd = yield* puller(journal.follow(6), "the follower at the end")
      const waiting = yield* Effect.forkChild(atEnd.next)
      yield* turns(2)
      yield* journal.truncateBefore(50)
      yield* turns(2)
      assertRunning(waiting, "the follower at the end after truncateBefore(50)")
      yield* appendN(journal, acks, "a", 1)
      assert.deepEqual((yield* within("the follower at the end", Fiber.join(waiting))).map(label), ["#50 a@6"])
      // Seqs 6..49 never existed: following from there loses nothing either.
      assert.deepEqual((yield* within("follow(6)", followTo(journal, 6, 50))).map(label), ["#50 a@6"])
      yield* expectTruncated(journal, 5, 50)
    })),

  {
    name: "after a reopen, truncation is remembered: below the cut fails, from the end of what existed a follower goes on",
    durableOnly: true,
    run: (storage) =>
      Effect.gen(function*() {
        const acks = acknowledged()
        yield* Effect.scoped(Effect.gen(function*() {
          const journal = yield* open(Journal, storage.layer)
          yield* appendN(journal, acks, "a", 5)
          yield* journal.truncateBefore(3)
          yield* journal.truncateBefore(50)
        }))
        const journal = yield* open(Journal, storage.layer)
        for (const from of [0, 2, 5]) yield* expectTruncated(journal, from, 50)
        const follower = yield* Effect.forkChild(followTo(journal, 6, 50))
        yield* turns(2)
        assertRunning(follower, "follow(6) after the reopen")
        yield* appendN(journal, acks, "a", 1)
        assert.deepEqual((yield* within("follow(6)", Fiber.join(follower))).map(label), ["#50 a@6"])
      })
  },

  followCase("a bad fromSeq (negative, fractional, NaN, infinite, unsafe) fails with a JournalError naming it", (journal) =>
    Effect.gen(function*() {
      yield* appendN(journal, acknowledged(), "a", 2)
      for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER + 1]) {
        yield* expectError(within(`follow(${bad})`, Stream.runCollect(Stream.take(journal.follow(bad), 1))), "JournalError", "fromSeq", String(bad))
      }
    })),

  followCase("interrupting many followers (waiting, and woken at that moment) leaves the others and the journal working for later followers", (journal) =>
    Effect.gen(function*() {
      const acks = acknowledged()
      yield* appendN(journal, acks, "a", 3)
      const waiting = yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => i % 4), (from) =>
        Effect.forkChild(Stream.runDrain(journal.follow(from))))
      // Waiting alongside them all along, and never interrupted.
      const survivors = yield* Effect.forEach([0, 2, 4], (from) => Effect.forkChild(followTo(journal, from, 6)))
      yield* turns(2)
      yield* within("interrupting 10 waiting followers", Fiber.interruptAll(waiting.slice(0, 10)))
      // The other ten are interrupted while this append wakes them.
      yield* appendN(journal, acks, "a", 1)
      yield* within("interrupting 10 woken followers", Fiber.interruptAll(waiting.slice(10)))
      for (const fiber of waiting) assert.ok(Exit.hasInterrupts(fiber.pollUnsafe()!), "a follower was not interrupted")
      const later = yield* Effect.forkChild(followTo(journal, 0, 6))
      yield* appendN(journal, acks, "b", 2)
      assertDelivered("a later follower", yield* within("a later follower", Fiber.join(later)), expectedFrom(acks, 0))
      for (const [i, from] of [0, 2, 4].entries()) {
        assertDelivered(`the follower from ${from} that was not interrupted`, yield* within(`follow(${from})`, Fiber.join(survivors[i]!)), expectedFrom(acks, from))
      }
      assert.deepEqual((yield* Stream.runCollect(journal.replayFrom(0))).map(label), expectedFrom(acks, 0))
    })),

  {
    name: "closing a durable journal while followers wait fails them with a JournalError instead of leaving them hanging",
    durableOnly: true,
    run: (storage) =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const journal = yield* Scope.provide(scope)(open(Journal, storage.layer))
        yield* appendN(journal, acknowledged(), "a", 2)
        const followers = yield* Effect.forEach([0, 3, 10], (from) => Effect.forkChild(Stream.runDrain(journal.follow(from))))
        // And one between two pulls, not waiting: its next pull finds the journal closed.
        const paused = yield* puller(journal.follow(0), "the paused follower")
        assert.deepEqual((yield* paused.upTo(2)).map(label), ["#1 a@1", "#2 a@2"])
        yield* turns(2)
        followers.forEach((fiber, i) => assertRunning(fiber, `follower ${i} before the close`))
        yield* within("closing the journal", Scope.close(scope, Exit.void))
        for (const [i, fiber] of followers.entries()) {
          yield* expectError(within(`follower ${i} after the close`, Fiber.join(fiber)), "JournalError", "closed")
        }
        yield* expectError(paused.next, "JournalError", "closed")
        yield* expectError(within("follow after the close", Stream.runDrain(journal.follow(0))), "JournalError", "closed")
      })
  },

  followCase("a follower waiting on an empty journal sees restored records (gaps kept) as the restore returns, then appends", (journal) =>
    Effect.gen(function*() {
      const follower = yield* puller(journal.follow(0), "follow(0)")
      const first = yield* Effect.forkChild(follower.upTo(12))
      yield* turns(2)
      assertRunning(first, "follow(0) on an empty journal")
      const restored = [
        { seq: 3, id: "r", version: 1 },
        { seq: 4, id: "q", version: 7 },
        { seq: 9, id: "r", version: 2 },
        { seq: 12, id: "q", version: 8 }
      ]
      yield* journal.restore(restored.map((r) => ({
        ...r,
        namespace: "follow",
        type: "Restored",
        timestamp: r.seq,
        payload: new Uint8Array([r.seq])
      })))
      assert.deepEqual((yield* within("follow(0) after the restore", Fiber.join(first))).map(label), restored.map(label))
      yield* appendLogged(journal, acknowledged(), followStream("r"), 1, "after restore")
      assert.deepEqual((yield* follower.next).map(label), ["#13 r@3"])
    }))
]
