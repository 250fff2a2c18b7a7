/**
 * The file Journal's `checkpoint` file: the compaction watermark and the truncation point, replaced
 * atomically (temp file, fsync, rename, directory fsync). What truncation removed (the versions of
 * the streams whose records went) is in the `streams` file (`streamsLog.ts`).
 * @internal
 */
import { integerProblem } from "../../internal/validate.ts"
import { Unrecoverable } from "./errors.ts"
import { type FileIo, readWholeFile, replaceFileDurably } from "./fileIo.ts"
import { decodeState, encodeState } from "./segmentFormat.ts"

/** The checkpoint file of one journal directory. @internal */
export class CheckpointFile {
  private readonly directory: string
  private readonly io: FileIo
  /** The compaction watermark. */
  checkpoint = 0
  /** Records below this seq are truncated (skipped when still on disk in a segment with later ones). */
  truncatedBefore = 0

  constructor(directory: string, io: FileIo) {
    this.directory = directory
    this.io = io
  }

  private get path(): string {
    return `${this.directory}/checkpoint`
  }

  /** Reads the file, if `exists`. */
  read(exists: boolean): void {
    if (!exists) return
    const decoded = decodeState(readWholeFile(this.io, this.path))
    if ("problem" in decoded) throw new Unrecoverable(`${this.path} is damaged: ${decoded.problem}`)
    const value = decoded.value as { checkpoint?: unknown; truncatedBefore?: unknown }
    if (integerProblem("checkpoint", value?.checkpoint, 0) ?? integerProblem("truncatedBefore", value?.truncatedBefore, 0)) {
      throw new Unrecoverable(`${this.path} does not hold a checkpoint and truncation point`)
    }
    this.checkpoint = value.checkpoint as number
    this.truncatedBefore = value.truncatedBefore as number
  }

  /** Stores the checkpoint and truncation point durably. */
  write(checkpoint: number, truncatedBefore: number): void {
    replaceFileDurably(this.io, this.directory, "checkpoint", encodeState({ checkpoint, truncatedBefore }))
    this.checkpoint = checkpoint
    this.truncatedBefore = truncatedBefore
  }
}
