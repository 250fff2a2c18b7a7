/**
 * The CursorStore: how far each named subscription has applied the log, and which instance of it
 * may run (a lease per name).
 *
 * A cursor only moves forward: committing a lower seq is ignored. Leases are taken and renewed by
 * compare-and-set over one record per name that holds the expiry, so no two owners hold a name at
 * once and a stale owner can never move the cursor: `commit` with the lease it was given fails with
 * `LeaseLost` once another owner took the name (or it was released). Each new owner gets a higher
 * fencing `token`.
 *
 * This module holds the service, its data types and errors, and `layerMemory`. Durable layers live
 * in `annals/file` (and the server backends); all of them pass the same conformance suite.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { TaggedErrorClass } from "./internal/errors.ts"
import {
  acquireProblem,
  commitProblem,
  cursorNameProblem,
  decideAcquire,
  decideCommit,
  decideDelete,
  decideRelease,
  expiryProblem,
  releaseProblem
} from "./internal/cursorChecks.ts"

/**
 * How far a named subscription has applied the log: every record with `seq ≤ cursor.seq` is applied.
 *
 * @since 0.1.0
 * @category models
 */
export interface Cursor {
  readonly name: string
  readonly seq: number
  /** Epoch milliseconds (Effect's `Clock`) of the commit that last moved it. */
  readonly updatedAt: number
}

/**
 * The right to run the subscription `name`, held by `owner` until `until` unless renewed.
 *
 * @since 0.1.0
 * @category models
 */
export interface Lease {
  readonly name: string
  readonly owner: string
  /** Epoch milliseconds, by the clock of the process that took or renewed it. */
  readonly until: number
  /** Fencing token: a new owner of the name gets a higher one; a renewal keeps it. */
  readonly token: number
}

/**
 * The fields of a `CursorStoreError`.
 *
 * @since 0.1.0
 * @category errors
 */
export interface CursorStoreErrorFields {
  /** The operation that failed, e.g. `"commit"`. */
  readonly method: string
  /** What went wrong and where (name, file …). */
  readonly message: string
  readonly cause?: unknown
}

const CursorStoreErrorBase: TaggedErrorClass<"CursorStoreError", CursorStoreErrorFields> = Data.TaggedError("CursorStoreError")

/**
 * A cursor operation failed: bad input, a storage fault, or a corrupt record. `message` names what and where.
 *
 * @since 0.1.0
 * @category errors
 */
export class CursorStoreError extends CursorStoreErrorBase {}

/**
 * The fields of a `LeaseHeld` error.
 *
 * @since 0.1.0
 * @category errors
 */
export interface LeaseHeldFields {
  readonly name: string
  /** The owner that holds the lease. */
  readonly owner: string
  /** When its lease expires unless renewed (epoch ms, the holder's clock). */
  readonly until: number
}

const LeaseHeldBase: TaggedErrorClass<"LeaseHeld", LeaseHeldFields> = Data.TaggedError("LeaseHeld")

/**
 * `acquire` found the name held by another owner whose lease has not expired.
 *
 * @since 0.1.0
 * @category errors
 */
export class LeaseHeld extends LeaseHeldBase {
  override get message(): string {
    return `The subscription ${JSON.stringify(this.name)} is held by ${JSON.stringify(this.owner)} until ${
      new Date(this.until).toISOString()
    }`
  }
}

/**
 * The fields of a `LeaseLost` error.
 *
 * @since 0.1.0
 * @category errors
 */
export interface LeaseLostFields {
  readonly name: string
  /** The owner whose lease is no longer valid. */
  readonly owner: string
  /** The owner that holds the name now, if any. */
  readonly holder?: string | undefined
}

const LeaseLostBase: TaggedErrorClass<"LeaseLost", LeaseLostFields> = Data.TaggedError("LeaseLost")

/**
 * `commit` was given a lease that is no longer the name's: another owner took it, or it was
 * released. Nothing was stored.
 *
 * @since 0.1.0
 * @category errors
 */
export class LeaseLost extends LeaseLostBase {
  override get message(): string {
    return `${JSON.stringify(this.owner)} no longer holds the lease of subscription ${JSON.stringify(this.name)}${
      this.holder !== undefined ? `: ${JSON.stringify(this.holder)} holds it now` : ""
    }; the cursor was not moved`
  }
}

/**
 * The CursorStore service.
 *
 * @since 0.1.0
 * @category services
 */
export interface CursorStore {
  /** The cursor of `name`, `Option.none()` if it never committed. */
  readonly get: (name: string) => Effect.Effect<Option.Option<Cursor>, CursorStoreError>
  /**
   * Durably moves the cursor of `name` to `seq` (a lower or equal seq is ignored). With a `lease`,
   * fails with `LeaseLost` unless that lease is still the name's, and stores nothing.
   */
  readonly commit: (name: string, seq: number, lease?: Lease) => Effect.Effect<void, CursorStoreError | LeaseLost>
  /**
   * Takes the lease of `name` for `owner` for `ttlMs`, or renews it when `owner` holds it (also
   * after it expired, if no one took it meanwhile); fails with `LeaseHeld` while another owner's
   * lease has not expired.
   */
  readonly acquire: (name: string, owner: string, ttlMs: number) => Effect.Effect<Lease, CursorStoreError | LeaseHeld>
  /** Gives the lease of `name` up if `owner` holds it; a no-op otherwise. */
  readonly release: (name: string, owner: string) => Effect.Effect<void, CursorStoreError>
  /** Every committed cursor, ordered by name (by UTF-16 code units, as JavaScript compares strings, in every layer). */
  readonly list: Effect.Effect<ReadonlyArray<Cursor>, CursorStoreError>
  /** Removes the cursor (and any lease) of `name`; a no-op if there is none. A later owner still gets a higher fencing token. */
  readonly delete: (name: string) => Effect.Effect<void, CursorStoreError>
}

/**
 * The CursorStore service key.
 *
 * @since 0.1.0
 * @category services
 */
export const CursorStore: Context.Service<CursorStore, CursorStore> = Context.Service<CursorStore>("annals/CursorStore")

/**
 * The lease part of a stored entry.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredLease {
  readonly owner: string
  readonly until: number
  readonly token: number
}

/**
 * Everything a CursorStore keeps for one name: the committed cursor (if any), the lease (if held, or
 * expired but not released), and the last fencing token handed out for the name.
 *
 * @since 0.1.0
 * @category models
 */
export interface CursorEntry {
  readonly seq?: number | undefined
  readonly updatedAt?: number | undefined
  readonly lease?: StoredLease | undefined
  readonly token: number
}

/**
 * The storage under a CursorStore: one entry per name, read and replaced atomically. `update`
 * runs `change` over the current entry and stores what it returns (nothing when it returns
 * `undefined`), with no other update of that name in between — in one process and, for a durable
 * layer, across the processes that share it.
 *
 * @since 0.1.0
 * @category models
 */
export interface EntryStore {
  readonly read: (name: string) => Effect.Effect<CursorEntry | undefined, CursorStoreError>
  readonly update: <A>(
    method: string,
    name: string,
    change: (entry: CursorEntry | undefined) => { readonly store?: CursorEntry | null | undefined; readonly result: A }
  ) => Effect.Effect<A, CursorStoreError>
  /** Every stored name with its entry, in any order (`list` keeps the committed ones and orders them). */
  readonly entries: Effect.Effect<ReadonlyArray<readonly [string, CursorEntry]>, CursorStoreError>
}

const invalid = (method: string, problem: string) =>
  Effect.fail(new CursorStoreError({ method, message: `CursorStore.${method}: ${problem}` }))

/**
 * A CursorStore over an `EntryStore`: the rules of every layer (validation, forward-only cursors,
 * leases by compare-and-set) written once. `store: null` from a change removes the entry.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (entries: EntryStore): CursorStore => {
  const toCursor = (name: string, entry: CursorEntry | undefined): Option.Option<Cursor> =>
    entry?.seq === undefined ? Option.none() : Option.some({ name, seq: entry.seq, updatedAt: entry.updatedAt ?? 0 })
  return CursorStore.of({
    get: (name) => {
      const problem = cursorNameProblem(name)
      return problem !== undefined ? invalid("get", problem) : Effect.map(entries.read(name), (entry) => toCursor(name, entry))
    },
    commit: (name, seq, lease) => {
      const problem = commitProblem(name, seq, lease)
      if (problem !== undefined) return invalid("commit", problem)
      return Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.flatMap(
          entries.update("commit", name, (entry) => {
            const next = decideCommit(entry, seq, lease, now)
            return next === "lost" ? { result: entry?.lease?.owner ?? null } : { store: next, result: undefined }
          }),
          (holder) =>
            holder === undefined
              ? Effect.void
              : Effect.fail(new LeaseLost({ name, owner: lease!.owner, ...(holder !== null ? { holder } : {}) }))
        ))
    },
    acquire: (name, owner, ttlMs) => {
      const problem = acquireProblem(name, owner, ttlMs)
      if (problem !== undefined) return invalid("acquire", problem)
      return Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const late = expiryProblem(now, ttlMs)
        if (late !== undefined) return invalid("acquire", late)
        return Effect.flatMap(
          entries.update<ReturnType<typeof decideAcquire>>("acquire", name, (entry) => {
            const decided = decideAcquire(entry, owner, ttlMs, now)
            return "held" in decided ? { result: decided } : { store: decided.entry, result: decided }
          }),
          (decided): Effect.Effect<Lease, LeaseHeld> =>
            "held" in decided
              ? Effect.fail(new LeaseHeld({ name, owner: decided.held.owner, until: decided.held.until }))
              : Effect.succeed({ name, owner, until: decided.entry.lease!.until, token: decided.entry.lease!.token })
        )
      })
    },
    release: (name, owner) => {
      const problem = releaseProblem(name, owner)
      if (problem !== undefined) return invalid("release", problem)
      return entries.update("release", name, (entry) => ({ store: decideRelease(entry, owner), result: undefined }))
    },
    list: Effect.map(entries.entries, (all) =>
      all.flatMap(([name, entry]) => Option.toArray(toCursor(name, entry))).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))),
    delete: (name) => {
      const problem = cursorNameProblem(name)
      return problem !== undefined
        ? invalid("delete", problem)
        : entries.update("delete", name, (entry) => ({ store: decideDelete(entry), result: undefined }))
    }
  })
}

/**
 * An in-memory CursorStore: exact and gone when the process ends.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<CursorStore> = Effect.sync(() => {
  const stored = new Map<string, CursorEntry>()
  return make({
    read: (name) => Effect.sync(() => stored.get(name)),
    update: (_method, name, change) =>
      Effect.sync(() => {
        const { result, store } = change(stored.get(name))
        if (store === null) stored.delete(name)
        else if (store !== undefined) stored.set(name, store)
        return result
      }),
    entries: Effect.sync(() => Array.from(stored))
  })
})

/**
 * A fresh in-memory CursorStore per layer build.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<CursorStore> = Layer.effect(CursorStore, makeMemory)
