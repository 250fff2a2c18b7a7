/**
 * Subscription benchmark: how fast a Subscription catches up over a large file journal, next to the
 * journal's own replay in the same process, and how soon a following Subscription sees a durable
 * append. Prints one JSON line per figure on stdout:
 *
 *   {"bench":"...","runtime":"bun|deno|node","value":…,"unit":"…","target":…,"met":true|false}
 *
 * Groups (each meant for a fresh process):
 *
 *   catchup  builds a journal of ANNALS_BENCH_RECORDS records (default 1,000,000, a multiple of
 *            10,000; the large mixed journal of bench/file.ts, built "os", reopened "always"), then
 *            runs interleaved rounds (median of 5 after a warm-up) of:
 *            - catchup_replay_from_1_records_per_s: the raw baseline, the journal's `replayFrom(1)`
 *              run with `Stream.runForEachArray` and a handler that only counts;
 *            - catchup_follow_from_1_records_per_s: the journal's `follow(1)` up to the last record,
 *              the same way (what a subscription reads through), for context;
 *            - catchup_subscription_{memory,file}_cursors_records_per_s: a new Subscription with a
 *              handler that only counts, from no cursor until `awaitCaughtUp` returns (which waits
 *              for the commit of the last record), default batches (1,000 records, no wait), on the
 *              memory CursorStore and on the file CursorStore (a new directory each round; its open
 *              is not timed); _ratio_to_replay: that rate over the replay's, target ≥ 0.8;
 *              _commits: the commits it made until caught up (counted by a wrapping CursorStore);
 *              _handler_calls: its batches; _first_commit_stored_at: when the first commit had been
 *              stored, as a fraction of the catch-up's time (near 1: nothing was stored until the end);
 *            - catchup_commit_cost_file_vs_memory = 1 − rate(file) / rate(memory), target ≤ 0.05
 *              (negative when the file rounds happened to run faster).
 *   live     one writer makes ANNALS_BENCH_APPENDS (default 3,000) single-event appends one after
 *            another, after 500 warm-up appends, to a new file journal with durability "always",
 *            while a Subscription (default batches, memory CursorStore) follows it. For each seq:
 *            when its append was started, when it returned (acknowledged) and when the handler got
 *            it (performance.now(), one process). Run twice: `live_…` with the writer in a tight
 *            loop, `live_yielding_writer_…` with an `Effect.yieldNow` after each append (as a writer
 *            that waits for its next request lets other fibers run):
 *            - _handler_after_ack_p50_ms ≤ 0.5 and _p99_ms ≤ 2: handler − ack (negative when the
 *              follower, woken when the record became visible, ran before the appending fiber
 *              resumed); _handler_before_ack_count: how many of them were negative;
 *            - _handler_after_append_start_p50_ms / _p99_ms and _append_p50_ms: handler − start and
 *              ack − start, for context (the fdatasync is most of an append);
 *            - _records_per_handler_call: how the records were batched.
 *
 *   bun bench/subscription.ts [groups…]
 *   deno run -A bench/subscription.ts [groups…]
 *   npx tsc -p tsconfig.node.json && node .build/node/bench/subscription.js [groups…]
 *   npm run bench -- subscription [groups…]   # all three runtimes, each group in a fresh process
 *   ANNALS_BENCH_RECORDS=100000 ANNALS_BENCH_APPENDS=500 bun bench/subscription.ts   # a quick run
 *
 * ANNALS_BENCH_DIR overrides the parent directory of the temporary directories (default os.tmpdir()).
 */
import { Effect, type Scope, Stream } from "effect"
import { join } from "node:path"
import { FileCursorStore } from "../src/file/index.ts"
import { CursorStore, Journal, Subscription } from "../src/index.ts"
import { buildLargeJournal, eventAt, makeTempDirs, openJournal, streamRef } from "./fixtures.ts"
import { median, percentile, report, runGroups, sizeFromEnv } from "./report.ts"

const temp = makeTempDirs()

/** A CursorStore that counts the commits made through it, and notes when the first one was stored (performance.now()). */
const countingCommits = (store: CursorStore.CursorStore) => {
  let commits = 0
  let firstStoredAt: number | undefined
  const counted: CursorStore.CursorStore = {
    ...store,
    commit: (name, seq, lease) =>
      Effect.suspend(() => {
        commits++
        return Effect.tap(store.commit(name, seq, lease), () =>
          Effect.sync(() => {
            firstStoredAt ??= performance.now()
          }))
      })
  }
  return { store: counted, commits: () => commits, firstStoredAt: () => firstStoredAt }
}

/** Provides `journal` and `cursors` to an effect. */
const provide = (journal: Journal.Journal, cursors: CursorStore.CursorStore) =>
<A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.provideService(Journal.Journal, journal), Effect.provideService(CursorStore.CursorStore, cursors))

// ─── 1. Catch-up over a large journal ─────────────────────────────────────────────────────────────
/** Seconds for the raw baseline: `replayFrom(1)` to its end, counting records. */
const replayRound = (journal: Journal.Journal, records: number) =>
  Effect.runPromise(Effect.gen(function*() {
    let count = 0
    const start = performance.now()
    yield* Stream.runForEachArray(journal.replayFrom(1), (chunk) =>
      Effect.sync(() => {
        count += chunk.length
      }))
    const seconds = (performance.now() - start) / 1000
    if (count !== records) throw new Error(`catchup: replayFrom(1) returned ${count} records, expected ${records}`)
    return seconds
  }))

/** Seconds for the journal's own `follow(1)` up to the last record: what a subscription reads through. */
const followRound = (journal: Journal.Journal, records: number) =>
  Effect.runPromise(Effect.gen(function*() {
    let count = 0
    const start = performance.now()
    yield* Stream.runForEachArray(Stream.take(journal.follow(1), records), (chunk) =>
      Effect.sync(() => {
        count += chunk.length
      }))
    const seconds = (performance.now() - start) / 1000
    if (count !== records) throw new Error(`catchup: follow(1) returned ${count} records, expected ${records}`)
    return seconds
  }))

/** One catch-up: a new Subscription from no cursor until `awaitCaughtUp`; its seconds, commits and handler calls. */
const subscriptionRound = <E>(
  journal: Journal.Journal,
  openCursors: Effect.Effect<CursorStore.CursorStore, E, Scope.Scope>,
  records: number
) => {
  const round = (cursors: ReturnType<typeof countingCommits>) =>
    Effect.gen(function*() {
      let count = 0
      let calls = 0
      const start = performance.now()
      const subscription = yield* Subscription.make({
        name: "catchup",
        handle: (batch) =>
          Effect.sync(() => {
            count += batch.length
            calls++
          })
      })
      const status = yield* subscription.awaitCaughtUp
      const seconds = (performance.now() - start) / 1000
      const commits = cursors.commits()
      const firstStored = ((cursors.firstStoredAt() ?? Number.NaN) - start) / 1000 / seconds
      if (count !== records || status.cursor !== records) {
        throw new Error(`catchup: the subscription handled ${count} records and committed ${status.cursor}, expected ${records}`)
      }
      return { seconds, commits, calls, firstStored }
    }).pipe(provide(journal, cursors.store))
  return Effect.runPromise(Effect.scoped(Effect.flatMap(openCursors, (store) => round(countingCommits(store)))))
}

const catchup = async () => {
  const RECORDS = sizeFromEnv("ANNALS_BENCH_RECORDS", 1_000_000)
  const ROUNDS = 5
  const directory = join(temp.make("catchup"), "journal")
  const buildSeconds = await buildLargeJournal(directory, { records: RECORDS, hotEvents: RECORDS / 100 })
  report({ bench: "catchup_build_seconds_os", value: buildSeconds, unit: "s" })
  const { journal, close } = await openJournal({ directory, durability: "always" })
  const memoryRound = () => subscriptionRound(journal, CursorStore.makeMemory, RECORDS)
  // A new directory each round, so that the subscription starts without a cursor.
  const fileRound = () => subscriptionRound(journal, FileCursorStore.make({ directory: temp.make("cursors") }), RECORDS)
  // Warm-up (and the page cache), then interleaved rounds so that a noisy stretch hits all alike.
  await replayRound(journal, RECORDS)
  await followRound(journal, RECORDS)
  await memoryRound()
  await fileRound()
  const replays: Array<number> = []
  const follows: Array<number> = []
  const memory: Array<Awaited<ReturnType<typeof memoryRound>>> = []
  const file: Array<Awaited<ReturnType<typeof fileRound>>> = []
  for (let r = 0; r < ROUNDS; r++) {
    replays.push(RECORDS / (await replayRound(journal, RECORDS)))
    follows.push(RECORDS / (await followRound(journal, RECORDS)))
    memory.push(await memoryRound())
    file.push(await fileRound())
  }
  await close()
  const replayRate = median(replays)
  const rateOf = (rounds: ReadonlyArray<{ readonly seconds: number }>) => median(rounds.map((round) => RECORDS / round.seconds))
  const memoryRate = rateOf(memory)
  const fileRate = rateOf(file)
  report({ bench: "catchup_records", value: RECORDS, unit: "records" })
  report({ bench: "catchup_replay_from_1_records_per_s", value: replayRate, unit: "records/s" })
  report({ bench: "catchup_follow_from_1_records_per_s", value: median(follows), unit: "records/s" })
  for (const [variant, rate, rounds] of [["memory", memoryRate, memory], ["file", fileRate, file]] as const) {
    report({ bench: `catchup_subscription_${variant}_cursors_records_per_s`, value: rate, unit: "records/s" })
    report({ bench: `catchup_subscription_${variant}_ratio_to_replay`, value: rate / replayRate, unit: "ratio", target: { min: 0.8 } })
    report({ bench: `catchup_subscription_${variant}_commits`, value: median(rounds.map((round) => round.commits)), unit: "commits" })
    report({ bench: `catchup_subscription_${variant}_handler_calls`, value: median(rounds.map((round) => round.calls)), unit: "calls" })
    report({
      bench: `catchup_subscription_${variant}_first_commit_stored_at`,
      value: median(rounds.map((round) => round.firstStored)),
      unit: "fraction of the catch-up"
    })
  }
  report({ bench: "catchup_commit_cost_file_vs_memory", value: 1 - fileRate / memoryRate, unit: "ratio", target: { max: 0.05 } })
}

// ─── 2. Live: a durable append to the handler ─────────────────────────────────────────────────────
/** When each seq of a live phase was appended (started, acknowledged) and handled, ms by performance.now(). */
interface Timings {
  readonly started: Float64Array
  readonly acked: Float64Array
  readonly handled: Float64Array
}

/**
 * One live phase on a new "always" journal: a Subscription follows while one writer makes `total`
 * single-event appends one after another (with `yieldAfterAppend`, an `Effect.yieldNow` after each).
 * Returns the timings (indexed by seq: the i-th append of a new journal gets seq i + 1) and the
 * handler calls that ended past `from`.
 */
const livePhase = async (total: number, from: number, yieldAfterAppend: boolean) => {
  const timings: Timings = {
    started: new Float64Array(total + 1),
    acked: new Float64Array(total + 1),
    handled: new Float64Array(total + 1)
  }
  let calls = 0
  const { journal, close } = await openJournal({ directory: join(temp.make("live"), "journal"), durability: "always" })
  const stream = streamRef("live")
  const follow = (cursors: CursorStore.CursorStore) =>
    Effect.scoped(Effect.gen(function*() {
      const subscription = yield* Subscription.make({
        name: "live",
        handle: (batch) =>
          Effect.sync(() => {
            const now = performance.now()
            for (const record of batch) timings.handled[record.seq] = now
            if (batch[batch.length - 1]!.seq > from) calls++
          })
      })
      // Started before the first append: active, and (after a pause) its follower waiting at the end
      // of the log. A writer only yields to followers that run (Settled.turn), so appends made while
      // the instance starts would delay its start by the scheduler's budget at each step.
      while ((yield* subscription.status).state !== "active") yield* Effect.sleep(1)
      yield* Effect.sleep(50)
      for (let i = 0; i < total; i++) {
        const start = performance.now()
        const { firstSeq } = yield* journal.append(stream, i, [eventAt(i)])
        timings.acked[firstSeq] = performance.now()
        timings.started[firstSeq] = start
        if (yieldAfterAppend) yield* Effect.yieldNow
      }
      yield* subscription.awaitCaughtUp
    }).pipe(provide(journal, cursors)))
  await Effect.runPromise(Effect.flatMap(CursorStore.makeMemory, follow))
  await close()
  return { timings, calls }
}

/** The figures of one live phase, named `prefix_…`, over the seqs after `from`. */
const reportLive = (prefix: string, { timings, calls }: Awaited<ReturnType<typeof livePhase>>, from: number) => {
  const { started, acked, handled } = timings
  const sorted = (f: (seq: number) => number) => {
    const values: Array<number> = []
    for (let seq = from + 1; seq < handled.length; seq++) values.push(f(seq))
    return values.sort((a, b) => a - b)
  }
  const afterAck = sorted((seq) => handled[seq]! - acked[seq]!)
  const afterStart = sorted((seq) => handled[seq]! - started[seq]!)
  const append = sorted((seq) => acked[seq]! - started[seq]!)
  report({ bench: `${prefix}_handler_after_ack_p50_ms`, value: percentile(afterAck, 0.5), unit: "ms", target: { max: 0.5 } })
  report({ bench: `${prefix}_handler_after_ack_p99_ms`, value: percentile(afterAck, 0.99), unit: "ms", target: { max: 2 } })
  report({ bench: `${prefix}_handler_before_ack_count`, value: afterAck.filter((ms) => ms < 0).length, unit: "records" })
  report({ bench: `${prefix}_handler_after_append_start_p50_ms`, value: percentile(afterStart, 0.5), unit: "ms" })
  report({ bench: `${prefix}_handler_after_append_start_p99_ms`, value: percentile(afterStart, 0.99), unit: "ms" })
  report({ bench: `${prefix}_append_p50_ms`, value: percentile(append, 0.5), unit: "ms" })
  report({ bench: `${prefix}_records_per_handler_call`, value: afterAck.length / calls, unit: "records" })
}

const live = async () => {
  const WARMUP = 500
  const APPENDS = sizeFromEnv("ANNALS_BENCH_APPENDS", 3_000)
  report({ bench: "live_appends_measured", value: APPENDS, unit: "appends" })
  reportLive("live", await livePhase(WARMUP + APPENDS, WARMUP, false), WARMUP)
  reportLive("live_yielding_writer", await livePhase(WARMUP + APPENDS, WARMUP, true), WARMUP)
}

// ─── Main ─────────────────────────────────────────────────────────────────────────────────────────
await runGroups({ catchup, live }, () => temp.removeAll())
