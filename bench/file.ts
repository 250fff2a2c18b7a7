/**
 * File Journal benchmark: durable and page-cache appends, replay, recovery scan and stream reads of
 * `FileJournal` on a real directory (under `os.tmpdir()`, removed afterwards), each next to a raw
 * `node:fs` baseline measured in the same process. Prints one JSON line per figure on stdout:
 *
 *   {"bench":"...","runtime":"bun|deno|node","value":…,"unit":"…","target":…,"met":true|false}
 *
 * Groups (each meant for a fresh process; `large` builds one 1,000,000-record journal and runs
 * replay, open and read over it):
 *
 *   durable     "always" append, one writer, 1 event per call, after 3,000 warm-up appends (the first
 *               1,000 after open are reported apart); raw baseline writeSync + fdatasync (sync and
 *               callback variants, the faster counts); target annals ≥ 80% of the baseline
 *   concurrent  "always" append from 256 concurrent fibers, 1 event per call; target ≥ 100,000 events/s
 *   os          "os" append, one writer, 1 event per call; target ≥ 200,000 events/s on Bun;
 *               raw baseline: writeSync only
 *   replay      replayFrom(1) over 1,000,000 records; target ≥ 1,000,000 records/s on Bun;
 *               raw baseline: readSync of the directory's files
 *   open        FileJournal.make over that journal: time (in this process, and in fresh processes)
 *               ≤ 1.5 s; rss of a fresh process after open ≤ 200 MB (10^6 bytes)
 *   read        `read` of one 10,000-event stream interleaved with 990,000 other records: ≤ 20 ms
 *   large       replay + open + read over one shared journal
 *   streams     open of a journal of 1,000,000 one-record streams (ids shaped like UUIDs), in fresh
 *               processes: time ≤ 1.5 s, rss after open ≤ 300 MB; raw baseline: readSync of its files
 *   truncate    truncateBefore touching 100 streams, in a journal whose truncated history holds 10,000
 *               and then 1,000,000 other streams: the cost must not grow with the streams it does not
 *               touch (target: 1M / 10k ratio of the medians ≤ 2); raw baseline: the durable I/O a
 *               truncation needs at least (append ~3 KB + fsync, replace a small file atomically)
 *
 *   bun bench/file.ts [groups…]
 *   deno run -A bench/file.ts [groups…]
 *   npx tsc -p tsconfig.node.json && node .build/node/bench/file.js [groups…]
 *   npm run bench -- file [groups…]   # all three runtimes, each group in a fresh process
 *
 * `bench/file.ts open-only <dir>` is the child process of the `open` and `streams` groups: it opens the
 * journal in `<dir>` and prints its open time and memory as one JSON line (not a figure line).
 *
 * ANNALS_BENCH_DIR overrides the parent directory of the temporary directories (default os.tmpdir()).
 */
import { Effect, Stream } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import type { Journal, JournalRecord } from "../src/Journal.ts"
import { FileJournal } from "../src/file/index.ts"
import { appendSequential, buildLargeJournal, eventAt, hotStream, makeTempDirs, openJournal, PAYLOAD_BYTES, streamRef, timeAppends } from "./fixtures.ts"
import { median, onBun, percentile, report, runtime } from "./report.ts"

const MB = 1_000_000

const { make: tempDir, removeAll: removeTempDirs } = makeTempDirs()

/** Every regular file under `dir`, recursively. */
const filesUnder = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(join(dir, entry.name)) : entry.isFile() ? [join(dir, entry.name)] : []
  )
const bytesUnder = (dir: string) => filesUnder(dir).reduce((sum, file) => sum + fs.statSync(file).size, 0)

/**
 * The bytes one single-event append adds to the journal's files, measured over `count` appends
 * already made; falls back to an estimate if the files do not grow by record (e.g. preallocated).
 */
const frameBytes = (group: string, dir: string, before: number, count: number) => {
  const measured = Math.round((bytesUnder(dir) - before) / count)
  const frame = measured > PAYLOAD_BYTES && measured < PAYLOAD_BYTES + 1024 ? measured : PAYLOAD_BYTES + 64
  report({ bench: `${group}_frame_bytes_per_single_event_append`, value: frame, unit: "bytes" })
  return new Uint8Array(frame).fill(0x5a)
}

/** A plain file the raw baselines append frames to. */
const rawFile = (dir: string, name: string) => {
  const fd = fs.openSync(join(dir, name), "w")
  let position = 0
  const write = (frame: Uint8Array) => {
    let done = 0
    while (done < frame.length) done += fs.writeSync(fd, frame, done, frame.length - done, position + done)
    position += frame.length
  }
  return { fd, write, close: () => fs.closeSync(fd) }
}
const fdatasync = (fd: number) =>
  new Promise<void>((resolve, reject) => fs.fdatasync(fd, (error) => (error ? reject(error) : resolve())))

// ─── 1. Durable append, one writer ─────────────────────────────────────────────────────────────────
const durable = async () => {
  // Node's JIT needs a few thousand appends to reach its steady state (the first thousand run slower
  // there); the first 1,000 are reported on their own, then the warm-up goes on to 3,000.
  const FIRST = 1000
  const WARMUP = 3000
  const ROUNDS = 7
  const PER_ROUND = 500
  const dir = tempDir("durable")
  const { journal, close } = await openJournal({ directory: join(dir, "journal"), durability: "always" })
  const stream = streamRef("durable")
  const before = bytesUnder(dir)
  const firstRate = FIRST / (await timeAppends(journal, stream, 0, FIRST))
  const frame = frameBytes("durable", dir, before, FIRST)
  await timeAppends(journal, stream, FIRST, WARMUP - FIRST)
  const sync = rawFile(dir, "raw-sync.bin")
  const callback = rawFile(dir, "raw-callback.bin")
  const rawSyncRound = (count: number) => {
    const start = performance.now()
    for (let i = 0; i < count; i++) {
      sync.write(frame)
      fs.fdatasyncSync(sync.fd)
    }
    return (performance.now() - start) / 1000
  }
  const rawCallbackRound = async (count: number) => {
    const start = performance.now()
    for (let i = 0; i < count; i++) {
      callback.write(frame)
      await fdatasync(callback.fd)
    }
    return (performance.now() - start) / 1000
  }
  rawSyncRound(WARMUP)
  await rawCallbackRound(WARMUP)
  // Interleaved rounds, so that a noisy stretch of the disk hits all three alike.
  const annals: Array<number> = []
  const rawSync: Array<number> = []
  const rawCallback: Array<number> = []
  let version = WARMUP
  for (let r = 0; r < ROUNDS; r++) {
    rawSync.push(PER_ROUND / rawSyncRound(PER_ROUND))
    rawCallback.push(PER_ROUND / (await rawCallbackRound(PER_ROUND)))
    annals.push(PER_ROUND / (await timeAppends(journal, stream, version, PER_ROUND)))
    version += PER_ROUND
  }
  const rate = median(annals)
  const syncRate = median(rawSync)
  const callbackRate = median(rawCallback)
  const baseline = Math.max(syncRate, callbackRate)
  report({ bench: "durable_append_first_1000_after_open_events_per_s", value: firstRate, unit: "events/s" })
  report({ bench: "durable_append_events_per_s", value: rate, unit: "events/s" })
  report({ bench: "durable_raw_write_fdatasyncSync", value: syncRate, unit: "events/s" })
  report({ bench: "durable_raw_write_fdatasync_callback", value: callbackRate, unit: "events/s" })
  report({ bench: "durable_raw_baseline_is_callback_variant", value: callbackRate > syncRate ? 1 : 0, unit: "bool" })
  report({ bench: "durable_raw_baseline", value: baseline, unit: "events/s" })
  report({ bench: "durable_append_ratio_to_raw", value: rate / baseline, unit: "ratio", target: { min: 0.8 } })
  sync.close()
  callback.close()
  await close()
}

// ─── 2. Durable append from 256 concurrent fibers (group commit) ───────────────────────────────────
const concurrent = async () => {
  const FIBERS = 256
  const ROUNDS = 5
  const PER_FIBER = 200 // 51,200 events per round
  const dir = tempDir("concurrent")
  const { journal, close } = await openJournal({ directory: join(dir, "journal"), durability: "always" })
  const streams = Array.from({ length: FIBERS }, (_, i) => streamRef(`fiber-${i}`))
  const versions = new Array<number>(FIBERS).fill(0)
  const fiberRound = (count: number) =>
    Effect.runPromise(Effect.gen(function*() {
      const start = performance.now()
      yield* Effect.forEach(streams, (stream, i) =>
        Effect.gen(function*() {
          yield* appendSequential(journal, stream, versions[i]!, count)
          versions[i]! += count
        }), { concurrency: FIBERS, discard: true })
      return (performance.now() - start) / 1000
    }))
  await fiberRound(20)
  // The raw group-commit ceiling: 256 frames written, then one fdatasync, per batch.
  const frame = new Uint8Array(PAYLOAD_BYTES + 64).fill(0x5a)
  const raw = rawFile(dir, "raw-batch.bin")
  const rawRound = (batches: number) => {
    const start = performance.now()
    for (let b = 0; b < batches; b++) {
      for (let i = 0; i < FIBERS; i++) raw.write(frame)
      fs.fdatasyncSync(raw.fd)
    }
    return (performance.now() - start) / 1000
  }
  rawRound(20)
  const annals: Array<number> = []
  const rawRates: Array<number> = []
  for (let r = 0; r < ROUNDS; r++) {
    annals.push((FIBERS * PER_FIBER) / (await fiberRound(PER_FIBER)))
    rawRates.push((FIBERS * PER_FIBER) / rawRound(PER_FIBER))
  }
  const total = versions.reduce((a, b) => a + b, 0)
  const lastSeq = await Effect.runPromise(journal.lastSeq)
  if (lastSeq !== total) throw new Error(`concurrent appends: lastSeq ${lastSeq}, expected ${total}`)
  report({ bench: "durable_append_256_fibers_events_per_s", value: median(annals), unit: "events/s", target: { min: 100_000 } })
  report({ bench: "durable_raw_256_writes_per_fdatasync", value: median(rawRates), unit: "events/s" })
  raw.close()
  await close()
}

// ─── 3. "os" append, one writer ────────────────────────────────────────────────────────────────────
const osAppend = async () => {
  const WARMUP = 20_000
  const ROUNDS = 7
  const PER_ROUND = 50_000
  const dir = tempDir("os")
  const { journal, close } = await openJournal({ directory: join(dir, "journal"), durability: "os" })
  const stream = streamRef("os")
  const before = bytesUnder(dir)
  await timeAppends(journal, stream, 0, WARMUP)
  const frame = frameBytes("os", dir, before, WARMUP)
  const raw = rawFile(dir, "raw-write.bin")
  const rawRound = (count: number) => {
    const start = performance.now()
    for (let i = 0; i < count; i++) raw.write(frame)
    return (performance.now() - start) / 1000
  }
  rawRound(WARMUP)
  const annals: Array<number> = []
  const rawRates: Array<number> = []
  let version = WARMUP
  for (let r = 0; r < ROUNDS; r++) {
    rawRates.push(PER_ROUND / rawRound(PER_ROUND))
    annals.push(PER_ROUND / (await timeAppends(journal, stream, version, PER_ROUND)))
    version += PER_ROUND
  }
  const rate = median(annals)
  const rawRate = median(rawRates)
  report({ bench: "os_append_events_per_s", value: rate, unit: "events/s", target: onBun({ min: 200_000 }) })
  report({ bench: "os_raw_writeSync_only", value: rawRate, unit: "events/s" })
  report({ bench: "os_append_ratio_to_raw", value: rate / rawRate, unit: "ratio" })
  raw.close()
  await close()
}

// ─── 4–6. One 1,000,000-record journal: replay, open, read ─────────────────────────────────────────
const RECORDS = 1_000_000
const HOT_EVENTS = 10_000
/**
 * The large journal: 9,900 appends of 100 events round-robin over 999 streams, and after each about
 * one single-event append to the hot stream (10,000 in all), so the hot stream's events are spread
 * over the whole log one or two per 100 records ("os" durability).
 */
const build = async (directory: string) => {
  const seconds = await buildLargeJournal(directory, { records: RECORDS, hotEvents: HOT_EVENTS })
  report({ bench: "large_build_seconds_1M_records_os", value: seconds, unit: "s" })
}

let large: string | undefined
const largeJournal = async () => {
  if (large === undefined) {
    large = join(tempDir("large"), "journal")
    await build(large)
    report({ bench: "large_journal_bytes_on_disk", value: bytesUnder(large), unit: "bytes" })
  }
  return large
}

/** The raw read baseline: every file under `directory` read front to back with readSync into one 1 MiB buffer. */
const rawReadFiles = (directory: string) => {
  const files = filesUnder(directory).sort()
  const buffer = new Uint8Array(1 << 20)
  const start = performance.now()
  let total = 0
  for (const file of files) {
    const fd = fs.openSync(file, "r")
    try {
      let position = 0
      for (;;) {
        const read = fs.readSync(fd, buffer, 0, buffer.length, position)
        if (read <= 0) break
        position += read
      }
      total += position
    } finally {
      fs.closeSync(fd)
    }
  }
  return { seconds: (performance.now() - start) / 1000, total }
}

const replay = async () => {
  const directory = await largeJournal()
  const ROUNDS = 5
  const replayAll = (journal: Journal) =>
    Effect.runPromise(Effect.gen(function*() {
      const start = performance.now()
      const result = yield* Stream.runFold(
        journal.replayFrom(1),
        () => ({ count: 0, bytes: 0, lastSeq: 0 }),
        (acc, record: JournalRecord) => {
          if (record.seq <= acc.lastSeq) throw new Error(`replay out of order at seq ${record.seq}`)
          acc.count++
          acc.bytes += record.payload.length
          acc.lastSeq = record.seq
          return acc
        }
      )
      const seconds = (performance.now() - start) / 1000
      if (result.count !== RECORDS) throw new Error(`replay returned ${result.count} records`)
      return seconds
    }))
  const countOnly = (journal: Journal) =>
    Effect.runPromise(Effect.gen(function*() {
      const start = performance.now()
      const count = yield* Stream.runCount(journal.replayFrom(1))
      if (count !== RECORDS) throw new Error(`replay counted ${count} records`)
      return (performance.now() - start) / 1000
    }))
  const rawRead = () => rawReadFiles(directory)
  const { journal, close } = await openJournal({ directory, durability: "os" })
  await replayAll(journal) // warm-up (and the page cache)
  rawRead()
  const rates: Array<number> = []
  const counts: Array<number> = []
  const raws: Array<number> = []
  let bytes = 0
  for (let r = 0; r < ROUNDS; r++) {
    rates.push(RECORDS / (await replayAll(journal)))
    counts.push(RECORDS / (await countOnly(journal)))
    const raw = rawRead()
    raws.push(raw.seconds)
    bytes = raw.total
  }
  await close()
  report({ bench: "replay_from_1_records_per_s", value: median(rates), unit: "records/s", target: onBun({ min: 1_000_000 }) })
  report({ bench: "replay_from_1_runCount_records_per_s", value: median(counts), unit: "records/s" })
  report({ bench: "replay_raw_readSync_bytes_per_s", value: bytes / median(raws), unit: "bytes/s" })
  report({ bench: "replay_raw_readSync_equivalent_records_per_s", value: RECORDS / median(raws), unit: "records/s" })
}

/** What the `open-only` child prints: one line, tagged so the parent can tell it from other output. */
interface OpenOnly {
  readonly openOnly: true
  readonly seconds: number
  readonly rssBefore: number
  readonly rssAfter: number
  readonly heapUsedAfter: number
  /** The same after a full garbage collection (Bun.gc, or gc() with --expose-gc): what the open keeps. */
  readonly rssAfterGc: number
  readonly heapUsedAfterGc: number
  readonly lastSeq: number
}
const collectGarbage = () => {
  const bun = (globalThis as { Bun?: { gc: (force: boolean) => void } }).Bun
  if (bun !== undefined) bun.gc(true)
  else (globalThis as { gc?: () => void }).gc?.()
}
const openOnly = async (directory: string) => {
  const rssBefore = process.memoryUsage().rss
  await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const start = performance.now()
    const journal = yield* FileJournal.make({ directory })
    const seconds = (performance.now() - start) / 1000
    const memory = process.memoryUsage()
    const lastSeq = yield* journal.lastSeq
    collectGarbage()
    const collected = process.memoryUsage()
    const line: OpenOnly = {
      openOnly: true,
      seconds,
      rssBefore,
      rssAfter: memory.rss,
      heapUsedAfter: memory.heapUsed,
      rssAfterGc: collected.rss,
      heapUsedAfterGc: collected.heapUsed,
      lastSeq
    }
    console.log(JSON.stringify(line))
  })))
}

/** Opens the journal in `directory` in 3 fresh processes on this runtime (`open-only`): cold open time and memory. */
const openInFreshProcesses = (directory: string, lastSeq: number): Array<OpenOnly> => {
  const script = fileURLToPath(import.meta.url)
  const args = runtime === "deno"
    ? ["run", "-A", "--v8-flags=--expose-gc", script, "open-only", directory]
    : runtime === "node"
    ? ["--expose-gc", script, "open-only", directory]
    : [script, "open-only", directory]
  const children: Array<OpenOnly> = []
  for (let r = 0; r < 3; r++) {
    const child = spawnSync(process.execPath, args, { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } })
    const line = child.stdout.split("\n").find((l) => l.startsWith("{\"openOnly\""))
    if (child.status !== 0 || line === undefined) {
      throw new Error(`open-only child failed (status ${child.status}): ${child.stderr}${child.stdout}`)
    }
    const result = JSON.parse(line) as OpenOnly
    if (result.lastSeq !== lastSeq) throw new Error(`open-only child: lastSeq ${result.lastSeq}, expected ${lastSeq}`)
    children.push(result)
  }
  return children
}

const open = async () => {
  const directory = await largeJournal()
  const ROUNDS = 5
  const openOnce = () =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const start = performance.now()
      const journal = yield* FileJournal.make({ directory })
      const seconds = (performance.now() - start) / 1000
      if ((yield* journal.lastSeq) !== RECORDS) throw new Error("open: wrong lastSeq")
      return seconds
    })))
  await openOnce()
  const warm: Array<number> = []
  for (let r = 0; r < ROUNDS; r++) warm.push(await openOnce())
  report({ bench: "open_1M_records_seconds_in_process", value: median(warm), unit: "s", target: { max: 1.5 } })

  const children = openInFreshProcesses(directory, RECORDS)
  const pick = (f: (c: OpenOnly) => number) => median(children.map(f))
  report({ bench: "open_1M_records_seconds_fresh_process", value: pick((c) => c.seconds), unit: "s", target: { max: 1.5 } })
  report({ bench: "open_fresh_process_rss_after_open", value: pick((c) => c.rssAfter) / MB, unit: "MB", target: { max: 200 } })
  report({ bench: "open_fresh_process_heapUsed_after_open", value: pick((c) => c.heapUsedAfter) / MB, unit: "MB" })
  report({ bench: "open_fresh_process_rss_before_open", value: pick((c) => c.rssBefore) / MB, unit: "MB" })
  report({ bench: "open_fresh_process_rss_after_open_and_gc", value: pick((c) => c.rssAfterGc) / MB, unit: "MB" })
  report({ bench: "open_fresh_process_heapUsed_after_open_and_gc", value: pick((c) => c.heapUsedAfterGc) / MB, unit: "MB" })
}

const read = async () => {
  const directory = await largeJournal()
  const WARMUP = 5
  const SAMPLES = 21
  const { journal, close } = await openJournal({ directory, durability: "os" })
  const readHot = () =>
    Effect.runPromise(Effect.gen(function*() {
      const start = performance.now()
      const records = yield* Stream.runCollect(journal.read(hotStream))
      const ms = performance.now() - start
      if (records.length !== HOT_EVENTS || records[HOT_EVENTS - 1]!.version !== HOT_EVENTS) {
        throw new Error(`read returned ${records.length} records`)
      }
      return ms
    }))
  const first = await readHot()
  for (let i = 1; i < WARMUP; i++) await readHot()
  const samples: Array<number> = []
  for (let i = 0; i < SAMPLES; i++) samples.push(await readHot())
  samples.sort((a, b) => a - b)
  await close()
  report({ bench: "read_10k_stream_in_1M_median_ms", value: percentile(samples, 0.5), unit: "ms", target: { max: 20 } })
  report({ bench: "read_10k_stream_in_1M_max_ms", value: samples[samples.length - 1]!, unit: "ms" })
  report({ bench: "read_10k_stream_in_1M_first_after_open_ms", value: first, unit: "ms" })
}

// ─── 7. One 1,000,000-stream journal: open ──────────────────────────────────────────────────────────
const STREAMS = 1_000_000
/** The id of the `i`-th of many one-record streams: shaped like a UUID (36 characters), as ids often are. */
const uuidLike = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`

/** Appends one event to each of `count` new streams of `namespace` ("os" durability). */
const appendStreams = (journal: Journal, namespace: string, count: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < count; i++) yield* journal.append({ namespace, id: uuidLike(i) }, 0, [eventAt(i)])
  })

const streams = async () => {
  const directory = join(tempDir("streams"), "journal")
  const start = performance.now()
  await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    yield* appendStreams(yield* FileJournal.make({ directory, durability: "os" }), "account", STREAMS)
  })))
  report({ bench: "streams_build_seconds_1M_one_record_streams_os", value: (performance.now() - start) / 1000, unit: "s" })
  report({ bench: "streams_journal_bytes_on_disk", value: bytesUnder(directory), unit: "bytes" })
  rawReadFiles(directory) // the page cache
  const raws: Array<number> = []
  for (let r = 0; r < 5; r++) raws.push(rawReadFiles(directory).seconds)
  const children = openInFreshProcesses(directory, STREAMS)
  const pick = (f: (c: OpenOnly) => number) => median(children.map(f))
  report({ bench: "streams_open_1M_streams_seconds_fresh_process", value: pick((c) => c.seconds), unit: "s", target: { max: 1.5 } })
  report({ bench: "streams_raw_readSync_of_its_files_seconds", value: median(raws), unit: "s" })
  report({ bench: "streams_open_fresh_process_rss_after_open", value: pick((c) => c.rssAfter) / MB, unit: "MB", target: { max: 300 } })
  report({ bench: "streams_open_fresh_process_rss_before_open", value: pick((c) => c.rssBefore) / MB, unit: "MB" })
  report({ bench: "streams_open_fresh_process_heapUsed_after_open_and_gc", value: pick((c) => c.heapUsedAfterGc) / MB, unit: "MB" })
  report({ bench: "streams_open_fresh_process_rss_after_open_and_gc", value: pick((c) => c.rssAfterGc) / MB, unit: "MB" })
  report({ bench: "streams_open_rss_growth_per_stream", value: pick((c) => c.rssAfter - c.rssBefore) / STREAMS, unit: "bytes" })
}

// ─── 8. Truncation: its cost does not grow with the streams it does not touch ─────────────────────────
const TOUCHED = 100
const TRUNCATIONS = 31

/**
 * A journal with `others` one-record streams, all truncated (so its truncated history holds them), then
 * `TRUNCATIONS` rounds of one event to each of `TOUCHED` hot streams followed by `truncateBefore` the next
 * seq — each truncation touches those 100 streams only. Returns the median and slowest truncation, ms.
 */
const truncationRounds = async (others: number) => {
  const directory = join(tempDir(`truncate-${others}`), "journal")
  // "os": the appends around the truncations are not what is measured (a truncation fsyncs what it
  // writes whatever the durability).
  const { journal, close } = await openJournal({ directory, durability: "os" })
  const hot = Array.from({ length: TOUCHED }, (_, i) => ({ namespace: "hot", id: uuidLike(i) }))
  const times = await Effect.runPromise(Effect.gen(function*() {
    yield* appendStreams(journal, "account", others)
    yield* journal.truncateBefore((yield* journal.lastSeq) + 1)
    const times: Array<number> = []
    for (let r = 0; r < TRUNCATIONS; r++) {
      for (const stream of hot) yield* journal.append(stream, r, [eventAt(r)])
      const seq = (yield* journal.lastSeq) + 1
      const start = performance.now()
      yield* journal.truncateBefore(seq)
      times.push(performance.now() - start)
    }
    for (const stream of hot) {
      if ((yield* journal.version(stream)) !== TRUNCATIONS) throw new Error("truncate: wrong version of a hot stream")
    }
    return times
  }))
  await close()
  // The truncated history survives a reopen.
  const reopened = await openJournal({ directory, durability: "os" })
  const version = await Effect.runPromise(reopened.journal.version({ namespace: "account", id: uuidLike(others - 1) }))
  await reopened.close()
  if (version !== 1) throw new Error(`truncate: after reopening, version ${version} of a truncated stream`)
  times.sort((a, b) => a - b)
  return { median: percentile(times, 0.5), max: times[times.length - 1]! }
}

/** The durable I/O one truncation needs at least: append ~3 KB to a file + fsync, replace a small file atomically. */
const rawTruncationRound = (dir: string, log: ReturnType<typeof rawFile>) => {
  const entries = new Uint8Array(TOUCHED * 30).fill(0x5a)
  const start = performance.now()
  log.write(entries)
  fs.fsyncSync(log.fd)
  const temp = join(dir, "checkpoint.tmp")
  fs.writeFileSync(temp, new Uint8Array(40))
  const fd = fs.openSync(temp, "r+")
  fs.fsyncSync(fd)
  fs.closeSync(fd)
  fs.renameSync(temp, join(dir, "checkpoint"))
  const dirFd = fs.openSync(dir, "r")
  fs.fsyncSync(dirFd)
  fs.closeSync(dirFd)
  return performance.now() - start
}

const truncate = async () => {
  const small = await truncationRounds(10_000)
  const large = await truncationRounds(STREAMS)
  const dir = tempDir("truncate-raw")
  const log = rawFile(dir, "raw-log.bin")
  const raws = Array.from({ length: TRUNCATIONS }, () => rawTruncationRound(dir, log))
  log.close()
  report({ bench: "truncate_100_streams_among_10k_truncated_median_ms", value: small.median, unit: "ms" })
  report({ bench: "truncate_100_streams_among_10k_truncated_max_ms", value: small.max, unit: "ms" })
  report({ bench: "truncate_100_streams_among_1M_truncated_median_ms", value: large.median, unit: "ms" })
  report({ bench: "truncate_100_streams_among_1M_truncated_max_ms", value: large.max, unit: "ms" })
  report({ bench: "truncate_raw_append_fsync_and_atomic_replace_median_ms", value: median(raws), unit: "ms" })
  report({ bench: "truncate_ratio_1M_to_10k", value: large.median / small.median, unit: "ratio", target: { max: 2 } })
}

// ─── Main ─────────────────────────────────────────────────────────────────────────────────────────
const argv = process.argv.slice(2)
if (argv[0] === "open-only") {
  if (argv[1] === undefined) throw new Error("usage: bench/file.ts open-only <journal directory>")
  await openOnly(argv[1])
} else {
  const all = ["durable", "concurrent", "os", "replay", "open", "read", "streams", "truncate"]
  const only = argv.flatMap((group) => (group === "large" ? ["replay", "open", "read"] : [group]))
  const unknown = only.filter((group) => !all.includes(group))
  if (unknown.length > 0) {
    throw new Error(`unknown benchmark group(s) ${unknown.join(", ")}: expected ${all.join(", ")} or large`)
  }
  const wanted = (group: string) => only.length === 0 || only.includes(group)
  try {
    if (wanted("durable")) await durable()
    if (wanted("concurrent")) await concurrent()
    if (wanted("os")) await osAppend()
    if (wanted("replay")) await replay()
    if (wanted("open")) await open()
    if (wanted("read")) await read()
    if (wanted("streams")) await streams()
    if (wanted("truncate")) await truncate()
  } finally {
    removeTempDirs()
  }
}
