/**
 * The Journal on PostgreSQL: many processes on many machines append to and follow one log.
 *
 * Seqs are handed out in commit order: each group of appends runs as one call of a server-side
 * function (`internal/appendFunction.ts`) that locks the journal's one row, takes its seqs from there
 * and holds the lock until it commits (see `internal/journalWriter.ts`), so no
 * record with a lower seq can ever appear behind a reader — `replayFrom`, `follow` and `lastSeq`
 * agree in every process. Concurrent appends of one process share one call and commit (group commit),
 * each with its own atomicity and its own `VersionConflict`. Optimistic concurrency holds across
 * processes: the version check runs under the same lock, and (namespace, id, version) is unique.
 *
 * `follow` wakes on `LISTEN/NOTIFY` (every commit notifies) and polls `last_seq` as a fallback
 * (`pollIntervalMs`, default 500), so a lost notification delays a follower, never loses a record.
 * A lost connection is a `JournalError` naming the server's error; an append whose connection was
 * lost while it may have committed says so (its outcome is unknown: use a command id, as the
 * Repository does). postgres.js reconnects by itself on the next query.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { randomUUID } from "node:crypto"
import type { AppendResult, JournalRecord } from "../Journal.ts"
import { Journal, JournalError, JournalTruncated, type VersionConflict } from "../Journal.ts"
import { FOLLOW_PAGE_RECORDS, follow as followLog, Settled } from "../internal/follow.ts"
import { integerAtLeast, layerFromConfig, merged } from "../internal/config.ts"
import { clockProblem, restoreBatch } from "../internal/journalChecks.ts"
import { observe } from "../internal/observedJournal.ts"
import { boundRecorder } from "../internal/observe.ts"
import { appendArgumentError, readArgumentError, replayMethods, seqArgumentError, versionArgumentError } from "../internal/journalArguments.ts"
import { formatStream, integerProblem, streamKey } from "../internal/validate.ts"
import * as Metrics from "../Metrics.ts"
import { describeFailure } from "./internal/errors.ts"
import { fromRow, RECORD_COLUMNS, type RecordRow, toColumns, toNumber } from "./internal/journalRows.ts"
import { createJournalTables, journalTables, notification, parseNotification } from "./internal/journalTables.ts"
import { makeWriter } from "./internal/journalWriter.ts"
import { keepListening } from "./internal/listener.ts"
import { PgClient, type PgClientError, type PgClientOptions } from "./PgClient.ts"
import * as Client from "./PgClient.ts"

/**
 * Options of `make` / `layer` beyond the client's.
 *
 * @since 0.1.0
 * @category models
 */
export interface PgJournalOptions {
  /** How often a follower's process reads `last_seq` in case a notification was lost (default 500 ms). */
  readonly pollIntervalMs?: number | undefined
}

const REPLAY_PAGE = 2_000

/**
 * Builds the Journal over the client in context: creates its tables if missing, listens for the
 * appends of other processes, and starts polling as a fallback.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: PgJournalOptions = {}): Effect.Effect<Journal, JournalError, PgClient | Scope.Scope> =>
  Effect.gen(function*() {
    const client = yield* PgClient
    const { sql } = client
    const tables = journalTables(client)
    const pollIntervalMs = options.pollIntervalMs ?? 500
    const badOption = integerProblem("pollIntervalMs", pollIntervalMs, 1)
    if (badOption !== undefined) return yield* Effect.fail(new JournalError({ method: "open", message: `PgJournal: ${badOption}` }))
    const query = <A>(method: string, what: string, run: () => Promise<A>) =>
      Effect.tryPromise({
        try: run,
        catch: (cause) => new JournalError({ method, message: `Journal.${method}: cannot ${what}: ${describeFailure(cause).message}`, cause })
      })
    yield* query("open", `create the journal's tables in schema ${client.schema}`, () => createJournalTables(client, tables))

    /** Names this instance in its commits' notifications. */
    const origin = randomUUID()
    /** The highest seq known to be settled (from this process's commits, notifications and polls). */
    let settledSeq = 0
    let closed = false
    const settled = new Settled()
    /** A position learnt while this process's own transaction was under way, applied once it is done. */
    let deferred = 0
    const raise = (seq: number) => {
      if (seq > settledSeq) {
        settledSeq = seq
        settled.notify()
      }
    }
    // Followers read up to `settledSeq` only. While one of this process's transactions is under way,
    // the database may already show its records (committed, the reply not yet here): a position
    // learnt then (a notification, a poll, lastSeq) may cover them, so it waits for the reply, and
    // no follower sees a record before its append returned.
    const advance = (seq: number) => {
      if (writer.inFlight()) deferred = Math.max(deferred, seq)
      else raise(seq)
    }
    const committed = (lastSeq: number) => {
      raise(Math.max(lastSeq, deferred))
      deferred = 0
    }

    const writer = makeWriter(sql, tables, origin, committed, yield* boundRecorder(Metrics.groupCommitSize, { backend: "postgres" }))
    const head = query("lastSeq", "read the journal's position", () =>
      sql.unsafe(`SELECT last_seq, checkpoint, truncated_before, removed_before FROM ${tables.journal} WHERE id = 1`)).pipe(
        Effect.map((rows) => {
          const row = rows[0]!
          const position = {
            lastSeq: toNumber(row.last_seq),
            checkpoint: toNumber(row.checkpoint),
            truncatedBefore: toNumber(row.truncated_before),
            removedBefore: toNumber(row.removed_before)
          }
          advance(position.lastSeq)
          return position
        })
      )
    advance((yield* head).lastSeq)

    // Other processes' commits: a notification, or the poll when one was lost; and after each
    // (re)LISTEN, one read of the position (what committed meanwhile notified nobody).
    yield* keepListening(sql, {
      channel: tables.channel,
      notified: (payload) => {
        // Our own commits advance when their reply arrives (their notification may come first).
        const parsed = parseNotification(payload)
        if (parsed !== undefined && parsed.origin !== origin) advance(parsed.lastSeq)
      },
      listening: head,
      // While it cannot listen, followers wait for the poll; so it tries at least every second.
      retryMs: Math.min(pollIntervalMs, 1_000)
    }).pipe(
      Effect.mapError((cause) =>
        new JournalError({ method: "open", message: `Journal.open: cannot listen on channel ${tables.channel}: ${describeFailure(cause).message}`, cause })
      )
    )
    yield* Effect.forkScoped(Effect.repeat(Effect.ignore(head), Schedule.spaced(pollIntervalMs)))
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        settled.notify()
      })
    )

    const closedError = (method: string) => new JournalError({ method, message: `Journal.${method}: the PostgreSQL journal is closed` })

    const append: Journal["append"] = (stream, expectedVersion, events) =>
      Effect.suspend(() => {
        const invalid = appendArgumentError(stream, expectedVersion, events)
        if (invalid !== undefined) return Effect.fail(invalid)
        if (closed) return Effect.fail(closedError("append"))
        return Effect.flatMap(Effect.andThen(settled.turn, Effect.clockWith((clock) => clock.currentTimeMillis)), (now) => {
          const badClock = clockProblem(now)
          if (badClock !== undefined) {
            return Effect.fail(new JournalError({ method: "append", message: `Cannot append to stream ${formatStream(stream)}: ${badClock}; nothing was stored`, stream: { ...stream } }))
          }
          return Effect.callback<AppendResult, JournalError | VersionConflict>((resume) => {
            const cancel = writer.enqueue({ stream, expectedVersion, events, now, done: resume })
            return Effect.sync(cancel)
          })
        })
      })

    const pages = (method: string, first: number, page: (from: number) => Promise<ReadonlyArray<RecordRow>>) =>
      Stream.paginate(first, (from: number) =>
        Effect.map(query(method, "read records", () => page(from)), (rows) => {
          const records = rows.map(fromRow)
          const last = records[records.length - 1]
          return [records, records.length < REPLAY_PAGE || last === undefined ? Option.none() : Option.some(last.seq + 1)] as const
        }))


    const { replayFrom, replayUntil } = replayMethods((method, fromSeq) =>
      pages(method, fromSeq, (from) =>
        sql.unsafe(`SELECT ${RECORD_COLUMNS} FROM ${tables.records} WHERE seq >= $1 ORDER BY seq LIMIT ${REPLAY_PAGE}`, [String(from)]) as never)
    )

    const read: Journal["read"] = (stream, options) => {
      const invalid = readArgumentError(stream, options)
      if (invalid !== undefined) return Stream.fail(invalid)
      const to = options?.to ?? Number.MAX_SAFE_INTEGER
      // The page state carries what is left of `max`, so every run of the stream starts afresh.
      const first = { from: options?.from ?? 1, left: options?.max ?? Number.MAX_SAFE_INTEGER }
      return Stream.paginate(first, ({ from, left }) =>
        Effect.map(
          query("read", `read stream ${formatStream(stream)}`, () =>
            sql.unsafe(
              `SELECT ${RECORD_COLUMNS} FROM ${tables.records} WHERE namespace = $1 AND id = $2 AND version >= $3 AND version <= $4
                ORDER BY version LIMIT ${Math.min(REPLAY_PAGE, left)}`,
              [stream.namespace, stream.id, String(from), String(to)]
            )),
          (rows) => {
            const records = (rows as unknown as ReadonlyArray<RecordRow>).map(fromRow)
            const rest = left - records.length
            const last = records[records.length - 1]
            return [
              records,
              rest <= 0 || last === undefined || records.length < REPLAY_PAGE ? Option.none() : Option.some({ from: last.version + 1, left: rest })
            ] as const
          }
        ))
    }

    const follow: Journal["follow"] = (fromSeq) => {
      const bad = seqArgumentError("follow", "fromSeq", fromSeq)
      if (bad !== undefined) return Stream.fail(bad)
      return followLog(fromSeq, {
        page: (seq) =>
          closed ? Effect.fail(closedError("follow")) : Effect.flatMap(
            query("follow", "read records", () =>
              sql.unsafe(
                `SELECT j.truncated_before, j.removed_before, r.* FROM ${tables.journal} j
                  LEFT JOIN LATERAL (SELECT ${RECORD_COLUMNS} FROM ${tables.records} WHERE seq >= $1 AND seq <= $2 ORDER BY seq LIMIT ${FOLLOW_PAGE_RECORDS}) r ON true
                  WHERE j.id = 1`,
                [String(seq), String(settledSeq)]
              )),
            (rows): Effect.Effect<ReadonlyArray<JournalRecord>, JournalError | JournalTruncated> => {
              if (closed) return Effect.fail(closedError("follow"))
              const first = rows[0]!
              if (Math.max(seq, 1) < toNumber(first.removed_before)) {
                return Effect.fail(new JournalTruncated({ method: "follow", fromSeq: seq, truncatedBefore: toNumber(first.truncated_before) }))
              }
              return Effect.succeed(rows.filter((row) => row.seq !== null).map((row) => fromRow(row as unknown as RecordRow)))
            }
          ),
        ready: (seq) => closed || settledSeq >= seq,
        settled
      })
    }

    const locked = <A>(method: string, what: string, body: (tx: typeof sql) => Promise<A>) =>
      query(method, what, () =>
        sql.begin(async (tx) => {
          await tx.unsafe(`SELECT 1 FROM ${tables.journal} WHERE id = 1 FOR UPDATE`)
          return body(tx as unknown as typeof sql)
        }) as Promise<A>)

    const truncateBefore: Journal["truncateBefore"] = (seq) => {
      const problem = integerProblem("seq", seq, 0)
      if (problem !== undefined) return Effect.fail(new JournalError({ method: "truncateBefore", message: `Journal.truncateBefore: ${problem}` }))
      return locked("truncateBefore", `truncate before seq ${seq}`, async (tx) => {
        await tx.unsafe(`DELETE FROM ${tables.records} WHERE seq < $1`, [String(seq)])
        await tx.unsafe(
          `UPDATE ${tables.journal} SET checkpoint = greatest(checkpoint, $1), truncated_before = greatest(truncated_before, $1),
            removed_before = greatest(removed_before, least($1, last_seq + 1)) WHERE id = 1`,
          [String(seq)]
        )
      }).pipe(Effect.asVoid)
    }

    const setCheckpoint: Journal["setCheckpoint"] = (seq) => {
      const problem = integerProblem("seq", seq, 0)
      if (problem !== undefined) return Effect.fail(new JournalError({ method: "setCheckpoint", message: `Journal.setCheckpoint: ${problem}` }))
      return query("setCheckpoint", `set the checkpoint to ${seq}`, () =>
        sql.unsafe(`UPDATE ${tables.journal} SET checkpoint = greatest(checkpoint, $1) WHERE id = 1`, [String(seq)])).pipe(Effect.asVoid)
    }

    const version: Journal["version"] = (stream) => {
      const invalid = versionArgumentError(stream)
      if (invalid !== undefined) return Effect.fail(invalid)
      return Effect.map(
        query("version", `read the version of stream ${formatStream(stream)}`, () =>
          sql.unsafe(`SELECT version FROM ${tables.streams} WHERE namespace = $1 AND id = $2`, [stream.namespace, stream.id])),
        (rows) => rows.length === 0 ? 0 : toNumber(rows[0]!.version)
      )
    }

    const restore: Journal["restore"] = (records) =>
      Effect.suspend(() => {
        // Shape first (with no position): the streams it touches are then known.
        const shaped = restoreBatch(records, { lastSeq: 0, truncatedBefore: 0, version: () => 0 })
        if ("problem" in shaped) return Effect.fail(new JournalError({ method: "restore", message: shaped.problem }))
        const batch = shaped.batch
        return locked("restore", "restore records", async (tx) => {
          const [position] = await tx.unsafe(`SELECT last_seq, truncated_before FROM ${tables.journal} WHERE id = 1`)
          const rows = await tx.unsafe(
            `SELECT s.namespace, s.id, s.version FROM ${tables.streams} s
              JOIN unnest($1::text[], $2::text[]) AS u(namespace, id) ON s.namespace = u.namespace AND s.id = u.id`,
            [batch.map((r) => r.namespace), batch.map((r) => r.id)]
          )
          const versions = new Map(rows.map((row) => [streamKey(row.namespace, row.id), toNumber(row.version)] as const))
          const checked = restoreBatch(batch, {
            lastSeq: toNumber(position!.last_seq),
            truncatedBefore: toNumber(position!.truncated_before),
            version: (namespace, id) => versions.get(streamKey(namespace, id)) ?? 0
          })
          if ("problem" in checked) return checked
          if (checked.batch.length === 0) return { lastSeq: toNumber(position!.last_seq) }
          const c = toColumns(checked.batch)
          await tx.unsafe(
            `INSERT INTO ${tables.records} (seq, namespace, id, version, type, timestamp, payload, metadata, metadata_keys)
              SELECT s, n, i, v, t, ts, decode(p, 'hex'), m::jsonb, k::jsonb
              FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::text[])
                AS u(s, n, i, v, t, ts, p, m, k)`,
            [c.seq, c.namespace, c.id, c.version, c.type, c.timestamp, c.payload, c.metadata, c.metadataKeys]
          )
          const last = new Map<string, JournalRecord>()
          for (const record of checked.batch) last.set(streamKey(record.namespace, record.id), record)
          const streams = Array.from(last.values())
          await tx.unsafe(
            `INSERT INTO ${tables.streams} (namespace, id, version) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
              ON CONFLICT (namespace, id) DO UPDATE SET version = EXCLUDED.version`,
            [streams.map((r) => r.namespace), streams.map((r) => r.id), streams.map((r) => String(r.version))]
          )
          const latest = checked.batch.reduce((max, r) => Math.max(max, r.timestamp), 0)
          await tx.unsafe(
            `UPDATE ${tables.journal} SET last_seq = $1, last_timestamp = greatest(last_timestamp, $2) WHERE id = 1`,
            [String(checked.lastSeq), String(latest)]
          )
          await tx.unsafe(`SELECT pg_notify($1, $2)`, [tables.channel, notification(origin, checked.lastSeq)])
          return { lastSeq: checked.lastSeq }
        }).pipe(
          Effect.flatMap((result) =>
            "problem" in result
              ? Effect.fail(new JournalError({ method: "restore", message: result.problem as string }))
              : Effect.sync(() => advance(result.lastSeq))
          )
        )
      })

    return observe(Journal.of({
      append,
      read,
      replayFrom,
      replayUntil,
      follow,
      truncateBefore,
      checkpoint: Effect.map(head, (position) => position.checkpoint),
      setCheckpoint,
      lastSeq: Effect.map(head, (position) => position.lastSeq),
      version,
      restore
    }), "postgres")
  })

/**
 * The Journal over a client of its own (`url`) or the application's (`sql`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: PgClientOptions & PgJournalOptions): Layer.Layer<Journal, JournalError | PgClientError> =>
  Layer.effect(Journal, make(options)).pipe(Layer.provide(Client.layer(options)))

/**
 * The Journal over the PgClient in context (to share one pool with the other PostgreSQL layers).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (options: PgJournalOptions = {}): Layer.Layer<Journal, JournalError, PgClient> => Layer.effect(Journal, make(options))

/**
 * The options of `layer` from `Config`: the client's (see `PgClient.config`) and
 * `ANNALS_PG_POLL_INTERVAL_MS` (≥ 1, default 500).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<PgClientOptions & PgJournalOptions> = merged(
  Client.config,
  Config.all({ pollIntervalMs: integerAtLeast("ANNALS_PG_POLL_INTERVAL_MS", 1) })
)

/**
 * The Journal over a client of its own, with the options from `config` (the environment by
 * default); `overrides` replace what it read.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  overrides?: Partial<PgClientOptions & PgJournalOptions>
): Layer.Layer<Journal, JournalError | PgClientError | Config.ConfigError> => layerFromConfig(config, layer, overrides)
