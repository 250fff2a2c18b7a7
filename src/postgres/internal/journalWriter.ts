/**
 * The PostgreSQL Journal's appends, with group commit: the appends of this process that are waiting
 * when a transaction starts all go into that one transaction (one round of statements, one commit),
 * each checked on its own against the stream versions as the appends before it in the group left
 * them — so each keeps its own atomicity and its own conflict result.
 *
 * The order guarantee (DESIGN §2, §8): a transaction first locks the journal's one row
 * (`SELECT … FOR UPDATE`), takes its seqs from `last_seq` there, writes its records, moves `last_seq`
 * on and commits, holding the lock until the commit. So the seqs are handed out in commit order: no
 * transaction can take a seq above another's until that one has committed (and become visible) or
 * rolled back. A reader that has seen seq N has therefore seen every record that will ever exist
 * below N, in every process — with no snapshot-xmin bookkeeping (which does not give seq order).
 * The cost: appends across all processes commit one transaction at a time; group commit keeps
 * that from being one append at a time.
 * @internal
 */
import { Effect } from "effect"
import type postgres from "postgres"
import type { AppendResult, EventData, ExpectedVersion, JournalRecord, StreamRef } from "../../Journal.ts"
import { JournalError, VersionConflict } from "../../Journal.ts"
import { appendedRecords, assignProblem, nextSeq } from "../../internal/journalChecks.ts"
import { formatStream, streamKey } from "../../internal/validate.ts"
import { describeFailure } from "./errors.ts"
import { type JournalTables, notification } from "./journalTables.ts"
import { toColumns, toNumber } from "./journalRows.ts"

/** One append waiting for its transaction. @internal */
export interface PendingAppend {
  readonly stream: StreamRef
  readonly expectedVersion: ExpectedVersion
  readonly events: ReadonlyArray<EventData>
  readonly now: number
  readonly done: (result: Effect.Effect<AppendResult, JournalError | VersionConflict>) => void
}

/**
 * The statements run as named prepared statements (postgres.js caches one per text and connection):
 * parsed and planned once per connection instead of once per append, which was most of an append's
 * time on the server.
 */
const PREPARED = { prepare: true } as const

/** Most appends in one transaction. */
const MAX_GROUP = 512

/** What a committed group changed: the new last seq (unchanged if every append conflicted). @internal */
export interface Committed {
  readonly lastSeq: number
}

/**
 * Runs the appends of `group` in one transaction on `sql`; resolves each one (its result, its
 * conflict, or the transaction's failure) and returns the journal's last seq after the commit.
 */
const commitGroup = async (
  sql: postgres.Sql,
  tables: JournalTables,
  origin: string,
  group: ReadonlyArray<PendingAppend>
): Promise<{
  readonly lastSeq: number
  readonly outcomes: ReadonlyArray<Effect.Effect<AppendResult, JournalError | VersionConflict>>
}> => {
  const progress = { wrote: false }
  try {
    return await transaction(sql, tables, origin, group, progress)
  } catch (cause) {
    throw new GroupFailure(cause, progress.wrote)
  }
}

/** The statements of one group's transaction; `progress.wrote` is set as its write is sent. */
const transaction = async (
  sql: postgres.Sql,
  tables: JournalTables,
  origin: string,
  group: ReadonlyArray<PendingAppend>,
  progress: { wrote: boolean }
): Promise<{
  readonly lastSeq: number
  readonly outcomes: ReadonlyArray<Effect.Effect<AppendResult, JournalError | VersionConflict>>
}> =>
  (await sql.begin(async (tx) => {
    const namespaces = group.map((append) => append.stream.namespace)
    const ids = group.map((append) => append.stream.id)
    const [head, versionRows] = await Promise.all([
      tx.unsafe(`SELECT last_seq, last_timestamp, checkpoint FROM ${tables.journal} WHERE id = 1 FOR UPDATE`, [], PREPARED),
      tx.unsafe(
        `SELECT s.namespace, s.id, s.version FROM ${tables.streams} s
          JOIN unnest($1::text[], $2::text[]) AS u(namespace, id) ON s.namespace = u.namespace AND s.id = u.id`,
        [namespaces, ids],
        PREPARED
      )
    ])
    // Read after the lock was granted (the statements run in order on one connection): exact.
    const row = head[0]!
    let lastSeq = toNumber(row.last_seq)
    let lastTimestamp = toNumber(row.last_timestamp)
    const checkpoint = toNumber(row.checkpoint)
    const versions = new Map<string, number>()
    for (const version of versionRows) versions.set(streamKey(version.namespace, version.id), toNumber(version.version))
    const records: Array<JournalRecord> = []
    const changed = new Map<string, { readonly namespace: string; readonly id: string; version: number }>()
    const outcomes = group.map((append): Effect.Effect<AppendResult, JournalError | VersionConflict> => {
      const key = streamKey(append.stream.namespace, append.stream.id)
      const current = versions.get(key) ?? 0
      if (append.expectedVersion !== "any" && append.expectedVersion !== current) {
        return Effect.fail(new VersionConflict({ stream: { ...append.stream }, expected: append.expectedVersion, actual: current }))
      }
      const firstSeq = nextSeq(lastSeq, checkpoint)
      const problem = assignProblem(append.now, firstSeq, append.events.length, current)
      if (problem !== undefined) {
        return Effect.fail(
          new JournalError({ method: "append", message: `Cannot append to stream ${formatStream(append.stream)}: ${problem}; nothing was stored`, stream: { ...append.stream } })
        )
      }
      const timestamp = Math.max(append.now, lastTimestamp)
      for (const record of appendedRecords(append.stream, append.events, firstSeq, current, timestamp)) records.push(record)
      const version = current + append.events.length
      versions.set(key, version)
      changed.set(key, { namespace: append.stream.namespace, id: append.stream.id, version })
      lastSeq = firstSeq + append.events.length - 1
      lastTimestamp = timestamp
      return Effect.succeed({ firstSeq, lastSeq, version, timestamp })
    })
    if (records.length > 0) {
      const c = toColumns(records)
      const streams = Array.from(changed.values())
      // One statement: data-modifying CTEs all run, whether or not the outer query reads them.
      progress.wrote = true
      await tx.unsafe(
        `WITH inserted AS (
            INSERT INTO ${tables.records} (seq, namespace, id, version, type, timestamp, payload, metadata, metadata_keys)
            SELECT s, n, i, v, t, ts, decode(p, 'hex'), m::jsonb, k::jsonb
            FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::text[])
              AS u(s, n, i, v, t, ts, p, m, k)),
          versions AS (
            INSERT INTO ${tables.streams} (namespace, id, version)
            SELECT * FROM unnest($10::text[], $11::text[], $12::bigint[])
            ON CONFLICT (namespace, id) DO UPDATE SET version = EXCLUDED.version),
          position AS (UPDATE ${tables.journal} SET last_seq = $13, last_timestamp = $14 WHERE id = 1)
        SELECT pg_notify($15, $16)`,
        [
          c.seq, c.namespace, c.id, c.version, c.type, c.timestamp, c.payload, c.metadata, c.metadataKeys,
          streams.map((s) => s.namespace), streams.map((s) => s.id), streams.map((s) => String(s.version)),
          String(lastSeq), String(lastTimestamp),
          tables.channel, notification(origin, lastSeq)
        ],
        PREPARED
      )
    }
    return { lastSeq, outcomes }
  })) as { readonly lastSeq: number; readonly outcomes: ReadonlyArray<Effect.Effect<AppendResult, JournalError | VersionConflict>> }

/** A transaction that failed, and whether it had sent its write (then a lost connection leaves its outcome unknown). */
class GroupFailure {
  readonly cause: unknown
  readonly wrote: boolean
  constructor(cause: unknown, wrote: boolean) {
    this.cause = cause
    this.wrote = wrote
  }
}

/**
 * Runs the group's transaction, once more when its connection failed before it sent its write —
 * nothing can have been stored then: a pooled connection that the server closed while it was idle
 * fails the first statement sent on it, and the next try gets a fresh one.
 */
const commitRetried = async (...args: Parameters<typeof commitGroup>): ReturnType<typeof commitGroup> => {
  try {
    return await commitGroup(...args)
  } catch (failure) {
    if (!(failure instanceof GroupFailure) || failure.wrote || !describeFailure(failure.cause).connection) throw failure
    return await commitGroup(...args)
  }
}

/**
 * The append queue: `enqueue` adds an append; one transaction at a time takes every waiting append
 * (at most `MAX_GROUP`). `committed` is called after each transaction, after its appends were resumed
 * (with the last seq after it, or 0 when it failed);
 * the commit's notification carries `origin`, so that this journal ignores its own (it may arrive
 * before the commit's reply, and would wake followers before the appends returned).
 * @internal
 */
export const makeWriter = (sql: postgres.Sql, tables: JournalTables, origin: string, committed: (lastSeq: number) => void) => {
  let waiting: Array<PendingAppend> = []
  let running = false
  /** A group's transaction was sent and its outcome is not known yet. */
  let inFlight = false

  const drain = async (): Promise<void> => {
    running = true
    try {
      while (waiting.length > 0) {
        const group = waiting.slice(0, MAX_GROUP)
        waiting = waiting.slice(group.length)
        inFlight = true
        try {
          const { lastSeq, outcomes } = await commitRetried(sql, tables, origin, group)
          inFlight = false
          group.forEach((append, i) => append.done(outcomes[i]!))
          committed(lastSeq)
        } catch (thrown) {
          inFlight = false
          const cause = thrown instanceof GroupFailure ? thrown.cause : thrown
          const failure = describeFailure(cause)
          const unknown = failure.connection && (!(thrown instanceof GroupFailure) || thrown.wrote)
          for (const append of group) {
            append.done(Effect.fail(
              new JournalError({
                method: "append",
                message: `Cannot append to stream ${formatStream(append.stream)}: ${failure.message}; ${
                  unknown ? "the connection was lost, so it may or may not have been stored" : "nothing was stored"
                }`,
                stream: { ...append.stream },
                cause
              })
            ))
          }
          committed(0)
        }
      }
    } finally {
      running = false
    }
  }

  return {
    /** True while a group's transaction is under way: what the database shows may include its records, whose appends have not returned. */
    inFlight: () => inFlight,
    /** Queues `append`; returns a function that takes it back out if its transaction has not started. */
    enqueue: (append: PendingAppend): () => void => {
      waiting.push(append)
      // Started once the fibers that are ready have run, so that their appends share the transaction.
      if (!running) {
        running = true
        queueMicrotask(() => void drain())
      }
      return () => {
        waiting = waiting.filter((other) => other !== append)
      }
    }
  }
}
