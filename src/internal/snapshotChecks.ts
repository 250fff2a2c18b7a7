/**
 * Argument checks and selection every SnapshotStore layer shares. Checks return the whole message
 * naming what is wrong and where, or `undefined`.
 * @internal
 */
import type { Snapshot, SnapshotCriteria, SnapshotStoreOptions } from "../SnapshotStore.ts"
import { formatStream, integerProblem, lowerBound, nameProblem, streamProblem } from "./validate.ts"

/** Resolves `keep` (default 1), or a message if it is not an integer ≥ 1. @internal */
export const resolveKeep = (options: SnapshotStoreOptions | undefined): number | string => {
  const keep = options?.keep ?? 1
  const problem = integerProblem("keep", keep, 1)
  return problem === undefined ? keep : `SnapshotStore option ${problem}`
}

/** Checks a stream and optional criteria for `method`. @internal */
export const streamArgsProblem = (
  method: string,
  namespace: string,
  id: string,
  criteria?: SnapshotCriteria
): string | undefined => {
  const problem = streamProblem({ namespace, id }) ??
    (criteria?.maxVersion === undefined ? undefined : integerProblem("maxVersion", criteria.maxVersion, 0)) ??
    (criteria?.maxTimestamp === undefined ? undefined : integerProblem("maxTimestamp", criteria.maxTimestamp, 0))
  return problem && `SnapshotStore.${method} for stream ${formatStream({ namespace, id })}: ${problem}`
}

/** Checks a snapshot before it is stored. @internal */
export const snapshotProblem = (snapshot: Snapshot): string | undefined => {
  const problem = snapshot === null || typeof snapshot !== "object"
    ? "a snapshot must be an object"
    : streamProblem(snapshot) ?? integerProblem("version", snapshot.version, 1) ??
      integerProblem("seq", snapshot.seq, 1) ?? integerProblem("timestamp", snapshot.timestamp, 0) ??
      integerProblem("schemaVersion", snapshot.schemaVersion, 0) ??
      (snapshot.state instanceof Uint8Array ? undefined : "state must be a Uint8Array")
  return problem && `Cannot store a snapshot of stream ${formatStream(snapshot)}: ${problem}`
}

/** Checks the namespace given to `scan`. @internal */
export const scanProblem = (namespace: string): string | undefined => {
  const problem = nameProblem("namespace", namespace)
  return problem && `SnapshotStore.scan: ${problem}`
}

/** The snapshot in `versions` (sorted by version ascending) that `criteria` selects. @internal */
export const select = (
  versions: ReadonlyArray<Snapshot>,
  criteria: SnapshotCriteria | undefined
): Snapshot | undefined => {
  const maxVersion = criteria?.maxVersion ?? Number.MAX_SAFE_INTEGER
  const maxTimestamp = criteria?.maxTimestamp ?? Number.MAX_SAFE_INTEGER
  for (let i = lowerBound(versions, maxVersion + 1, (s) => s.version) - 1; i >= 0; i--) {
    if (versions[i]!.timestamp <= maxTimestamp) return versions[i]
  }
  return undefined
}
