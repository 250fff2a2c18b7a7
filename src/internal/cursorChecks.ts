/**
 * The CursorStore rules every layer shares: argument checks, and the decisions of `commit` and
 * `acquire` over one name's stored entry (a layer only reads the entry, asks, and stores the answer
 * atomically: in memory in one synchronous step, in a file under the store's lock, in a server by
 * compare-and-set).
 * @internal
 */
import type { CursorEntry, StoredLease } from "../CursorStore.ts"
import { describeValue, guarded, integerProblem, nameProblem } from "./validate.ts"

/** Checks a subscription name (the rules of stream names). @internal */
export const cursorNameProblem = (name: unknown): string | undefined => nameProblem("name", name)

/** Checks `commit`'s arguments (a lease whose fields cannot be read is a problem, not a defect). @internal */
export const commitProblem = (name: unknown, seq: unknown, lease: unknown): string | undefined =>
  cursorNameProblem(name) ?? integerProblem("seq", seq, 0) ?? guarded(() => leaseArgumentProblem(name, lease))

const leaseArgumentProblem = (name: unknown, lease: unknown): string | undefined => {
  if (lease === undefined) return undefined
  if (lease === null || typeof lease !== "object") return `lease must be a lease returned by acquire, got ${describeValue(lease)}`
  const value = lease as { readonly name?: unknown; readonly owner?: unknown; readonly token?: unknown }
  if (value.name !== name) return `the lease is for ${JSON.stringify(value.name)}, not ${JSON.stringify(name)}`
  return nameProblem("owner", value.owner) ?? integerProblem("lease token", value.token, 1)
}

/** Checks `acquire`'s arguments. @internal */
export const acquireProblem = (name: unknown, owner: unknown, ttlMs: unknown): string | undefined =>
  cursorNameProblem(name) ?? nameProblem("owner", owner) ?? integerProblem("ttlMs", ttlMs, 1)

/** Checks that a lease taken at `now` for `ttlMs` expires at a safe integer (DESIGN §1). @internal */
export const expiryProblem = (now: number, ttlMs: number): string | undefined =>
  Number.isSafeInteger(now + ttlMs) ? undefined : `ttlMs ${ttlMs} from now (${now}) ends beyond Number.MAX_SAFE_INTEGER`

/** Checks `release`'s arguments. @internal */
export const releaseProblem = (name: unknown, owner: unknown): string | undefined =>
  cursorNameProblem(name) ?? nameProblem("owner", owner)

/**
 * What `commit(seq, lease?)` does to `entry` at `now`: the entry to store (`undefined`: nothing
 * changes — a lower or equal seq is ignored), or `"lost"` when a lease was given and it is no longer
 * the stored one (another owner holds the name, or it was released or deleted). @internal
 */
export const decideCommit = (
  entry: CursorEntry | undefined,
  seq: number,
  lease: { readonly owner: string; readonly token: number } | undefined,
  now: number
): CursorEntry | "lost" | undefined => {
  if (lease !== undefined && (entry?.lease === undefined || entry.lease.owner !== lease.owner || entry.lease.token !== lease.token)) {
    return "lost"
  }
  if (entry?.seq !== undefined && seq <= entry.seq) return undefined
  return { ...(entry ?? { token: 0 }), seq, updatedAt: now }
}

/**
 * What `acquire(owner, ttlMs)` does to `entry` at `now`: the entry to store (a renewal keeps the
 * token; a new owner gets the next one), or the live lease of another owner. The expiry is the
 * acquirer's own clock plus `ttlMs`, so clocks need agree only within the ttl. @internal
 */
export const decideAcquire = (
  entry: CursorEntry | undefined,
  owner: string,
  ttlMs: number,
  now: number
): { readonly entry: CursorEntry } | { readonly held: StoredLease } => {
  const current = entry?.lease
  if (current !== undefined && current.owner !== owner && now < current.until) return { held: current }
  const token = current !== undefined && current.owner === owner ? current.token : (entry?.token ?? 0) + 1
  return { entry: { ...(entry ?? {}), lease: { owner, until: now + ttlMs, token }, token } }
}

/** What `release(owner)` does to `entry`: the entry without the lease, or `undefined` when `owner` does not hold it. @internal */
export const decideRelease = (entry: CursorEntry | undefined, owner: string): CursorEntry | undefined => {
  if (entry?.lease === undefined || entry.lease.owner !== owner) return undefined
  const { lease: _, ...rest } = entry
  return rest
}

/**
 * What `delete` does to `entry`: `null` (remove it), or when a fencing token was handed out for the
 * name, an entry with that token only — so an owner taking the name later still gets a higher
 * token than every earlier owner; `undefined` when there is no cursor or lease to remove. @internal
 */
export const decideDelete = (entry: CursorEntry | undefined): CursorEntry | null | undefined => {
  if (entry === undefined || (entry.seq === undefined && entry.lease === undefined)) return undefined
  return entry.token === 0 ? null : { token: entry.token }
}
