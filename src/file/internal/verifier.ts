/**
 * Checks a journal directory's segment files without opening the journal (no lock, nothing
 * written): every segment header, every frame's CRC and fields, seqs increasing within and across
 * segments and inside the range each segment's name gives, and no seqs between two segments. Unlike recovery, it does not stop at the
 * first damage: after a bad record it looks for the next intact one and goes on, so one report
 * names every damaged place by file and byte offset. An incomplete append at the very end of the
 * last segment is a note, not a problem: a writer may be writing it, or a crash tore it (the next
 * writable open cuts it off).
 * @internal
 */
import * as path from "node:path"
import type { FileIo } from "./fileIo.ts"
import { readWholeFile } from "./fileIo.ts"
import { FRAME_OVERHEAD, FrameCodec, HEADER_BYTES, headerProblem, makeFrameHead, parseSegmentName, segmentName, view } from "./segmentFormat.ts"

/** A problem or note found in a journal directory: the file, the byte offset, what is wrong. @internal */
export interface Finding {
  readonly file: string
  readonly offset?: number | undefined
  readonly problem: string
}

/** What `verifyDirectory` found. @internal */
export interface Verified {
  readonly segments: number
  readonly records: number
  readonly problems: ReadonlyArray<Finding>
  readonly notes: ReadonlyArray<Finding>
}

/** How far past a bad record the verifier looks for the next intact one. */
const RESYNC_BYTES = 1 << 20

/** Checks every segment file of `directory` on `io`. @internal */
export const verifyDirectory = (directory: string, io: FileIo): Verified => {
  const codec = new FrameCodec()
  const head = makeFrameHead()
  const problems: Array<Finding> = []
  const notes: Array<Finding> = []
  const firstSeqs = io.readdirSync(directory).map(parseSegmentName).filter((s): s is number => s !== undefined).sort((a, b) => a - b)
  let previousSeq = 0
  let records = 0
  firstSeqs.forEach((firstSeq, i) => {
    const file = path.join(directory, segmentName(firstSeq))
    const next = firstSeqs[i + 1]
    const last = i === firstSeqs.length - 1
    // The writer names a new segment after the last seq it wrote: a later name leaves seqs no file holds.
    if (i > 0 && previousSeq > 0 && firstSeq > previousSeq + 1) {
      problems.push({
        file,
        offset: 0,
        problem: `seqs ${previousSeq + 1}..${firstSeq - 1} are in no segment file: the one between ${segmentName(firstSeqs[i - 1]!)} and this one is missing`
      })
    }
    const data = readWholeFile(io, file)
    const header = headerProblem(data.subarray(0, HEADER_BYTES), firstSeq)
    if (header !== undefined) {
      if (last && data.length < HEADER_BYTES) notes.push({ file, offset: 0, problem: `${data.length} bytes, shorter than a segment header (its creation was interrupted)` })
      else problems.push({ file, offset: 0, problem: `not a segment: ${header}` })
      return
    }
    const dv = view(data)
    let position = HEADER_BYTES
    while (position < data.length) {
      const intact = codec.readFrameHead(data, dv, position, data.length, head)
      if (intact && head.seq > previousSeq && head.seq >= firstSeq && (next === undefined || head.seq < next)) {
        previousSeq = head.seq
        records++
        position += head.size
        continue
      }
      if (intact) {
        problems.push({
          file,
          offset: position,
          problem: `record seq ${head.seq} is out of order (after seq ${previousSeq}; this segment holds seqs from ${firstSeq}${next === undefined ? "" : ` below ${next}`})`
        })
        position += head.size
        continue
      }
      // Damage, or a torn tail: is there an intact record further on?
      let resync = -1
      for (let at = position + 1; at + FRAME_OVERHEAD <= data.length && at <= position + RESYNC_BYTES; at++) {
        if (codec.readFrameHead(data, dv, at, data.length, head) && head.seq > previousSeq) {
          resync = at
          break
        }
      }
      if (resync >= 0) {
        problems.push({ file, offset: position, problem: `bad record (checksum or fields), followed by intact records from byte offset ${resync}` })
        position = resync
      } else if (last) {
        notes.push({ file, offset: position, problem: `an incomplete append at the end (${data.length - position} bytes): being written, or torn by a crash` })
        position = data.length
      } else {
        problems.push({ file, offset: position, problem: `bad record in a sealed segment; the ${data.length - position} bytes after it are unreadable` })
        position = data.length
      }
    }
  })
  return { segments: firstSeqs.length, records, problems, notes }
}
