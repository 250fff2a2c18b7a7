/**
 * One `Config` switch moves an application between backends: the bank-account example, run as a
 * child process as a user would, once on its default (the file layers in a temporary directory)
 * and once with `ANNALS_STORE` naming a fresh PostgreSQL schema and `ANNALS_ARCHIVE` a directory.
 * The story it prints is the same, and the second run's records are in PostgreSQL and its archive.
 */
import * as assert from "node:assert/strict"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"
import { test } from "node:test"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import postgres from "postgres"
import { runProcess, runtime } from "./support/programWorkspace.ts"
import { isolatedSchema, pgTargets } from "./support/postgres.ts"

/** The repository (Node runs this file from .build/node/test/). */
const root = fileURLToPath(new URL("..", import.meta.url)).replace(/\.build\/node\/$/, "")

/** Runs examples/bank-account on this runtime with `env`; its output. */
const bankAccount = async (env: Record<string, string>) => {
  const args = runtime === "deno"
    ? ["run", "-A", "examples/bank-account.ts"]
    : runtime === "node"
    ? ["--conditions=annals-repo", path.join(root, ".build", "node", "examples", "bank-account.js")]
    : ["examples/bank-account.ts"]
  const finished = await runProcess(process.execPath, args, { cwd: root, timeoutMs: 60_000, env })
  assert.equal(finished.code, 0, finished.stderr)
  return finished.stdout
}

/** The story, without the lines naming where the data went. */
const story = (output: string) => output.split("\n").filter((line) => !/^(Data:|Removed|ANNALS_STORE is set)/.test(line)).join("\n")

const pg = (await pgTargets())[0]

test("bank-account example: ANNALS_STORE and ANNALS_ARCHIVE move it from the file layers to PostgreSQL with no code change", { skip: pg === undefined }, () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const schema = yield* isolatedSchema(pg!)
    const archive = yield* Effect.acquireRelease(
      Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "annals-bank-archive-"))),
      (directory) => Effect.promise(() => fs.rm(directory, { recursive: true, force: true }))
    )
    yield* Effect.promise(async () => {
      const onFiles = await bankAccount({})
      const store = `${pg!.url}${pg!.url.includes("?") ? "&" : "?"}schema=${schema}`
      const onPostgres = await bankAccount({ ANNALS_STORE: store, ANNALS_ARCHIVE: archive })
      assert.match(onPostgres, /ANNALS_STORE is set: the data goes to postgres:/)
      assert.match(story(onFiles), /Statements of past dates, rebuilt from the archive/)
      assert.equal(story(onPostgres), story(onFiles))
      const sql = postgres(pg!.url, { max: 1, onnotice: () => {} })
      try {
        const [row] = await sql`SELECT version FROM ${sql(schema)}.annals_streams WHERE namespace = 'account' AND id = 'alice'`
        assert.equal(Number(row!.version), 10)
      } finally {
        await sql.end({ timeout: 1 })
      }
      assert.ok((await fs.readdir(archive)).some((name) => name.endsWith(".msgpack")), "no segment in the archive directory")
    })
  }))))
