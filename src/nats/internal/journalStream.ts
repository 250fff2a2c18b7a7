/**
 * The JetStream stream under the NATS journal: created when missing, and an existing one checked,
 * so that the journal never runs on a stream that would drop, reorder or rewrite its messages.
 *
 * @internal
 */
import { DiscardPolicy, type JetStreamManager, RetentionPolicy, type StreamConfig, StorageType } from "@nats-io/jetstream"
import { bucketProblem, droppingProblem, type StorageSettings } from "./buckets.ts"
import * as Effect from "effect/Effect"
import { JournalError } from "../../Journal.ts"
import { describeNatsFailure, isStreamNotFound } from "./errors.ts"
import type { StoreNames } from "./names.ts"

/** What the stream is created with. */
export interface StreamSettings extends StorageSettings {
  /** How long the server remembers a message id (a publish retried within it is stored once). */
  readonly duplicateWindowMs: number
}

const NANOS_PER_MS = 1_000_000

/** What makes an existing stream unfit for the journal, as sentences (the checks every bucket gets, then the journal's own). */
const problems = (config: StreamConfig, names: StoreNames, settings: StreamSettings): Array<string> => {
  const what = `stream ${names.journalStream}`
  const shared = bucketProblem(what, config, [names.journalSubjects], settings) ??
    droppingProblem(what, config, "events", Number.MAX_SAFE_INTEGER)
  const out: Array<string> = shared === undefined ? [] : [shared]
  if (config.max_msgs_per_subject > 0) out.push(`max_msgs_per_subject is ${config.max_msgs_per_subject} (messages would be dropped)`)
  if (config.deny_purge) out.push("deny_purge is set (truncateBefore purges)")
  if (!config.allow_direct) out.push("allow_direct is off (reads use direct gets)")
  if (config.duplicate_window < settings.duplicateWindowMs * NANOS_PER_MS) {
    out.push(`its duplicate_window is ${config.duplicate_window / NANOS_PER_MS} ms, below ${settings.duplicateWindowMs} ms`)
  }
  return out
}

/** Creates the journal's stream if missing, or checks the existing one. */
export const ensureJournalStream = (
  manager: JetStreamManager,
  names: StoreNames,
  settings: StreamSettings,
  servers: string
): Effect.Effect<void, JournalError> =>
  Effect.tryPromise({
    try: async () => {
      const existing = await manager.streams.info(names.journalStream).catch((cause) => (isStreamNotFound(cause) ? undefined : Promise.reject(cause)))
      if (existing !== undefined) return problems(existing.config, names, settings)
      await manager.streams.add({
        name: names.journalStream,
        subjects: [names.journalSubjects],
        retention: RetentionPolicy.Limits,
        storage: settings.storage === "memory" ? StorageType.Memory : StorageType.File,
        num_replicas: settings.replicas,
        discard: DiscardPolicy.Old,
        duplicate_window: settings.duplicateWindowMs * NANOS_PER_MS,
        deny_delete: true,
        allow_direct: true
      }).catch(async (cause) => {
        // Another process created it meanwhile: check that one instead.
        const raced = await manager.streams.info(names.journalStream).catch(() => Promise.reject(cause))
        return raced
      })
      const created = await manager.streams.info(names.journalStream)
      return problems(created.config, names, settings)
    },
    catch: (cause) =>
      new JournalError({ method: "open", message: `NatsJournal: cannot create or read the stream ${names.journalStream} at ${servers}: ${describeNatsFailure(cause)}`, cause })
  }).pipe(
    Effect.flatMap((found) =>
      found.length === 0
        ? Effect.void
        : Effect.fail(new JournalError({ method: "open", message: `NatsJournal: the existing stream ${names.journalStream} at ${servers} cannot hold a journal: ${found.join("; ")}` }))
    )
  )
