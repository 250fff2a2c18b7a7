/**
 * Runtime benchmark over the memory layers: how fast the Repository folds, loads from a snapshot and
 * executes commands. Prints one JSON line per figure on stdout:
 *
 *   {"bench":"...","runtime":"bun|deno|node","value":…,"unit":"…","target":…,"met":true|false}
 *
 * Targets: (a) fold rate ≥ 1,000,000 events/s and (c) execute ≥ 50,000 commands/s are set for Bun
 * (`null` on Deno and Node); (b) load latency ≤ 1 ms (median and p99) on every runtime.
 * Informational figures (baselines, breakdowns, variants) have `"target":null,"met":null`.
 *
 *   bun bench/runtime.ts
 *   deno run -A bench/runtime.ts
 *   npx tsc -p tsconfig.node.json && node .build/node/bench/runtime.js
 *   bun bench/runtime.ts execute    # only some groups: fold, latency, execute
 *   npm run bench                   # all three runtimes, each group in a fresh process (scripts/bench.mjs)
 */
import { Effect, Layer, Result, Schema, Stream } from "effect"
import { unpack } from "msgpackr"
import { Aggregate, Codec, Journal, Repository, SnapshotStore } from "../src/index.ts"
import { median, percentile, report, runtime } from "./report.ts"

// ─── The aggregate: a small ledger, two event types ────────────────────────────────────────────────
const Credited = Schema.TaggedStruct("Credited", { amount: Schema.Int })
const Debited = Schema.TaggedStruct("Debited", { amount: Schema.Int, note: Schema.optional(Schema.String) })
const LedgerEvent = Schema.Union([Credited, Debited])
type LedgerEvent = typeof LedgerEvent.Type
const LedgerState = Schema.Struct({ balance: Schema.Int, count: Schema.Int })
type LedgerState = typeof LedgerState.Type

const initial: LedgerState = { balance: 0, count: 0 }
const evolve = (state: LedgerState, event: LedgerEvent): LedgerState => ({
  balance: state.balance + (event._tag === "Credited" ? event.amount : -event.amount),
  count: state.count + 1
})
const ledger = (snapshot?: Aggregate.SnapshotPolicy) =>
  Aggregate.make({ namespace: "ledger", event: LedgerEvent, state: LedgerState, initial, evolve, snapshot })

const eventAt = (i: number): LedgerEvent =>
  i % 3 === 2 ? { _tag: "Debited", amount: i % 17, note: "fee" } : { _tag: "Credited", amount: i % 101 }

// ─── Timing ───────────────────────────────────────────────────────────────────────────────────────
/**
 * Runs `body` `warmup` times untimed, then `rounds` timed rounds of `perRound` runs each; returns the
 * median round's seconds per run (the median keeps one GC pause or JIT tier-up from skewing it).
 */
const time = (warmup: number, rounds: number, perRound: number, body: () => void) => {
  for (let i = 0; i < warmup; i++) body()
  const perRun: Array<number> = []
  for (let round = 0; round < rounds; round++) {
    const start = performance.now()
    for (let i = 0; i < perRound; i++) body()
    perRun.push((performance.now() - start) / 1000 / perRound)
  }
  return median(perRun)
}

/** The same for an effect, run inside the benchmark's fiber (no runPromise per run). */
const timeEffect = <E, R>(warmup: number, rounds: number, perRound: number, body: Effect.Effect<unknown, E, R>) =>
  Effect.gen(function*() {
    for (let i = 0; i < warmup; i++) yield* body
    const perRun: Array<number> = []
    for (let round = 0; round < rounds; round++) {
      const start = performance.now()
      for (let i = 0; i < perRound; i++) yield* body
      perRun.push((performance.now() - start) / 1000 / perRound)
    }
    return median(perRun)
  })

const STREAM = 10_000
const memory = () => Layer.mergeAll(Journal.layerMemory, SnapshotStore.layerMemory())
const run = <A, E>(effect: Effect.Effect<A, E, Journal.Journal | SnapshotStore.SnapshotStore>) =>
  Effect.runPromise(Effect.provide(effect, memory()))

/** Appends `count` events to the stream straight through the journal (no snapshots), in batches. */
const fill = (aggregate: ReturnType<typeof ledger>, id: string, count: number) =>
  Effect.gen(function*() {
    const journal = yield* Journal.Journal
    const stream = { namespace: aggregate.namespace, id }
    for (let from = 0; from < count; from += 1_000) {
      const events = Array.from({ length: Math.min(1_000, count - from) }, (_, i) => eventAt(from + i))
      yield* journal.append(stream, from, yield* Codec.encodeEvents(aggregate.eventCodec, stream, events))
    }
    return yield* Stream.runCollect(journal.read(stream))
  })

// ─── (a) Fold rate of load, no snapshots, no cache ─────────────────────────────────────────────────
const foldRate = () => run(Effect.gen(function*() {
  const aggregate = ledger()
  const records = yield* fill(aggregate, "fold", STREAM)
  const repo = yield* Repository.make(aggregate, { cacheSize: 0 })
  const expected = records.reduce((state, record) => evolve(state, Result.getOrThrow(Codec.decodeRecord(aggregate.eventCodec, record))), initial)
  const loaded = yield* repo.load("fold")
  if (loaded.version !== STREAM || loaded.state.balance !== expected.balance) throw new Error("load returned the wrong state")

  const rate = STREAM / (yield* timeEffect(20, 7, 8, repo.load("fold")))
  report({ bench: "load_fold_rate", value: rate, unit: "events/s", target: runtime === "bun" ? { min: 1_000_000 } : undefined })

  // The raw baseline: the same payloads, msgpackr `unpack` + a plain reducer loop.
  const payloads = records.map((record) => record.payload)
  let sink = 0
  const rawPass = () => {
    let state = initial
    for (let i = 0; i < payloads.length; i++) state = evolve(state, unpack(payloads[i]!) as LedgerEvent)
    sink += state.balance
  }
  const passRate = (body: () => void) => STREAM / time(20, 7, 15, body)
  const rawRate = passRate(rawPass)
  report({ bench: "load_fold_raw_baseline", value: rawRate, unit: "events/s" })
  report({ bench: "load_fold_ratio_raw_over_load", value: rawRate / rate, unit: "x" })

  // Where the gap goes, each over the same 10,000 payloads and outside Effect: msgpack `unpack` alone,
  // the event Schema's decode alone (on already unpacked objects), the Codec (annals' msgpack settings
  // + the Schema), and Codec.decodeRecord + evolve (the per-record work of load); then the journal
  // read alone (Stream.runCollect of the 10,000 records).
  const unpackOnly = () => {
    for (let i = 0; i < payloads.length; i++) sink += (unpack(payloads[i]!) as LedgerEvent).amount
  }
  const codecOnly = () => {
    for (let i = 0; i < payloads.length; i++) {
      const event = aggregate.eventCodec.decode(payloads[i]!)
      if (Result.isSuccess(event)) sink += event.success.amount
    }
  }
  const decodeRecordAndEvolve = () => {
    let state = initial
    for (let i = 0; i < records.length; i++) {
      const event = Codec.decodeRecord(aggregate.eventCodec, records[i]!)
      if (Result.isFailure(event)) throw event.failure
      state = evolve(state, event.success)
    }
    sink += state.balance
  }
  const objects = payloads.map((payload) => unpack(payload) as unknown)
  const decodeSchema = Schema.decodeUnknownResult(LedgerEvent)
  const schemaOnly = () => {
    for (let i = 0; i < objects.length; i++) {
      const event = decodeSchema(objects[i])
      if (Result.isSuccess(event)) sink += event.success.amount
    }
  }
  const readOnly = Effect.asVoid(Stream.runCollect((yield* Journal.Journal).read({ namespace: "ledger", id: "fold" })))
  report({ bench: "breakdown_msgpack_unpack", value: passRate(unpackOnly), unit: "events/s" })
  report({ bench: "breakdown_schema_decode_only", value: passRate(schemaOnly), unit: "events/s" })
  report({ bench: "breakdown_codec_decode", value: passRate(codecOnly), unit: "events/s" })
  report({ bench: "breakdown_decode_record_evolve", value: passRate(decodeRecordAndEvolve), unit: "events/s" })
  report({ bench: "breakdown_journal_read_collect", value: STREAM / (yield* timeEffect(20, 7, 15, readOnly)), unit: "records/s" })
  if (sink === 0.5) console.error(sink) // keep the loops observable
}))

// ─── (b) Load latency from a snapshot, no cache ─────────────────────────────────────────────────────
const loadLatency = (events: number, bench: string, target: boolean) =>
  run(Effect.gen(function*() {
    const aggregate = ledger({ every: 100, schemaVersion: 1 })
    const writer = yield* Repository.make(aggregate)
    for (let i = 0; i < events; i++) yield* writer.execute("hot", () => Effect.succeed([eventAt(i)]))
    const snapshot = yield* (yield* SnapshotStore.SnapshotStore).get("ledger", "hot")
    if (snapshot._tag !== "Some" || snapshot.value.version !== Math.floor(events / 100) * 100) throw new Error("no snapshot where expected")
    const repo = yield* Repository.make(aggregate, { cacheSize: 0 })
    const load = repo.load("hot")
    for (let i = 0; i < 200; i++) yield* load
    const samples: Array<number> = []
    for (let i = 0; i < 2_000; i++) {
      const start = performance.now()
      yield* load
      samples.push(performance.now() - start)
    }
    samples.sort((a, b) => a - b)
    const folded = events - snapshot.value.version
    report({ bench: `${bench}_median`, value: percentile(samples, 0.5), unit: "ms", target: target ? { max: 1 } : undefined })
    report({ bench: `${bench}_p99`, value: percentile(samples, 0.99), unit: "ms", target: target ? { max: 1 } : undefined })
    if (!target) report({ bench: `${bench}_events_folded_after_snapshot`, value: folded, unit: "events" })
  }))

// ─── (c) execute throughput on one hot aggregate, with the cache ────────────────────────────────────
const executeThroughput = (bench: string, snapshot: Aggregate.SnapshotPolicy | undefined, target: boolean) =>
  run(Effect.gen(function*() {
    const repo = yield* Repository.make(ledger(snapshot))
    let i = 0
    const command = repo.execute("hot", () => Effect.succeed([eventAt(i++)]))
    const seconds = yield* timeEffect(20_000, 7, 20_000, command)
    const loaded = yield* repo.load("hot")
    if (loaded.version !== 20_000 + 7 * 20_000) throw new Error("execute lost a command")
    report({ bench, value: 1 / seconds, unit: "commands/s", target: target && runtime === "bun" ? { min: 50_000 } : undefined })
  }))

// `bun bench/runtime.ts fold latency execute` runs only the named groups (default: all).
const only = process.argv.slice(2)
const unknown = only.filter((group) => !["fold", "latency", "execute"].includes(group))
if (unknown.length > 0) throw new Error(`unknown benchmark group(s) ${unknown.join(", ")}: expected fold, latency or execute`)
const wanted = (group: string) => only.length === 0 || only.includes(group)

if (wanted("fold")) await foldRate()
if (wanted("latency")) {
  await loadLatency(STREAM, "load_latency_snapshot_every_100", true)
  await loadLatency(STREAM + 99, "load_latency_snapshot_every_100_worst_case", false)
}
if (wanted("execute")) {
  await executeThroughput("execute_throughput_cached", undefined, true)
  await executeThroughput("execute_throughput_cached_snapshot_every_100", { every: 100, schemaVersion: 1 }, false)
}
