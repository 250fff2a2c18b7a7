/**
 * `restore` of the NATS journal: the batch checked against the position and the versions of the
 * streams it touches, then written as one message per run of a stream's records (at most 1,000
 * records and about 256 KiB of payload each), each expecting the position and the stream's version
 * the one before left. Runs are stored one by one: a failure part way leaves the runs before it
 * restored (the error says so), which a restore of the remaining records continues.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import { randomUUID } from "node:crypto"
import { type Journal, JournalError, type JournalRecord } from "../../Journal.ts"
import { restoreBatch } from "../../internal/journalChecks.ts"
import { formatStream } from "../../internal/validate.ts"
import { type Decision, type JournalChain, type Known, type Step, storedNothing, withBlob } from "./journalChain.ts"
import type { Position } from "./journalMessages.ts"
import type { JournalPayloads } from "./journalPayloads.ts"
import type { JournalReads } from "./journalReads.ts"
import type { StoreNames } from "./names.ts"

/** What `restore` works with. */
export interface RestoreDeps {
  readonly names: StoreNames
  readonly reads: JournalReads
  readonly chain: JournalChain
  readonly payloads: JournalPayloads
  /** Told the last seq restored. */
  readonly advance: (seq: number) => void
}

/** The journal's `restore` over `deps`. */
export const journalRestore = ({ advance, chain, names, payloads, reads }: RestoreDeps): Journal["restore"] => {
  const restore: Journal["restore"] = (records) =>
    Effect.gen(function*() {
      // Shape first (with no position): the streams it touches are then known.
      const shaped = restoreBatch(records, { lastSeq: 0, truncatedBefore: 0, version: () => 0 })
      if ("problem" in shaped) return yield* new JournalError({ method: "restore", message: shaped.problem })
      if (shaped.batch.length === 0) return
      const at = yield* reads.tail("restore")
      const subjects = [...new Set(shaped.batch.map((r) => names.streamSubject(r.namespace, r.id)))]
      const states = yield* Effect.forEach(subjects, (subject) => reads.subjectState("restore", subject), { concurrency: 8 })
      const versions = new Map(subjects.map((subject, i) => [subject, states[i]!.version] as const))
      const checked = restoreBatch(shaped.batch, {
        lastSeq: at.position.lastSeq,
        truncatedBefore: at.position.truncatedBefore,
        version: (namespace, id) => versions.get(names.streamSubject(namespace, id)) ?? 0
      })
      if ("problem" in checked) return yield* new JournalError({ method: "restore", message: checked.problem })
      for (const run of runs(checked.batch)) yield* restoreRun(run)
      advance(checked.lastSeq)
    })

  /** One run of a stream's records as one message, expecting the stream's version and the journal's position below it. */
  const restoreRun = (run: ReadonlyArray<JournalRecord>) =>
    Effect.flatMap(payloads.spill("restore", run), (blob) =>
      chain.write<void, JournalError>({ ...restoreStep(run), decide: withBlob(restoreStep(run).decide, blob) }).pipe(
        Effect.tapError((error) => (blob !== undefined && storedNothing(error) ? payloads.remove("restore", blob.name) : Effect.void))
      ))

  /** The step that restores one run of a stream's records. */
  const restoreStep = (run: ReadonlyArray<JournalRecord>) => {
    const first = run[0]!
    const last = run[run.length - 1]!
    const stream = { namespace: first.namespace, id: first.id }
    return ({
      method: "restore",
      subject: names.streamSubject(stream.namespace, stream.id),
      streamSubject: true,
      msgId: randomUUID(),
      decide: (position: Position, known: Known | undefined): Decision<void, JournalError> => {
        const changed = position.lastSeq >= first.seq ? `the journal reached seq ${position.lastSeq}` :
          known!.version !== 0 && known!.version !== first.version - 1 ? `stream ${formatStream(stream)} is at version ${known!.version}` : undefined
        if (changed === undefined) {
          const timestamp = run.reduce((max, r) => Math.max(max, r.timestamp), position.lastTimestamp)
          return { _tag: "Send", message: { position: { ...position, lastSeq: last.seq, lastTimestamp: timestamp }, stream: { ...stream, version: last.version }, records: run }, done: () => undefined }
        }
        return known!.fresh || known!.inFlight
          ? { _tag: "Fail", error: new JournalError({ method: "restore", message: `Cannot restore seq ${first.seq}: ${changed} meanwhile; the records before it were restored, the rest not` }) }
          : { _tag: "Stale" }
      }
    }) satisfies Step<void, JournalError>
  }

  return restore
}

/** Consecutive records of one stream, at most 1,000 and about 256 KiB of payload each: one message per run. */
const runs = (batch: ReadonlyArray<JournalRecord>): Array<ReadonlyArray<JournalRecord>> => {
  const out: Array<Array<JournalRecord>> = []
  let bytes = 0
  for (const record of batch) {
    const current = out[out.length - 1]
    const head = current?.[0]
    if (current !== undefined && head!.namespace === record.namespace && head!.id === record.id && current.length < 1_000 && bytes + record.payload.byteLength < 262_144) {
      current.push(record)
      bytes += record.payload.byteLength
    } else {
      out.push([record])
      bytes = record.payload.byteLength
    }
  }
  return out
}
