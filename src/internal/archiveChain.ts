/**
 * How archive segments must chain: the first starts at seq 1, each next one right after the one
 * before. `Archiver.restore` refuses an archive that does not; `annals verify` reports where.
 * @internal
 */
import type { SegmentRef } from "../Archive.ts"

/**
 * How `ref` fails to follow `previous` (`undefined`: `ref` is the first segment): `"overlap"`, the
 * seqs missing before it, or `undefined` when it chains. @internal
 */
export const chainBreak = (
  previous: SegmentRef | undefined,
  ref: SegmentRef
): "overlap" | { readonly from: number; readonly to: number } | undefined => {
  const expected = previous === undefined ? 1 : previous.endSeq + 1
  if (ref.startSeq === expected) return undefined
  return ref.startSeq < expected ? "overlap" : { from: expected, to: ref.startSeq - 1 }
}
