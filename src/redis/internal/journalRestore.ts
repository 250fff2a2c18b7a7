/**
 * The Redis journal's `restore`: the records checked against the position and versions read, then
 * applied in chunks (`journalScripts.ts`'s `restoreChunk`) in one transaction: all of them, or none
 * when the journal changed meanwhile. (A chunk that Redis fails while it runs — out of memory —
 * leaves the chunks before it applied: Redis has no rollback; the error says how far it got.)
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as EffectRedis from "effect/persistence/Redis"
import { restoreBatch } from "../../internal/journalChecks.ts"
import { formatStream } from "../../internal/validate.ts"
import type { Journal, JournalRecord } from "../../Journal.ts"
import { JournalError } from "../../Journal.ts"
import { describeRedisFailure, isReplyError } from "./errors.ts"
import { type JournalContext, numbers } from "./journalContext.ts"
import { arraySize, buildRows, payloadRow, type Row, rowsSize } from "./journalEntries.ts"
import { sizeProblem, sum } from "./limits.ts"
import * as Scripts from "./journalScripts.ts"

/** Records one restore chunk applies at most (fewer when their JSON would not fit one argument). */
const RESTORE_CHUNK = 1_000

/** One chunk of a restore: the copies of its streams (KEYS), the last seq it expects, its streams and records as JSON, its last seq. */
interface Chunk {
  readonly copies: ReadonlyArray<string>
  readonly lastSeq: number
  readonly streams: string
  readonly records: string
  readonly through: number
}

/** The journal's `restore` over `context`. */
export const makeRestore = (context: JournalContext): Journal["restore"] => {
  const { keys, redis, run } = context
  const head = context.positionFor("restore")

  /** Checks `batch` against the position it reads, then applies it: one chunk by one script, more in one transaction. */
  const restoreOnce = (batch: ReadonlyArray<JournalRecord>) =>
    Effect.gen(function*() {
      const position = yield* head
      const fields = [...new Set(batch.map((r) => keys.name(r.namespace, r.id)))]
      const stored = yield* run("restore", "read the versions of the streams to restore", redis.send<ReadonlyArray<string | null>>("HMGET", keys.versions, ...fields))
      const parsed = yield* numbers("restore", keys.versions, fields, stored)
      const versions = new Map(fields.map((field, i) => [field, parsed[i]!] as const))
      const checked = restoreBatch(batch, {
        lastSeq: position.lastSeq,
        truncatedBefore: position.truncatedBefore,
        version: (namespace, id) => versions.get(keys.name(namespace, id)) ?? 0
      })
      if ("problem" in checked) return yield* Effect.fail(new JournalError({ method: "restore", message: checked.problem }))
      const chunks = chunksOf(checked.batch, position.lastSeq, versions)
      if (typeof chunks === "string") return yield* Effect.fail(new JournalError({ method: "restore", message: `Cannot restore: ${chunks}; nothing was restored` }))
      const replies = chunks.length === 1
        ? [yield* Effect.mapError(redis.eval(Scripts.restoreChunk)(...chunkParams(chunks[0]!)), (cause) => failed(cause, !isReplyError(cause)))]
        : yield* Effect.scoped(transaction(chunks))
      return yield* outcome(replies, chunks)
    })

  const chunkParams = (chunk: Chunk) => [[keys.meta, keys.versions, keys.log] as const, chunk.copies, chunk.lastSeq, chunk.streams, chunk.records] as const

  /**
   * The chunks in one transaction on a reserved connection: each expects what the one before left,
   * so a change by another writer stops them all. The script is loaded on that connection first: an
   * EVALSHA queued in MULTI would report a missing script (after a restart or SCRIPT FLUSH) only in
   * EXEC's reply, too late to load it. Interrupted or failed before EXEC, the transaction is
   * discarded, so the connection goes back to the pool outside it.
   */
  const transaction = (chunks: ReadonlyArray<Chunk>) => {
    let execSent = false
    return Effect.gen(function*() {
      const connection = yield* redis.reserve
      const sha = yield* connection.send<string>("SCRIPT", "LOAD", Scripts.restoreChunk.lua)
      return yield* Effect.gen(function*() {
        yield* connection.send("MULTI")
        for (const chunk of chunks) {
          const params = chunkParams(chunk)
          yield* connection.send("EVALSHA", sha, String(Scripts.restoreChunk.numberOfKeys(...params)), ...Scripts.restoreChunk.params(...params).map(String))
        }
        execSent = true
        return yield* connection.send<ReadonlyArray<Scripts.RestoreReply | Error>>("EXEC")
      }).pipe(Effect.onExit((exit) => Exit.isSuccess(exit) || execSent ? Effect.void : Effect.ignore(connection.send("DISCARD"))))
    }).pipe(Effect.mapError((cause) => failed(cause, execSent && !isReplyError(cause))))
  }

  /** A restore whose command failed: it stored nothing, or (its reply lost) maybe everything. */
  const failed = (cause: EffectRedis.RedisError, unknown: boolean) =>
    new JournalError({
      method: "restore",
      message: `Cannot restore (Redis keys ${keys.tag}): ${describeRedisFailure(cause)}; ${unknown ? "the reply was lost, so the records may or may not have been restored" : "nothing was restored"}`,
      cause
    })

  /** The restore's result from the chunks' replies: its last seq, or which chunk stopped it and what it left. */
  const outcome = (replies: ReadonlyArray<Scripts.RestoreReply | Error>, chunks: ReadonlyArray<Chunk>): Effect.Effect<number, JournalError> => {
    const stopped = replies.findIndex((reply) => reply instanceof Error || reply[0] !== 0)
    if (stopped === -1) return Effect.succeed(chunks[chunks.length - 1]!.through)
    const reply = replies[stopped]!
    const why = reply instanceof Error
      ? `Redis refused chunk ${stopped + 1} of ${chunks.length}: ${reply.message}`
      : `the journal changed while restoring (${reply[1]})`
    const left = stopped === 0 ? "nothing was restored" : `the first ${stopped} chunk(s), the records through seq ${chunks[stopped - 1]!.through}, were restored (Redis has no rollback)`
    return Effect.fail(new JournalError({ method: "restore", message: `Cannot restore: ${why}; ${left}`, ...(reply instanceof Error ? { cause: reply } : {}) }))
  }

  /**
   * `batch` (checked) in chunks for `restoreChunk`, each expecting the last seq and versions the one
   * before leaves: up to `RESTORE_CHUNK` records whose JSON fits one argument. Or why a record fits none.
   */
  const chunksOf = (batch: ReadonlyArray<JournalRecord>, lastSeq: number, versions: Map<string, number>): ReadonlyArray<Chunk> | string => {
    const chunks: Array<Chunk> = []
    let streams = new Map<string, { readonly index: number; readonly copy: string; readonly row: Array<string> }>()
    let rows: Array<Row> = []
    let total = sum([])
    let through = lastSeq
    const close = () => {
      chunks.push({
        copies: [...streams.values()].map((s) => s.copy),
        lastSeq: chunks.length === 0 ? lastSeq : chunks[chunks.length - 1]!.through,
        streams: JSON.stringify([...streams.values()].map((s) => s.row)),
        records: buildRows(rows),
        through
      })
      streams = new Map()
      rows = []
      total = sum([])
    }
    for (const r of batch) {
      const field = keys.name(r.namespace, r.id)
      const rowIn = (index: number) => payloadRow([String(r.seq), String(index), String(r.version), String(r.timestamp), r.type], r.payload, r.metadata)
      let row = rowIn(streams.get(field)?.index ?? streams.size + 1)
      const fits = () => rows.length < RESTORE_CHUNK && sizeProblem("", arraySize(sum([total, row.size]), rows.length + 1), context.limits) === undefined
      if (!fits() && rows.length > 0) {
        close()
        row = rowIn(1)
      }
      if (!fits()) return sizeProblem(`the record at seq ${r.seq} (stream ${formatStream(r)})`, rowsSize([row]), context.limits)!
      let stream = streams.get(field)
      if (stream === undefined) {
        stream = { index: streams.size + 1, copy: keys.stream(r.namespace, r.id), row: [field, String(versions.get(field) ?? 0), "", r.namespace, r.id] }
        streams.set(field, stream)
      }
      stream.row[2] = String(r.version)
      versions.set(field, r.version)
      rows.push(row)
      total = sum([total, row.size])
      through = r.seq
    }
    close()
    return chunks
  }

  return (records) =>
    Effect.suspend(() => {
      // Shape first (with no position): the streams it touches are then known.
      const shaped = restoreBatch(records, { lastSeq: 0, truncatedBefore: 0, version: () => 0 })
      if ("problem" in shaped) return Effect.fail(new JournalError({ method: "restore", message: shaped.problem }))
      if (shaped.batch.length === 0) return Effect.void
      return Effect.flatMap(restoreOnce(shaped.batch), (lastSeq) => Effect.sync(() => context.tracked.advance(lastSeq)))
    })
}
