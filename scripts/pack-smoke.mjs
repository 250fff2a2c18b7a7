#!/usr/bin/env node
// Packaging smoke test: `npm pack` this package, install the tarball into a fresh temporary Node
// project, and run a few appends and reads, an AggregateSpec of annals/testing, and load annals/postgres, through the
// compiled JavaScript that npm users get.
import assert from "node:assert/strict"
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"

const npm = process.platform === "win32" ? "npm.cmd" : "npm"
const root = resolve(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..")
const work = mkdtempSync(join(tmpdir(), "annals-pack-"))
const sh = (args, cwd) => execFileSync(npm, args, { cwd, stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" })

try {
  const packed = JSON.parse(sh(["pack", "--json", "--pack-destination", work], root))
  const tarball = join(work, packed[0].filename)
  console.log(`packed ${packed[0].filename}: ${packed[0].files.length} files, ${packed[0].size} bytes`)
  const app = join(work, "app")
  execFileSync("mkdir", ["-p", app])
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "smoke", private: true, type: "module" }))
  sh(["install", "--no-audit", "--no-fund", "--prefer-offline", tarball], app)
  writeFileSync(
    join(app, "smoke.mjs"),
    `
import assert from "node:assert/strict"
import { Effect, Layer, Schema, Stream } from "effect"
import { Aggregate, Archive, Codec, Journal, SnapshotStore } from "annals"
import { DirectoryArchive } from "annals/file"
import { PgClient, PgCursorStore, PgJournal, PgSnapshotStore } from "annals/postgres"
import { S3Archive } from "annals/s3"
import { RedisClient } from "annals/redis"
import { NatsClient } from "annals/nats"
import { AggregateSpec } from "annals/testing"

const Event = Schema.Union([
  Schema.TaggedStruct("Deposited", { amount: Schema.Finite }),
  Schema.TaggedStruct("Withdrawn", { amount: Schema.Finite })
])
const codec = Codec.make(Event)
const account = { namespace: "account", id: "42" }

const program = Effect.gen(function*() {
  const journal = yield* Journal.Journal
  const events = yield* Codec.encodeEvents(codec, account, [{ _tag: "Deposited", amount: 100 }, { _tag: "Withdrawn", amount: 30 }])
  const appended = yield* journal.append(account, 0, events)
  assert.deepEqual({ ...appended, timestamp: 0 }, { firstSeq: 1, lastSeq: 2, version: 2, timestamp: 0 })
  const conflict = yield* Effect.flip(journal.append(account, 0, events))
  assert.equal(conflict._tag, "VersionConflict")
  const records = yield* Stream.runCollect(journal.read(account))
  const decoded = records.map((r) => Codec.decodeRecord(codec, r)).map((r) => r.success)
  assert.deepEqual(decoded, [{ _tag: "Deposited", amount: 100 }, { _tag: "Withdrawn", amount: 30 }])
  const archive = yield* Archive.Archive
  const ref = yield* archive.put({ startSeq: 1, endSeq: 2, records })
  assert.equal(ref.key, "00000000000000000001-00000000000000000002.msgpack")
  assert.equal((yield* archive.get(ref)).length, 2)
  return decoded.length
})

const layer = Layer.mergeAll(Journal.layerMemory, SnapshotStore.layerMemory(), DirectoryArchive.layer({ directory: process.argv[2] }))
const n = await Effect.runPromise(Effect.provide(program, layer))
console.log("smoke: ok, decoded", n, "events through the installed package")

const Account = Aggregate.make({
  namespace: "account",
  event: Event,
  state: Schema.Struct({ balance: Schema.Finite }),
  initial: { balance: 0 },
  evolve: (state, event) => ({ balance: state.balance + (event._tag === "Deposited" ? event.amount : -event.amount) })
})
const withdrawAll = (state) => Effect.succeed([{ _tag: "Withdrawn", amount: state.balance }])
await AggregateSpec.for(Account).given([{ _tag: "Deposited", amount: 5 }]).when(withdrawAll).then([{ _tag: "Withdrawn", amount: 5 }])
await assert.rejects(AggregateSpec.for(Account).given([{ _tag: "Deposited", amount: 5 }]).when(withdrawAll).then([]), assert.AssertionError)
console.log("smoke: ok, annals/testing passes and fails an AggregateSpec")

for (const [name, module] of Object.entries({ PgClient, PgCursorStore, PgJournal, PgSnapshotStore })) assert.equal(typeof module.layer, "function", name)
console.log("smoke: ok, annals/postgres loads (with its postgres.js dependency)")
assert.equal(typeof S3Archive.layer, "function")
console.log("smoke: ok, annals/s3 loads (with the AWS SDK)")
assert.equal(typeof RedisClient.layer, "function")
console.log("smoke: ok, annals/redis loads (with ioredis)")
assert.equal(typeof NatsClient.layer, "function")
console.log("smoke: ok, annals/nats loads (with the @nats-io packages)")
`
  )
  execFileSync(process.execPath, ["smoke.mjs", join(work, "archive")], { cwd: app, stdio: "inherit" })
  // The command line, as `npx annals` runs it from the installed package (the store: a directory).
  const npx = process.platform === "win32" ? "npx.cmd" : "npx"
  const cli = (args) => execFileSync(npx, ["--no-install", "annals", ...args], { cwd: app, stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" })
  writeFileSync(join(work, "export.jsonl"), JSON.stringify({ seq: 1, namespace: "account", id: "42", version: 1, type: "Deposited", timestamp: 0, payload: "3gABpmFtb3VudGQ=" }) + "\n")
  cli(["import", join(work, "export.jsonl"), "--store", join(work, "data"), "--quiet"])
  const streams = JSON.parse(cli(["streams", "--store", join(work, "data"), "--json", "--quiet"]))
  assert.deepEqual([streams.namespace, streams.id, streams.version], ["account", "42", 1])
  console.log("smoke: ok, npx annals imports and lists a file store")
  const bunx = execFileSync(join(root, "node_modules", ".bin", "bun"), ["x", "--bun", "annals", "stats", "--store", join(work, "data"), "--json", "--quiet"], {
    cwd: app,
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8"
  })
  assert.equal(JSON.parse(bunx).records, 1)
  console.log("smoke: ok, bunx --bun annals reads it on Bun")
} finally {
  rmSync(work, { recursive: true, force: true })
}
