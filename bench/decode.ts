/**
 * Decoding benchmark (issue 17): how close a load, a subscription catch-up and a projection rebuild
 * come to the raw baseline — msgpackr `unpack` of the same payloads and a plain reducer loop, in the
 * same process — and where each microsecond goes. Two event shapes (bench/cart.ts): the cart's
 * `ItemAdded { sku, qty, price }` and the ledger's `Credited { amount }` / `Debited { amount, note? }`.
 * Prints one JSON line per figure on stdout:
 *
 *   {"bench":"...","runtime":"bun|deno|node","value":…,"unit":"…","target":…,"met":true|false}
 *
 * Groups (each meant for a fresh process):
 *
 *   load       a 10,000-event stream (ANNALS_BENCH_EVENTS) of each shape in the memory Journal and
 *              in a file Journal ("os"); after 20 warm-up loads, 11 interleaved rounds of 10 loads
 *              and 10 raw passes. `Repository.load` with no cache and no snapshot, each load its own
 *              `ManagedRuntime.runPromise` (as an application calls it); the raw pass folds the
 *              payloads the journal returned. load_<shape>_<layer>_ms, raw_…_ms (medians) and
 *              load_<shape>_<layer>_ratio_to_raw (median of the rounds' ratios), target ≤ 2.
 *   breakdown  the cart stream of `load`, per event (ns), each step alone over the same 10,000
 *              records: the journal read (`Stream.runCollect(journal.read)`: on the file layer it
 *              includes reading the segment and decoding the frames), msgpack (msgpackr `unpack`),
 *              the Schema decode of unpacked objects (compiled, as the Codec runs it, and Effect's
 *              interpreter, as annals ran it before), `Codec.decode`, `Codec.decodeRecord` + `evolve`,
 *              `evolve` alone, and the whole `load` per event; what remains of a load besides the
 *              read and the decode + evolve (the Effect and Stream machinery); and the set-up of one
 *              load (µs): a load of a one-event stream.
 *   cold       fresh processes (bench/decodeCold.ts, 5 of each): the first `load` (10,000 cart events
 *              in memory, filled by the process; 10,000 and 10 in a file journal written before),
 *              the first `execute` (memory, file), and the raw baseline's first pass over the same
 *              10,000 payloads; and the import of annals. Target: first load ≤ 30 ms on Bun and Node.
 *   long       one stream of ANNALS_BENCH_LONG_EVENTS cart events (default 300,000) in a file journal
 *              ("os"): the growth of resident memory during its first `Repository.load` (sampled every
 *              ms), then interleaved rounds (median of 5) of the load and of the raw baseline over the
 *              same read (msgpackr `unpack` of each page's payloads and the plain reducer):
 *              long_load_<n>k_file_ms, raw_long_…_ms and long_load_…_ratio_to_raw.
 *   catchup    a file journal of ANNALS_BENCH_RECORDS cart events (default 1,000,000; the mixed
 *              journal of bench/fixtures.ts), then interleaved rounds (median of 5 after a warm-up):
 *              the raw baseline (`replayFrom(1)`, msgpackr `unpack` and a plain total per record); a
 *              Subscription whose handler decodes every record with the cart's Codec and folds it; a
 *              `Projection.fold` over the cart aggregate (memory stores) until `awaitCaughtUp`.
 *              catchup_{subscription,projection}_ratio_to_raw: its seconds over the raw pass's.
 *
 *   bun bench/decode.ts [groups…]
 *   deno run -A bench/decode.ts [groups…]
 *   npx tsc -p tsconfig.node.json && node .build/node/bench/decode.js [groups…]
 *   npm run bench -- decode [groups…]   # all three runtimes, each group in a fresh process
 */
import { Effect, Layer, ManagedRuntime, Result, Schema, SchemaParser, type Scope, Stream } from "effect"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { unpack } from "msgpackr"
import { FileJournal } from "../src/file/index.ts"
import { type Aggregate, Codec, CursorStore, Journal, Projection, Repository, SnapshotStore, Subscription } from "../src/index.ts"
import {
  cart,
  type CartState,
  cartEvolve,
  cartInitial,
  type ItemAdded,
  ItemAddedSchema,
  itemAt,
  ledger,
  ledgerAt,
  type LedgerEvent,
  ledgerEvolve,
  ledgerInitial,
  type LedgerState
} from "./cart.ts"
import { buildLargeJournal, makeTempDirs, NAMESPACE, openJournal } from "./fixtures.ts"
import { interleaved, median, rateRatio, report, runGroups, runtime, sizeFromEnv } from "./report.ts"

const temp = makeTempDirs()
const EVENTS = sizeFromEnv("ANNALS_BENCH_EVENTS", 10_000)

/** One event shape: its aggregate, its `i`-th event, and the raw baseline's fold of unpacked payloads. */
interface Shape<E extends { readonly _tag: string }, S> {
  readonly name: string
  readonly aggregate: Aggregate.Aggregate<E, S>
  readonly at: (i: number) => E
  readonly raw: (payloads: ReadonlyArray<Uint8Array>) => S
  readonly same: (a: S, b: S) => boolean
}

/** The raw baseline's fold: msgpackr `unpack` of each payload and the plain reducer. */
const rawFold = <E, S>(initial: S, evolve: (state: S, event: E) => S) => (payloads: ReadonlyArray<Uint8Array>): S => {
  let state = initial
  for (let i = 0; i < payloads.length; i++) state = evolve(state, unpack(payloads[i]!) as E)
  return state
}

const cartShape = (): Shape<ItemAdded, CartState> => ({
  name: "cart",
  aggregate: cart(),
  at: itemAt,
  raw: rawFold<ItemAdded, CartState>(cartInitial, cartEvolve),
  same: (a, b) => a.total === b.total && a.items === b.items
})

const ledgerShape = (): Shape<LedgerEvent, LedgerState> => ({
  name: "ledger",
  aggregate: ledger(),
  at: ledgerAt,
  raw: rawFold<LedgerEvent, LedgerState>(ledgerInitial, ledgerEvolve),
  same: (a, b) => a.balance === b.balance && a.count === b.count
})

/** The layers a load runs over: the memory Journal, or a file Journal in a new directory ("os"). */
const layers = {
  memory: () => Layer.mergeAll(Journal.layerMemory, SnapshotStore.layerMemory()),
  file: () =>
    Layer.mergeAll(FileJournal.layer({ directory: temp.make("decode"), durability: "os" }), SnapshotStore.layerMemory())
} as const

/** Appends `count` events of `shape` to stream `id` in batches of 1,000; returns the journal. */
const appendEvents = <E extends { readonly _tag: string }, S>(shape: Shape<E, S>, id: string, count: number) =>
  Effect.gen(function*() {
    const journal = yield* Journal.Journal
    const stream = { namespace: shape.aggregate.namespace, id }
    for (let from = 0; from < count; from += 1_000) {
      const events = Array.from({ length: Math.min(1_000, count - from) }, (_, i) => shape.at(from + i))
      yield* journal.append(stream, from, yield* Codec.encodeEvents(shape.aggregate.eventCodec, stream, events))
    }
    return journal
  })

/** `appendEvents`, then the records read back. */
const fill = <E extends { readonly _tag: string }, S>(shape: Shape<E, S>, id: string, count: number) =>
  Effect.flatMap(appendEvents(shape, id, count), (journal) =>
    Stream.runCollect(journal.read({ namespace: shape.aggregate.namespace, id })))

/** Milliseconds per run of `body`, `runs` times in a row. */
const perRun = async (runs: number, body: () => unknown): Promise<number> => {
  const start = performance.now()
  for (let i = 0; i < runs; i++) await body()
  return (performance.now() - start) / runs
}

// ─── load ──────────────────────────────────────────────────────────────────────────────────────────
const loadShape = async <E extends { readonly _tag: string }, S>(shape: Shape<E, S>, layerName: keyof typeof layers) => {
  const runtime_ = ManagedRuntime.make(layers[layerName]())
  try {
    const records = await runtime_.runPromise(fill(shape, "s", EVENTS))
    const payloads = records.map((record) => record.payload)
    const repo = await runtime_.runPromise(Repository.make(shape.aggregate, { cacheSize: 0 }))
    const loaded = await runtime_.runPromise(repo.load("s"))
    if (loaded.version !== EVENTS || !shape.same(loaded.state, shape.raw(payloads))) throw new Error(`load: ${shape.name} on ${layerName} returned the wrong state`)
    let sink = 0
    for (let i = 0; i < 20; i++) await runtime_.runPromise(repo.load("s"))
    for (let i = 0; i < 20; i++) shape.raw(payloads)
    const load: Array<number> = []
    const raw: Array<number> = []
    for (let round = 0; round < 11; round++) {
      load.push(await perRun(10, () => runtime_.runPromise(repo.load("s"))))
      raw.push(await perRun(10, () => {
        sink += Number(shape.same(shape.raw(payloads), loaded.state))
      }))
    }
    const tag = `${shape.name}_${layerName}`
    report({ bench: `load_${tag}_ms`, value: median(load), unit: "ms" })
    report({ bench: `raw_${tag}_ms`, value: median(raw), unit: "ms" })
    report({ bench: `load_${tag}_ratio_to_raw`, value: rateRatio(raw, load), unit: "x", target: { max: 2 } })
    if (sink === 0) throw new Error("the raw passes folded nothing")
  } finally {
    await runtime_.dispose()
  }
}

const loadGroup = async () => {
  for (const layerName of ["memory", "file"] as const) {
    await loadShape(cartShape(), layerName)
    await loadShape(ledgerShape(), layerName)
  }
}

// ─── breakdown ─────────────────────────────────────────────────────────────────────────────────────
/** Median ns per event of `pass` over `events` events (11 rounds of 10 passes after 20 warm-up passes). */
const nsPerEvent = async (events: number, pass: () => unknown) => {
  for (let i = 0; i < 20; i++) await pass()
  const rounds: Array<number> = []
  for (let round = 0; round < 11; round++) rounds.push(await perRun(10, pass))
  return (median(rounds) * 1e6) / events
}

const breakdownLayer = async (layerName: keyof typeof layers) => {
  const shape = cartShape()
  const aggregate = shape.aggregate
  const runtime_ = ManagedRuntime.make(layers[layerName]())
  try {
    const records = await runtime_.runPromise(fill(shape, "s", EVENTS))
    await runtime_.runPromise(fill(shape, "one", 1))
    const payloads = records.map((record) => record.payload)
    const objects = payloads.map((payload) => unpack(payload) as unknown)
    const events = objects as ReadonlyArray<ItemAdded>
    const repo = await runtime_.runPromise(Repository.make(aggregate, { cacheSize: 0 }))
    const journal = await runtime_.runPromise(Effect.gen(function*() {
      return yield* Journal.Journal
    }))
    const compiled = SchemaParser.decodeUnknownSync(aggregate.event)
    const interpreted = Schema.decodeUnknownResult(ItemAddedSchema)
    let sink = 0
    const figure = (step: string, value: number, unit = "ns/event") =>
      report({ bench: `breakdown_${layerName}_${step}`, value, unit })
    const read = Stream.runCollect(journal.read({ namespace: aggregate.namespace, id: "s" }))
    figure("journal_read", await nsPerEvent(EVENTS, () => runtime_.runPromise(read)))
    figure("msgpack_unpack", await nsPerEvent(EVENTS, () => {
      for (let i = 0; i < payloads.length; i++) sink += (unpack(payloads[i]!) as ItemAdded).qty
    }))
    figure("schema_decode_compiled", await nsPerEvent(EVENTS, () => {
      for (let i = 0; i < objects.length; i++) sink += compiled(objects[i]).qty
    }))
    figure("schema_decode_interpreted", await nsPerEvent(EVENTS, () => {
      for (let i = 0; i < objects.length; i++) {
        const event = interpreted(objects[i])
        if (Result.isSuccess(event)) sink += event.success.qty
      }
    }))
    figure("codec_decode", await nsPerEvent(EVENTS, () => {
      for (let i = 0; i < payloads.length; i++) {
        const event = aggregate.eventCodec.decode(payloads[i]!)
        if (Result.isSuccess(event)) sink += event.success.qty
      }
    }))
    const decodeEvolve = await nsPerEvent(EVENTS, () => {
      let state = aggregate.initial
      for (let i = 0; i < records.length; i++) {
        const event = Codec.decodeRecord(aggregate.eventCodec, records[i]!)
        if (Result.isFailure(event)) throw event.failure
        state = aggregate.evolve(state, event.success)
      }
      sink += state.items
    })
    figure("decode_record_and_evolve", decodeEvolve)
    figure("evolve", await nsPerEvent(EVENTS, () => {
      let state = aggregate.initial
      for (let i = 0; i < events.length; i++) state = aggregate.evolve(state, events[i]!)
      sink += state.items
    }))
    const readNs = await nsPerEvent(EVENTS, () => runtime_.runPromise(read))
    const loadNs = await nsPerEvent(EVENTS, () => runtime_.runPromise(repo.load("s")))
    figure("load", loadNs)
    figure("load_rest", loadNs - readNs - decodeEvolve)
    figure("raw_baseline", await nsPerEvent(EVENTS, () => {
      sink += shape.raw(payloads).items
    }))
    figure("load_setup_us", (await nsPerEvent(1, () => runtime_.runPromise(repo.load("one")))) / 1000, "µs/load")
    if (sink === 0) throw new Error("the passes decoded nothing")
  } finally {
    await runtime_.dispose()
  }
}

const breakdownGroup = async () => {
  await breakdownLayer("memory")
  await breakdownLayer("file")
}

// ─── cold ──────────────────────────────────────────────────────────────────────────────────────────
/** What a bench/decodeCold.ts process measured (ms): see that file. */
interface ColdRun {
  readonly importMs: number
  readonly firstMs: number
  readonly secondMs: number
  readonly sinceStartMs: number
}

/** Runs bench/decodeCold.ts in a fresh process of this runtime with `args`; its one JSON line. */
const coldRun = (args: ReadonlyArray<string>): Promise<ColdRun> => {
  const script = fileURLToPath(new URL(runtime === "node" ? "./decodeCold.js" : "./decodeCold.ts", import.meta.url))
  const argv = runtime === "deno" ? ["run", "-A", script, ...args] : [script, ...args]
  return new Promise((resolve, reject) =>
    execFile(process.execPath, argv, { maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error !== null) return reject(new Error(`decodeCold ${args.join(" ")}: ${error.message}\n${stderr}`))
      const line = stdout.trim().split("\n").pop() ?? ""
      try {
        resolve(JSON.parse(line) as ColdRun)
      } catch {
        reject(new Error(`decodeCold ${args.join(" ")} printed ${JSON.stringify(stdout)}`))
      }
    })
  )
}

const coldGroup = async () => {
  const directory = temp.make("cold")
  const journalDir = join(directory, "journal")
  // The file journal the processes read: 10,000 cart events in stream "big", 10 in "small".
  await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const journal = yield* FileJournal.make({ directory: journalDir, durability: "os" })
    const shape = cartShape()
    const records = yield* Effect.provideService(fill(shape, "big", EVENTS), Journal.Journal, journal)
    yield* Effect.provideService(fill(shape, "small", 10), Journal.Journal, journal)
    // The raw baseline's payloads, length-prefixed, for a process that reads them without annals.
    const sizes = new Uint8Array(4 * records.length)
    const view = new DataView(sizes.buffer)
    records.forEach((record, i) => view.setUint32(4 * i, record.payload.length))
    fs.writeFileSync(join(directory, "payloads.bin"), Buffer.concat([sizes, ...records.map((record) => record.payload)]))
    fs.writeFileSync(join(directory, "count"), String(records.length))
  })))
  const modes: ReadonlyArray<{ readonly bench: string; readonly args: ReadonlyArray<string>; readonly target: boolean }> = [
    { bench: "cold_first_load_10k_memory", args: ["load-memory", String(EVENTS)], target: true },
    { bench: "cold_first_load_10k_file", args: ["load-file", journalDir, "big"], target: true },
    { bench: "cold_first_load_10_file", args: ["load-file", journalDir, "small"], target: true },
    { bench: "cold_first_execute_memory", args: ["execute-memory"], target: false },
    { bench: "cold_first_execute_file", args: ["execute-file", journalDir], target: false },
    { bench: "cold_raw_first_pass_10k", args: ["raw", directory], target: false }
  ]
  const runs = sizeFromEnv("ANNALS_BENCH_COLD_RUNS", 5)
  for (const mode of modes) {
    const results: Array<ColdRun> = []
    for (let i = 0; i < runs; i++) results.push(await coldRun(mode.args))
    const target = mode.target && runtime !== "deno" ? { max: 30 } : undefined
    report({ bench: `${mode.bench}_ms`, value: median(results.map((r) => r.firstMs)), unit: "ms", target })
    report({ bench: `${mode.bench}_second_ms`, value: median(results.map((r) => r.secondMs)), unit: "ms" })
    report({ bench: `${mode.bench}_import_ms`, value: median(results.map((r) => r.importMs)), unit: "ms" })
    report({ bench: `${mode.bench}_process_start_to_done_ms`, value: median(results.map((r) => r.sinceStartMs)), unit: "ms" })
  }
}

// ─── catchup ───────────────────────────────────────────────────────────────────────────────────────
const catchupGroup = async () => {
  const records = sizeFromEnv("ANNALS_BENCH_RECORDS", 1_000_000)
  const aggregate = cart(NAMESPACE)
  const directory = join(temp.make("catchup"), "journal")
  const buildSeconds = await buildLargeJournal(directory, { records, hotEvents: records / 100, events: { aggregate, at: itemAt } })
  report({ bench: "catchup_build_seconds_os", value: buildSeconds, unit: "s" })
  let expected = cartInitial
  for (let i = 0; i < records; i++) expected = cartEvolve(expected, itemAt(i))
  const { close, journal } = await openJournal({ directory, durability: "always" })
  const check = (what: string, state: CartState) => {
    // The fold's order is the log's, the expected one the build's: the same events, summed in another order.
    if (state.items !== expected.items || Math.abs(state.total - expected.total) > 1e-6 * expected.total) {
      throw new Error(`catchup: ${what} came to ${JSON.stringify(state)}, expected ${JSON.stringify(expected)}`)
    }
  }
  const stores = <A, E>(body: Effect.Effect<A, E, Journal.Journal | CursorStore.CursorStore | SnapshotStore.SnapshotStore | Scope.Scope>) =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const cursors = yield* CursorStore.makeMemory
      const snapshots = yield* SnapshotStore.makeMemory()
      return yield* body.pipe(
        Effect.provideService(Journal.Journal, journal),
        Effect.provideService(CursorStore.CursorStore, cursors),
        Effect.provideService(SnapshotStore.SnapshotStore, snapshots)
      )
    })))
  try {
    const seconds = await interleaved({
      raw: async () => {
        let state = cartInitial
        await Effect.runPromise(Stream.runForEachArray(journal.replayFrom(1), (batch) =>
          Effect.sync(() => {
            for (let i = 0; i < batch.length; i++) state = cartEvolve(state, unpack(batch[i]!.payload) as ItemAdded)
          })))
        check("the raw pass", state)
      },
      subscription: () =>
        stores(Effect.gen(function*() {
          let state = cartInitial
          const subscription = yield* Subscription.make({
            name: "decoding",
            handle: (batch) =>
              Effect.suspend(() => {
                for (let i = 0; i < batch.length; i++) {
                  const event = Codec.decodeRecord(aggregate.eventCodec, batch[i]!)
                  if (Result.isFailure(event)) return Effect.fail(event.failure)
                  state = cartEvolve(state, event.success)
                }
                return Effect.void
              })
          })
          yield* subscription.awaitCaughtUp
          check("the subscription", state)
        })),
      projection: () =>
        stores(Effect.gen(function*() {
          const running = yield* Projection.run(Projection.fold({
            name: "carts",
            aggregates: [aggregate],
            state: Schema.Struct({ total: Schema.Number, items: Schema.Number }),
            initial: cartInitial,
            evolve: (state, event) => cartEvolve(state, event)
          }))
          yield* running.awaitCaughtUp
          check("the projection", yield* running.get)
        }))
    })
    for (const name of ["raw", "subscription", "projection"] as const) {
      report({ bench: `catchup_${name}_records_per_s`, value: records / median(seconds[name]), unit: "records/s" })
    }
    report({ bench: "catchup_subscription_ratio_to_raw", value: rateRatio(seconds.raw, seconds.subscription), unit: "x" })
    report({ bench: "catchup_projection_ratio_to_raw", value: rateRatio(seconds.raw, seconds.projection), unit: "x" })
  } finally {
    await close()
  }
}

// ─── long ──────────────────────────────────────────────────────────────────────────────────────────
const longGroup = async () => {
  const events = sizeFromEnv("ANNALS_BENCH_LONG_EVENTS", 300_000)
  const shape = cartShape()
  const aggregate = shape.aggregate
  const stream = { namespace: aggregate.namespace, id: "long" }
  const runtime_ = ManagedRuntime.make(layers.file())
  try {
    // Not read back (as `fill` does): the records of the whole stream would be in memory.
    const journal = await runtime_.runPromise(appendEvents(shape, stream.id, events))
    const repo = await runtime_.runPromise(Repository.make(aggregate, { cacheSize: 0 }))
    const name = `long_load_${events / 1000}k_file`
    // The first load, with the resident memory sampled every millisecond while it runs.
    const rssBefore = process.memoryUsage().rss
    let peak = rssBefore
    const sampler = setInterval(() => peak = Math.max(peak, process.memoryUsage().rss), 1)
    const first = await runtime_.runPromise(repo.load(stream.id))
    clearInterval(sampler)
    peak = Math.max(peak, process.memoryUsage().rss)
    if (first.version !== events) throw new Error(`long: the load reached version ${first.version}, not ${events}`)
    report({ bench: `${name}_peak_rss_growth_mb`, value: (peak - rssBefore) / 1e6, unit: "MB" })
    // The raw baseline: the same read, msgpackr `unpack` of each payload and the plain reducer, page by page.
    const seconds = await interleaved({
      load: () => runtime_.runPromise(Effect.asVoid(repo.load(stream.id))),
      raw: async () => {
        let state = cartInitial
        await Effect.runPromise(Stream.runForEachArray(journal.read(stream), (page) =>
          Effect.sync(() => {
            for (let i = 0; i < page.length; i++) state = cartEvolve(state, unpack(page[i]!.payload) as ItemAdded)
          })))
        if (state.items === 0) throw new Error("long: the raw pass folded nothing")
      }
    })
    report({ bench: `${name}_ms`, value: median(seconds.load) * 1000, unit: "ms" })
    report({ bench: `raw_long_${events / 1000}k_file_ms`, value: median(seconds.raw) * 1000, unit: "ms" })
    report({ bench: `${name}_ratio_to_raw`, value: rateRatio(seconds.raw, seconds.load), unit: "x" })
  } finally {
    await runtime_.dispose()
  }
}

await runGroups({ load: loadGroup, breakdown: breakdownGroup, cold: coldGroup, catchup: catchupGroup, long: longGroup }, () =>
  temp.removeAll())
