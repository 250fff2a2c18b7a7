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
import { Cause, Clock, Data, Deferred, Effect, Layer, Option, Queue, type Scope, Stream } from "effect"
import * as os from "node:os"
import { Archive } from "./Archive.ts"
import { type Cursor, CursorStore, type Lease } from "./CursorStore.ts"
import { Journal, type JournalRecord } from "./Journal.ts"
import type { TaggedErrorClass } from "./internal/errors.ts"
import { Settled } from "./internal/follow.ts"
import * as Source from "./internal/subscriptionSource.ts"
import { integerProblem, nameProblem } from "./internal/validate.ts"

/**
 * The fields of a `SubscriptionError`.
 *
 * @since 0.1.0
 * @category errors
 */
export interface SubscriptionErrorFields {
  /** The subscription's name. */
  readonly name: string
  /** What failed: `"make"` (bad options), `"handle"`, `"read"`. */
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
  /** This instance's owner id (default: host, process id and a random part). */
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
  /** Milliseconds since the oldest record not yet applied was appended (0 when caught up). */
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

const DEFAULT_MAX_RECORDS = 1000
const DEFAULT_TTL_MS = 10_000
const DEFAULT_RETRY = { times: 5, baseDelayMs: 100, maxDelayMs: 10_000 } as const
/** Longest a commit or release may take when the instance shuts down. */
const SHUTDOWN_MS = 5_000

const optionsProblem = (options: SubscriptionOptions<unknown, unknown, boolean>): string | undefined => {
  const names = (what: string, list: unknown) =>
    list === undefined ? undefined : !Array.isArray(list) || list.length === 0
      ? `${what} must be a non-empty array of names`
      : list.map((name) => nameProblem(what, name)).find((problem) => problem !== undefined)
  const count = (what: string, value: unknown, min: number) => value === undefined ? undefined : integerProblem(what, value, min)
  if (typeof options.handle !== "function") return "handle must be a function"
  if (options.from !== undefined && options.from !== "start" && options.from !== "end") {
    return `from must be "start" or "end", got ${JSON.stringify(options.from)}`
  }
  return names("namespaces", options.namespaces) ?? names("types", options.types) ??
    count("batch.maxRecords", options.batch?.maxRecords, 1) ?? count("batch.maxWaitMs", options.batch?.maxWaitMs, 0) ??
    count("retry.times", options.retry?.times, 0) ?? count("retry.baseDelayMs", options.retry?.baseDelayMs, 0) ??
    count("retry.maxDelayMs", options.retry?.maxDelayMs, 0) ?? count("lease.ttlMs", options.lease?.ttlMs, 3) ??
    (options.lease?.owner === undefined ? undefined : nameProblem("lease.owner", options.lease.owner))
}

const defaultOwner = (): string => `${os.hostname()}/${process.pid}/${Math.random().toString(36).slice(2, 10)}`

/** What `make` needs: the Journal and CursorStore, the handler's `R`, and the Archive when `archive` is `true`. */
type Requirements<R, A extends boolean> = Journal | CursorStore | R | (A extends true ? Archive : never)

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
  Effect.gen(function*() {
    const name = options.name
    const problem = nameProblem("name", name) ?? optionsProblem(options)
    if (problem !== undefined) {
      return yield* new SubscriptionError({ name: String(name), method: "make", message: `Subscription.make: ${problem}` })
    }
    const journal = yield* Journal
    const cursors = yield* CursorStore
    const archive = options.archive === true ? yield* Archive : undefined
    const instance = makeInstance(options, journal, cursors, archive)
    yield* Effect.forkScoped(instance.run)
    return instance.handle
  }) as Effect.Effect<Subscription, SubscriptionError, Scope.Scope | Requirements<R, A>>

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

/** The lease an active instance holds, and until when it may act on it by its own clock. */
interface Held {
  lease: Lease
  validUntil: number
}

const makeInstance = <E, R, A extends boolean>(
  options: SubscriptionOptions<E, R, A>,
  journal: Journal,
  cursors: CursorStore,
  archive: Archive | undefined
) => {
  const name = options.name
  const owner = options.lease?.owner ?? defaultOwner()
  const ttlMs = options.lease?.ttlMs ?? DEFAULT_TTL_MS
  const renewEveryMs = Math.max(1, Math.floor(ttlMs / 3))
  const maxRecords = options.batch?.maxRecords ?? DEFAULT_MAX_RECORDS
  const maxWaitMs = options.batch?.maxWaitMs ?? 0
  const retry = {
    times: options.retry?.times ?? DEFAULT_RETRY.times,
    baseDelayMs: options.retry?.baseDelayMs ?? DEFAULT_RETRY.baseDelayMs,
    maxDelayMs: options.retry?.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs
  }
  const namespaces = options.namespaces === undefined ? undefined : new Set(options.namespaces)
  const types = options.types === undefined ? undefined : new Set(options.types)
  const selected = (record: JournalRecord) =>
    (namespaces === undefined || namespaces.has(record.namespace)) && (types === undefined || types.has(record.type))

  let state: SubscriptionStatus["state"] = "starting"
  /** The committed cursor, as far as this instance knows. */
  let committed = 0
  /** Every record up to this seq is applied (or skipped by the filters); the committer stores it. */
  let applied = 0
  let failure: SubscriptionError | undefined
  /** Notified when `applied` rises: the committer waits on it. */
  const appliedMoved = new Settled()
  /** Notified when `committed` rises or the state changes: `awaitCaughtUp` waits on it. */
  const progress = new Settled()
  const stopped = Deferred.makeUnsafe<never, SubscriptionError>()

  const fail = (method: string, message: string, seq: number | undefined, cause?: unknown) =>
    new SubscriptionError({
      name,
      method,
      message: `Subscription ${JSON.stringify(name)} stopped${seq !== undefined ? ` at seq ${seq}` : ""}: ${message}`,
      ...(seq !== undefined ? { seq } : {}),
      ...(cause !== undefined ? { cause } : {})
    })

  const delay = (attempt: number) => Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** attempt)

  /** Runs the handler on `records`, retried with backoff; a defect counts as a failure. */
  const attempt = (records: ReadonlyArray<JournalRecord>): Effect.Effect<void, unknown, R> =>
    Effect.suspend(function loop(tries = 0): Effect.Effect<void, unknown, R> {
      return options.handle(records).pipe(
        Effect.catchCause((cause) => Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : Effect.fail(Cause.squash(cause))),
        Effect.catch((error) => tries < retry.times ? Effect.andThen(Effect.sleep(delay(tries)), loop(tries + 1)) : Effect.fail(error))
      )
    })

  const markApplied = (seq: number) => {
    applied = seq
    appliedMoved.notify()
  }

  /** Applies one batch (filters first), then marks its last seq applied; stops at the record that keeps failing. */
  const deliver = (batch: ReadonlyArray<JournalRecord>): Effect.Effect<void, SubscriptionError, R> =>
    Effect.gen(function*() {
      const last = batch[batch.length - 1]!.seq
      const chosen = namespaces === undefined && types === undefined ? batch : batch.filter(selected)
      if (chosen.length > 0) {
        const whole = yield* Effect.result(attempt(chosen))
        if (whole._tag === "Failure") {
          // Find the record that fails: hand the batch over one record at a time.
          for (const record of chosen) {
            const one = chosen.length === 1 ? whole : yield* Effect.result(attempt([record]))
            if (one._tag === "Failure") {
              markApplied(record.seq - 1)
              return yield* fail(
                "handle",
                `its handler failed ${retry.times + 1} times on the record ${record.namespace}/${record.id} version ${record.version} (${
                  describe(one.failure)
                }); the cursor stays before it`,
                record.seq,
                one.failure
              )
            }
            markApplied(record.seq)
          }
        }
      }
      markApplied(last)
    })

  /** Takes the next batch: what the queue holds now (or within `maxWaitMs`), at most `maxRecords`. */
  const nextBatch = (queue: Queue.Dequeue<ReadonlyArray<JournalRecord>, SubscriptionError>, carry: Array<JournalRecord>) =>
    Effect.gen(function*() {
      const buffer = carry.length > 0 ? carry : Array.from(yield* Queue.take(queue))
      const deadline = maxWaitMs > 0 ? (yield* Clock.currentTimeMillis) + maxWaitMs : 0
      while (buffer.length < maxRecords) {
        const more = maxWaitMs === 0 ? yield* Queue.poll(queue) : yield* Effect.flatMap(
          Clock.currentTimeMillis,
          (now) => now >= deadline ? Effect.succeedNone : Effect.timeoutOption(Queue.take(queue), deadline - now)
        )
        if (Option.isNone(more)) break
        for (const record of more.value) buffer.push(record)
      }
      return buffer.length > maxRecords
        ? { batch: buffer.slice(0, maxRecords), carry: buffer.slice(maxRecords) }
        : { batch: buffer, carry: [] as Array<JournalRecord> }
    })

  /** Reads the log from `fromSeq` into `queue` (a few pages ahead at most), retrying read failures with backoff. */
  const produce = (fromSeq: number, queue: Queue.Queue<ReadonlyArray<JournalRecord>, SubscriptionError>) => {
    const source = Source.make(journal, archive, fromSeq)
    return Effect.suspend(function loop(failures = 0): Effect.Effect<void> {
      const position = source.next()
      return Stream.runForEachArray(source.records, (records) => Queue.offer(queue, records)).pipe(
        Effect.catch((error): Effect.Effect<void> => {
          if (error instanceof Source.Unreachable) {
            return Effect.asVoid(Queue.fail(
              queue,
              fail(
                "read",
                `the records from seq ${error.seq} were truncated from the journal (it starts at seq ${error.truncatedBefore}) and ${
                  error.archived ? "the Archive does not hold them" : "no Archive is configured (archive: true)"
                }`,
                error.seq,
                error
              )
            ))
          }
          const again = source.next() > position ? 0 : failures
          if (again >= retry.times) {
            return Effect.asVoid(Queue.fail(queue, fail("read", `reading the log failed: ${error.message}`, source.next(), error)))
          }
          return Effect.andThen(
            Effect.logWarning(`Subscription ${JSON.stringify(name)}: reading the log failed, retrying: ${error.message}`),
            Effect.andThen(Effect.sleep(delay(again)), loop(again + 1))
          )
        })
      )
    })
  }

  /** Stores `applied` whenever it moves (one commit at a time, each covering every batch applied meanwhile). */
  const commitLoop = (held: Held, lost: Deferred.Deferred<void>) =>
    Effect.gen(function*() {
      let failures = 0
      while (true) {
        yield* appliedMoved.until(() => applied > committed)
        const seq = applied
        const result = yield* Effect.result(cursors.commit(name, seq, held.lease))
        if (result._tag === "Success") {
          failures = 0
          committed = seq
          progress.notify()
        } else if (result.failure._tag === "LeaseLost") {
          yield* Deferred.succeed(lost, undefined)
          return
        } else {
          yield* Effect.logWarning(`Subscription ${JSON.stringify(name)}: committing seq ${seq} failed, retrying: ${result.failure.message}`)
          yield* Effect.sleep(delay(failures++))
        }
      }
    })

  /** Renews the lease every third of its ttl; signals `lost` when another owner took it or it ran out. */
  const renewLoop = (held: Held, lost: Deferred.Deferred<void>) =>
    Effect.gen(function*() {
      while (true) {
        yield* Effect.sleep(renewEveryMs)
        const started = yield* Clock.currentTimeMillis
        const result = yield* Effect.result(cursors.acquire(name, owner, ttlMs))
        if (result._tag === "Success") {
          held.lease = result.success
          held.validUntil = started + ttlMs
        } else if (result.failure._tag === "LeaseHeld" || (yield* Clock.currentTimeMillis) >= held.validUntil) {
          yield* Deferred.succeed(lost, undefined)
          return
        } else {
          yield* Effect.logWarning(`Subscription ${JSON.stringify(name)}: renewing its lease failed, retrying: ${result.failure.message}`)
        }
      }
    })

  /** Where an active instance starts: after the committed cursor, or at the start or end of the log. */
  const startingPoint = (held: Held) =>
    Effect.gen(function*() {
      const cursor: Option.Option<Cursor> = yield* cursors.get(name)
      if (Option.isSome(cursor)) return cursor.value.seq
      const start = options.from === "end" ? yield* journal.lastSeq : 0
      // Stored at once: the Checkpointer sees the subscription from now on, and a restart does not
      // start at a later end and skip what came in between.
      yield* cursors.commit(name, start, held.lease)
      return start
    })

  /** One term as the active instance: until the lease is lost ("lost") or the subscription stops (a failure). */
  const active = (held: Held): Effect.Effect<"lost", SubscriptionError, R> =>
    Effect.scoped(Effect.gen(function*() {
      const lost = yield* Deferred.make<void>()
      // Runs after the fibers below are interrupted: a last commit of what was applied, then the lease goes.
      yield* Effect.addFinalizer(() =>
        Effect.gen(function*() {
          if (yield* Deferred.isDone(lost)) return
          if (applied > committed) {
            const result = yield* Effect.result(cursors.commit(name, applied, held.lease))
            if (result._tag === "Success") committed = applied
          }
          yield* Effect.ignore(cursors.release(name, owner))
        }).pipe(Effect.timeoutOption(SHUTDOWN_MS), Effect.ignore)
      )
      const start = yield* Effect.catch(
        startingPoint(held),
        (error) => Effect.fail(fail("read", `could not read its cursor: ${error.message}`, undefined, error))
      )
      committed = applied = start
      state = "active"
      progress.notify()
      const queue = yield* Queue.bounded<ReadonlyArray<JournalRecord>, SubscriptionError>(4)
      yield* Effect.forkScoped(produce(start + 1, queue))
      yield* Effect.forkScoped(commitLoop(held, lost))
      yield* Effect.forkScoped(renewLoop(held, lost))
      const consume = Effect.gen(function*() {
        let carry: Array<JournalRecord> = []
        while (true) {
          const next = yield* nextBatch(queue, carry)
          carry = next.carry
          // Never act on a lease that may have run out: another instance may hold the name by now.
          if ((yield* Clock.currentTimeMillis) >= held.validUntil) return "lost" as const
          yield* deliver(next.batch)
        }
      })
      return yield* Effect.raceFirst(consume, Effect.as(Deferred.await(lost), "lost" as const))
    }))

  /** Takes the lease, standing by (and following the holder's cursor) while another instance holds it. */
  const takeLease = Effect.gen(function*() {
    while (true) {
      const started = yield* Clock.currentTimeMillis
      const result = yield* Effect.result(cursors.acquire(name, owner, ttlMs))
      if (result._tag === "Success") return { lease: result.success, validUntil: started + ttlMs } satisfies Held
      if (result.failure._tag === "LeaseHeld") {
        if (state !== "standby") {
          state = "standby"
          yield* Effect.logInfo(`Subscription ${JSON.stringify(name)}: standing by, ${result.failure.message}`)
        }
        const cursor = yield* Effect.option(cursors.get(name))
        if (Option.isSome(cursor) && Option.isSome(cursor.value) && cursor.value.value.seq > committed) {
          committed = cursor.value.value.seq
        }
        progress.notify()
      } else {
        yield* Effect.logWarning(`Subscription ${JSON.stringify(name)}: taking its lease failed, retrying: ${result.failure.message}`)
      }
      yield* Effect.sleep(renewEveryMs)
    }
  })

  const run: Effect.Effect<void, never, R> = Effect.gen(function*() {
    while (true) {
      const held = yield* takeLease
      yield* active(held)
      state = "standby"
      yield* Effect.logWarning(`Subscription ${JSON.stringify(name)}: ${owner} lost its lease; standing by`)
    }
  }).pipe(
    Effect.catch((error: SubscriptionError) =>
      Effect.gen(function*() {
        failure = error
        state = "stopped"
        progress.notify()
        yield* Effect.logError(error.message)
        yield* Deferred.fail(stopped, error)
      })
    )
  )

  const status: Subscription["status"] = Effect.gen(function*() {
    const lastSeq = yield* Effect.mapError(journal.lastSeq, (error) => fail("status", error.message, undefined, error))
    const cursor = committed
    const caughtUp = cursor >= lastSeq
    let lagMs = 0
    if (!caughtUp) {
      const now = yield* Clock.currentTimeMillis
      const oldest = yield* Effect.option(Stream.runHead(journal.replayFrom(cursor + 1)))
      lagMs = Option.match(Option.flatten(oldest), { onNone: () => 0, onSome: (record) => Math.max(0, now - record.timestamp) })
    }
    return {
      name,
      owner,
      state,
      cursor,
      lastSeq,
      lagRecords: Math.max(0, lastSeq - cursor),
      lagMs,
      caughtUp,
      error: Option.fromUndefinedOr(failure)
    }
  })

  const awaitCaughtUp: Subscription["awaitCaughtUp"] = Effect.gen(function*() {
    const target = yield* Effect.mapError(journal.lastSeq, (error) => fail("status", error.message, undefined, error))
    yield* progress.until(() => committed >= target || failure !== undefined)
    if (failure !== undefined) return yield* failure
    return yield* status
  })

  return { run, handle: { name, owner, status, awaitCaughtUp, await: Deferred.await(stopped) } satisfies Subscription }
}

const describe = (error: unknown): string =>
  error instanceof Error ? error.message : typeof error === "object" && error !== null && "message" in error
    ? String((error as { readonly message: unknown }).message)
    : String(error)
