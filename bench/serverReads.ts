/**
 * The `read` and `replay` groups of the server benchmarks (bench/redis.ts, bench/nats.ts), written
 * once: each builds its data through the Journal, then times the Journal's read against the
 * bench's raw read of the same data in interleaved rounds, and reports `<name>_read_…` or
 * `<name>_replay_…` figures.
 */
import { Effect, Stream } from "effect"
import type { Journal } from "../src/Journal.ts"
import { type JournalWriter, journalWriter, streamRef } from "./fixtures.ts"
import { benchRounds, interleaved, median, rate, rateRatio, report, sizeFromEnv, timed } from "./report.ts"

/** Events per append when a group builds its stream or its log. */
const BULK = 1_000
/** Streams the replay group's log is built from. */
const STREAMS = 100

/** Fails unless `what` returned `count` records where `expected` were due. */
export const check = (group: string, what: string, count: number, expected: number): void => {
  if (count !== expected) throw new Error(`${group}: ${what} returned ${count} records, expected ${expected}`)
}

/** `total` events appended to stream `writer` in appends of up to BULK. */
const fill = (writer: JournalWriter, total: number) =>
  Effect.andThen(writer(Math.floor(total / BULK), BULK), total % BULK === 0 ? Effect.void : writer(1, total % BULK))

/** A group's options: the figures' prefix, the Journal, and the raw read (resolving with the records it decoded). */
export interface ReadGroup {
  readonly name: string
  readonly journal: Journal
  /** What the raw read is, for the error when its count is wrong. */
  readonly rawWhat: string
}

/**
 * `read` of one stream of ANNALS_BENCH_EVENTS events (default 10,000) against `raw(id)`, the raw
 * read of that stream, in 4 × ROUNDS rounds: `<name>_read_ms` (target ≤ `targetMs`), `_raw_ms` and
 * `_ratio_to_raw` = time(read) / time(raw).
 */
export const readGroup = async (options: ReadGroup & { readonly targetMs: number; readonly raw: (id: string) => Promise<number> }) => {
  const { name, journal } = options
  const EVENTS = sizeFromEnv("ANNALS_BENCH_EVENTS", 10_000)
  const id = "read"
  await Effect.runPromise(fill(journalWriter(journal, id), EVENTS))
  const seconds = await interleaved({
    annals: async () => check("read", "read", (await Effect.runPromise(Stream.runCollect(journal.read(streamRef(id))))).length, EVENTS),
    raw: async () => check("read", options.rawWhat, await options.raw(id), EVENTS)
  }, { rounds: benchRounds() * 4 })
  report({ bench: `${name}_read_events`, value: EVENTS, unit: "events" })
  report({ bench: `${name}_read_ms`, value: median(seconds.annals) * 1000, unit: "ms", target: { max: options.targetMs } })
  report({ bench: `${name}_read_raw_ms`, value: median(seconds.raw) * 1000, unit: "ms" })
  report({ bench: `${name}_read_ratio_to_raw`, value: median(seconds.annals.map((s, r) => s / seconds.raw[r]!)), unit: "ratio" })
}

/**
 * `replayFrom(1)` to the end over ANNALS_BENCH_RECORDS records (default 1,000,000, built by appends
 * of up to BULK events to STREAMS streams, 4 at a time: `<name>_replay_build_seconds`), with a
 * handler that only counts, against `raw()`, the raw read of the whole log: `<name>_replay_records_per_s`
 * (target ≥ 200,000), `_raw_records_per_s` and `_ratio_to_raw`.
 */
export const replayGroup = async (options: ReadGroup & { readonly raw: () => Promise<number> }) => {
  const { name, journal } = options
  const RECORDS = sizeFromEnv("ANNALS_BENCH_RECORDS", 1_000_000)
  const streams = Array.from({ length: STREAMS }, (_, s) => journalWriter(journal, `acct-${s}`))
  const build = await timed(() =>
    Effect.runPromise(Effect.forEach(streams, (writer, s) => fill(writer, Math.floor(RECORDS / STREAMS) + (s < RECORDS % STREAMS ? 1 : 0)), {
      concurrency: 4,
      discard: true
    }))
  )
  report({ bench: `${name}_replay_records`, value: RECORDS, unit: "records" })
  report({ bench: `${name}_replay_build_seconds`, value: build, unit: "s" })
  const seconds = await interleaved({
    annals: () =>
      Effect.runPromise(Effect.gen(function*() {
        let count = 0
        yield* Stream.runForEachArray(journal.replayFrom(1), (chunk) =>
          Effect.sync(() => {
            count += chunk.length
          }))
        check("replay", "replayFrom(1)", count, RECORDS)
      })),
    raw: async () => check("replay", options.rawWhat, await options.raw(), RECORDS)
  })
  report({ bench: `${name}_replay_records_per_s`, value: rate(RECORDS, seconds.annals), unit: "records/s", target: { min: 200_000 } })
  report({ bench: `${name}_replay_raw_records_per_s`, value: rate(RECORDS, seconds.raw), unit: "records/s" })
  report({ bench: `${name}_replay_ratio_to_raw`, value: rateRatio(seconds.annals, seconds.raw), unit: "ratio" })
}
