/**
 * The PostgreSQL Journal's tables, created on start under an advisory lock (so that processes
 * starting at once do not race on the catalog):
 *
 * - `<prefix>journal`: one row (`id = 1`) holding `last_seq`, `last_timestamp`, `checkpoint`,
 *   `truncated_before` (the highest seq a truncation was asked for) and `removed_before` (a follower
 *   from this seq on lost nothing to truncation). Every append transaction locks it first (`SELECT … FOR UPDATE`) and keeps the
 *   lock until it commits, so seqs are handed out in commit order (see `PgJournal`).
 * - `<prefix>records`: one row per record, `seq` the primary key, unique (namespace, id, version),
 *   `payload bytea`, `metadata jsonb` with `metadata_keys jsonb` (its keys in order: jsonb keeps no key order), an
 *   index on `timestamp`.
 * - `<prefix>streams`: each stream's version, kept when its records are truncated.
 * - `<prefix>append_v1`: the function a group of appends runs as (see `appendFunction.ts`); the
 *   version in its name changes with its arguments, so processes of two annals versions can share
 *   one schema while both run.
 * @internal
 */
import { createHash } from "node:crypto"
import type { PgClient } from "../PgClient.ts"
import { appendFunctionDdl } from "./appendFunction.ts"

/** The quoted names of the Journal's tables and its notification channel. @internal */
export interface JournalTables {
  readonly journal: string
  readonly records: string
  readonly streams: string
  /** The append function. */
  readonly append: string
  /** The LISTEN/NOTIFY channel appends notify (at most 63 bytes, whatever schema and prefix). */
  readonly channel: string
}

/** The names for `client`'s schema and prefix. @internal */
export const journalTables = (client: PgClient): JournalTables => ({
  journal: client.table("journal"),
  records: client.table("records"),
  streams: client.table("streams"),
  append: client.table("append_v1"),
  channel: `annals_${createHash("sha256").update(`${client.schema}\u0000${client.tablePrefix}`).digest("hex").slice(0, 24)}`
})

/** The advisory lock key the DDL of one schema and prefix is run under. */
const ddlLockKey = (client: PgClient): string =>
  BigInt.asIntN(64, BigInt(`0x${createHash("sha256").update(`annals ddl ${client.schema}.${client.tablePrefix}`).digest("hex").slice(0, 16)}`))
    .toString()

/** Runs `statements` in one transaction under the DDL advisory lock of `client`'s schema and prefix. @internal */
export const runDdl = (client: PgClient, statements: ReadonlyArray<string>): Promise<unknown> =>
  client.sql.begin(async (sql) => {
    await sql.unsafe(`SELECT pg_advisory_xact_lock(${ddlLockKey(client)})`)
    for (const statement of statements) await sql.unsafe(statement)
  })

/** Creates the Journal's tables and its row if missing, and (re)creates its append function. @internal */
export const createJournalTables = (client: PgClient, tables: JournalTables): Promise<unknown> => {
  const index = (suffix: string) => `"${client.tablePrefix}records_${suffix}"`
  return runDdl(client, [
    `CREATE TABLE IF NOT EXISTS ${tables.journal} (
      id int PRIMARY KEY CHECK (id = 1),
      last_seq bigint NOT NULL,
      last_timestamp bigint NOT NULL,
      checkpoint bigint NOT NULL,
      truncated_before bigint NOT NULL,
      removed_before bigint NOT NULL)`,
    `INSERT INTO ${tables.journal} (id, last_seq, last_timestamp, checkpoint, truncated_before, removed_before)
      VALUES (1, 0, 0, 0, 0, 0) ON CONFLICT (id) DO NOTHING`,
    `CREATE TABLE IF NOT EXISTS ${tables.records} (
      seq bigint PRIMARY KEY,
      namespace text NOT NULL,
      id text NOT NULL,
      version bigint NOT NULL,
      type text NOT NULL,
      timestamp bigint NOT NULL,
      payload bytea NOT NULL,
      metadata jsonb,
      metadata_keys jsonb,
      UNIQUE (namespace, id, version))`,
    `CREATE INDEX IF NOT EXISTS ${index("timestamp")} ON ${tables.records} (timestamp)`,
    `CREATE TABLE IF NOT EXISTS ${tables.streams} (
      namespace text NOT NULL,
      id text NOT NULL,
      version bigint NOT NULL,
      PRIMARY KEY (namespace, id))`,
    appendFunctionDdl(tables)
  ])
}

/** A commit's notification: which journal instance committed, and the last seq after it. @internal */
export const notification = (origin: string, lastSeq: number): string => `${origin} ${lastSeq}`

/** The origin and seq of a notification, or `undefined` for one that is not ours. @internal */
export const parseNotification = (payload: string): { readonly origin: string; readonly lastSeq: number } | undefined => {
  const space = payload.lastIndexOf(" ")
  const lastSeq = Number(payload.slice(space + 1))
  return space > 0 && Number.isSafeInteger(lastSeq) ? { origin: payload.slice(0, space), lastSeq } : undefined
}

