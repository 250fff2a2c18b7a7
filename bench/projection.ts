/**
 * Projection benchmark: how fast a stateful `Projection.fold` catches up over a large file journal,
 * next to a plain Subscription in the same process, and how much sooner a new replica is caught up
 * from an exported artifact than by folding the whole log. Prints one JSON line per figure on stdout:
 *
 *   {"bench":"...","runtime":"bun|deno|node","value":…,"unit":"…","target":…,"met":true|false}
 *
 * The journal (both groups): ANNALS_BENCH_RECORDS records (default 1,000,000, a multiple of 10,000),
 * the large mixed journal of bench/fixtures.ts (bulk appends over 999 `account` streams and one hot
 * stream spread over the log, built "os", reopened "always"), its records Schema-encoded events of
 * the `Account` aggregate below (`Credited` / `Debited` with an integer amount and a 64-character
 * memo, about 100 bytes of msgpack, as the fixture's opaque payloads). The fold, `totals`, keeps a
 * count and a sum of the amounts per stream in a Record (1,000 entries); default batches (1,000
 * records) and snapshot policy (the state saved every 1,000 folded records and at the end of the log).
 * Its `evolve` replaces the stream's entry in a Record the fold owns (a copy of the frozen `initial`
 * made on the first event) instead of spreading the whole Record: a spread costs O(streams) per
 * event and would measure that copy, not the projection. (The fold runtime allows it: it encodes the
 * state when it saves, and restarts from `initial` or from a decoded state.)
 *
 * Groups (each meant for a fresh process):
 *
 *   catchup  interleaved rounds (median of 5 after a warm-up) of:
 *            - catchup_subscription_records_per_s: the baseline, a new Subscription with a handler
 *              that only counts, memory CursorStore, from no cursor until `awaitCaughtUp` returns;
 *            - catchup_fold_{memory,file}_snapshots_records_per_s: a new `totals` fold run until
 *              `awaitCaughtUp`, memory CursorStore, on the memory SnapshotStore and on the file
 *              SnapshotStore of annals/file (a new directory each round; its open is not timed);
 *              _snapshot_saves: the states it saved until caught up (counted by a wrapping store);
 *            - catchup_fold_ratio_to_subscription: the memory fold's rate over the subscription's,
 *              target ≥ 0.7; catchup_fold_file_snapshots_ratio_to_subscription: the same for the
 *              file SnapshotStore, for context (each save is fsynced).
 *            Every round checks its cursor, the fold's evolve calls and its totals.
 *   import   a `totals` fold (memory stores) catches up and exports its state into a temporary
 *            directory (`RunningFold.exportState`; import_export_seconds, import_artifact_bytes: every
 *            file the artifact holds, MANIFEST.json included), then interleaved rounds (median of 5
 *            after a warm-up), each on new memory CursorStore and SnapshotStore, of:
 *            - import_seconds: `Projection.importLatest` into a new replica, then `Projection.run`
 *              of that replica until `awaitCaughtUp` (it resumes at the artifact's cursor: nothing
 *              left to fold; each round checks that it folded no record and holds the exported state);
 *            - import_rebuild_seconds: a new replica without import run until `awaitCaughtUp`;
 *            - import_speedup_vs_rebuild = rebuild / import, target ≥ 10.
 *
 *   bun bench/projection.ts [groups…]
 *   deno run -A bench/projection.ts [groups…]
 *   npx tsc -p tsconfig.node.json && node .build/node/bench/projection.js [groups…]
 *   npm run bench -- projection [groups…]   # all three runtimes, each group in a fresh process
 *   ANNALS_BENCH_RECORDS=100000 bun bench/projection.ts   # a quick run
 *
 * ANNALS_BENCH_DIR overrides the parent directory of the temporary directories (default os.tmpdir()).
 */
import { Effect, Option, Schema, type Scope } from "effect"
import * as fs from "node:fs"
import { join } from "node:path"
import { isDeepStrictEqual } from "node:util"
import { FileSnapshotStore } from "../src/file/index.ts"
import { Aggregate, CursorStore, Journal, Projection, SnapshotStore, Subscription } from "../src/index.ts"
import { buildLargeJournal, hotStream, makeTempDirs, NAMESPACE, type OpenJournal, openJournal } from "./fixtures.ts"
import { median, report, runGroups, sizeFromEnv } from "./report.ts"

const temp = makeTempDirs()
const ROUNDS = 5

// ─── The aggregate and the fold ───────────────────────────────────────────────────────────────────
const Credited = Schema.TaggedStruct("Credited", { amount: Schema.Int, memo: Schema.String })
const Debited = Schema.TaggedStruct("Debited", { amount: Schema.Int, memo: Schema.String })
const AccountEvent = Schema.Union([Credited, Debited])
type AccountEvent = typeof AccountEvent.Type
const Totals = Schema.Struct({ count: Schema.Int, sum: Schema.Int })
type Totals = typeof Totals.Type

const signed = (event: AccountEvent) => (event._tag === "Credited" ? event.amount : -event.amount)

/** The aggregate the journal's records are events of (its own state: the stream's totals). */
const Account = Aggregate.make({
  namespace: NAMESPACE,
  event: AccountEvent,
  state: Totals,
  initial: { count: 0, sum: 0 },
  evolve: (state, event) => ({ count: state.count + 1, sum: state.sum + signed(event) })
})

/** 1,024 distinct 64-character memos (a fixed seed, so every run stores the same bytes). */
const memos: ReadonlyArray<string> = (() => {
  let x = 0x2545f491
  return Array.from({ length: 1024 }, () => {
    let memo = ""
    while (memo.length < 64) {
      x ^= x << 13
      x ^= x >>> 17
      x ^= x << 5
      memo += (x >>> 0).toString(16).padStart(8, "0")
    }
    return memo
  })
})()

/** The `i`-th event of the journal. */
const accountEventAt = (i: number): AccountEvent =>
  i % 3 === 2 ? { _tag: "Debited", amount: i % 97, memo: memos[i & 1023]! } : { _tag: "Credited", amount: i % 1009, memo: memos[i & 1023]! }

const ByStream = Schema.Record(Schema.String, Totals)
type ByStream = typeof ByStream.Type
const INITIAL: ByStream = Object.freeze({})

/** A new `totals` fold definition; `calls` counts its evolve calls. */
const totalsFold = () => {
  const counter = { calls: 0 }
  const projection = Projection.fold({
    name: "totals",
    aggregates: [Account],
    state: ByStream,
    initial: INITIAL,
    evolve: (state, event, record) => {
      counter.calls++
      const owned: Record<string, Totals> = state === INITIAL ? {} : state as Record<string, Totals>
      const entry = owned[record.stream.id]
      owned[record.stream.id] = entry === undefined
        ? { count: 1, sum: signed(event) }
        : { count: entry.count + 1, sum: entry.sum + signed(event) }
      return owned
    }
  })
  return { projection, counter }
}

/** The journal every group runs over, and what a fold of it must come to. */
interface Fixture extends OpenJournal {
  readonly records: number
  readonly hotEvents: number
  /** The sum of every event's signed amount. */
  readonly sum: number
}

/** Builds the journal (reporting `<group>_build_seconds_os`) and opens it "always". */
const fixture = async (group: string): Promise<Fixture> => {
  const records = sizeFromEnv("ANNALS_BENCH_RECORDS", 1_000_000)
  const hotEvents = records / 100
  const directory = join(temp.make(group), "journal")
  const buildSeconds = await buildLargeJournal(directory, { records, hotEvents, events: { aggregate: Account, at: accountEventAt } })
  report({ bench: `${group}_build_seconds_os`, value: buildSeconds, unit: "s" })
  report({ bench: `${group}_records`, value: records, unit: "records" })
  let sum = 0
  for (let i = 0; i < records; i++) sum += signed(accountEventAt(i))
  return { ...(await openJournal({ directory, durability: "always" })), records, hotEvents, sum }
}

/** Throws unless `state` holds every record once: all counts and amounts, and the hot stream's count. */
const checkTotals = (what: string, fixture: Fixture, state: ByStream): void => {
  let count = 0
  let sum = 0
  for (const entry of Object.values(state)) {
    count += entry.count
    sum += entry.sum
  }
  const hot = state[hotStream.id]?.count ?? 0
  if (count !== fixture.records || sum !== fixture.sum || hot !== fixture.hotEvents) {
    throw new Error(
      `${what}: the fold counted ${count} records (hot stream ${hot}) summing to ${sum}, expected ${fixture.records} (${fixture.hotEvents}) summing to ${fixture.sum}`
    )
  }
}

/** A SnapshotStore that counts the snapshots put through it. */
const countingPuts = (store: SnapshotStore.SnapshotStore) => {
  let puts = 0
  const counted: SnapshotStore.SnapshotStore = {
    ...store,
    put: (snapshot) =>
      Effect.suspend(() => {
        puts++
        return store.put(snapshot)
      })
  }
  return { store: counted, puts: () => puts }
}

/** Provides `journal`, `cursors` and `snapshots` to an effect. */
const provide = (journal: Journal.Journal, cursors: CursorStore.CursorStore, snapshots: SnapshotStore.SnapshotStore) =>
<A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.provideService(Journal.Journal, journal),
    Effect.provideService(CursorStore.CursorStore, cursors),
    Effect.provideService(SnapshotStore.SnapshotStore, snapshots)
  )

/** Runs `body` in a scope over the fixture's journal, a new memory CursorStore and the snapshots `openSnapshots` opens (default: new memory ones). */
const withStores = <A, E, E2 = SnapshotStore.SnapshotStoreError>(
  fixture: Fixture,
  body: Effect.Effect<A, E, Scope.Scope | Journal.Journal | CursorStore.CursorStore | SnapshotStore.SnapshotStore>,
  openSnapshots?: Effect.Effect<SnapshotStore.SnapshotStore, E2>
) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const cursors = yield* CursorStore.makeMemory
    const snapshots = yield* (openSnapshots ?? SnapshotStore.makeMemory())
    return yield* provide(fixture.journal, cursors, snapshots)(body)
  })))

/** Throws unless a caught-up subscription's cursor is at the journal's last record. */
const checkCursor = (what: string, fixture: Fixture, cursor: number): void => {
  if (cursor !== fixture.records) throw new Error(`${what}: caught up at seq ${cursor}, expected ${fixture.records}`)
}

// ─── 1. Catch-up over a large journal ─────────────────────────────────────────────────────────────
/** Seconds for the baseline: a new Subscription counting records from no cursor until `awaitCaughtUp`. */
const subscriptionRound = (fixture: Fixture) =>
  withStores(
    fixture,
    Effect.gen(function*() {
      let count = 0
      const start = performance.now()
      const subscription = yield* Subscription.make({
        name: "baseline",
        handle: (batch) =>
          Effect.sync(() => {
            count += batch.length
          })
      })
      const status = yield* subscription.awaitCaughtUp
      const seconds = (performance.now() - start) / 1000
      checkCursor("catchup: the subscription", fixture, status.cursor)
      if (count !== fixture.records) throw new Error(`catchup: the subscription handled ${count} records, expected ${fixture.records}`)
      return seconds
    })
  )

/** One fold catch-up from nothing until `awaitCaughtUp`, on the snapshots `openSnapshots` opens: its seconds and saves. */
const foldRound = <E>(fixture: Fixture, openSnapshots: Effect.Effect<SnapshotStore.SnapshotStore, E>) =>
  withStores(
    fixture,
    Effect.gen(function*() {
      const snapshots = countingPuts(yield* SnapshotStore.SnapshotStore)
      const { counter, projection } = totalsFold()
      const start = performance.now()
      const running = yield* Effect.provideService(Projection.run(projection), SnapshotStore.SnapshotStore, snapshots.store)
      const status = yield* running.awaitCaughtUp
      const seconds = (performance.now() - start) / 1000
      checkCursor("catchup: the fold", fixture, status.cursor)
      if (counter.calls !== fixture.records) throw new Error(`catchup: the fold called evolve ${counter.calls} times, expected ${fixture.records}`)
      checkTotals("catchup", fixture, yield* running.get)
      return { seconds, saves: snapshots.puts() }
    }),
    openSnapshots
  )

const catchup = async () => {
  const journal = await fixture("catchup")
  const memoryRound = () => foldRound(journal, SnapshotStore.makeMemory())
  // A new directory each round, so that the fold starts without a saved state.
  const fileRound = () => foldRound(journal, FileSnapshotStore.make({ directory: temp.make("snapshots") }))
  // Warm-up (and the page cache), then interleaved rounds so that a noisy stretch hits all alike.
  await subscriptionRound(journal)
  await memoryRound()
  await fileRound()
  const subscriptions: Array<number> = []
  const memory: Array<Awaited<ReturnType<typeof memoryRound>>> = []
  const file: Array<Awaited<ReturnType<typeof fileRound>>> = []
  for (let r = 0; r < ROUNDS; r++) {
    subscriptions.push(journal.records / (await subscriptionRound(journal)))
    memory.push(await memoryRound())
    file.push(await fileRound())
  }
  await journal.close()
  const subscriptionRate = median(subscriptions)
  const rateOf = (rounds: ReadonlyArray<{ readonly seconds: number }>) => median(rounds.map((round) => journal.records / round.seconds))
  report({ bench: "catchup_subscription_records_per_s", value: subscriptionRate, unit: "records/s" })
  for (const [variant, rounds] of [["memory", memory], ["file", file]] as const) {
    report({ bench: `catchup_fold_${variant}_snapshots_records_per_s`, value: rateOf(rounds), unit: "records/s" })
    report({ bench: `catchup_fold_${variant}_snapshots_snapshot_saves`, value: median(rounds.map((round) => round.saves)), unit: "saves" })
  }
  report({ bench: "catchup_fold_ratio_to_subscription", value: rateOf(memory) / subscriptionRate, unit: "ratio", target: { min: 0.7 } })
  report({ bench: "catchup_fold_file_snapshots_ratio_to_subscription", value: rateOf(file) / subscriptionRate, unit: "ratio" })
}

// ─── 2. Import an exported state versus a rebuild ─────────────────────────────────────────────────
/** A `totals` fold caught up over the journal exports its state under `directory`: the export's seconds and the state. */
const exportRound = (fixture: Fixture, directory: string) =>
  withStores(
    fixture,
    Effect.gen(function*() {
      const running = yield* Projection.run(totalsFold().projection)
      checkCursor("import: the exporting fold", fixture, (yield* running.awaitCaughtUp).cursor)
      const start = performance.now()
      const manifest = yield* running.exportState({ directory, round: 1 })
      const seconds = (performance.now() - start) / 1000
      if (Option.isNone(manifest) || manifest.value.cursor !== fixture.records) {
        throw new Error(`import: the export returned ${JSON.stringify(Option.getOrUndefined(manifest))}, expected an artifact at seq ${fixture.records}`)
      }
      const state = yield* running.get
      checkTotals("import: the exporting fold", fixture, state)
      return { seconds, state }
    })
  )

/** The bytes of every file under `directory`. */
const bytesUnder = (directory: string): number =>
  fs.readdirSync(directory, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .reduce((total, entry) => total + fs.statSync(join(entry.parentPath, entry.name)).size, 0)

/**
 * Seconds until a new replica is caught up: with `from`, `importLatest` from that directory, then
 * `run`; without, `run` from nothing. Checks that it holds `expected` (and, imported, folded nothing).
 */
const replicaRound = (fixture: Fixture, expected: ByStream, from: string | undefined) =>
  withStores(
    fixture,
    Effect.gen(function*() {
      const replica = from === undefined ? "rebuilt" : "imported"
      const { counter, projection } = totalsFold()
      const start = performance.now()
      if (from !== undefined) {
        const manifest = yield* Projection.importLatest(projection, { directory: from, replica })
        if (Option.isNone(manifest)) throw new Error(`import: importLatest found no artifact under ${from}`)
      }
      const running = yield* Projection.run(projection, { replica })
      const status = yield* running.awaitCaughtUp
      const seconds = (performance.now() - start) / 1000
      checkCursor(`import: the ${replica} replica`, fixture, status.cursor)
      const folded = from === undefined ? fixture.records : 0
      if (counter.calls !== folded) throw new Error(`import: the ${replica} replica called evolve ${counter.calls} times, expected ${folded}`)
      if (!isDeepStrictEqual(yield* running.get, expected)) throw new Error(`import: the ${replica} replica's state differs from the exported one`)
      return seconds
    })
  )

const importGroup = async () => {
  const journal = await fixture("import")
  const directory = temp.make("export")
  const exported = await exportRound(journal, directory)
  report({ bench: "import_export_seconds", value: exported.seconds, unit: "s" })
  report({ bench: "import_artifact_bytes", value: bytesUnder(directory), unit: "bytes" })
  const importRound = () => replicaRound(journal, exported.state, directory)
  const rebuildRound = () => replicaRound(journal, exported.state, undefined)
  await importRound()
  await rebuildRound()
  const imports: Array<number> = []
  const rebuilds: Array<number> = []
  for (let r = 0; r < ROUNDS; r++) {
    imports.push(await importRound())
    rebuilds.push(await rebuildRound())
  }
  await journal.close()
  const importSeconds = median(imports)
  const rebuildSeconds = median(rebuilds)
  report({ bench: "import_seconds", value: importSeconds, unit: "s" })
  report({ bench: "import_rebuild_seconds", value: rebuildSeconds, unit: "s" })
  report({ bench: "import_speedup_vs_rebuild", value: rebuildSeconds / importSeconds, unit: "ratio", target: { min: 10 } })
}

// ─── Main ─────────────────────────────────────────────────────────────────────────────────────────
await runGroups({ catchup, import: importGroup }, () => temp.removeAll())
