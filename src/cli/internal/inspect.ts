/**
 * What the read-only commands compute from the stores: the streams of a journal, its statistics,
 * the subscriptions' cursors and lag, and how far the archive has got.
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { Archive, type ArchiveError, type SegmentRef } from "../../Archive.ts"
import { CursorStore, type CursorStoreError } from "../../CursorStore.ts"
import { Journal, type JournalError, type JournalRecord } from "../../Journal.ts"
import type { Progress } from "./progress.ts"

/**
 * Every record the journal holds up to its `lastSeq` when the scan starts (appends made meanwhile,
 * by a writer that keeps running, are left out), counted on `progress`. @internal
 */
export const scanUpTo = (
  progress: Progress
): Effect.Effect<{ readonly lastSeq: number; readonly records: Stream.Stream<JournalRecord, JournalError> }, JournalError, Journal> =>
  Effect.gen(function*() {
    const journal = yield* Journal
    const [checkpoint, lastSeq] = yield* Effect.all([journal.checkpoint, journal.lastSeq])
    yield* progress.expect(Math.max(0, lastSeq - checkpoint))
    const records = journal.replayFrom(1).pipe(
      Stream.takeWhile((r) => r.seq <= lastSeq),
      Stream.mapArrayEffect((records) => Effect.as(progress.advance(records.length), records))
    )
    return { lastSeq, records }
  })

/** `scanUpTo`'s records. @internal */
export const scan = (progress: Progress): Stream.Stream<JournalRecord, JournalError, Journal> =>
  Stream.unwrap(Effect.map(scanUpTo(progress), (scanned) => scanned.records))

/** One stream of the journal. @internal */
export interface StreamSummary {
  readonly namespace: string
  readonly id: string
  /** The stream's version (it survives truncation). */
  readonly version: number
  /** How many of its records the journal holds now. */
  readonly records: number
  readonly firstSeq: number
  readonly lastSeq: number
  readonly lastTimestamp: number
}

/** The streams the journal holds records of (of `namespace` only, if given), by namespace and id. @internal */
export const streams = (
  progress: Progress,
  namespace: string | undefined
): Effect.Effect<ReadonlyArray<StreamSummary>, JournalError, Journal> =>
  Effect.gen(function*() {
    const journal = yield* Journal
    const found = new Map<string, { namespace: string; id: string; records: number; firstSeq: number; lastSeq: number; lastTimestamp: number }>()
    yield* Stream.runForEach(scan(progress), (r) =>
      Effect.sync(() => {
        if (namespace !== undefined && r.namespace !== namespace) return
        const key = `${r.namespace}\u0000${r.id}`
        const entry = found.get(key)
        if (entry === undefined) {
          found.set(key, { namespace: r.namespace, id: r.id, records: 1, firstSeq: r.seq, lastSeq: r.seq, lastTimestamp: r.timestamp })
        } else {
          entry.records++
          entry.lastSeq = r.seq
          entry.lastTimestamp = r.timestamp
        }
      }))
    yield* progress.done
    const sorted = [...found.values()].sort((a, b) =>
      a.namespace === b.namespace ? (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) : a.namespace < b.namespace ? -1 : 1
    )
    return yield* Effect.forEach(sorted, (s) =>
      Effect.map(journal.version({ namespace: s.namespace, id: s.id }), (version): StreamSummary => ({ ...s, version })))
  })

/** A journal's statistics. @internal */
export interface Stats {
  readonly lastSeq: number
  readonly checkpoint: number
  readonly records: number
  readonly streams: number
  readonly namespaces: Readonly<Record<string, { readonly streams: number; readonly records: number }>>
  readonly firstSeq: number | null
  readonly firstTimestamp: number | null
  readonly lastTimestamp: number | null
  readonly payloadBytes: number
}

/** Counts what the journal holds. @internal */
export const stats = (progress: Progress): Effect.Effect<Stats, JournalError, Journal> =>
  Effect.gen(function*() {
    const journal = yield* Journal
    const namespaces: Record<string, { streams: number; records: number }> = {}
    const seen = new Set<string>()
    let records = 0
    let payloadBytes = 0
    let first: JournalRecord | undefined
    let last: JournalRecord | undefined
    yield* Stream.runForEach(scan(progress), (r) =>
      Effect.sync(() => {
        records++
        payloadBytes += r.payload.byteLength
        first ??= r
        last = r
        const ns = namespaces[r.namespace] ??= { streams: 0, records: 0 }
        ns.records++
        const key = `${r.namespace}\u0000${r.id}`
        if (!seen.has(key)) {
          seen.add(key)
          ns.streams++
        }
      }))
    yield* progress.done
    return {
      lastSeq: yield* journal.lastSeq,
      checkpoint: yield* journal.checkpoint,
      records,
      streams: seen.size,
      namespaces,
      firstSeq: first?.seq ?? null,
      firstTimestamp: first?.timestamp ?? null,
      lastTimestamp: last?.timestamp ?? null,
      payloadBytes
    }
  })

/** A subscription's position. @internal */
export interface SubscriptionSummary {
  readonly name: string
  readonly seq: number
  readonly updatedAt: number
  /** Records of the journal after the cursor (`lastSeq − seq`; seqs may have gaps, so at most that). */
  readonly lag: number
}

/** Every cursor, with its lag behind the journal. @internal */
export const subscriptions: Effect.Effect<
  ReadonlyArray<SubscriptionSummary>,
  JournalError | CursorStoreError,
  Journal | CursorStore
> = Effect.gen(function*() {
  const lastSeq = yield* (yield* Journal).lastSeq
  const cursors = yield* (yield* CursorStore).list
  return cursors.map((c) => ({ name: c.name, seq: c.seq, updatedAt: c.updatedAt, lag: Math.max(0, lastSeq - c.seq) }))
})

/** How far the archive has got. @internal */
export interface ArchiveStatus {
  readonly segments: number
  readonly firstSeq: number | null
  /** The highest archived seq (0 if none). */
  readonly archivedThrough: number
  readonly bytes: number | null
  readonly journalLastSeq: number
  readonly journalCheckpoint: number
  /** Seqs of the journal not archived yet (`lastSeq − archivedThrough`). */
  readonly lag: number
  readonly last: SegmentRef | null
}

/** The archive's segments against the journal. @internal */
export const archiveStatus: Effect.Effect<ArchiveStatus, JournalError | ArchiveError, Journal | Archive> = Effect.gen(
  function*() {
    const journal = yield* Journal
    const refs = yield* (yield* Archive).list()
    const lastSeq = yield* journal.lastSeq
    const archivedThrough = refs.length === 0 ? 0 : refs[refs.length - 1]!.endSeq
    const sizes = refs.map((r) => r.size)
    return {
      segments: refs.length,
      firstSeq: refs[0]?.startSeq ?? null,
      archivedThrough,
      bytes: sizes.every((s) => s !== undefined) ? sizes.reduce((a: number, s) => a + s!, 0) : null,
      journalLastSeq: lastSeq,
      journalCheckpoint: yield* journal.checkpoint,
      lag: Math.max(0, lastSeq - archivedThrough),
      last: Option.getOrNull(Option.fromUndefinedOr(refs[refs.length - 1]))
    }
  }
)
