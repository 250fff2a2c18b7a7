/**
 * S3 benchmark: the S3 Archive (annals/s3) and the Archiver over it, against Ceph's radosgw on
 * loopback, each next to a baseline measured in the same process — the same file journal without
 * an Archiver, or raw `GetObject` downloads of the same objects with the same client — so that every
 * target is a ratio (the machine's fsync rate and the gateway's latency vary from run to run; a
 * ratio taken between neighbouring rounds does not). Prints one JSON line per figure on stdout:
 *
 *   {"bench":"...","runtime":"bun|deno|node","value":…,"unit":"…","target":…,"met":true|false}
 *
 * The server: the one ANNALS_S3_ENDPOINT names (keys ANNALS_S3_ACCESS_KEY, ANNALS_S3_SECRET_KEY), or
 * else one started by this process (test/support/s3Server.ts: radosgw over a throwaway one-node
 * Ceph, memstore), stopped at the end. Each group works in a bucket of its own, emptied and deleted
 * at its end. Events: bench/fixtures.ts's 100-byte pseudo-random payloads (two types), so gzip
 * finds little to squeeze but the records' framing. Variants run once as a warm-up, then in
 * interleaved rounds (ANNALS_BENCH_ROUNDS, default 5); a rate is the median over the rounds, and a
 * `_ratio_…` figure is the median of the rounds' own ratios.
 *
 * Groups (each meant for a fresh process):
 *
 *   append       file-journal appends (default durability "always", 1 event per `append`) with the
 *                Archiver running over the S3 Archive (segmentSize 1,000, pollInterval 50 ms, gzip)
 *                next to a second file journal in the same directory tree without one; one writer
 *                (ANNALS_BENCH_APPENDS appends per round, default 5,000) and 8 concurrent writers
 *                (fibers on 8 streams, as many appends each). Before every round the Archiver is
 *                waited for until it has no full segment left, so that its catching up never runs
 *                during a round without it. s3_append1_ratio_to_no_archiver and
 *                s3_append8_ratio_to_no_archiver, target ≥ 0.9; _segments_uploaded_in_rounds (the
 *                Archiver's `archivedThrough` moved during the measured rounds, in segments) beside
 *                _segments_appended_in_rounds (records appended in them / 1,000), and
 *                _pending_after_round_max (seqs not archived when a round ended); _cpu_us_per_event
 *                and _no_archiver_cpu_us_per_event: this process's CPU time (user + system, all its
 *                threads) per appended event over a round, median (the S3 server's is not in it).
 *   restore      ANNALS_BENCH_RECORDS records (default 200,000; a multiple of 100, built by
 *                bench/fixtures.ts's buildLargeJournal) uploaded once as 1,000-record segments
 *                (`Archiver.flush`), under one prefix with gzip and one without; then
 *                `Archiver.restore()` (concurrency 4) into a fresh file journal (default
 *                durability; opening it is not timed): s3_restore_<codec>_records_per_s; beside it
 *                _raw_records_per_s: the same objects downloaded with the same S3Client, 4 at a
 *                time (GetObject + transformToByteArray, nothing else), as records/s for the same
 *                records; s3_restore_<codec>_ratio_to_raw, target ≥ 0.7. To tell the download, the
 *                decoding and the journal's writes apart: _get_only_records_per_s (`archive.list`
 *                and `archive.get` of every segment, 4 at a time — download, checksum,
 *                decompression and decoding, no journal) and its _ratio_to_raw (informational).
 *   compression  20 segments of 1,000 records (read back from a file journal built as above):
 *                s3_compression_stored_bytes_ratio (objects with gzip / without, through
 *                `Archive.make`); s3_compression_gzip_ms_per_mb and _gunzip_ms_per_mb (the
 *                segments' plain encoded records through src/internal/archiveCompression.ts, one
 *                after another, per 10^6 plain bytes); s3_compression_put_p50_ms with and without
 *                gzip (an S3 Archive `put` of a fresh segment key, interleaved one by one) and
 *                s3_compression_put_extra_ms (the difference of the medians).
 *
 *   bun bench/s3.ts [groups…]
 *   deno run -A bench/s3.ts [groups…]
 *   npx tsc -p tsconfig.node.json && node .build/node/bench/s3.js [groups…]
 *   npm run bench -- s3 [groups…]   # all three runtimes, each group in a fresh process
 *   ANNALS_BENCH_RECORDS=5000 ANNALS_BENCH_APPENDS=2000 ANNALS_BENCH_ROUNDS=1 bun bench/s3.ts   # a quick check
 *
 * ANNALS_BENCH_DIR overrides the parent directory of the temporary directories (default os.tmpdir()).
 */
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3"
import { Context, Effect, Exit, Layer, Scope, Stream } from "effect"
import * as fs from "node:fs"
import { join } from "node:path"
import process from "node:process"
import * as Archive from "../src/Archive.ts"
import * as Archiver from "../src/Archiver.ts"
import { FileJournal } from "../src/file/index.ts"
import { compress, type Compression, decompress } from "../src/internal/archiveCompression.ts"
import { encodeObject } from "../src/internal/archiveObject.ts"
import { Journal, type JournalRecord } from "../src/Journal.ts"
import { S3Archive } from "../src/s3/index.ts"
import { isolatedBucket, s3ClientConfig, s3TargetFromEnv } from "../test/support/s3.ts"
import { type S3Target, startS3Server } from "../test/support/s3Server.ts"
import { buildLargeJournal, journalWriter, makeTempDirs, openJournal, writeConcurrently } from "./fixtures.ts"
import { benchRounds, interleaved, median, rate, rateRatio, report, runGroups, sizeFromEnv, timed } from "./report.ts"

const ROUNDS = benchRounds()
const SEGMENT_SIZE = 1_000
const MB = 1_000_000

const { make: tempDir, removeAll: removeTempDirs } = makeTempDirs()

// ─── The server and a group's bucket ──────────────────────────────────────────────────────────────
/** The server ANNALS_S3_ENDPOINT names, or one this process starts (and stops at the end). */
const openServer = async (): Promise<{ readonly target: S3Target; readonly stop: () => Promise<void> }> => {
  const shared = s3TargetFromEnv()
  if (shared !== undefined) return { target: shared, stop: async () => {} }
  const server = await startS3Server()
  return { target: server, stop: server.stop }
}

/** What a group works with: a bucket of its own, one client for it, and a scope closed at the group's end. */
interface Setup {
  readonly client: S3Client
  readonly bucket: string
  /** Runs `effect` in the group's scope (what it acquires lives until the group ends). */
  readonly inScope: <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) => Promise<A>
}

/** Runs `body` on a fresh bucket and client; the bucket is emptied and deleted, the client destroyed, at the end. */
const withSetup = async (target: S3Target, body: (setup: Setup) => Promise<void>) => {
  const scope = await Effect.runPromise(Scope.make())
  const inScope = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) => Effect.runPromise(Scope.provide(scope)(effect))
  try {
    const bucket = await inScope(isolatedBucket(target))
    const client = await inScope(Effect.acquireRelease(
      Effect.sync(() => new S3Client(s3ClientConfig(target))),
      (made) => Effect.sync(() => made.destroy())
    ))
    await body({ client, bucket, inScope })
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

/** An S3 Archive on the group's bucket under `prefix`, through the group's client. */
const s3Archive = (setup: Setup, prefix: string, compression: Compression) =>
  setup.inScope(S3Archive.make({ bucket: setup.bucket, client: setup.client, prefix, compression }))

/** `effect` with the journal and the archive provided. */
const withStores = <A, E, R>(journal: Journal, archive: Archive.Archive, effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.provideService(Journal, journal), Effect.provideService(Archive.Archive, archive))

// ─── 1. Appends with the Archiver running ─────────────────────────────────────────────────────────
/** Writers on streams `ids` of `journal`: each call makes `count` single-event appends per writer, all writers at once. */
const writers = (journal: Journal, ids: ReadonlyArray<string>) => {
  const each = ids.map((id) => journalWriter(journal, id))
  return (count: number) => Effect.runPromise(writeConcurrently(each, count, 1))
}

const CAUGHT_UP_TIMEOUT_MS = 300_000

const append = async (setup: Setup) => {
  const APPENDS = sizeFromEnv("ANNALS_BENCH_APPENDS", 5_000)
  const dir = tempDir("s3-append")
  const archived = await setup.inScope(FileJournal.make({ directory: join(dir, "with-archiver") }))
  const archive = await s3Archive(setup, "append/", "gzip")
  const archiver = Context.get(
    await setup.inScope(withStores(
      archived,
      archive,
      Layer.build(Archiver.layer({ segmentSize: SEGMENT_SIZE, pollInterval: "50 millis", restoreOnStart: false }))
    )),
    Archiver.Archiver
  )
  const plain = await openJournal({ directory: join(dir, "without") })
  const status = () => Effect.runPromise(archiver.status)
  /** Waits until the Archiver has no full segment left to upload. */
  const caughtUp = async () => {
    const deadline = performance.now() + CAUGHT_UP_TIMEOUT_MS
    for (;;) {
      const { pendingSeqs, lastError } = await status()
      if (pendingSeqs < SEGMENT_SIZE) return
      if (performance.now() > deadline) {
        throw new Error(`append: the Archiver still has ${pendingSeqs} seqs pending after ${CAUGHT_UP_TIMEOUT_MS} ms (last error: ${lastError._tag === "Some" ? lastError.value : "none"})`)
      }
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  try {
    for (const [name, count] of [["s3_append1", 1], ["s3_append8", 8]] as const) {
      const ids = Array.from({ length: count }, (_, w) => `${name}-writer-${w}`)
      const withArchiver = writers(archived, ids)
      const without = writers(plain.journal, ids)
      // Per run, the warm-up first: segments uploaded while it ran, seqs pending at its end, CPU ms of this process.
      const uploaded: Array<number> = []
      const pending: Array<number> = []
      const cpuMs = { archiver: [] as Array<number>, without: [] as Array<number> }
      const measure = async (variant: keyof typeof cpuMs, run: () => Promise<void>) => {
        const cpu = process.cpuUsage()
        const seconds = await timed(run)
        const used = process.cpuUsage(cpu)
        cpuMs[variant].push((used.user + used.system) / 1000)
        return seconds
      }
      const seconds = await interleaved({
        archiver: async () => {
          const before = (await status()).archivedThrough
          const seconds = await measure("archiver", () => withArchiver(APPENDS))
          const after = await status()
          uploaded.push((after.archivedThrough - before) / SEGMENT_SIZE)
          pending.push(after.pendingSeqs)
          return seconds
        },
        without: () => measure("without", () => without(APPENDS))
      }, { before: caughtUp })
      const events = APPENDS * count
      const cpuUsPerEvent = (ms: ReadonlyArray<number>) => (median(ms.slice(1)) * 1000) / events
      report({ bench: `${name}_events_per_s`, value: rate(events, seconds.archiver), unit: "events/s" })
      report({ bench: `${name}_no_archiver_events_per_s`, value: rate(events, seconds.without), unit: "events/s" })
      report({ bench: `${name}_ratio_to_no_archiver`, value: rateRatio(seconds.archiver, seconds.without), unit: "ratio", target: { min: 0.9 } })
      report({ bench: `${name}_segments_appended_in_rounds`, value: (events * ROUNDS) / SEGMENT_SIZE, unit: "segments" })
      report({ bench: `${name}_segments_uploaded_in_rounds`, value: uploaded.slice(1).reduce((a, b) => a + b, 0), unit: "segments" })
      report({ bench: `${name}_pending_after_round_max`, value: Math.max(...pending.slice(1)), unit: "seqs" })
      report({ bench: `${name}_cpu_us_per_event`, value: cpuUsPerEvent(cpuMs.archiver), unit: "µs" })
      report({ bench: `${name}_no_archiver_cpu_us_per_event`, value: cpuUsPerEvent(cpuMs.without), unit: "µs" })
    }
    const { lastError } = await status()
    if (lastError._tag === "Some") throw new Error(`append: the Archiver's last upload failed: ${lastError.value}`)
  } finally {
    await plain.close()
  }
}

// ─── 2. Restore next to raw downloads ─────────────────────────────────────────────────────────────
/** Every object under `prefix` in the group's bucket. */
const listObjects = async (setup: Setup, prefix: string): Promise<ReadonlyArray<{ readonly key: string; readonly size: number }>> => {
  const objects: Array<{ readonly key: string; readonly size: number }> = []
  let token: string | undefined
  do {
    const page = await setup.client.send(
      new ListObjectsV2Command({ Bucket: setup.bucket, Prefix: prefix, ...(token === undefined ? {} : { ContinuationToken: token }) })
    )
    for (const object of page.Contents ?? []) if (object.Key !== undefined) objects.push({ key: object.Key, size: object.Size ?? 0 })
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined
  } while (token !== undefined)
  return objects
}

/** Downloads every object of `keys`, 4 at a time, with nothing else done to them; their bytes in all. */
const rawDownload = (setup: Setup, keys: ReadonlyArray<string>) =>
  Effect.runPromise(Effect.forEach(keys, (key) =>
    Effect.promise(async () => {
      const output = await setup.client.send(new GetObjectCommand({ Bucket: setup.bucket, Key: key }))
      return output.Body === undefined ? 0 : (await output.Body.transformToByteArray()).length
    }), { concurrency: 4 })).then((sizes) => sizes.reduce((a, b) => a + b, 0))

const restore = async (setup: Setup) => {
  const RECORDS = sizeFromEnv("ANNALS_BENCH_RECORDS", 200_000)
  const source = await openBuilt("s3-restore-source", RECORDS)
  const codecs: ReadonlyArray<Compression> = ["gzip", "none"]
  const archives = new Map<Compression, { archive: Archive.Archive; keys: ReadonlyArray<string>; bytes: number }>()
  try {
    for (const compression of codecs) {
      const prefix = `restore-${compression}/`
      const archive = await s3Archive(setup, prefix, compression)
      const seconds = await timed(() =>
        Effect.runPromise(withStores(source.journal, archive, Effect.flatMap(Archiver.make({ segmentSize: SEGMENT_SIZE }), (a) => a.flush(RECORDS + 1))))
      )
      const objects = await listObjects(setup, prefix)
      if (objects.length !== Math.ceil(RECORDS / SEGMENT_SIZE)) throw new Error(`restore: ${objects.length} objects under ${prefix}`)
      const bytes = objects.reduce((sum, object) => sum + object.size, 0)
      report({ bench: `s3_restore_${compression}_upload_seconds`, value: seconds, unit: "s" })
      report({ bench: `s3_restore_${compression}_stored_bytes`, value: bytes, unit: "bytes" })
      archives.set(compression, { archive, keys: objects.map((object) => object.key), bytes })
    }
  } finally {
    await source.close()
  }
  report({ bench: "s3_restore_records", value: RECORDS, unit: "records" })
  /** Seconds of `Archiver.restore()` from `archive` into a fresh file journal (its open and close not timed). */
  const restoreInto = (archive: Archive.Archive) => async () => {
    const directory = tempDir("s3-restore-target")
    const fresh = await openJournal({ directory: join(directory, "journal") })
    try {
      return await timed(async () => {
        const restored = await Effect.runPromise(withStores(fresh.journal, archive, Archiver.restore()))
        if (restored.records !== RECORDS) throw new Error(`restore: restored ${restored.records} records, expected ${RECORDS}`)
      })
    } finally {
      await fresh.close()
      fs.rmSync(directory, { recursive: true, force: true })
    }
  }
  const variants: Record<string, () => Promise<number | void>> = {}
  for (const compression of codecs) {
    const { archive, keys, bytes } = archives.get(compression)!
    variants[`restore_${compression}`] = restoreInto(archive)
    variants[`raw_${compression}`] = async () => {
      const downloaded = await rawDownload(setup, keys)
      if (downloaded !== bytes) throw new Error(`restore: the raw download got ${downloaded} bytes, expected ${bytes}`)
    }
    variants[`get_${compression}`] = async () => {
      const refs = await Effect.runPromise(archive.list())
      const segments = await Effect.runPromise(Effect.forEach(refs, (ref) => archive.get(ref), { concurrency: 4 }))
      const got = segments.reduce((sum, records) => sum + records.length, 0)
      if (got !== RECORDS) throw new Error(`restore: archive.get returned ${got} records, expected ${RECORDS}`)
    }
  }
  const seconds = await interleaved(variants)
  for (const compression of codecs) {
    const own = seconds[`restore_${compression}`]!
    const raw = seconds[`raw_${compression}`]!
    report({ bench: `s3_restore_${compression}_records_per_s`, value: rate(RECORDS, own), unit: "records/s" })
    report({ bench: `s3_restore_${compression}_raw_records_per_s`, value: rate(RECORDS, raw), unit: "records/s" })
    report({ bench: `s3_restore_${compression}_ratio_to_raw`, value: rateRatio(own, raw), unit: "ratio", target: { min: 0.7 } })
    const got = seconds[`get_${compression}`]!
    report({ bench: `s3_restore_${compression}_get_only_records_per_s`, value: rate(RECORDS, got), unit: "records/s" })
    report({ bench: `s3_restore_${compression}_get_only_ratio_to_raw`, value: rateRatio(got, raw), unit: "ratio" })
  }
}

/** A file journal of `records` records built by buildLargeJournal ("os" durability), open. */
const openBuilt = async (label: string, records: number) => {
  const directory = join(tempDir(label), "journal")
  await buildLargeJournal(directory, { records, hotEvents: 0 })
  return openJournal({ directory, durability: "os" })
}

// ─── 3. Compression ───────────────────────────────────────────────────────────────────────────────
const compression = async (setup: Setup) => {
  const SEGMENTS = 20
  const source = await openBuilt("s3-compression", SEGMENTS * SEGMENT_SIZE)
  const records = await Effect.runPromise(Stream.runCollect(source.journal.replayFrom(1))).finally(source.close)
  const segments: ReadonlyArray<Archive.Segment> = Array.from({ length: SEGMENTS }, (_, s) => {
    const slice: ReadonlyArray<JournalRecord> = records.slice(s * SEGMENT_SIZE, (s + 1) * SEGMENT_SIZE)
    return { startSeq: slice[0]!.seq, endSeq: slice[slice.length - 1]!.seq, records: slice }
  })
  // Stored bytes, through Archive.make over memory.
  const stored = async (codec: Compression) => {
    const objects = new Map<string, Uint8Array>()
    const archive = await Effect.runPromise(Archive.make(Archive.makeObjectStoreMemory(objects), { compression: codec }))
    for (const segment of segments) await Effect.runPromise(archive.put(segment))
    return Array.from(objects.values()).reduce((sum, bytes) => sum + bytes.length, 0)
  }
  const gzipBytes = await stored("gzip")
  const noneBytes = await stored("none")
  report({ bench: "s3_compression_stored_bytes_none", value: noneBytes, unit: "bytes" })
  report({ bench: "s3_compression_stored_bytes_gzip", value: gzipBytes, unit: "bytes" })
  report({ bench: "s3_compression_stored_bytes_ratio", value: gzipBytes / noneBytes, unit: "ratio" })
  // CPU per MB of plain encoded records.
  const plains = await Effect.runPromise(Effect.forEach(segments, (segment) => Effect.map(encodeObject(segment, "bench", "none"), ({ plain }) => plain)))
  const plainBytes = plains.reduce((sum, bytes) => sum + bytes.length, 0)
  const gzipped = await Effect.runPromise(Effect.forEach(plains, (plain) => compress("gzip", plain)))
  report({ bench: "s3_compression_plain_bytes_per_segment", value: plainBytes / SEGMENTS, unit: "bytes" })
  const codecSeconds = await interleaved({
    gzip: () => Effect.runPromise(Effect.forEach(plains, (plain) => compress("gzip", plain), { discard: true })),
    gunzip: () => Effect.runPromise(Effect.forEach(gzipped, (bytes) => decompress("gzip", bytes), { discard: true }))
  })
  const msPerMb = (seconds: ReadonlyArray<number>) => (median(seconds) * 1000) / (plainBytes / MB)
  report({ bench: "s3_compression_gzip_ms_per_mb", value: msPerMb(codecSeconds.gzip), unit: "ms/MB" })
  report({ bench: "s3_compression_gunzip_ms_per_mb", value: msPerMb(codecSeconds.gunzip), unit: "ms/MB" })
  // Put latency on S3: a fresh key each time, the two codecs interleaved one put at a time.
  const latencies: Record<Compression, Array<number>> = { gzip: [], none: [] }
  for (let r = 0; r <= ROUNDS; r++) {
    const archives = {
      gzip: await s3Archive(setup, `put-${r}-gzip/`, "gzip"),
      none: await s3Archive(setup, `put-${r}-none/`, "none")
    }
    for (const segment of segments) {
      for (const codec of ["gzip", "none"] as const) {
        const seconds = await timed(() => Effect.runPromise(archives[codec].put(segment)))
        if (r > 0) latencies[codec].push(seconds * 1000) // round 0 is the warm-up
      }
    }
  }
  const gzipPut = median(latencies.gzip)
  const nonePut = median(latencies.none)
  report({ bench: "s3_compression_put_gzip_p50_ms", value: gzipPut, unit: "ms" })
  report({ bench: "s3_compression_put_none_p50_ms", value: nonePut, unit: "ms" })
  report({ bench: "s3_compression_put_extra_ms", value: gzipPut - nonePut, unit: "ms" })
}

// ─── Main ─────────────────────────────────────────────────────────────────────────────────────────
const groups = { append, restore, compression }
let server: Awaited<ReturnType<typeof openServer>> | undefined
await runGroups(
  Object.fromEntries(Object.entries(groups).map(([name, group]) => [name, async () => {
    server ??= await openServer()
    await withSetup(server.target, group)
  }])),
  async () => {
    removeTempDirs()
    await server?.stop()
  }
)
