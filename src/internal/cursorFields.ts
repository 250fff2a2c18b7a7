/**
 * A CursorStore entry as a plain array, the form the durable layers store (in a msgpack body, as
 * JSON): `[seq | null, updatedAt | null, [owner, until, token] | null, token]`, with the check
 * every layer applies when reading one back.
 * @internal
 */
import type { CursorEntry } from "../CursorStore.ts"
import { integerProblem, nameProblem } from "./validate.ts"

/** An entry's fields in stored order. @internal */
export type CursorFields = readonly [
  seq: number | null,
  updatedAt: number | null,
  lease: readonly [owner: string, until: number, token: number] | null,
  token: number
]

/** The stored fields of `entry`. @internal */
export const cursorFields = (entry: CursorEntry): CursorFields => [
  entry.seq ?? null,
  entry.updatedAt ?? null,
  entry.lease === undefined ? null : [entry.lease.owner, entry.lease.until, entry.lease.token],
  entry.token
]

const optionalInteger = (what: string, value: unknown, min: number): string | undefined =>
  value === null ? undefined : integerProblem(what, value, min)

/** What is wrong with stored fields read back, or `undefined` when they are a well-formed entry. @internal */
export const cursorFieldsProblem = (fields: ReadonlyArray<unknown>): string | undefined => {
  if (fields.length !== 4) return `it has ${fields.length} fields, not [seq, updatedAt, lease, token]`
  const [seq, updatedAt, lease, token] = fields
  const problem = optionalInteger("its seq", seq, 0) ??
    optionalInteger("its updatedAt", updatedAt, 0) ??
    ((seq === null) !== (updatedAt === null) ? "its seq and updatedAt must be both present or both absent" : undefined) ??
    integerProblem("its token", token, 0)
  if (problem !== undefined || lease === null) return problem
  if (!Array.isArray(lease) || lease.length !== 3) return "its lease is not [owner, until, token]"
  return nameProblem("its lease owner", lease[0]) ?? integerProblem("its lease expiry", lease[1], 0) ??
    integerProblem("its lease token", lease[2], 1)
}

/** The entry of fields that passed `cursorFieldsProblem`. @internal */
export const cursorEntryOf = ([seq, updatedAt, lease, token]: CursorFields): CursorEntry => ({
  ...(seq !== null ? { seq, updatedAt: updatedAt! } : {}),
  ...(lease !== null ? { lease: { owner: lease[0], until: lease[1], token: lease[2] } } : {}),
  token
})
