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
import { journalInFlightCases } from "./conformance/JournalInFlight.ts"

type Service = Journal.Journal

const mutant = (name: string, mutate: (journal: Service) => Partial<Service>) => ({
  name,
  durable: false,
  storage: Effect.succeed({
    layer: Layer.effect(Journal.Journal, Effect.map(Journal.makeMemory, (journal) => ({ ...journal, ...mutate(journal) })))
  })
})

/**
 * A journal with appends in flight, like a durable layer waiting for its flush: an append is stored
 * at once (so `lastSeq`, `version` and `truncateBefore` count it) but acknowledged, and shown by
 * `read` / `replayFrom` / `replayUntil`, only a moment later (real time: the cases run under a TestClock).
 */
const unsettledCounted = (j: Service): Partial<Service> => {
  const inFlight = new Set<number>()
  const visible = (record: Journal.JournalRecord) => !inFlight.has(record.seq)
  return {
    append: (stream, expected, events) =>
      Effect.gen(function*() {
        const result = yield* j.append(stream, expected, events)
        for (let seq = result.firstSeq; seq <= result.lastSeq; seq++) inFlight.add(seq)
        yield* Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 1)))
        for (let seq = result.firstSeq; seq <= result.lastSeq; seq++) inFlight.delete(seq)
        return result
      }),
    read: (stream, options) => Stream.filter(j.read(stream, options), visible),
    replayFrom: (seq) => Stream.filter(j.replayFrom(seq), visible),
    replayUntil: (seq, until) => Stream.filter(j.replayUntil(seq, until), visible)
  }
}

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
  mutant("lastSeq, version and truncateBefore count appends still in flight (read and replays do not)", unsettledCounted),
  mutant("version counts appends still in flight (read does not)", (j) => ({
    ...unsettledCounted(j),
    replayFrom: j.replayFrom,
    replayUntil: j.replayUntil
  })),
  mutant("metadata loses a \"__proto__\" key (msgpackr renames it)", (j) => ({
    read: (stream, options) =>
      Stream.map(j.read(stream, options), (r) =>
        r.metadata === undefined || !Object.hasOwn(r.metadata, "__proto__")
          ? r
          : { ...r, metadata: Object.fromEntries(Object.entries(r.metadata).map(([k, v]) => [k === "__proto__" ? "__proto_" : k, v])) })
  })),
  mutant("append accepts any object as metadata", (j) => ({
    append: (stream, expected, events) =>
      j.append(stream, expected, Array.isArray(events) ? events.map((e) => e?.metadata instanceof Map ? { type: e.type, payload: e.payload } : e) : events)
  })),
  mutant("append assigns seqs beyond MAX_SAFE_INTEGER", (j) => ({
    append: (stream, expected, events) =>
      Effect.flatMap(j.lastSeq, (last) => last === Number.MAX_SAFE_INTEGER
        ? Effect.succeed({ firstSeq: last + 1, lastSeq: last + events.length, version: 0, timestamp: 0 })
        : j.append(stream, expected, events))
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

test("Journal suite: the in-flight cases catch a journal whose lastSeq, version and truncateBefore count unsettled appends", async () => {
  const failed = await failingCases(mutant("unsettled appends counted", unsettledCounted), journalInFlightCases)
  assert.deepEqual(failed, journalInFlightCases.map((c) => c.name), "every in-flight case must catch it")
})
