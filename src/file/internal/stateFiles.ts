/**
 * The file Journal's durable state beside its segments: the `checkpoint` file (compaction watermark
 * and truncation point) and the `streams` file (what truncation removed: the versions of streams
 * whose records were deleted, and the last seq and timestamp dropped). Both are replaced atomically
 * (temp file, fsync, rename, directory fsync).
 * @internal
 */
import { integerProblem, streamKey, streamProblem } from "../../internal/validate.ts"
import { Unrecoverable } from "./errors.ts"
import { type FileIo, readWholeFile, replaceFileDurably } from "./fileIo.ts"
import { decodeState, encodeState } from "./segmentFormat.ts"

/** What the journal keeps about truncated history. @internal */
export interface Truncated {
  lastSeq: number
  lastTimestamp: number
  /** Per stream key: namespace, id and the version of its last deleted record. */
  readonly versions: Map<string, readonly [string, string, number]>
}

/** The checkpoint and streams files of one journal directory. @internal */
export class StateFiles {
  private readonly directory: string
  private readonly io: FileIo
  /** The compaction watermark. */
  checkpoint = 0
  /** Records below this seq are truncated (skipped when still on disk in a segment with later ones). */
  truncatedBefore = 0
  readonly truncated: Truncated = { lastSeq: 0, lastTimestamp: 0, versions: new Map() }

  constructor(directory: string, io: FileIo) {
    this.directory = directory
    this.io = io
  }

  /** Reads the state files present among `names` (the directory's entries). */
  read(names: ReadonlyArray<string>): void {
    if (names.includes("checkpoint")) {
      const value = this.readFile("checkpoint") as { checkpoint?: unknown; truncatedBefore?: unknown }
      if (integerProblem("checkpoint", value?.checkpoint, 0) ?? integerProblem("truncatedBefore", value?.truncatedBefore, 0)) {
        throw new Unrecoverable(`${this.file("checkpoint")} does not hold a checkpoint and truncation point`)
      }
      this.checkpoint = value.checkpoint as number
      this.truncatedBefore = value.truncatedBefore as number
    }
    if (names.includes("streams")) {
      const value = this.readFile("streams") as { lastSeq?: unknown; lastTimestamp?: unknown; versions?: unknown }
      const versions = value?.versions
      if (
        integerProblem("lastSeq", value?.lastSeq, 0) ?? integerProblem("lastTimestamp", value?.lastTimestamp, 0) ??
          (Array.isArray(versions) ? undefined : "no versions")
      ) {
        throw new Unrecoverable(`${this.file("streams")} does not hold the truncated streams' versions`)
      }
      this.truncated.lastSeq = value.lastSeq as number
      this.truncated.lastTimestamp = value.lastTimestamp as number
      for (const item of versions as Array<unknown>) {
        const [namespace, id, version] = item as [string, string, number]
        if (streamProblem({ namespace, id }) ?? integerProblem("version", version, 0)) {
          throw new Unrecoverable(`${this.file("streams")} holds a malformed stream version`)
        }
        this.truncated.versions.set(streamKey(namespace, id), [namespace, id, version])
      }
    }
  }

  /** Stores the truncated history durably (before the segments that held it are deleted). */
  writeTruncated(): void {
    const { lastSeq, lastTimestamp, versions } = this.truncated
    replaceFileDurably(this.io, this.directory, "streams", encodeState({ lastSeq, lastTimestamp, versions: [...versions.values()] }))
  }

  /** Stores the checkpoint and truncation point durably. */
  writeCheckpoint(checkpoint: number, truncatedBefore: number): void {
    replaceFileDurably(this.io, this.directory, "checkpoint", encodeState({ checkpoint, truncatedBefore }))
    this.checkpoint = checkpoint
    this.truncatedBefore = truncatedBefore
  }

  private file(name: string): string {
    return `${this.directory}/${name}`
  }

  private readFile(name: string): unknown {
    const decoded = decodeState(readWholeFile(this.io, this.file(name)))
    if ("problem" in decoded) throw new Unrecoverable(`${this.file(name)} is damaged: ${decoded.problem}`)
    return decoded.value
  }
}
