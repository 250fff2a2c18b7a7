/**
 * The PostgreSQL CursorStore's `EntryStore`: one row per subscription name in `<prefix>cursors`.
 *
 * An update is one transaction: it locks the name's row (`SELECT … FOR UPDATE`), runs the change
 * over it and writes what it decided (UPDATE, DELETE, or INSERT for a new name) before committing,
 * so updates of one name are compare-and-set across every process sharing the table. A name with
 * no row cannot be locked: the new row is inserted with `ON CONFLICT DO NOTHING`, and when another
 * transaction inserted it first, the update starts over on that row (now locked).
 * @internal
 */
import * as Effect from "effect/Effect"
import type postgres from "postgres"
import { type CursorEntry, CursorStoreError, type EntryStore } from "../../CursorStore.ts"
import type { PgClient } from "../PgClient.ts"
import { describeFailure } from "./errors.ts"
import { runDdl } from "./journalTables.ts"
import { toNumber } from "./journalRows.ts"

/** A row of the cursors table as postgres.js returns it. */
interface CursorRow {
  readonly name: string
  readonly seq: unknown
  readonly updated_at: unknown
  readonly lease_owner: string | null
  readonly lease_until: unknown
  readonly lease_token: unknown
  readonly token: unknown
}

const COLUMNS = "name, seq, updated_at, lease_owner, lease_until, lease_token, token"

/** A nullable bigint column as a number or `undefined`. */
const optional = (value: unknown): number | undefined => value === null || value === undefined ? undefined : toNumber(value)

/** The entry a row holds. */
const fromRow = (row: CursorRow): CursorEntry => {
  const seq = optional(row.seq)
  const until = optional(row.lease_until)
  const leaseToken = optional(row.lease_token)
  return {
    ...(seq !== undefined ? { seq, updatedAt: optional(row.updated_at) ?? 0 } : {}),
    ...(row.lease_owner !== null && until !== undefined && leaseToken !== undefined
      ? { lease: { owner: row.lease_owner, until, token: leaseToken } }
      : {}),
    token: toNumber(row.token)
  }
}

/** The values of every column but `name`, for binding (numbers as text, absent fields as NULL). */
const values = (entry: CursorEntry): Array<string | null> => {
  const text = (value: number | undefined) => (value === undefined ? null : String(value))
  return [
    text(entry.seq),
    text(entry.seq === undefined ? undefined : entry.updatedAt ?? 0),
    entry.lease?.owner ?? null,
    text(entry.lease?.until),
    text(entry.lease?.token),
    String(entry.token)
  ]
}

/** Creates the cursors table if missing and returns the `EntryStore` over it. @internal */
export const openCursorTable = (client: PgClient): Effect.Effect<EntryStore, CursorStoreError> =>
  Effect.gen(function*() {
    const { sql } = client
    const table = client.table("cursors")
    const query = <A>(method: string, what: string, run: () => Promise<A>) =>
      Effect.tryPromise({
        try: run,
        catch: (cause) =>
          new CursorStoreError({ method, message: `CursorStore.${method}: cannot ${what} in ${table}: ${describeFailure(cause).message}`, cause })
      })
    yield* query("open", "create the cursors table", () =>
      runDdl(client, [
        `CREATE TABLE IF NOT EXISTS ${table} (
          name text COLLATE "C" PRIMARY KEY,
          seq bigint,
          updated_at bigint,
          lease_owner text,
          lease_until bigint,
          lease_token bigint,
          token bigint NOT NULL)`
      ]))

    /** Runs `change` on the locked row of `name` and writes its decision; `undefined` when the row appeared meanwhile (start over). */
    const attempt = <A>(
      tx: postgres.TransactionSql,
      name: string,
      change: (entry: CursorEntry | undefined) => { readonly store?: CursorEntry | null | undefined; readonly result: A }
    ): Promise<{ readonly result: A } | undefined> =>
      (async () => {
        const [row] = await tx.unsafe<Array<CursorRow>>(`SELECT ${COLUMNS} FROM ${table} WHERE name = $1 FOR UPDATE`, [name])
        const current = row === undefined ? undefined : fromRow(row)
        const { result, store } = change(current)
        if (store === undefined || (store === null && current === undefined)) return { result }
        if (store === null) {
          await tx.unsafe(`DELETE FROM ${table} WHERE name = $1`, [name])
        } else if (current !== undefined) {
          await tx.unsafe(
            `UPDATE ${table} SET seq = $2::bigint, updated_at = $3::bigint, lease_owner = $4, lease_until = $5::bigint,
              lease_token = $6::bigint, token = $7::bigint WHERE name = $1`,
            [name, ...values(store)]
          )
        } else {
          const inserted = await tx.unsafe(
            `INSERT INTO ${table} (${COLUMNS}) VALUES ($1, $2::bigint, $3::bigint, $4, $5::bigint, $6::bigint, $7::bigint)
              ON CONFLICT (name) DO NOTHING RETURNING name`,
            [name, ...values(store)]
          )
          if (inserted.length === 0) return undefined
        }
        return { result }
      })()

    return {
      read: (name) =>
        Effect.map(
          query("get", `read the cursor of ${JSON.stringify(name)}`, () =>
            sql.unsafe<Array<CursorRow>>(`SELECT ${COLUMNS} FROM ${table} WHERE name = $1`, [name])),
          (rows) => (rows[0] === undefined ? undefined : fromRow(rows[0]))
        ),
      update: (method, name, change) =>
        query(method, `update the cursor of ${JSON.stringify(name)}`, () =>
          sql.begin(async (tx) => {
            for (;;) {
              const done = await attempt(tx, name, change)
              if (done !== undefined) return done.result
            }
          }) as Promise<ReturnType<typeof change>["result"]>),
      entries: Effect.map(
        query("list", "read the cursors", () => sql.unsafe<Array<CursorRow>>(`SELECT ${COLUMNS} FROM ${table}`)),
        (rows) => rows.map((row) => [row.name, fromRow(row)] as const)
      )
    } satisfies EntryStore
  })
