/**
 * Mutation tests of the Journal conformance suite itself: each deliberately broken journal below
 * must fail at least one case, or the suite would not catch that bug in a real layer.
 */
import { Effect, Layer, Stream } from "effect"
import assert from "node:assert/strict"
import { test } from "node:test"
import { Journal } from "../src/index.ts"
import { failingCases } from "./conformance/harness.ts"
import { journalCases } from "./conformance/Journal.ts"

type Service = Journal.Journal

const mutant = (name: string, mutate: (journal: Service) => Partial<Service>) => ({
  name,
  durable: false,
  storage: Effect.succeed({
    layer: Layer.effect(Journal.Journal, Effect.map(Journal.makeMemory, (journal) => ({ ...journal, ...mutate(journal) })))
  })
})

const mutants = [
  mutant("read drops the last record", (j) => ({
    read: (stream, options) =>
      Stream.unwrap(Effect.map(Stream.runCollect(j.read(stream, options)), (rs) => Stream.fromArray(rs.slice(0, -1))))
  })),
  mutant("append ignores the expected version", (j) => ({ append: (stream, _, events) => j.append(stream, "any", events) })),
  mutant("append checks the version, then yields, then writes (a race)", (j) => ({
    append: (stream, expected, events) =>
      Effect.gen(function*() {
        const current = yield* j.version(stream)
        if (expected !== "any" && expected !== current) {
          return yield* new Journal.VersionConflict({ stream, expected, actual: current })
        }
        yield* Effect.yieldNow
        return yield* j.append(stream, "any", events)
      })
  })),
  mutant("append stores the events before an invalid one", (j) => ({
    append: (stream, expected, events) =>
      Effect.gen(function*() {
        let result = yield* j.append(stream, expected, events.slice(0, 1))
        for (const e of events.slice(1)) result = yield* j.append(stream, "any", [e])
        return result
      })
  })),
  mutant("read treats `to` as exclusive", (j) => ({
    read: (stream, options) =>
      j.read(stream, options?.to === undefined ? options : { ...options, to: Math.max(0, options.to - 1) })
  })),
  mutant("read ignores `max`", (j) => ({ read: (stream, options) => j.read(stream, { ...options, max: undefined }) })),
  mutant("replayFrom is exclusive", (j) => ({ replayFrom: (seq) => j.replayFrom(seq + 1) })),
  mutant("replayFrom stops at the first gap in seq", (j) => ({
    replayFrom: (seq) =>
      Stream.unwrap(Effect.map(Stream.runCollect(j.replayFrom(seq)), (rs) => {
        const out = rs.slice(0, 1)
        for (const r of rs.slice(1)) {
          if (r.seq !== out[out.length - 1]!.seq + 1) break
          out.push(r)
        }
        return Stream.fromArray(out)
      }))
  })),
  mutant("replayUntil excludes equal timestamps", (j) => ({ replayUntil: (from, until) => j.replayUntil(from, until - 1) })),
  mutant("truncateBefore removes one record too many", (j) => ({ truncateBefore: (seq) => j.truncateBefore(seq + 1) })),
  mutant("truncateBefore does not advance the checkpoint", (j) => {
    let checkpoint = 0
    return {
      truncateBefore: (seq) => j.truncateBefore(seq),
      checkpoint: Effect.sync(() => checkpoint),
      setCheckpoint: (seq) => Effect.sync(() => void (checkpoint = Math.max(checkpoint, seq)))
    }
  }),
  mutant("setCheckpoint can move the checkpoint back", (j) => {
    let checkpoint: number | undefined
    return {
      checkpoint: Effect.suspend(() => checkpoint === undefined ? j.checkpoint : Effect.succeed(checkpoint)),
      setCheckpoint: (seq) => Effect.andThen(j.setCheckpoint(seq), Effect.sync(() => void (checkpoint = seq)))
    }
  }),
  mutant("version counts the records still present", (j) => ({
    version: (stream) => Effect.map(Stream.runCollect(j.read(stream)), (rs) => rs.length)
  })),
  mutant("lastSeq is the seq of the last record still present", (j) => ({
    lastSeq: Effect.map(Stream.runCollect(j.replayFrom(0)), (rs) => rs[rs.length - 1]?.seq ?? 0)
  })),
  mutant("restore drops metadata", (j) => ({
    restore: (records) => j.restore(Array.from(records, ({ metadata: _, ...rest }) => rest))
  })),
  mutant("restore renumbers seqs densely", (j) => ({
    restore: (records) =>
      Effect.flatMap(j.lastSeq, (last) => j.restore(Array.from(records, (r, i) => ({ ...r, seq: last + i + 1 }))))
  }))
]

test("Journal suite: every deliberately broken journal fails at least one case", async () => {
  const survivors: Array<string> = []
  for (const fixture of mutants) {
    const failed = await failingCases(fixture, journalCases)
    if (failed.length === 0) survivors.push(fixture.name)
  }
  assert.deepEqual(survivors, [], `mutants the suite does not catch: ${survivors.join("; ")}`)
})
