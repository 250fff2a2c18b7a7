/**
 * NATS benchmark: the NATS Journal (annals/nats) next to raw `@nats-io/jetstream` calls doing the
 * same work in the same process against the same server, so that the targets that are ratios hold
 * on any machine. Prints one JSON line per figure on stdout:
 *
 *   {"bench":"...","runtime":"bun|deno|node","value":…,"unit":"…","target":…,"met":true|false}
 *
 * The server: ANNALS_NATS_URL (default `nats://127.0.0.1:4222`), as it is configured (its JetStream
 * storage directory and sync interval slow the raw baseline's writes too; give them with the
 * figures). Each group works under a store prefix of its own (`bench<hex>`): the Journal's streams
 * (`NatsClient.removeStore`) and the raw baseline's stream `bench<hex>_raw` (subjects
 * `bench<hex>.raw.>`, file storage like the Journal's), removed at its end. The Journal runs over
 * `NatsClient.make` (its defaults); the raw baseline uses the same connection's JetStream client.
 * Events: bench/fixtures.ts's 100-byte payloads (two types); a raw message is the body the Journal
 * would send for the same one-record append (its own encoding, `journalMessages.ts`). Variants run
 * once as a warm-up, then in interleaved rounds (ANNALS_BENCH_ROUNDS, default 5); a rate is the
 * median over the rounds, and a `_ratio_…` figure is the median of the rounds' own ratios.
 *
 * Groups (each meant for a fresh process; ANNALS_BENCH_APPENDS, default 5,000, is the appends per
 * round and writer, and the measured appends of `follow`):
 *
 *   append1      one writer, 1 event per `append` (an expected version each time):
 *                nats_append1_events_per_s; _raw_events_per_s: a sequential loop of
 *                `jetstream.publish`es of one such body, each ack awaited (no message id, no
 *                expectations); nats_append1_ratio_to_raw, target ≥ 0.6.
 *   concurrent8  8 writers (fibers) on 8 streams, 1 event per `append` each, at once (their messages
 *                pipelined on the one connection): nats_concurrent8_events_per_s, target ≥ 30,000;
 *                _raw_events_per_s: 8 such publish loops at once on 8 subjects; _ratio_to_raw.
 *   read         `read` of one stream of ANNALS_BENCH_EVENTS events (default 10,000, built by
 *                appends of up to 1,000), collected: nats_read_ms (median of 4 × ROUNDS rounds),
 *                target ≤ 30; _raw_ms: an ordered consumer of the stream's subject from its start,
 *                read until nothing is pending, each message unpacked to records; _ratio_to_raw =
 *                time(read) / time(raw).
 *   replay       `replayFrom(1)` to the end over ANNALS_BENCH_RECORDS records (default 1,000,000,
 *                built by appends of up to 1,000 events to 100 streams, 4 streams at a time:
 *                nats_replay_build_seconds), run with `Stream.runForEachArray` and a handler that
 *                only counts: nats_replay_records_per_s, target ≥ 200,000; _raw_…: an ordered
 *                consumer of every annals stream's subject, each message unpacked to records;
 *                _ratio_to_raw.
 *   follow       latency between two Journal instances on two connections (same prefix, same
 *                process, so one clock: performance.now()): the second follows the journal while
 *                the first makes 100 warm-up and then ANNALS_BENCH_APPENDS single-event appends,
 *                each 2 ms after the previous one returned. nats_follow_seen_after_start_p50_ms /
 *                _p99_ms (target ≤ 10): from the call of `append` to the record's arrival at the
 *                follower; nats_follow_seen_after_ack_p50_ms / _p99_ms: from `append`'s return
 *                (negative when the follower got it first); nats_follow_append_p50_ms for context.
 *
 *   bun bench/nats.ts [groups…]
 *   deno run -A bench/nats.ts [groups…]
 *   npx tsc -p tsconfig.node.json && node .build/node/bench/nats.js [groups…]
 *   npm run bench -- nats [groups…]   # all three runtimes, each group in a fresh process
 *   ANNALS_BENCH_APPENDS=500 ANNALS_BENCH_ROUNDS=1 ANNALS_BENCH_RECORDS=20000 bun bench/nats.ts   # a quick run
 */
import { RetentionPolicy, StorageType } from "@nats-io/jetstream"
import { Duration, Effect, Exit, Fiber, Scope, Stream } from "effect"
import { randomBytes } from "node:crypto"
import type { Journal } from "../src/Journal.ts"
import { unpack } from "../src/internal/msgpack.ts"
import { NatsClient, NatsJournal } from "../src/nats/index.ts"
import { EMPTY, encodeMessage } from "../src/nats/internal/journalMessages.ts"
import { storeNames, type StoreNames } from "../src/nats/internal/names.ts"
import { natsUrl } from "../test/support/nats.ts"
import { eventAt, journalWriter, NAMESPACE, PAYLOAD_BYTES, streamRef, writeConcurrently } from "./fixtures.ts"
import { readGroup, replayGroup } from "./serverReads.ts"
import { interleaved, percentile, rate, rateRatio, report, runGroups, sizeFromEnv } from "./report.ts"

const APPENDS = sizeFromEnv("ANNALS_BENCH_APPENDS", 5_000)

// ─── Setup ────────────────────────────────────────────────────────────────────────────────────────
/** One group's Journal, client and raw stream, under a prefix of the group's own. */
interface Setup {
  readonly url: string
  readonly prefix: string
  readonly journal: Journal
  /** The Journal's connection (the raw baseline publishes and reads through its JetStream client). */
  readonly client: NatsClient.NatsClient
  readonly names: StoreNames
  /** A subject of the raw baseline's stream. */
  readonly rawSubject: (name: string) => string
  /** Opens another Journal instance on the same prefix over a connection of its own, closed with the group. */
  readonly openJournal: () => Promise<Journal>
}

/** Runs `body` on a fresh prefix, a Journal over it and a raw stream; the prefix's streams are removed at the end. */
const withSetup = async (body: (setup: Setup) => Promise<void>) => {
  const url = natsUrl()
  const prefix = `bench${randomBytes(6).toString("hex")}`
  const names = storeNames(prefix)
  const rawStream = `${prefix}_raw`
  const scope = await Effect.runPromise(Scope.make())
  const inScope = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) => Effect.runPromise(Scope.provide(scope)(effect))
  const open = Effect.gen(function*() {
    const client = yield* NatsClient.make({ servers: url })
    const journal = yield* Effect.provideService(NatsJournal.make({ prefix }), NatsClient.NatsClient, client)
    return { client, journal }
  })
  try {
    const { client, journal } = await inScope(open)
    try {
      await client.manager.streams.add({
        name: rawStream,
        subjects: [`${prefix}.raw.>`],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        num_replicas: 1,
        allow_direct: true
      })
      await body({
        url,
        prefix,
        journal,
        client,
        names,
        rawSubject: (name) => `${prefix}.raw.${name}`,
        openJournal: () => inScope(Effect.map(open, (opened) => opened.journal))
      })
    } finally {
      await client.manager.streams.delete(rawStream).catch(() => false)
      await Effect.runPromise(Effect.provideService(NatsClient.removeStore(prefix), NatsClient.NatsClient, client))
    }
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

// ─── The raw baseline ─────────────────────────────────────────────────────────────────────────────
/** The body the Journal would send for the one-record append of `eventAt(seq - 1)` to stream `id` at version `seq`. */
const rawBody = (id: string, seq: number): Uint8Array => {
  const { type, payload } = eventAt(seq - 1)
  const timestamp = Date.now()
  return encodeMessage({
    position: { ...EMPTY, lastSeq: seq, lastTimestamp: timestamp },
    stream: { namespace: NAMESPACE, id, version: seq },
    records: [{ seq, namespace: NAMESPACE, id, version: seq, type, timestamp, payload }]
  })
}

/** A raw writer on the raw subject `name`: each call makes `count` sequential publishes of one record's body, each ack awaited. */
const rawWriter = (setup: Setup, name: string) => {
  const subject = setup.rawSubject(name)
  let seq = 0
  return async (count: number) => {
    for (let i = 0; i < count; i++) {
      seq++
      await setup.client.jetstream.publish(subject, rawBody(name, seq))
    }
  }
}

/** A raw record unpacked from a message body's row, as a hand-written reader would (no checks). */
interface RawRecord {
  readonly seq: number
  readonly version: number
  readonly namespace: string
  readonly id: string
  readonly type: string
  readonly timestamp: number
  readonly payload: Uint8Array
}

/** The records of a message body (the Journal's layout: `[format, version, position, namespace, id, version, rows, blob]`). */
const rawRecords = (data: Uint8Array): Array<RawRecord> => {
  const [, , , namespace, id, , rows] = unpack(data) as [unknown, unknown, unknown, string, string, unknown, Array<[number, number, number, string, Uint8Array, unknown]>]
  return rows.map(([seq, version, timestamp, type, payload]) => ({ seq, version, namespace, id, type, timestamp, payload }))
}

/**
 * Reads every message of the Journal's stream on `filter` through an ordered consumer from its
 * start until nothing is pending, unpacking each to records (each payload must be PAYLOAD_BYTES);
 * how many records it read.
 */
const rawReadAll = async (setup: Setup, filter: string): Promise<number> => {
  const consumer = await setup.client.jetstream.consumers.get(setup.names.journalStream, { filter_subjects: filter })
  // As the Journal's reads: at most 8 MiB asked for at once (the server closes a slow consumer past 64 MiB pending).
  const messages = await consumer.consume({ max_bytes: 8 * 1024 * 1024, expires: 2_000 })
  let records = 0
  let bytes = 0
  for await (const msg of messages) {
    const decoded = rawRecords(msg.data)
    for (const record of decoded) bytes += record.payload.length
    records += decoded.length
    if (msg.info.pending === 0) break
  }
  void messages.close().catch(() => undefined)
  if (bytes !== records * PAYLOAD_BYTES) throw new Error(`the raw read of ${filter} decoded ${bytes} payload bytes for ${records} records`)
  return records
}

// ─── 1. Appends ───────────────────────────────────────────────────────────────────────────────────
const append1 = async (setup: Setup) => {
  const annals = journalWriter(setup.journal, "one")
  const raw = rawWriter(setup, "one")
  const seconds = await interleaved({
    annals: () => Effect.runPromise(annals(APPENDS, 1)),
    raw: () => raw(APPENDS)
  })
  report({ bench: "nats_append1_events_per_s", value: rate(APPENDS, seconds.annals), unit: "events/s" })
  report({ bench: "nats_append1_raw_events_per_s", value: rate(APPENDS, seconds.raw), unit: "events/s" })
  report({ bench: "nats_append1_ratio_to_raw", value: rateRatio(seconds.annals, seconds.raw), unit: "ratio", target: { min: 0.6 } })
}

const WRITERS = 8

const concurrent8 = async (setup: Setup) => {
  const writers = Array.from({ length: WRITERS }, (_, w) => journalWriter(setup.journal, `writer-${w}`))
  const raws = Array.from({ length: WRITERS }, (_, w) => rawWriter(setup, `writer-${w}`))
  const seconds = await interleaved({
    annals: () => Effect.runPromise(writeConcurrently(writers, APPENDS, 1)),
    raw: () => Promise.all(raws.map((raw) => raw(APPENDS))).then(() => undefined)
  })
  const events = APPENDS * WRITERS
  report({ bench: "nats_concurrent8_events_per_s", value: rate(events, seconds.annals), unit: "events/s", target: { min: 30_000 } })
  report({ bench: "nats_concurrent8_raw_events_per_s", value: rate(events, seconds.raw), unit: "events/s" })
  report({ bench: "nats_concurrent8_ratio_to_raw", value: rateRatio(seconds.annals, seconds.raw), unit: "ratio" })
}

// ─── 2. Read and 3. Replay (bench/serverReads.ts) ─────────────────────────────────────────────────
const read = (setup: Setup) =>
  readGroup({ name: "nats", journal: setup.journal, rawWhat: "the raw ordered consumer", targetMs: 30, raw: (id) => rawReadAll(setup, setup.names.streamSubject(NAMESPACE, id)) })

const replay = (setup: Setup) =>
  replayGroup({ name: "nats", journal: setup.journal, rawWhat: "the raw ordered consumer", raw: () => rawReadAll(setup, setup.names.streamSubjects) })

// ─── 4. Follow, across connections ────────────────────────────────────────────────────────────────
const follow = async (setup: Setup) => {
  const WARMUP = 100
  const total = WARMUP + APPENDS
  // By seq (the journal is new: the appends below are seqs 1 … total).
  const started = new Float64Array(total + 1)
  const acked = new Float64Array(total + 1)
  const seen = new Float64Array(total + 1)
  const follower = await setup.openJournal()
  const following = Effect.runFork(Stream.runForEachArray(Stream.take(follower.follow(1), total), (chunk) =>
    Effect.sync(() => {
      const now = performance.now()
      for (const record of chunk) seen[record.seq] = now
    })))
  await Effect.runPromise(Effect.gen(function*() {
    const stream = streamRef("followed")
    for (let i = 0; i < total; i++) {
      const start = performance.now()
      const { firstSeq } = yield* setup.journal.append(stream, i, [eventAt(i)])
      acked[firstSeq] = performance.now()
      started[firstSeq] = start
      yield* Effect.sleep(2)
    }
    const done = yield* Effect.timeoutOption(Fiber.join(following), Duration.seconds(30))
    if (done._tag === "None") {
      yield* Fiber.interrupt(following)
      return yield* Effect.die(new Error(`follow: the follower did not get all ${total} records within 30 s`))
    }
  }))
  const sorted = (f: (seq: number) => number) => {
    const values: Array<number> = []
    for (let seq = WARMUP + 1; seq <= total; seq++) values.push(f(seq))
    return values.sort((a, b) => a - b)
  }
  const afterStart = sorted((seq) => seen[seq]! - started[seq]!)
  const afterAck = sorted((seq) => seen[seq]! - acked[seq]!)
  report({ bench: "nats_follow_appends_measured", value: APPENDS, unit: "appends" })
  report({ bench: "nats_follow_seen_after_start_p50_ms", value: percentile(afterStart, 0.5), unit: "ms" })
  report({ bench: "nats_follow_seen_after_start_p99_ms", value: percentile(afterStart, 0.99), unit: "ms", target: { max: 10 } })
  report({ bench: "nats_follow_seen_after_ack_p50_ms", value: percentile(afterAck, 0.5), unit: "ms" })
  report({ bench: "nats_follow_seen_after_ack_p99_ms", value: percentile(afterAck, 0.99), unit: "ms" })
  report({ bench: "nats_follow_seen_before_ack_count", value: afterAck.filter((ms) => ms < 0).length, unit: "records" })
  report({ bench: "nats_follow_append_p50_ms", value: percentile(sorted((seq) => acked[seq]! - started[seq]!), 0.5), unit: "ms" })
}

// ─── Main ─────────────────────────────────────────────────────────────────────────────────────────
const groups = { append1, concurrent8, read, replay, follow }
await runGroups(
  Object.fromEntries(Object.entries(groups).map(([name, group]) => [name, () => withSetup(group)])),
  () => {}
)
