/**
 * Mutation tests of the `Journal.follow` conformance cases: each deliberately broken follow below,
 * built by wrapping a correct memory journal, must fail the case written to catch it, and the
 * wrapper with nothing broken must fail none.
 */
import { Effect, Exit, Layer, Option, Stream } from "effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import { Journal } from "../src/index.ts"
import { type Case, failingCases, type Fixture, runCase } from "./conformance/harness.ts"
import type { JournalStorage } from "./conformance/Journal.ts"
import { journalFollowCases } from "./conformance/JournalFollow.ts"
import { wallSleep } from "./conformance/followSupport.ts"

type Service = Journal.Journal

const mutant = (name: string, mutate: (journal: Service) => Partial<Service>): Fixture<JournalStorage> => ({
  name,
  durable: false,
  storage: Effect.succeed({
    layer: Layer.effect(Journal.Journal, Effect.map(Journal.makeMemory, (journal) => ({ ...journal, ...mutate(journal) })))
  })
})

const caseNamed = (prefix: string): Case<JournalStorage> => {
  const found = journalFollowCases.find((c) => c.name.startsWith(prefix))
  assert.ok(found !== undefined, `no follow case starts with "${prefix}"`)
  return found
}

/** The replay, then the live records from a `lastSeq` read a moment after the replay ended. */
const lateSwitch = (j: Service): Partial<Service> => ({
  follow: (from) =>
    Stream.concat(
      j.replayFrom(from),
      Stream.unwrap(Effect.map(Effect.andThen(wallSleep(1), j.lastSeq), (last) => j.follow(Math.max(from, last + 1))))
    )
})

/** The replay, then live records from the last replayed seq again (inclusive). */
const repeatsTheSwitch = (j: Service): Partial<Service> => ({
  follow: (from) =>
    Stream.unwrap(Effect.map(Stream.runCollect(j.replayFrom(from)), (replayed) =>
      Stream.concat(Stream.fromArray(replayed), j.follow(replayed[replayed.length - 1]?.seq ?? from))))
})

/** Pages of `replayFrom`, and at the end `wait` before looking again. */
const rereads = (wait: Effect.Effect<void>) => (j: Service): Partial<Service> => ({
  follow: (from) =>
    Stream.paginate(from, (seq) =>
      Effect.flatMap(Stream.runCollect(Stream.take(j.replayFrom(seq), 100)), (records) =>
        Effect.as(
          records.length > 0 ? Effect.void : wait,
          [records, Option.some(records.length > 0 ? records[records.length - 1]!.seq + 1 : seq)] as const
        )))
})

/** On `JournalTruncated`, goes on from the truncation point as if nothing had happened. */
const skipsTruncated = (j: Service): Partial<Service> => {
  const follow: Service["follow"] = (from) =>
    Stream.catchTag(j.follow(from), "JournalTruncated", (error) => follow(error.truncatedBefore))
  return { follow }
}

/** A correct follow read ahead into an unbounded buffer: it holds whatever was appended while its consumer paused. */
const buffers = (j: Service): Partial<Service> => ({
  follow: (from) => Stream.buffer(j.follow(from), { capacity: "unbounded" })
})

const mutants: ReadonlyArray<readonly [Fixture<JournalStorage>, Case<JournalStorage>]> = [
  [mutant("skips the records appended while it switches from replay to live", lateSwitch), caseNamed("followers starting at random moments")],
  [mutant("delivers the last replayed record twice", repeatsTheSwitch), caseNamed("follow from 0, 1, the middle")],
  [mutant("polls on a timer of Effect's clock", rereads(Effect.sleep("10 millis"))), caseNamed("follow from 0, 1, the middle")],
  [mutant("re-reads the log in a loop while it waits", rereads(Effect.yieldNow)), caseNamed("waiting followers cost no CPU")],
  [mutant("skips truncated records silently", skipsTruncated), caseNamed("follow from below the truncation point")],
  [mutant("buffers ahead of its consumer", buffers), caseNamed("a paused follower holds nothing")]
]

test("Journal follow suite: the wrapper with nothing broken fails no case", async () => {
  assert.deepEqual(await failingCases(mutant("unchanged", () => ({})), journalFollowCases), [])
})

for (const [fixture, catcher] of mutants) {
  test(`Journal follow suite: a follow that ${fixture.name} fails "${catcher.name}"`, async () => {
    const exit = await runCase(fixture, catcher)
    assert.ok(Exit.isFailure(exit), `the case passed against a follow that ${fixture.name}`)
  })
}
