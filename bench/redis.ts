/**
 * Redis benchmark: the Redis Journal (annals/redis) next to raw ioredis commands doing the same work
 * in the same process against the same server, so that the targets that are ratios hold on any
 * machine (a loopback round trip varies from machine to machine; a ratio between neighbouring rounds
 * does not). Prints one JSON line per figure on stdout:
 *
 *   {"bench":"...","runtime":"bun|deno|node","value":…,"unit":"…","target":…,"met":true|false}
 *
 * The server: ANNALS_REDIS_URL (default `redis://127.0.0.1:6379`), as it is configured (its
 * `appendonly` / `appendfsync` slow the raw baseline's writes too; give them with the figures). Each
 * group works under a key prefix of its own (`annals-bench-<hex>`: the Journal's keys and the raw
 * baseline's, all under the hash tag `{annals-bench-<hex>}`), removed at its end
 * (`RedisClient.removeStore`). The Journal runs over `RedisClient.make` (its defaults: ioredis with
 * auto-pipelining); the raw baseline is a second ioredis client with ioredis' own defaults. Events:
 * bench/fixtures.ts's 100-byte payloads (two types), base64 in Redis as the Journal stores them.
 * Variants run once as a warm-up, then in interleaved rounds (ANNALS_BENCH_ROUNDS, default 5); a
 * rate is the median over the rounds, and a `_ratio_…` figure is the median of the rounds' own ratios.
 *
 * Groups (each meant for a fresh process; ANNALS_BENCH_APPENDS, default 5,000, is the appends per
 * round and writer):
 *
 *   append1      one writer, 1 event per `append` (an expected version each time):
 *                redis_append1_events_per_s; _raw_events_per_s: a sequential loop of `XADD`s of
 *                one entry with the fields of a Journal log entry (each awaited);
 *                redis_append1_ratio_to_raw, target ≥ 0.6.
 *   concurrent8  8 writers (fibers) on 8 streams, 1 event per `append` each, at once (their scripts
 *                pipelined on the one connection): redis_concurrent8_events_per_s, target ≥ 40,000;
 *                _raw_events_per_s: 8 such XADD loops at once on the raw client; _ratio_to_raw.
 *   read         `read` of one stream of ANNALS_BENCH_EVENTS events (default 10,000, built by
 *                appends of up to 1,000), collected: redis_read_ms (median of 4 × ROUNDS rounds),
 *                target ≤ 20; _raw_ms: `XRANGE` pages of 2,000 (the Journal's page) of the same
 *                stream's key, each entry decoded to a record (base64 payload to bytes);
 *                _ratio_to_raw = time(read) / time(raw).
 *   replay       `replayFrom(1)` to the end over ANNALS_BENCH_RECORDS records (default 1,000,000,
 *                built by appends of up to 1,000 events to 100 streams, 4 streams at a time:
 *                redis_replay_build_seconds), run with `Stream.runForEachArray` and a handler that
 *                only counts: redis_replay_records_per_s, target ≥ 200,000; _raw_…: `XRANGE` pages
 *                of 2,000 of the Journal's log key, each entry decoded to a record; _ratio_to_raw.
 *
 *   bun bench/redis.ts [groups…]
 *   deno run -A bench/redis.ts [groups…]
 *   npx tsc -p tsconfig.node.json && node .build/node/bench/redis.js [groups…]
 *   npm run bench -- redis [groups…]   # all three runtimes, each group in a fresh process
 *   ANNALS_BENCH_APPENDS=500 ANNALS_BENCH_ROUNDS=1 ANNALS_BENCH_RECORDS=20000 bun bench/redis.ts   # a quick run
 */
import { Effect, Exit, Scope } from "effect"
import * as EffectRedis from "effect/persistence/Redis"
import { Buffer } from "node:buffer"
import { randomBytes } from "node:crypto"
import { Redis as IORedis } from "ioredis"
import type { Journal } from "../src/Journal.ts"
import { RedisClient, RedisJournal } from "../src/redis/index.ts"
import { base64 } from "../src/redis/internal/journalEntries.ts"
import { storeKeys } from "../src/redis/internal/keys.ts"
import { redisUrl } from "../test/support/redis.ts"
import { eventAt, journalWriter, NAMESPACE, PAYLOAD_BYTES, writeConcurrently } from "./fixtures.ts"
import { readGroup, replayGroup } from "./serverReads.ts"
import { interleaved, rate, rateRatio, report, runGroups, sizeFromEnv } from "./report.ts"

const APPENDS = sizeFromEnv("ANNALS_BENCH_APPENDS", 5_000)
/** Entries per `XRANGE` of the raw reads: the Journal's own page size. */
const RAW_PAGE = 2_000

// ─── Setup ────────────────────────────────────────────────────────────────────────────────────────
/** One group's Journal and raw client, under a prefix of the group's own. */
interface Setup {
  readonly journal: Journal
  readonly raw: IORedis
  /** The Journal's keys under the group's prefix. */
  readonly keys: ReturnType<typeof storeKeys>
  /** A key of the raw baseline's, under the group's hash tag (removed with the Journal's). */
  readonly rawKey: (name: string) => string
}

/** Runs `body` on a fresh prefix, a Journal over it and a raw client; the prefix's keys are removed at the end. */
const withSetup = async (body: (setup: Setup) => Promise<void>) => {
  const url = redisUrl()
  const prefix = `annals-bench-${randomBytes(6).toString("hex")}`
  const keys = storeKeys(prefix)
  const scope = await Effect.runPromise(Scope.make())
  try {
    const { journal, redis } = await Effect.runPromise(Scope.provide(scope)(Effect.gen(function*() {
      const redis = yield* RedisClient.make({ url })
      const journal = yield* Effect.provideService(RedisJournal.make({ prefix }), EffectRedis.Redis, redis)
      return { journal, redis }
    })))
    const raw = new IORedis(url, { lazyConnect: true })
    try {
      await raw.connect()
      await body({ journal, raw, keys, rawKey: (name) => `${keys.tag}:raw:${name}` })
    } finally {
      raw.disconnect()
      await Effect.runPromise(Effect.provideService(RedisClient.removeStore(prefix), EffectRedis.Redis, redis))
    }
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

// ─── The raw baseline ─────────────────────────────────────────────────────────────────────────────
/** A raw writer on `key`: each call makes `count` sequential XADDs of one entry with a log entry's fields, each awaited. */
const rawWriter = (client: IORedis, key: string) => {
  let seq = 0
  return async (count: number) => {
    for (let i = 0; i < count; i++) {
      const { type, payload } = eventAt(seq)
      seq++
      await client.xadd(key, `${seq}-0`, "n", NAMESPACE, "i", "raw", "v", String(seq), "t", String(Date.now()), "y", type, "p", base64(payload))
    }
  }
}

/** A raw record decoded from an entry's fields (any of the Journal's two layouts), as a hand-written reader would. */
interface RawRecord {
  seq: number
  version: number
  namespace: string
  id: string
  type: string
  timestamp: number
  payload: Uint8Array
}

const decodeEntry = (entryId: string, fields: ReadonlyArray<string>): RawRecord => {
  const head = Number(entryId.slice(0, entryId.indexOf("-")))
  const record: RawRecord = { seq: head, version: head, namespace: NAMESPACE, id: "", type: "", timestamp: 0, payload: new Uint8Array() }
  for (let k = 0; k + 1 < fields.length; k += 2) {
    const value = fields[k + 1]!
    const field = fields[k]
    if (field === "n") record.namespace = value
    else if (field === "i") record.id = value
    else if (field === "v") record.version = Number(value)
    else if (field === "s") record.seq = Number(value)
    else if (field === "t") record.timestamp = Number(value)
    else if (field === "y") record.type = value
    else if (field === "p") record.payload = new Uint8Array(Buffer.from(value, "base64"))
  }
  return record
}

/** Reads all of `key` in `XRANGE` pages of RAW_PAGE, decoding every entry (each payload must be PAYLOAD_BYTES); how many it read. */
const rawReadAll = async (client: IORedis, key: string): Promise<number> => {
  let records = 0
  let bytes = 0
  let start = "-"
  for (;;) {
    const page = await client.xrange(key, start, "+", "COUNT", RAW_PAGE)
    for (const [entryId, fields] of page) {
      bytes += decodeEntry(entryId, fields).payload.length
      records++
    }
    if (page.length < RAW_PAGE) {
      if (bytes !== records * PAYLOAD_BYTES) throw new Error(`the raw XRANGE of ${key} decoded ${bytes} payload bytes for ${records} records`)
      return records
    }
    start = `(${page[page.length - 1]![0]}`
  }
}

// ─── 1. Appends ───────────────────────────────────────────────────────────────────────────────────
const append1 = async (setup: Setup) => {
  const annals = journalWriter(setup.journal, "one")
  const raw = rawWriter(setup.raw, setup.rawKey("one"))
  const seconds = await interleaved({
    annals: () => Effect.runPromise(annals(APPENDS, 1)),
    raw: () => raw(APPENDS)
  })
  report({ bench: "redis_append1_events_per_s", value: rate(APPENDS, seconds.annals), unit: "events/s" })
  report({ bench: "redis_append1_raw_events_per_s", value: rate(APPENDS, seconds.raw), unit: "events/s" })
  report({ bench: "redis_append1_ratio_to_raw", value: rateRatio(seconds.annals, seconds.raw), unit: "ratio", target: { min: 0.6 } })
}

const WRITERS = 8

const concurrent8 = async (setup: Setup) => {
  const writers = Array.from({ length: WRITERS }, (_, w) => journalWriter(setup.journal, `writer-${w}`))
  const raws = Array.from({ length: WRITERS }, (_, w) => rawWriter(setup.raw, setup.rawKey(`writer-${w}`)))
  const seconds = await interleaved({
    annals: () => Effect.runPromise(writeConcurrently(writers, APPENDS, 1)),
    raw: () => Promise.all(raws.map((raw) => raw(APPENDS))).then(() => undefined)
  })
  const events = APPENDS * WRITERS
  report({ bench: "redis_concurrent8_events_per_s", value: rate(events, seconds.annals), unit: "events/s", target: { min: 40_000 } })
  report({ bench: "redis_concurrent8_raw_events_per_s", value: rate(events, seconds.raw), unit: "events/s" })
  report({ bench: "redis_concurrent8_ratio_to_raw", value: rateRatio(seconds.annals, seconds.raw), unit: "ratio" })
}

// ─── 2. Read and 3. Replay (bench/serverReads.ts) ─────────────────────────────────────────────────
const read = (setup: Setup) =>
  readGroup({ name: "redis", journal: setup.journal, rawWhat: "the raw XRANGE", targetMs: 20, raw: (id) => rawReadAll(setup.raw, setup.keys.stream(NAMESPACE, id)) })

const replay = (setup: Setup) =>
  replayGroup({ name: "redis", journal: setup.journal, rawWhat: "the raw XRANGE", raw: () => rawReadAll(setup.raw, setup.keys.log) })

// ─── Main ─────────────────────────────────────────────────────────────────────────────────────────
const groups = { append1, concurrent8, read, replay }
await runGroups(
  Object.fromEntries(Object.entries(groups).map(([name, group]) => [name, () => withSetup(group)])),
  () => {}
)
