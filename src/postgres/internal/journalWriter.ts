/**
 * The PostgreSQL Journal's appends, with group commit: the appends of this process that are waiting
 * when a group starts all go into one call of the append function (`appendFunction.ts`): one
 * statement, one round trip, one commit — each append checked on its own against the stream
 * versions as the appends before it in the group left them, so each keeps its own atomicity and its
 * own conflict result.
 *
 * The order guarantee (DESIGN §2, §8): the function first locks the journal's one row
 * (`SELECT … FOR UPDATE`), takes its seqs from `last_seq` there, writes its records, moves `last_seq`
 * on and commits, holding the lock until the commit. So the seqs are handed out in commit order: no
 * transaction can take a seq above another's until that one has committed (and become visible) or
 * rolled back. A reader that has seen seq N has therefore seen every record that will ever exist
 * below N, in every process — with no snapshot-xmin bookkeeping (which does not give seq order).
 * The cost: appends across all processes commit one group at a time; group commit keeps that from
 * being one append at a time.
 * @internal
 */
import * as Effect from "effect/Effect"
import type postgres from "postgres"
import type { AppendResult, EventData, ExpectedVersion, StreamRef } from "../../Journal.ts"
import { JournalError, VersionConflict } from "../../Journal.ts"
import { assignProblem } from "../../internal/journalChecks.ts"
import { formatStream, streamKey } from "../../internal/validate.ts"
import { appendCall } from "./appendFunction.ts"
import { describeFailure } from "./errors.ts"
import type { JournalTables } from "./journalTables.ts"
import { type EventColumns, pushEvent, toNumber } from "./journalRows.ts"

/** One append waiting for its transaction. @internal */
export interface PendingAppend {
  readonly stream: StreamRef
  readonly expectedVersion: ExpectedVersion
  readonly events: ReadonlyArray<EventData>
  readonly now: number
  readonly done: (result: Effect.Effect<AppendResult, JournalError | VersionConflict>) => void
}

/**
 * The call runs as a named prepared statement (postgres.js caches one per text and connection):
 * parsed and planned once per connection instead of once per group.
 */
const PREPARED = { prepare: true } as const

/** Most appends in one transaction. */
const MAX_GROUP = 512

/** A row the append function returns (see `appendFunction.ts`). */
interface OutcomeRow {
  readonly o_append: number
  readonly o_code: number | null
  readonly o_current: unknown
  readonly o_first_seq: unknown
  readonly o_timestamp: unknown
  readonly o_last_seq: unknown
}

/**
 * Runs the appends of `group` as one call of the append function on `sql` (one statement, its own
 * transaction); returns each one's result or conflict, and the journal's last seq after the commit.
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
  const events: EventColumns = { type: [], payload: [], metadata: [], metadataKeys: [] }
  const recordAppend: Array<number> = []
  const recordIndex: Array<number> = []
  /** Each append's 1-based index of the group's previous append on the same stream (0: none). */
  const previous: Array<number> = []
  const lastOnStream = new Map<string, number>()
  group.forEach((append, i) => {
    const key = streamKey(append.stream.namespace, append.stream.id)
    previous.push(lastOnStream.get(key) ?? 0)
    lastOnStream.set(key, i + 1)
    append.events.forEach((event, k) => {
      pushEvent(events, event)
      recordAppend.push(i + 1)
      recordIndex.push(k + 1)
    })
  })
  const rows = (await sql.unsafe(
    appendCall(tables),
    [
      group.map((append) => append.stream.namespace),
      group.map((append) => append.stream.id),
      group.map((append) => append.expectedVersion === "any" ? "-1" : String(append.expectedVersion)),
      group.map((append) => append.events.length),
      group.map((append) => String(append.now)),
      previous,
      recordAppend, recordIndex, events.type, events.payload, events.metadata, events.metadataKeys,
      tables.channel, origin
    ],
    PREPARED
  )) as unknown as ReadonlyArray<OutcomeRow>
  let lastSeq = 0
  const outcomes: Array<Effect.Effect<AppendResult, JournalError | VersionConflict> | undefined> = group.map(() => undefined)
  for (const row of rows) {
    if (row.o_append === 0) {
      lastSeq = toNumber(row.o_last_seq)
      continue
    }
    const append = group[row.o_append - 1]!
    const current = toNumber(row.o_current)
    // Past the safe range (2^53, exact as a number) when the append was refused for that.
    const firstSeq = Number(row.o_first_seq)
    const count = append.events.length
    outcomes[row.o_append - 1] = row.o_code === 0
      ? Effect.succeed({ firstSeq, lastSeq: firstSeq + count - 1, version: current + count, timestamp: toNumber(row.o_timestamp) })
      : row.o_code === 1
      ? Effect.fail(new VersionConflict({ stream: { ...append.stream }, expected: append.expectedVersion as number, actual: current }))
      : failed(append, `${assignProblem(append.now, firstSeq, count, current) ?? `the append function refused it (code ${row.o_code})`}; nothing was stored`)
  }
  return {
    lastSeq,
    // A row missing would be a defect of the function; the group did commit, so the outcome is unknown.
    outcomes: outcomes.map((outcome, i) =>
      outcome ?? failed(group[i]!, "the append function returned no outcome for it, so it may or may not have been stored")
    )
  }
}

/** `append`'s JournalError: `what` happened to it. */
const failed = (append: PendingAppend, what: string, cause?: unknown) =>
  Effect.fail(new JournalError({ method: "append", message: `Cannot append to stream ${formatStream(append.stream)}: ${what}`, stream: { ...append.stream }, cause }))

/**
 * The append queue: `enqueue` adds an append; one transaction at a time takes every waiting append
 * (at most `MAX_GROUP`). `committed` is called after each transaction, after its appends were resumed
 * (with the last seq after it, or 0 when it failed);
 * the commit's notification carries `origin`, so that this journal ignores its own (it may arrive
 * before the commit's reply, and would wake followers before the appends returned).
 * `grouped` is told the size of every group as its transaction is sent.
 * @internal
 */
export const makeWriter = (
  sql: postgres.Sql,
  tables: JournalTables,
  origin: string,
  committed: (lastSeq: number) => void,
  grouped: (appends: number) => void
) => {
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
        grouped(group.length)
        try {
          const { lastSeq, outcomes } = await commitGroup(sql, tables, origin, group)
          inFlight = false
          group.forEach((append, i) => append.done(outcomes[i]!))
          committed(lastSeq)
        } catch (cause) {
          inFlight = false
          const failure = describeFailure(cause)
          const outcome = failure.connection && failure.sent
            ? "the connection was lost, so it may or may not have been stored"
            : "nothing was stored"
          for (const append of group) append.done(failed(append, `${failure.message}; ${outcome}`, cause))
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
