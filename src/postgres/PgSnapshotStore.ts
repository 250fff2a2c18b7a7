/**
 * The SnapshotStore on PostgreSQL: one table, `<prefix>snapshots`, one row per snapshot with
 * primary key (namespace, id, version) and the state as `bytea`. Created on start if missing.
 *
 * `put` upserts the snapshot and drops the oldest beyond `keep` in one transaction, holding an
 * advisory lock of the stream until it commits, so puts of one stream from many processes keep
 * exactly `keep`. `get` selects in SQL (`ORDER BY version DESC LIMIT 1` under the criteria).
 * `scan` reads the latest snapshot of every stream of the namespace and orders them by id as
 * JavaScript compares strings (UTF-16 code units), as every layer does — not by the database's
 * collation. A failed query is a `SnapshotStoreError` naming the operation, the stream and the
 * server's error.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { createHash } from "node:crypto"
import { layerFromConfig, merged, snapshotKeep } from "../internal/config.ts"
import { resolveKeep, scanProblem, snapshotProblem, streamArgsProblem } from "../internal/snapshotChecks.ts"
import { failIf, formatStream } from "../internal/validate.ts"
import { type Snapshot, SnapshotStore, SnapshotStoreError, type SnapshotStoreOptions } from "../SnapshotStore.ts"
import { describeFailure } from "./internal/errors.ts"
import { runDdl } from "./internal/journalTables.ts"
import { toNumber } from "./internal/journalRows.ts"
import { PgClient, type PgClientError, type PgClientOptions } from "./PgClient.ts"
import * as Client from "./PgClient.ts"

/** A row of the snapshots table as postgres.js returns it. */
interface SnapshotRow {
  readonly namespace: string
  readonly id: string
  readonly version: unknown
  readonly seq: unknown
  readonly timestamp: unknown
  readonly schema_version: unknown
  readonly state: Uint8Array
}

const COLUMNS = "namespace, id, version, seq, timestamp, schema_version, state"

/** A snapshot from its row, its state a plain `Uint8Array` of its own. */
const fromRow = (row: SnapshotRow): Snapshot => ({
  namespace: row.namespace,
  id: row.id,
  version: toNumber(row.version),
  seq: toNumber(row.seq),
  timestamp: toNumber(row.timestamp),
  schemaVersion: toNumber(row.schema_version),
  state: new Uint8Array(row.state)
})

/** The advisory lock key of one stream's puts in `table` (a collision only makes two streams wait for each other). */
const streamLockKey = (table: string, namespace: string, id: string): string =>
  BigInt.asIntN(64, BigInt(`0x${createHash("sha256").update(`annals snapshots ${table}\u0000${namespace}\u0000${id}`).digest("hex").slice(0, 16)}`))
    .toString()

const byId = (a: Snapshot, b: Snapshot) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/**
 * Builds the SnapshotStore over the client in context, creating its table if missing.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: SnapshotStoreOptions = {}): Effect.Effect<SnapshotStore, SnapshotStoreError, PgClient> =>
  Effect.gen(function*() {
    const keep = resolveKeep(options)
    if (typeof keep === "string") return yield* new SnapshotStoreError({ method: "make", message: keep })
    const client = yield* PgClient
    const { sql } = client
    const table = client.table("snapshots")
    const query = <A>(method: string, what: string, run: () => Promise<A>) =>
      Effect.tryPromise({
        try: run,
        catch: (cause) =>
          new SnapshotStoreError({ method, message: `SnapshotStore.${method}: cannot ${what} in ${table}: ${describeFailure(cause).message}`, cause })
      })
    const error = (method: string) => (message: string) => new SnapshotStoreError({ method, message })

    yield* query("make", "create the snapshots table", () =>
      runDdl(client, [
        `CREATE TABLE IF NOT EXISTS ${table} (
          namespace text COLLATE "C" NOT NULL,
          id text COLLATE "C" NOT NULL,
          version bigint NOT NULL,
          seq bigint NOT NULL,
          timestamp bigint NOT NULL,
          schema_version bigint NOT NULL,
          state bytea NOT NULL,
          PRIMARY KEY (namespace, id, version))`
      ]))

    return SnapshotStore.of({
      get: (namespace, id, criteria) =>
        Effect.andThen(
          failIf(streamArgsProblem("get", namespace, id, criteria), error("get")),
          Effect.map(
            query("get", `read a snapshot of stream ${formatStream({ namespace, id })}`, () =>
              sql.unsafe<Array<SnapshotRow>>(
                `SELECT ${COLUMNS} FROM ${table}
                  WHERE namespace = $1 AND id = $2 AND version <= $3::bigint AND timestamp <= $4::bigint
                  ORDER BY version DESC LIMIT 1`,
                [namespace, id, String(criteria?.maxVersion ?? Number.MAX_SAFE_INTEGER), String(criteria?.maxTimestamp ?? Number.MAX_SAFE_INTEGER)]
              )),
            (rows) => Option.map(Option.fromUndefinedOr(rows[0]), fromRow)
          )
        ),
      put: (snapshot) =>
        Effect.gen(function*() {
          yield* failIf(snapshotProblem(snapshot), error("put"))
          const { namespace, id } = snapshot
          yield* query("put", `store a snapshot of stream ${formatStream(snapshot)} at version ${snapshot.version}`, () =>
            sql.begin(async (tx) => {
              await tx.unsafe(`SELECT pg_advisory_xact_lock(${streamLockKey(table, namespace, id)})`)
              await tx.unsafe(
                `INSERT INTO ${table} (${COLUMNS}) VALUES ($1, $2, $3::bigint, $4::bigint, $5::bigint, $6::bigint, $7)
                  ON CONFLICT (namespace, id, version) DO UPDATE SET seq = EXCLUDED.seq, timestamp = EXCLUDED.timestamp,
                    schema_version = EXCLUDED.schema_version, state = EXCLUDED.state`,
                [namespace, id, String(snapshot.version), String(snapshot.seq), String(snapshot.timestamp), String(snapshot.schemaVersion), snapshot.state]
              )
              await tx.unsafe(
                `DELETE FROM ${table} WHERE namespace = $1 AND id = $2 AND version < (
                  SELECT version FROM ${table} WHERE namespace = $1 AND id = $2 ORDER BY version DESC OFFSET $3::int LIMIT 1)`,
                [namespace, id, keep - 1]
              )
            }))
        }),
      delete: (namespace, id) =>
        Effect.andThen(
          failIf(streamArgsProblem("delete", namespace, id), error("delete")),
          query("delete", `delete the snapshots of stream ${formatStream({ namespace, id })}`, () =>
            sql.unsafe(`DELETE FROM ${table} WHERE namespace = $1 AND id = $2`, [namespace, id]))
        ),
      scan: (namespace) =>
        Stream.unwrap(Effect.andThen(
          failIf(scanProblem(namespace), error("scan")),
          Effect.map(
            query("scan", `read the snapshots of namespace ${JSON.stringify(namespace)}`, () =>
              sql.unsafe<Array<SnapshotRow>>(
                `SELECT DISTINCT ON (id) ${COLUMNS} FROM ${table} WHERE namespace = $1 ORDER BY id, version DESC`,
                [namespace]
              )),
            (rows) => Stream.fromArray(rows.map(fromRow).sort(byId))
          )
        ))
    })
  })

/**
 * The SnapshotStore over the PgClient in context (to share one pool with the other PostgreSQL layers).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (options: SnapshotStoreOptions = {}): Layer.Layer<SnapshotStore, SnapshotStoreError, PgClient> =>
  Layer.effect(SnapshotStore, make(options))

/**
 * The SnapshotStore with a client of its own (see `PgClient.layer`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: PgClientOptions & SnapshotStoreOptions): Layer.Layer<SnapshotStore, SnapshotStoreError | PgClientError> =>
  layerClient(options).pipe(Layer.provide(Client.layer(options)))

/**
 * The options of `layer` from `Config`: the client's (see `PgClient.config`) and
 * `ANNALS_SNAPSHOT_KEEP` (≥ 1, default 1).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<PgClientOptions & SnapshotStoreOptions> = merged(Client.config, Config.all({ keep: snapshotKeep }))

/**
 * The SnapshotStore over a client of its own, with the options from `config` (the environment by
 * default); `overrides` replace what it read.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  overrides?: Partial<PgClientOptions & SnapshotStoreOptions>
): Layer.Layer<SnapshotStore, SnapshotStoreError | PgClientError | Config.ConfigError> => layerFromConfig(config, layer, overrides)
