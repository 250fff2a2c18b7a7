/**
 * The `annals` command line, run as a child process as a new user would, against real stores: a
 * file store seeded here (journal with several segments, snapshots, a cursor, an archive), the
 * PostgreSQL server of the suites and the NATS server. Covers the listing commands, `dump` read by
 * JSON.parse (as `jq` would), `verify` finding damage planted in a segment, an archive object and a
 * snapshot, a restore to a past time, an export file → PostgreSQL → NATS → file round trip byte for
 * byte, a read-only open next to a running writer (and `tail` following it), the progress bar on a
 * terminal (tmux), and the exit statuses of bad arguments and missing stores.
 */
import * as assert from "node:assert/strict"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { test } from "node:test"
import { Context, Effect, Layer, Stream } from "effect"
import { Buffer } from "node:buffer"
import * as os from "node:os"
import process from "node:process"
import { TestClock } from "effect/testing"
import { pack } from "msgpackr"
import * as Archiver from "../src/Archiver.ts"
import { CursorStore } from "../src/CursorStore.ts"
import { Archive } from "../src/Archive.ts"
import { DirectoryArchive, FileCursorStore, FileJournal, FileSnapshotStore } from "../src/file/index.ts"
import { S3Archive } from "../src/s3/index.ts"
import { Journal } from "../src/Journal.ts"
import { SnapshotStore } from "../src/SnapshotStore.ts"
import { annalsExpect, cliCommand } from "./support/cli.ts"
import { isolatedNatsPrefix, natsTarget } from "./support/nats.ts"
import { isolatedPrefix, redisTarget } from "./support/redis.ts"
import { isolatedBucket, s3ClientConfig, s3Target } from "./support/s3.ts"
import { isolatedSchema, pgTargets } from "./support/postgres.ts"
import { tempDirectory } from "./support/tempDirectory.ts"

const T0 = Date.UTC(2026, 10, 30, 12, 0) // 2026-11-30T12:00Z; record i is appended i minutes later
const RECORDS = 30

const streamOf = (i: number) => ({ namespace: i % 2 === 0 ? "order" : "cart", id: `s${i % 3}` })

const fileLayers = (directory: string) =>
  Layer.mergeAll(
    FileJournal.layer({ directory: path.join(directory, "journal"), segmentBytes: 1_024 }),
    FileSnapshotStore.layer({ directory: path.join(directory, "snapshots") }),
    FileCursorStore.layer({ directory: path.join(directory, "cursors") }),
    DirectoryArchive.layer({ directory: path.join(directory, "archive") })
  )

/**
 * A file store: 30 records over 6 streams, one a minute; seqs 1..20 archived in two segments; a
 * snapshot of cart/s1 at version 3; the cursor `projector` at seq 12.
 */
const seed = (directory: string) =>
  Effect.gen(function*() {
    const journal = yield* Journal
    for (let i = 0; i < RECORDS; i++) {
      yield* TestClock.setTime(T0 + i * 60_000)
      yield* journal.append(streamOf(i), "any", [{
        type: "ItemAdded",
        payload: pack({ sku: `sku-${i}`, qty: i, price: 1.5 }),
        metadata: { n: String(i) }
      }])
    }
    const archiver = yield* Archiver.make({ segmentSize: 10 })
    assert.equal(yield* archiver.flush(21), 20)
    const [record] = yield* Stream.runCollect(journal.read({ namespace: "cart", id: "s1" }, { from: 3, to: 3 }))
    yield* (yield* SnapshotStore).put({
      namespace: "cart",
      id: "s1",
      version: 3,
      seq: record!.seq,
      timestamp: record!.timestamp,
      schemaVersion: 1,
      state: pack({ items: 3 })
    })
    yield* (yield* CursorStore).commit("projector", 12)
  }).pipe(Effect.provide(Layer.merge(fileLayers(directory), TestClock.layer())))

/** Names, sizes and modification times of every file below `directory`. */
const listing = async (directory: string) => {
  const entries = await fs.readdir(directory, { recursive: true })
  const rows = await Promise.all(entries.map(async (entry) => {
    const stat = await fs.stat(path.join(directory, entry))
    return `${entry} ${stat.isDirectory() ? "dir" : `${stat.size} ${stat.mtimeMs}`}`
  }))
  return rows.sort()
}

const lines = (text: string) => text.split("\n").filter((line) => line !== "")

const withSeededStore = (f: (directory: string) => Promise<void>) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const directory = yield* tempDirectory("cli")
    yield* seed(directory)
    yield* Effect.promise(() => f(directory))
  })))

test("annals: streams, stats, subscriptions, archive status and read describe a file store; read-only commands change nothing", () =>
  withSeededStore(async (store) => {
    const before = await listing(store)
    const streams = lines((await annalsExpect(0, ["streams", "--store", store, "--json"])).stdout).map((l) => JSON.parse(l))
    assert.deepEqual(streams.map((s) => `${s.namespace}/${s.id}:${s.version}:${s.records}`), [
      "cart/s0:5:5",
      "cart/s1:5:5",
      "cart/s2:5:5",
      "order/s0:5:5",
      "order/s1:5:5",
      "order/s2:5:5"
    ])
    const text = (await annalsExpect(0, ["streams", "-s", store])).stdout
    assert.match(text, /^namespace\s+id\s+version\s+records/)
    assert.match(text, /cart\s+s1\s+5\s+5/)

    const stats = JSON.parse((await annalsExpect(0, ["stats", "-s", store, "--json"])).stdout)
    assert.equal(stats.lastSeq, RECORDS)
    assert.equal(stats.records, RECORDS)
    assert.equal(stats.streams, 6)
    assert.deepEqual(stats.namespaces, { order: { streams: 3, records: 15 }, cart: { streams: 3, records: 15 } })
    assert.equal(stats.firstTimestamp, T0)

    const [cursor] = lines((await annalsExpect(0, ["subscriptions", "-s", store, "--json"])).stdout).map((l) => JSON.parse(l))
    assert.equal(cursor.name, "projector")
    assert.equal(cursor.seq, 12)
    assert.equal(cursor.lag, RECORDS - 12)

    const archive = JSON.parse((await annalsExpect(0, ["archive", "status", "-s", store, "--json"])).stdout)
    assert.equal(archive.segments, 2)
    assert.equal(archive.archivedThrough, 20)
    assert.equal(archive.lag, RECORDS - 20)

    const read = lines((await annalsExpect(0, ["read", "cart", "s1", "-s", store, "--from", "2", "--to", "3"])).stdout).map((l) => JSON.parse(l))
    assert.deepEqual(read.map((r) => [r.version, r.payload.sku]), [[2, "sku-7"], [3, "sku-13"]])

    assert.deepEqual(await listing(store), before, "the read-only commands changed the store's files")
  }))

test("annals dump: JSON lines with decoded payloads, bounded by seq or time, to stdout or a file", () =>
  withSeededStore(async (store) => {
    const bySeq = lines((await annalsExpect(0, ["dump", "-s", store, "--from", "5", "--until", "7"])).stdout).map((l) => JSON.parse(l))
    assert.deepEqual(bySeq.map((r) => r.seq), [5, 6, 7])
    assert.deepEqual(bySeq[0], {
      seq: 5,
      namespace: "order",
      id: "s1",
      version: 1,
      type: "ItemAdded",
      timestamp: T0 + 4 * 60_000,
      time: new Date(T0 + 4 * 60_000).toISOString(),
      payload: { sku: "sku-4", qty: 4, price: 1.5 },
      metadata: { n: "4" }
    })
    const byTime = lines(
      (await annalsExpect(0, ["dump", "-s", store, "--from", new Date(T0 + 25 * 60_000).toISOString(), "--until", new Date(T0 + 27 * 60_000).toISOString()]))
        .stdout
    ).map((l) => JSON.parse(l))
    assert.deepEqual(byTime.map((r) => r.seq), [26, 27, 28])
    const output = path.join(store, "dump.jsonl")
    const written = await annalsExpect(0, ["dump", "-s", store, "-o", output])
    assert.equal(written.stdout, "")
    assert.equal(written.stderr, "", "a quick dump off a terminal prints no progress")
    assert.equal(lines(await fs.readFile(output, "utf8")).length, RECORDS)
  }))

test("annals verify: ok on an intact store; names damage planted in a segment, an archive object and a snapshot (exit 1)", () =>
  withSeededStore(async (store) => {
    const intact = await annalsExpect(0, ["verify", "-s", store])
    assert.match(intact.stdout, /30 records in 6 streams, 1 snapshot, 2 archive segments checked\nok: no problems found/)

    // An archive object's byte and a snapshot ahead of its stream: the journal opens, both are named.
    const [object] = (await fs.readdir(path.join(store, "archive"))).sort()
    const objectPath = path.join(store, "archive", object!)
    const archived = await fs.readFile(objectPath)
    archived[archived.length - 3] = archived[archived.length - 3]! ^ 0xff
    await fs.writeFile(objectPath, archived)
    await Effect.runPromise(
      Effect.flatMap(SnapshotStore, (snapshots) =>
        snapshots.put({ namespace: "order", id: "s2", version: 99, seq: 999, timestamp: T0, schemaVersion: 1, state: pack({}) })).pipe(
          Effect.provide(FileSnapshotStore.layer({ directory: path.join(store, "snapshots") }))
        )
    )
    const named = await annalsExpect(1, ["verify", "-s", store])
    assert.match(named.stdout, new RegExp(`✗ ${object!.replace(/\./g, "\\.")}: .*checksum does not match`))
    assert.match(named.stdout, /✗ snapshot order\/s2@99: is ahead of its stream \(version 5 in the journal\)/)
    assert.match(named.stdout, /\n2 problems found\n$/)

    // Then a byte of a record in the first (sealed) segment: named by file and offset, the archive still checked.
    const segment = path.join(store, "journal", "00000000000000000001.segment")
    const bytes = await fs.readFile(segment)
    const offset = bytes.indexOf(Buffer.from("sku-3"))
    bytes[offset + 4] = "X".charCodeAt(0)
    await fs.writeFile(segment, bytes)
    const damaged = await annalsExpect(1, ["verify", "-s", store])
    assert.match(damaged.stdout, /✗ \S*00000000000000000001\.segment, byte offset \d+: bad record \(checksum or fields\), followed by intact records/)
    assert.match(damaged.stdout, new RegExp(`✗ ${object!.replace(/\./g, "\\.")}: `))
    assert.match(damaged.stdout, /note: the snapshots were not checked/)
    const report = JSON.parse((await annalsExpect(1, ["verify", "-s", store, "--json"])).stdout)
    assert.equal(report.ok, false)
    assert.deepEqual(report.problems.map((p: { readonly where: string }) => path.basename(p.where)), [
      "00000000000000000001.segment, byte offset 365",
      object
    ])
  }))

test("annals restore --until: a fresh store holds exactly the records up to that time, from the archive and the journal", () =>
  withSeededStore(async (store) => {
    const target = path.join(store, "restored")
    const until = new Date(T0 + 24 * 60_000).toISOString() // records 1..25
    const restored = JSON.parse((await annalsExpect(0, ["restore", "-s", store, "--to", target, "--until", until, "--json"])).stdout)
    assert.deepEqual(restored, { fromArchive: 20, segments: 2, fromJournal: 5 })
    const seqs = lines((await annalsExpect(0, ["dump", "-s", target])).stdout).map((l) => JSON.parse(l).seq)
    assert.deepEqual(seqs, Array.from({ length: 25 }, (_, i) => i + 1))
    const bad = await annalsExpect(2, ["restore", "-s", store, "--to", path.join(store, "other"), "--until", "17"])
    assert.match(bad.stderr, /--until takes a time/)
  }))

const pg = (await pgTargets())[0]
const nats = await natsTarget()
const redis = await redisTarget()
const s3 = await s3Target()

test("annals with an S3 archive: archive status, verify and restore from s3://bucket/prefix, endpoint and keys from the AWS variables", { skip: s3 === undefined }, () =>
  withSeededStore(async (store) => {
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const bucket = yield* isolatedBucket(s3!)
      // The seeded archive's segments, copied into the bucket under a prefix.
      const local = Context.get(yield* Layer.build(DirectoryArchive.layerReadOnly({ directory: path.join(store, "archive") })), Archive)
      const remote = Context.get(yield* Layer.build(S3Archive.layer({ bucket, prefix: "shop/", clientConfig: s3ClientConfig(s3!) })), Archive)
      for (const ref of yield* local.list()) yield* remote.put({ startSeq: ref.startSeq, endSeq: ref.endSeq, records: yield* local.get(ref) })
      const env = {
        AWS_ENDPOINT_URL: s3!.endpoint,
        AWS_REGION: s3!.region,
        AWS_ACCESS_KEY_ID: s3!.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3!.credentials.secretAccessKey
      }
      const archive = `s3://${bucket}/shop/`
      yield* Effect.promise(async () => {
        const status = JSON.parse((await annalsExpect(0, ["archive", "status", "-s", store, "--archive", archive, "--json"], { env })).stdout)
        assert.deepEqual([status.segments, status.archivedThrough, status.lag], [2, 20, RECORDS - 20])
        assert.match((await annalsExpect(0, ["verify", "-s", store, "--archive", archive], { env })).stdout, /2 archive segments checked\nok: no problems found/)
        const target = path.join(store, "from-s3")
        const restored = JSON.parse((await annalsExpect(0, ["restore", "-s", store, "--archive", archive, "--to", target, "--archive-only", "--json"], { env })).stdout)
        assert.deepEqual(restored, { fromArchive: 20, segments: 2, fromJournal: 0 })
        // Wrong keys: the archive opens (S3 is asked nothing then), its listing fails, naming the bucket, and no key is shown.
        const secret = await annalsExpect(4, ["archive", "status", "-s", store, "--archive", `s3://${bucket}/shop/`], {
          env: { ...env, AWS_SECRET_ACCESS_KEY: "wrong-secret-value" }
        })
        assert.match(secret.stderr, new RegExp(bucket))
        assert.doesNotMatch(secret.stderr + secret.stdout, /wrong-secret-value/)
      })
    })))
  }))

test("annals export/import: file → PostgreSQL → NATS → Redis → file round-trips byte for byte, seqs, versions and timestamps kept", { skip: pg === undefined }, () =>
  withSeededStore(async (store) => {
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const schema = yield* isolatedSchema(pg!)
      const natsPrefix = nats === undefined ? undefined : yield* isolatedNatsPrefix(nats)
      const redisPrefix = redis === undefined ? undefined : yield* isolatedPrefix(redis)
      yield* Effect.promise(async () => {
        const exported = path.join(store, "export.jsonl")
        await annalsExpect(0, ["export", "-s", store, "-o", exported])
        const original = await fs.readFile(exported, "utf8")
        assert.equal(lines(original).length, RECORDS)
        const pgUrl = `${pg!.url}${pg!.url.includes("?") ? "&" : "?"}schema=${schema}`
        assert.match((await annalsExpect(0, ["import", exported, "-s", pgUrl])).stdout, /imported 30 records/)
        let current = (await annalsExpect(0, ["export", "-s", pgUrl, "-q"])).stdout
        assert.equal(current, original, "PostgreSQL export differs")
        if (natsPrefix !== undefined) {
          const natsUrl = `${nats!.url}?prefix=${natsPrefix}`
          await annalsExpect(0, ["import", "-", "-s", natsUrl, "-q"], { stdin: current })
          current = (await annalsExpect(0, ["export", "-s", natsUrl, "-q"])).stdout
          assert.equal(current, original, "NATS export differs")
        }
        if (redisPrefix !== undefined) {
          const redisUrl = `${redis!.url}?prefix=${redisPrefix}`
          await annalsExpect(0, ["import", "-", "-s", redisUrl, "-q"], { stdin: current })
          current = (await annalsExpect(0, ["export", "-s", redisUrl, "-q"])).stdout
          assert.equal(current, original, "Redis export differs")
        }
        const back = path.join(store, "back")
        await annalsExpect(0, ["import", "-", "-s", back, "-q"], { stdin: current })
        assert.equal((await annalsExpect(0, ["export", "-s", back, "-q"])).stdout, original, "file export differs")
        // A second import into the same store adds nothing; a different file is refused.
        assert.match((await annalsExpect(0, ["import", exported, "-s", back])).stdout, /imported 0 records/)
        const changed = lines(original)
        changed[29] = changed[29]!.replace(/"payload":"[^"]*"/, '"payload":"AA=="')
        await fs.writeFile(exported, changed.join("\n") + "\n")
        const refused = await annalsExpect(4, ["import", exported, "-s", back])
        assert.match(refused.stderr, /line 30: the target journal is not empty \(last seq 30\) and does not hold this file's record at seq 30: .*; nothing was imported/)
      })
    })))
  }))

test("annals import checks before it stores: bad lines, seqs out of order, version holes and unrelated stores are refused naming the line; a failure says how far it got", () =>
  withSeededStore(async (store) => {
    const exported = path.join(store, "export.jsonl")
    await annalsExpect(0, ["export", "-s", store, "-o", exported])
    const original = lines(await fs.readFile(exported, "utf8"))
    const attempt = async (name: string, content: ReadonlyArray<string>, target = path.join(store, name)) => {
      const file = path.join(store, `${name}.jsonl`)
      await fs.writeFile(file, content.join("\n") + "\n")
      return (await annalsExpect(4, ["import", file, "-s", target])).stderr
    }
    // Seq 2 is cart/s1's first record: without it, cart/s1 starts at version 2 (at seq 8, line 7 then).
    assert.match(await attempt("hole", original.filter((_, i) => i !== 1)), /hole\.jsonl, line 7: cart\/s1 version 2 does not continue version 0 \(versions 1\.\.1 are not in this file.*; nothing was imported/)
    assert.match(await attempt("backwards", [original[0]!, original[2]!, original[1]!]), /backwards\.jsonl, line 3: seq 2 does not follow seq 3 of the line before; nothing was imported/)
    assert.match(await attempt("typo", [original[0]!.replace('"metadata"', '"metdata"')]), /typo\.jsonl, line 1: unknown field "metdata"; nothing was imported/)
    // Past the first batch: the failure says what is stored, and the store holds exactly that.
    const many = Array.from({ length: 1_500 }, (_, i) => JSON.stringify({ ...JSON.parse(original[0]!), seq: i + 1, id: `m${i}`, version: 1 }))
    many.push(many[1_499]!)
    const partial = path.join(store, "partial")
    assert.match(await attempt("duplicate", many, partial), /line 1501: seq 1500 does not follow seq 1500 .*; 1,000 records \(through seq 1000\) were imported before it, and importing the file again resumes after them/)
    assert.equal(JSON.parse((await annalsExpect(0, ["stats", "-s", partial, "--json", "-q"])).stdout).records, 1_000)
    // A store holding other records: refused, not "imported 0 records".
    assert.match(await attempt("unrelated", original, partial), /line 1: the target journal is not empty \(last seq 1000\) and does not hold this file's record at seq 1/)
    // U+2028 in an id (JSON leaves it raw; some line readers split there): escaped, and read back whole.
    const separator = JSON.stringify({ ...JSON.parse(original[0]!), id: "a\u2028b" }).replace("\u2028", "\\u2028")
    const odd = path.join(store, "odd.jsonl")
    await fs.writeFile(odd, separator + "\n")
    await annalsExpect(0, ["import", odd, "-s", path.join(store, "odd"), "-q"])
    assert.equal((await annalsExpect(0, ["export", "-s", path.join(store, "odd"), "-q"])).stdout, separator + "\n")
    // A failed export leaves the file that was there as it was.
    await annalsExpect(3, ["export", "-s", path.join(store, "no-such-store"), "-o", exported])
    assert.deepEqual(lines(await fs.readFile(exported, "utf8")), original)
  }))

test("annals: a read-only open next to the running writer (no lock taken); tail follows its appends", () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const directory = yield* tempDirectory("cli-live")
    yield* seed(directory)
    const journal = Context.get(yield* Layer.build(FileJournal.layer({ directory: path.join(directory, "journal") })), Journal)
    // The writer holds the directory's lock from here on.
    const stats = JSON.parse((yield* Effect.promise(() => annalsExpect(0, ["stats", "-s", directory, "--json"]))).stdout)
    assert.equal(stats.lastSeq, RECORDS)
    const { args, command } = cliCommand()
    const child = spawn(command, [...args, "tail", "--from", "29", "-s", directory], { stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    let waiting: (() => void) | undefined
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk
      waiting?.()
    })
    const seen = (n: number) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`tail printed ${output}`)), 30_000)
        waiting = () => {
          if (lines(output).length >= n) {
            clearTimeout(timer)
            resolve()
          }
        }
        waiting()
      })
    yield* Effect.promise(() => seen(2))
    yield* journal.append({ namespace: "cart", id: "live" }, 0, [{ type: "ItemAdded", payload: pack({ sku: "new" }) }])
    yield* Effect.promise(() => seen(3))
    child.kill("SIGTERM")
    assert.deepEqual(lines(output).map((l) => JSON.parse(l).seq), [29, 30, 31])
    assert.equal(JSON.parse(lines(output)[2]!).payload.sku, "new")
  }))))

test("annals: bad arguments exit 2, a missing or unknown store exits 3, each with a message naming it", async () => {
  const parent = await fs.mkdtemp(path.join(os.tmpdir(), "annals-cli-missing-"))
  const missing = path.join(parent, "nothing-here")
  const unknown = await annalsExpect(2, ["frobnicate"])
  assert.match(unknown.stdout + unknown.stderr, /Unknown subcommand "frobnicate"/)
  const bound = await annalsExpect(2, ["dump", "-s", missing, "--from", "yesterday"])
  assert.match(bound.stderr, /--from "yesterday": neither a seq \(digits\) nor an ISO 8601 date or time with its zone/)
  const absent = await annalsExpect(3, ["stats", "-s", missing])
  assert.match(absent.stderr, new RegExp(`nothing-here`))
  await assert.rejects(fs.stat(missing), "a read-only command created the missing store")
  const zoneless = await annalsExpect(2, ["dump", "-s", missing, "--until", "2026-11-30T12:05:00"])
  assert.match(zoneless.stderr, /--until "2026-11-30T12:05:00": neither a seq/)
  const token = await annalsExpect(3, ["stats", "-s", "nats://sekrit-token@127.0.0.1:1"], { timeoutMs: 30_000 })
  assert.doesNotMatch(token.stderr, /sekrit/)
  const scheme = await annalsExpect(3, ["stats", "-s", "ftp://example.com/x"])
  assert.match(scheme.stderr, /ftp:\/\/example\.com\/x: unknown scheme/)
  const secret = await annalsExpect(3, ["stats", "-s", "postgres://app:hunter2@127.0.0.1:1/db"], { timeoutMs: 30_000 })
  assert.doesNotMatch(secret.stderr, /hunter2/)
  assert.match(secret.stderr, /postgres:\/\/app:\*\*\*@127\.0\.0\.1:1\/db/)
  await fs.rm(parent, { recursive: true, force: true })
})

const tmux = spawnSync("tmux", ["-V"]).status === 0
if (!tmux && process.env.CI === "true") {
  test("tmux is installed (required under CI=true for the terminal test)", () => {
    throw new Error("tmux not found on PATH (Debian: apt-get install tmux)")
  })
}

test("annals import on a terminal: a progress bar with count and rate while it runs, a closing line when done (tmux)", { skip: !tmux }, () =>
  withSeededStore(async (store) => {
    const exported = path.join(store, "export.jsonl")
    await annalsExpect(0, ["export", "-s", store, "-o", exported])
    const records = lines(await fs.readFile(exported, "utf8"))
    // Enough lines for one batch, a pause while the bar is on screen, then the rest.
    const many = Array.from({ length: 1_500 }, (_, i) => {
      const r = JSON.parse(records[0]!)
      return JSON.stringify({ ...r, seq: i + 1, id: `p${i}`, version: 1 })
    })
    await fs.writeFile(path.join(store, "first.jsonl"), many.slice(0, 1_200).join("\n") + "\n")
    await fs.writeFile(path.join(store, "rest.jsonl"), many.slice(1_200).join("\n") + "\n")
    const { args, command } = cliCommand()
    const target = path.join(store, "imported")
    const quote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`
    const shell = `(cat first.jsonl; sleep 2; cat rest.jsonl) | ${[command, ...args, "import", "-", "-s", target].map(quote).join(" ")}; sleep 30`
    const session = `annals-cli-${process.pid}`
    const run = (...a: Array<string>) => spawnSync("tmux", a, { encoding: "utf8", cwd: store })
    run("new-session", "-d", "-s", session, "-x", "160", "-y", "20", "-c", store, shell)
    try {
      const capture = () => run("capture-pane", "-p", "-t", session).stdout
      const waitFor = async (pattern: RegExp) => {
        for (let i = 0; i < 150; i++) {
          const screen = capture()
          if (pattern.test(screen)) return screen
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
        throw new Error(`the terminal never showed ${pattern}:\n${capture()}`)
      }
      const during = await waitFor(/import \[[█░]+\] .*1,000 records, [\d,]+\/s/)
      assert.doesNotMatch(during, /imported/)
      const after = await waitFor(/imported 1,500 records/)
      assert.match(after, /import: 1,500 records in [\d.]+ s \([\d,]+\/s\)/)
      assert.doesNotMatch(after, /import \[/, "the bar was not replaced by the closing line")
    } finally {
      run("kill-session", "-t", session)
    }
  }))
