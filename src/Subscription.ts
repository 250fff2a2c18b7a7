/**
 * Subscriptions: named, durable readers of the log that hand batches of records to a handler.
 *
 * A subscription starts after its committed cursor (without one: at the start of the log, or at its
 * end with `from: "end"`), reads the Archive for any part the journal no longer holds, then follows
 * the journal, woken by each append. **Cursor-after-apply**: a batch is handed to the handler, then
 * the seq of its last record is committed — so a crash between the two delivers that batch again
 * (at-least-once), and nothing is ever skipped. Commits overlap with applying the next batches: while
 * one is being stored, later batches are applied, and the next commit covers all of them.
 *
 * A failing handler is retried with exponential backoff; past `retry.times` a batch of several
 * records is handed over one record at a time, so the subscription stops at the record that fails,
 * with a `SubscriptionError` naming the subscription and that seq, and the cursor just before it.
 *
 * One instance per name runs at a time, across processes sharing the CursorStore: an instance holds
 * the name's lease (renewed every third of `lease.ttlMs`), the others stand by and take over when it
 * expires. An instance that cannot renew in time stops applying before its lease runs out, and a
 * stale instance can never move the cursor (`LeaseLost`).
 *
 * Filters (`namespaces`, `types`) are applied before the handler; the cursor still moves past the
 * records they skip.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { Archive } from "./Archive.ts"
import type { CursorStore } from "./CursorStore.ts"
import type { Journal, JournalRecord } from "./Journal.ts"
import type { TaggedErrorClass } from "./internal/errors.ts"
import { start } from "./internal/subscriptionStart.ts"

/**
 * The fields of a `SubscriptionError`.
 *
 * @since 0.1.0
 * @category errors
 */
export interface SubscriptionErrorFields {
  /** The subscription's name. */
  readonly name: string
  /** What failed: `"make"` (bad options), `"handle"`, `"read"`, `"status"` (the journal's position could not be read). */
  readonly method: string
  readonly message: string
  /** The seq of the record it stopped at, when there is one. */
  readonly seq?: number | undefined
  readonly cause?: unknown
}

const SubscriptionErrorBase: TaggedErrorClass<"SubscriptionError", SubscriptionErrorFields> = Data.TaggedError(
  "SubscriptionError"
)

/**
 * A subscription stopped (its handler kept failing on a record, or the log cannot be read), or was
 * given bad options. `message` names the subscription and the seq.
 *
 * @since 0.1.0
 * @category errors
 */
export class SubscriptionError extends SubscriptionErrorBase {}

/**
 * How records are grouped into the handler's batches.
 *
 * @since 0.1.0
 * @category models
 */
export interface BatchOptions {
  /** Most records in one batch (default 1000). */
  readonly maxRecords?: number | undefined
  /**
   * How long a batch that is not full waits for more records, in milliseconds (default 0: a batch
   * is what is there when the handler is free — one record at a time when the writer is slow).
   */
  readonly maxWaitMs?: number | undefined
}

/**
 * How a failing handler is retried.
 *
 * @since 0.1.0
 * @category models
 */
export interface RetryOptions {
  /** Retries after the first failure before the subscription stops (default 5). */
  readonly times?: number | undefined
  /** First delay in milliseconds, doubled after each retry (default 100). */
  readonly baseDelayMs?: number | undefined
  /** Longest delay in milliseconds (default 10,000). */
  readonly maxDelayMs?: number | undefined
}

/**
 * The lease that lets one instance per name run.
 *
 * @since 0.1.0
 * @category models
 */
export interface LeaseOptions {
  /** How long a lease holds without renewal, in milliseconds (default 10,000): a standby takes over at most this long after the owner died. */
  readonly ttlMs?: number | undefined
  /**
   * Names this instance in the lease (default: host and process id). A random part is always
   * appended, so two running instances never share an owner id (which would let both run).
   */
  readonly owner?: string | undefined
}

/**
 * Options of `make`.
 *
 * @since 0.1.0
 * @category models
 */
export interface SubscriptionOptions<E, R, A extends boolean = false> {
  /** The subscription's name: its cursor and lease in the CursorStore. */
  readonly name: string
  /** Where a subscription without a cursor starts: `"start"` (default) or `"end"` of the log. */
  readonly from?: "start" | "end" | undefined
  /** Only records of these namespaces reach the handler (exact names). */
  readonly namespaces?: ReadonlyArray<string> | undefined
  /** Only records of these event types reach the handler. */
  readonly types?: ReadonlyArray<string> | undefined
  readonly batch?: BatchOptions | undefined
  readonly retry?: RetryOptions | undefined
  readonly lease?: LeaseOptions | undefined
  /**
   * `true`: history the journal no longer holds is read from the Archive (`Archive.Archive` in `R`).
   * Otherwise a subscription whose records were truncated away stops with a `SubscriptionError`.
   */
  readonly archive?: A | undefined
  /** Applies one batch (in seq order, never empty). Failures are retried, then stop the subscription. */
  readonly handle: (records: ReadonlyArray<JournalRecord>) => Effect.Effect<void, E, R>
}

/**
 * Where a subscription stands.
 *
 * @since 0.1.0
 * @category models
 */
export interface SubscriptionStatus {
  readonly name: string
  /** This instance's owner id. */
  readonly owner: string
  /** `"starting"`, `"standby"` (another instance holds the lease), `"active"` or `"stopped"`. */
  readonly state: "starting" | "standby" | "active" | "stopped"
  /** The committed cursor: every record with a seq at or below it is applied (0: none yet). */
  readonly cursor: number
  /** The journal's last settled seq when the status was taken. */
  readonly lastSeq: number
  /** Seqs between the cursor and `lastSeq` (the records still to apply, and any gaps among them). */
  readonly lagRecords: number
  /**
   * Milliseconds since the oldest record after the cursor that the journal still holds was appended
   * (0 when caught up).
   */
  readonly lagMs: number
  /** The cursor has reached `lastSeq`. */
  readonly caughtUp: boolean
  /** Why it stopped, when it did. */
  readonly error: Option.Option<SubscriptionError>
}

/**
 * A running subscription instance.
 *
 * @since 0.1.0
 * @category models
 */
export interface Subscription {
  readonly name: string
  readonly owner: string
  /** Where it stands now. */
  readonly status: Effect.Effect<SubscriptionStatus, SubscriptionError>
  /**
   * Waits until everything settled in the journal when it was called is applied and committed (by
   * this instance or, in standby, the one that holds the lease); fails if the subscription stops first.
   */
  readonly awaitCaughtUp: Effect.Effect<SubscriptionStatus, SubscriptionError>
  /** Waits until the subscription stops, and fails with why. */
  readonly await: Effect.Effect<never, SubscriptionError>
}

/**
 * What `make` needs: the Journal and CursorStore, the handler's `R`, and the Archive when `archive` is `true`.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Requirements<R, A extends boolean> = Journal | CursorStore | R | (A extends true ? Archive : never)

/**
 * Starts a subscription instance in a background fiber of the current scope (interrupted, with a
 * last commit and the lease released, when the scope closes) and returns its handle.
 *
 * ```ts
 * const balances = yield* Subscription.make({
 *   name: "balances",
 *   namespaces: ["account"],
 *   handle: (records) => Effect.sync(() => records.forEach(apply))
 * })
 * yield* balances.awaitCaughtUp
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E, R, A extends boolean = false>(
  options: SubscriptionOptions<E, R, A>
): Effect.Effect<Subscription, SubscriptionError, Scope.Scope | Requirements<R, A>> =>
  start(options, undefined, (fields) => new SubscriptionError(fields))

/**
 * Runs a subscription for the layer's lifetime (see `make`). To read its status, build it with
 * `Layer.effect(YourTag, Subscription.make(options))` instead.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <E, R, A extends boolean = false>(
  options: SubscriptionOptions<E, R, A>
): Layer.Layer<never, SubscriptionError, Exclude<Requirements<R, A>, Scope.Scope>> => Layer.effectDiscard(make(options))

