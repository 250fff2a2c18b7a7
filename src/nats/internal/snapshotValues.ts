/**
 * The value of one stream's key in the NATS snapshot bucket, and how a put changes it.
 *
 * Key: `<token(namespace)>.<token(id)>` (`names.ts`; long names are hashed, so the names travel in
 * the value). Value: the msgpack of `[1, namespace, id, snapshots]`, `snapshots` the kept ones by
 * version ascending, each `[version, seq, timestamp, schemaVersion, state]` where `state` is the
 * state's bytes (a msgpack bin) or, for a state too large to sit in the value, the name of the
 * object holding it in the state object store (a msgpack str).
 *
 * Placement keeps every value under the server's message limit: a new state sits in the value only
 * when the value with it still leaves room for `keep` references (so later puts, which add at most
 * `keep` references before the oldest go, never overflow it); otherwise it goes to an object first.
 *
 * @internal
 */
import { randomUUID } from "node:crypto"
import { pack, unpack } from "../../internal/msgpack.ts"
import { select } from "../../internal/snapshotChecks.ts"
import { integerProblem, MAX_NAME_LENGTH } from "../../internal/validate.ts"
import type { Snapshot, SnapshotCriteria } from "../../SnapshotStore.ts"
import { MAX_TOKEN, token } from "./names.ts"

/** The value format this module writes and reads. */
const FORMAT = 1

/** A kept snapshot as the value stores it: its state inline, or the name of its object. */
export interface StoredSnapshot {
  readonly version: number
  readonly seq: number
  readonly timestamp: number
  readonly schemaVersion: number
  readonly state: Uint8Array | string
}

/** One stream's value: its names and its kept snapshots, by version ascending. */
export interface StreamValue {
  readonly namespace: string
  readonly id: string
  readonly snapshots: ReadonlyArray<StoredSnapshot>
}

/** The key of a stream in the snapshot bucket. */
export const snapshotKey = (namespace: string, id: string): string => `${token(namespace)}.${token(id)}`

/** The key filter of every stream of `namespace`. */
export const namespaceKeys = (namespace: string): string => `${token(namespace)}.*`

/** A fresh object name for a state of the stream under `key` at `version` (the stream's key, so an orphan names its stream). */
export const objectName = (key: string, version: number): string => `${key}/${version}/${randomUUID()}`

/** The stored form of `snapshot`, its state inline. */
export const stored = (snapshot: Snapshot): StoredSnapshot => ({
  version: snapshot.version,
  seq: snapshot.seq,
  timestamp: snapshot.timestamp,
  schemaVersion: snapshot.schemaVersion,
  state: snapshot.state
})

/** The bytes of `value`. */
export const encodeValue = (value: StreamValue): Uint8Array =>
  pack([FORMAT, value.namespace, value.id, value.snapshots.map((s) => [s.version, s.seq, s.timestamp, s.schemaVersion, s.state])])

/** The most bytes one reference to an object of the stream under `key` adds to its value. */
export const referenceBytes = (key: string): number =>
  pack([Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, objectName(key, Number.MAX_SAFE_INTEGER)]).length

/**
 * The bytes of the largest value holding `keep` references and no state (the longest names, the
 * longest key): what a message must hold for every put to fit.
 */
export const referencesOnlyBytes = (keep: number): number => {
  const longest = "\u0800".repeat(MAX_NAME_LENGTH)
  return encodeValue({ namespace: longest, id: longest, snapshots: [] }).length + keep * referenceBytes("x".repeat(2 * MAX_TOKEN + 1))
}

/** True when `value` (with a new state inline) leaves room for `keep` references under `limit` bytes. */
export const fitsInline = (value: Uint8Array, key: string, keep: number, limit: number): boolean =>
  value.length + keep * referenceBytes(key) <= limit

const snapshotProblem = (entry: unknown, index: number, previous: number): string | undefined => {
  if (!Array.isArray(entry) || entry.length !== 5) return `snapshot ${index} is not [version, seq, timestamp, schemaVersion, state]`
  const [version, seq, timestamp, schemaVersion, state] = entry as ReadonlyArray<unknown>
  const problem = integerProblem(`snapshot ${index}'s version`, version, previous + 1) ??
    integerProblem(`snapshot ${index}'s seq`, seq, 1) ?? integerProblem(`snapshot ${index}'s timestamp`, timestamp, 0) ??
    integerProblem(`snapshot ${index}'s schemaVersion`, schemaVersion, 0)
  if (problem !== undefined) return `${problem} (versions must ascend)`
  return state instanceof Uint8Array || (typeof state === "string" && state.length > 0)
    ? undefined
    : `snapshot ${index}'s state is neither bytes nor an object name`
}

/**
 * The value `data` holds for stream `namespace`/`id`, or a sentence naming what is wrong with it
 * (not msgpack, another format, another stream's, a malformed snapshot).
 */
export const decodeValue = (data: Uint8Array, namespace: string, id: string): StreamValue | string => {
  let decoded: unknown
  try {
    decoded = unpack(data)
  } catch (cause) {
    return `it is not msgpack (${cause instanceof Error ? cause.message : String(cause)})`
  }
  if (!Array.isArray(decoded) || decoded.length !== 4 || decoded[0] !== FORMAT) return `it is not [${FORMAT}, namespace, id, snapshots]`
  const [, storedNamespace, storedId, entries] = decoded as [number, unknown, unknown, unknown]
  if (storedNamespace !== namespace || storedId !== id) {
    return `it holds the snapshots of ${JSON.stringify(storedNamespace)}/${JSON.stringify(storedId)}, not of this stream`
  }
  if (!Array.isArray(entries)) return "its snapshots are not an array"
  const snapshots: Array<StoredSnapshot> = []
  for (const [index, entry] of entries.entries()) {
    const problem = snapshotProblem(entry, index, snapshots.at(-1)?.version ?? 0)
    if (problem !== undefined) return problem
    const [version, seq, timestamp, schemaVersion, state] = entry as [number, number, number, number, Uint8Array | string]
    snapshots.push({ version, seq, timestamp, schemaVersion, state: typeof state === "string" ? state : new Uint8Array(state) })
  }
  return { namespace, id, snapshots }
}

/** The stream's id in a value, without checking the rest (for listing hashed keys), or `undefined`. */
export const idOfValue = (data: Uint8Array): string | undefined => {
  try {
    const decoded: unknown = unpack(data)
    return Array.isArray(decoded) && typeof decoded[2] === "string" ? decoded[2] : undefined
  } catch {
    return undefined
  }
}

/**
 * What a put of `next` does to `current` (by version ascending) under `keep`: the snapshots kept
 * (same version: replaced) and the ones it drops; `undefined` when `next` itself would be dropped at
 * once (`keep` higher versions are kept), which changes nothing.
 */
export const merge = (
  current: ReadonlyArray<StoredSnapshot>,
  next: StoredSnapshot,
  keep: number
): { readonly kept: ReadonlyArray<StoredSnapshot>; readonly dropped: ReadonlyArray<StoredSnapshot> } | undefined => {
  const others = current.filter((s) => s.version !== next.version)
  const all = [...others, next].sort((a, b) => a.version - b.version)
  const kept = all.slice(Math.max(0, all.length - keep))
  if (!kept.includes(next)) return undefined
  return { kept, dropped: current.filter((s) => !kept.includes(s)) }
}

const NO_STATE = new Uint8Array(0)

/** The stored snapshot of `value` that `criteria` select (as `select` does for snapshots). */
export const selectStored = (value: StreamValue, criteria: SnapshotCriteria | undefined): StoredSnapshot | undefined => {
  const views = value.snapshots.map((s): Snapshot => ({ ...s, namespace: value.namespace, id: value.id, state: NO_STATE }))
  const picked = select(views, criteria)
  return picked === undefined ? undefined : value.snapshots[views.indexOf(picked)]
}

/** The snapshot `stored` of `value`, with its state. */
export const toSnapshot = (value: StreamValue, stored: StoredSnapshot, state: Uint8Array): Snapshot => ({
  namespace: value.namespace,
  id: value.id,
  version: stored.version,
  seq: stored.seq,
  timestamp: stored.timestamp,
  schemaVersion: stored.schemaVersion,
  state
})

/** The object names a value refers to. */
export const objectsOf = (snapshots: ReadonlyArray<StoredSnapshot>): ReadonlyArray<string> =>
  snapshots.flatMap((s) => (typeof s.state === "string" ? [s.state] : []))
