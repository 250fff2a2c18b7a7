/**
 * `annals verify`: reads everything the stores hold and reports each problem with where it is —
 * records out of order or with holes in a stream's versions, a journal that cannot be read (the
 * layer's error names file and offset, or key), stream versions that disagree with their records,
 * snapshots ahead of their stream or from another timeline, archive segments that are damaged,
 * overlap or leave holes.
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { Archive, type SegmentRef } from "../../Archive.ts"
import { chainBreak } from "../../internal/archiveChain.ts"
import { Journal, type JournalRecord } from "../../Journal.ts"
import { SnapshotStore } from "../../SnapshotStore.ts"
import * as Stores from "../../Stores.ts"
import { scanUpTo } from "./inspect.ts"
import type { Progress } from "./progress.ts"

/** One problem found: where (a stream, a key, a file and offset) and what. @internal */
export interface Problem {
  readonly where: string
  readonly problem: string
}

/** What `verify` read and what it found. @internal */
export interface Report {
  readonly ok: boolean
  readonly records: number
  readonly streams: number
  readonly snapshots: number
  readonly segments: number
  readonly problems: ReadonlyArray<Problem>
  /** Not problems, but worth knowing (history truncated without an archive holding it). */
  readonly notes: ReadonlyArray<string>
}

const streamName = (r: { readonly namespace: string; readonly id: string }) => `${r.namespace}/${r.id}`

const messageOf = (error: unknown) => (error as { readonly message?: string }).message ?? String(error)

/** What the check of a file journal's segment files found (`FileJournal.verify`). @internal */
export interface FileCheck {
  /** Intact records found in the segment files. */
  readonly records: number
  readonly problems: ReadonlyArray<Problem>
  readonly notes: ReadonlyArray<string>
}

const place = (finding: { readonly file: string; readonly offset?: number | undefined }) =>
  finding.offset === undefined ? finding.file : `${finding.file}, byte offset ${finding.offset}`

/**
 * For a file store, every segment file checked in place (all damage named, not only the first);
 * `undefined` for other backends. @internal
 */
export const verifySegments = (store: string): Effect.Effect<FileCheck | undefined> =>
  Stores.backendOf(store) !== "file" ? Effect.succeed(undefined) : Effect.tryPromise({
    try: () => import("../../file/index.ts"),
    catch: (cause) => ({ message: `Cannot load annals/file: ${String(cause)}` })
  }).pipe(
    Effect.flatMap((file) => file.FileJournal.verify(`${Stores.directoryOf(store)}/journal`)),
    Effect.map((verified): FileCheck => ({
      records: verified.records,
      problems: verified.problems.map((f) => ({ where: place(f), problem: f.problem })),
      notes: verified.notes.map((f) => `${place(f)}: ${f.problem}`)
    })),
    Effect.catch((error) => Effect.succeed<FileCheck>({ records: 0, problems: [{ where: "journal", problem: error.message }], notes: [] }))
  )

/** What the archive check found. @internal */
export interface ArchiveCheck {
  readonly segments: number
  readonly archivedThrough: number
  readonly problems: ReadonlyArray<Problem>
}

/** Checks the archive's segments: readable (checksums), in range, chaining from seq 1 without holes. @internal */
export const verifyArchive = (progress: Progress): Effect.Effect<ArchiveCheck, never, Archive> =>
  Effect.gen(function*() {
    const problems: Array<Problem> = []
    const archive = yield* Archive
    const refs = yield* Effect.catch(archive.list(), (error) =>
      Effect.sync(() => {
        problems.push({ where: "archive", problem: `cannot be listed: ${messageOf(error)}` })
        return [] as ReadonlyArray<SegmentRef>
      }))
    yield* progress.expect(refs.length)
    let previous: SegmentRef | undefined
    for (const ref of refs) {
      const gap = chainBreak(previous, ref)
      if (gap !== undefined) {
        problems.push({
          where: ref.key,
          problem: previous === undefined
            ? `the first segment starts at seq ${ref.startSeq}, not 1: seqs 1..${ref.startSeq - 1} are missing`
            : gap === "overlap"
            ? `overlaps ${previous.key} (seqs ${ref.startSeq}..${previous.endSeq})`
            : `seqs ${gap.from}..${gap.to} are missing after ${previous.key}`
        })
      }
      const records = yield* Effect.result(archive.get(ref))
      if (records._tag === "Failure") {
        problems.push({ where: ref.key, problem: messageOf(records.failure) })
      } else {
        const outside = records.success.find((r) => r.seq < ref.startSeq || r.seq > ref.endSeq)
        if (outside !== undefined) problems.push({ where: ref.key, problem: `holds seq ${outside.seq}, outside its range` })
      }
      previous = ref
      yield* progress.advance(1)
    }
    yield* progress.done
    return { segments: refs.length, archivedThrough: previous?.endSeq ?? 0, problems }
  })

/** Checks one namespace's snapshots against the journal. */
const verifySnapshots = (namespace: string, problems: Array<Problem>) =>
  Effect.gen(function*() {
    const journal = yield* Journal
    const snapshots = yield* Stream.runCollect((yield* SnapshotStore).scan(namespace))
    for (const snapshot of snapshots) {
      const stream = { namespace: snapshot.namespace, id: snapshot.id }
      const where = `snapshot ${streamName(stream)}@${snapshot.version}`
      const version = yield* journal.version(stream)
      if (snapshot.version > version) {
        problems.push({ where, problem: `is ahead of its stream (version ${version} in the journal)` })
        continue
      }
      const record = yield* Stream.runHead(journal.read(stream, { from: snapshot.version, to: snapshot.version }))
      if (Option.isSome(record) && record.value.seq !== snapshot.seq) {
        problems.push({
          where,
          problem: `was taken on another timeline: it names seq ${snapshot.seq}, the journal's record at that version is seq ${record.value.seq}`
        })
      }
    }
    return snapshots.length
  })

/** What the journal and snapshot check found. @internal */
export interface JournalCheck {
  readonly records: number
  readonly streams: number
  readonly snapshots: number
  readonly checkpoint: number
  readonly problems: ReadonlyArray<Problem>
}

/**
 * Checks every record of the journal (seq order, dense versions, the stream versions the journal
 * reports) and the snapshots of every namespace it holds. @internal
 */
export const verifyJournal = (progress: Progress): Effect.Effect<JournalCheck, never, Journal | SnapshotStore> =>
  Effect.gen(function*() {
    const journal = yield* Journal
    const problems: Array<Problem> = []
    const lastVersion = new Map<string, { readonly namespace: string; readonly id: string; version: number }>()
    let previous: JournalRecord | undefined
    let records = 0
    // What the journal held when the check began: a writer may go on appending meanwhile.
    let pinned = 0
    const pinnedScan = Stream.unwrap(Effect.map(scanUpTo(progress), (scanned) => {
      pinned = scanned.lastSeq
      return scanned.records
    }))
    const checkpoint = yield* Effect.orElseSucceed(journal.checkpoint, () => 0)
    const read = yield* Effect.result(Stream.runForEach(pinnedScan, (r) =>
      Effect.sync(() => {
        records++
        if (previous !== undefined && r.seq <= previous.seq) {
          problems.push({ where: `seq ${r.seq}`, problem: `comes after seq ${previous.seq}: seqs must increase` })
        }
        const key = `${r.namespace}\u0000${r.id}`
        const last = lastVersion.get(key)
        if (last !== undefined && r.version !== last.version + 1) {
          problems.push({
            where: `${streamName(r)} seq ${r.seq}`,
            problem: `has version ${r.version} after version ${last.version}: versions must be 1, 2, 3 …`
          })
        }
        if (last === undefined) {
          lastVersion.set(key, { namespace: r.namespace, id: r.id, version: r.version })
          if (r.version > 1 && checkpoint === 0) {
            problems.push({
              where: `${streamName(r)} seq ${r.seq}`,
              problem: `the stream starts at version ${r.version}, and nothing was truncated: versions 1..${r.version - 1} are missing`
            })
          }
        } else last.version = r.version
        previous = r
      })))
    yield* progress.done
    if (read._tag === "Failure") problems.push({ where: "journal", problem: messageOf(read.failure) })
    const checks = Effect.gen(function*() {
      for (const stream of lastVersion.values()) {
        const version = yield* journal.version(stream)
        // Above the last record seen: appended after the check began, or a version with no record.
        const later = version > stream.version
          ? yield* Stream.runHead(journal.read(stream, { from: stream.version + 1, to: stream.version + 1 }))
          : Option.none()
        if (version < stream.version || (version > stream.version && !(Option.isSome(later) && later.value.seq > pinned))) {
          problems.push({ where: streamName(stream), problem: `the journal says version ${version}, its last record has version ${stream.version}` })
        }
      }
      let snapshots = 0
      for (const namespace of new Set([...lastVersion.values()].map((s) => s.namespace))) {
        snapshots += yield* verifySnapshots(namespace, problems)
      }
      return { snapshots, checkpoint }
    })
    const counted = yield* Effect.catch(checks, (error) =>
      Effect.sync(() => {
        problems.push({ where: "stores", problem: messageOf(error) })
        return { snapshots: 0, checkpoint: 0 }
      }))
    return { records, streams: lastVersion.size, ...counted, problems }
  })

/**
 * The report of both checks; `journal` is a problem instead when the stores could not be opened,
 * and `archive` undefined when no archive was checked. @internal
 */
export const report = (journal: JournalCheck | Problem, archive: ArchiveCheck | undefined, files: FileCheck | undefined): Report => {
  const notes: Array<string> = [...(files?.notes ?? [])]
  const checked = "problem" in journal ? undefined : journal
  if (checked === undefined) notes.push("the snapshots were not checked: the journal could not be opened")
  else if (checked.checkpoint > 1 && (archive?.archivedThrough ?? 0) < checked.checkpoint - 1) {
    notes.push(
      `the journal was truncated before seq ${checked.checkpoint}; ` +
        (archive !== undefined ? `the archive holds seqs up to ${archive.archivedThrough} only` : "no archive was checked") +
        ": history before that is only in snapshots"
    )
  }
  // A journal that would not open because of damage the file check names is not a second problem.
  const opening = checked !== undefined ? checked.problems : files !== undefined && files.problems.length > 0 ? [] : [journal as Problem]
  const problems = [...(files?.problems ?? []), ...opening, ...(archive?.problems ?? [])]
  return {
    ok: problems.length === 0,
    records: checked?.records ?? files?.records ?? 0,
    streams: checked?.streams ?? 0,
    snapshots: checked?.snapshots ?? 0,
    segments: archive?.segments ?? 0,
    problems,
    notes
  }
}
