/**
 * One running subscription instance (see `Subscription.make`): it takes the name's lease (standing
 * by while another instance holds it), then, as the active instance, reads the log into a bounded
 * queue, hands batches to the handler, marks them applied and commits the cursor in a fiber of its
 * own — each commit covering every batch applied while the one before was stored — until it loses
 * the lease or stops.
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import type { Archive, ArchiveError } from "../Archive.ts"
import type { Cursor, CursorStore, LeaseHeld } from "../CursorStore.ts"
import type { Journal, JournalError, JournalRecord } from "../Journal.ts"
import * as Metrics from "../Metrics.ts"
import type { Subscription, SubscriptionError, SubscriptionErrorFields, SubscriptionStatus } from "../Subscription.ts"
import { Settled } from "./follow.ts"
import { spanOptions } from "./observe.ts"
import { nextBatch, type Retry, retryDelay, retrying } from "./subscriptionBatches.ts"
import * as Lease from "./subscriptionLease.ts"
import * as Source from "./subscriptionSource.ts"

/** Longest a last commit and the release may take when the instance shuts down. */
const SHUTDOWN_MS = 5_000

/** A subscription's options with every default filled in. @internal */
export interface Settings<R> {
  readonly name: string
  readonly owner: string
  readonly from: "start" | "end"
  readonly namespaces: ReadonlySet<string> | undefined
  readonly types: ReadonlySet<string> | undefined
  readonly maxRecords: number
  readonly maxWaitMs: number
  readonly retry: Retry
  readonly ttlMs: number
  readonly handle: (records: ReadonlyArray<JournalRecord>) => Effect.Effect<void, unknown, R>
  /** A handler that keeps state of its own decides where each term starts and how far commits go. */
  readonly keeper?: Keeper<R> | undefined
}

/**
 * What a handler with state of its own (a projection's fold) tells the instance. A commit covers
 * only records whose effect is stored, so that the state saved and the cursor never disagree. @internal
 */
export interface Keeper<R> {
  /**
   * Restores the state as the instance becomes active, given the committed cursor (none: never
   * committed); returns the seq to resume after (the records up to it are in the restored state).
   */
  readonly start: (cursor: number | undefined) => Effect.Effect<number, unknown, R>
  /** The highest seq the cursor may move to now: every record up to it is in the stored state. */
  readonly kept: () => number
}

/** What an instance runs on. @internal */
export interface Services {
  readonly journal: Journal
  readonly cursors: CursorStore
  readonly archive: Archive | undefined
  /** Builds the module's error (the class lives in the public module). */
  readonly error: (fields: SubscriptionErrorFields) => SubscriptionError
}

/** An instance: `run` (fork it; it never fails — a stop is in the handle) and its handle. @internal */
export const make = <R>(settings: Settings<R>, services: Services): {
  readonly run: Effect.Effect<void, never, R>
  readonly handle: Subscription
} => {
  const { journal, cursors, archive } = services
  const { handle, keeper, maxRecords, maxWaitMs, name, namespaces, owner, retry, ttlMs, types } = settings
  const selected = (record: JournalRecord) =>
    (namespaces === undefined || namespaces.has(record.namespace)) && (types === undefined || types.has(record.type))
  const lag = Metric.withAttributes(Metrics.subscriptionLag, { subscription: name })

  let state: SubscriptionStatus["state"] = "starting"
  /** The committed cursor, as far as this instance knows. */
  let committed = 0
  /** Every record up to this seq is applied (or skipped by the filters); the committer stores it. */
  let applied = 0
  let failure: SubscriptionError | undefined
  /** How far a commit may go: what is applied (and, with a keeper, stored). */
  const committable = () => keeper === undefined ? applied : Math.min(applied, keeper.kept())
  /** Notified when `applied` rises: the committer waits on it. */
  const appliedMoved = new Settled()
  /** Notified when `committed` rises or the state changes: `awaitCaughtUp` waits on it. */
  const progress = new Settled()
  const stopped = Deferred.makeUnsafe<never, SubscriptionError>()

  const fail = (method: string, message: string, seq: number | undefined, cause?: unknown) =>
    services.error({
      name,
      method,
      message: `Subscription ${JSON.stringify(name)} stopped${seq !== undefined ? ` at seq ${seq}` : ""}: ${message}`,
      ...(seq !== undefined ? { seq } : {}),
      ...(cause !== undefined ? { cause } : {})
    })

  /** Why the log cannot be read on (records gone from journal and Archive, or reads failing), as the stop error. */
  const unreadable = (reason: Source.Unreachable | JournalError | ArchiveError, seq: number) =>
    reason instanceof Source.Unreachable
      ? fail(
        "read",
        `the records from seq ${reason.seq} were truncated from the journal (it starts at seq ${reason.truncatedBefore}) and ${
          reason.archived ? "the Archive does not hold them" : "no Archive is configured (archive: true)"
        }`,
        reason.seq,
        reason
      )
      : fail("read", `reading the log failed: ${reason.message}`, seq, reason)

  const leaseRequest: Lease.LeaseRequest = { cursors, name, owner, ttlMs }

  /** While another instance holds the lease: follow its cursor, for `status` and `awaitCaughtUp`. */
  const standingBy = (held: LeaseHeld) =>
    Effect.gen(function*() {
      if (state !== "standby") {
        state = "standby"
        yield* Effect.logInfo(`Subscription ${JSON.stringify(name)}: standing by, ${held.message}`)
      }
      const cursor = yield* Effect.option(cursors.get(name))
      if (Option.isSome(cursor) && Option.isSome(cursor.value) && cursor.value.value.seq > committed) committed = cursor.value.value.seq
      progress.notify()
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
        const whole = yield* Effect.result(retrying(() => handle(chosen), retry))
        if (whole._tag === "Failure") {
          // Find the record that fails: hand the batch over one record at a time.
          for (const record of chosen) {
            const one = chosen.length === 1 ? whole : yield* Effect.result(retrying(() => handle([record]), retry))
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

  /** Stores `applied` whenever it moves (one commit at a time, each covering every batch applied meanwhile). */
  const commitLoop = (held: Lease.Held, lost: Deferred.Deferred<void>) =>
    Effect.gen(function*() {
      let failures = 0
      while (true) {
        yield* appliedMoved.until(() => committable() > committed)
        const seq = committable()
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
          yield* Effect.sleep(retryDelay(retry, failures++))
        }
      }
    })

  /**
   * Where an active instance starts: after the committed cursor, or at the start or end of the log
   * (with a keeper: where it says). Returns that seq and the committed cursor (0: none).
   */
  const startingPoint = (held: Lease.Held): Effect.Effect<{ readonly start: number; readonly cursor: number }, unknown, R> =>
    Effect.gen(function*() {
      const cursor: Option.Option<Cursor> = yield* cursors.get(name)
      const seq = Option.isSome(cursor) ? cursor.value.seq : undefined
      if (keeper !== undefined) {
        const start = yield* keeper.start(seq)
        if (seq === undefined) yield* cursors.commit(name, start, held.lease)
        return { start, cursor: seq ?? start }
      }
      if (seq !== undefined) return { start: seq, cursor: seq }
      const start = settings.from === "end" ? yield* journal.lastSeq : 0
      // Stored at once: the Checkpointer sees the subscription from now on, and a restart does not
      // start at a later end and skip what came in between.
      yield* cursors.commit(name, start, held.lease)
      return { start, cursor: start }
    })

  /**
   * One term as the active instance: until the lease is lost ("lost"), or its cursor cannot be read
   * ("retry": the lease is given up and taken again), or the subscription stops (a failure).
   */
  const active = (held: Lease.Held): Effect.Effect<"lost" | "retry", SubscriptionError, R> =>
    Effect.scoped(Effect.gen(function*() {
      const lost = yield* Deferred.make<void>()
      // Runs after the fibers below are interrupted: a last commit of what was applied, then the lease goes.
      yield* Effect.addFinalizer(() =>
        Effect.gen(function*() {
          if (yield* Deferred.isDone(lost)) return
          const last = committable()
          if (last > committed) {
            const result = yield* Effect.result(cursors.commit(name, last, held.lease))
            if (result._tag === "Success") committed = last
          }
          yield* Effect.ignore(cursors.release(name, owner))
        }).pipe(Effect.timeoutOption(SHUTDOWN_MS), Effect.ignore)
      )
      const started = yield* Effect.result(startingPoint(held))
      if (started._tag === "Failure") {
        // The store may be back soon: give the lease up and take it again after a pause.
        yield* Effect.logWarning(`Subscription ${JSON.stringify(name)}: could not find where to start, retrying: ${describe(started.failure)}`)
        yield* Effect.sleep(retryDelay(retry, 0))
        return "retry" as const
      }
      const { start, cursor } = started.success
      applied = start
      committed = cursor
      state = "active"
      progress.notify()
      const queue = yield* Queue.bounded<ReadonlyArray<JournalRecord>, SubscriptionError>(4)
      yield* Effect.forkScoped(Source.pump(Source.make(journal, archive, start + 1), queue, { name, retry, stop: unreadable }))
      yield* Effect.forkScoped(commitLoop(held, lost))
      yield* Effect.forkScoped(Lease.keep(leaseRequest, held, lost))
      const consume = Effect.gen(function*() {
        let carry: Array<JournalRecord> = []
        while (true) {
          const next = yield* nextBatch(queue, carry, maxRecords, maxWaitMs)
          carry = next.carry
          // Never act on a lease that may have run out: another instance may hold the name by now.
          if ((yield* Clock.currentTimeMillis) >= held.validUntil) return "lost" as const
          const first = next.batch[0]!.seq
          const last = next.batch[next.batch.length - 1]!.seq
          yield* Effect.withSpan(
            deliver(next.batch),
            "annals.Subscription.batch",
            spanOptions({ "annals.subscription": name, "annals.first_seq": first, "annals.last_seq": last, "annals.records": next.batch.length })
          )
          // Best effort: a journal that cannot say its last seq now leaves the gauge as it was.
          yield* Effect.ignore(Effect.flatMap(journal.lastSeq, (lastSeq) => Metric.update(lag, Math.max(0, lastSeq - last))))
          // Lets the committer (and the I/O it waits for) run between batches: without it, a catch-up
          // that finds every batch ready commits only when the scheduler's budget runs out.
          yield* Effect.yieldNow
        }
      })
      return yield* Effect.raceFirst(consume, Effect.as(Deferred.await(lost), "lost" as const))
    }))

  const run: Effect.Effect<void, never, R> = Effect.gen(function*() {
    while (true) {
      const held = yield* Lease.take(leaseRequest, standingBy)
      const ended = yield* active(held)
      state = "standby"
      if (ended === "lost") yield* Effect.logWarning(`Subscription ${JSON.stringify(name)}: ${owner} lost its lease; standing by`)
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
    const lagRecords = Math.max(0, lastSeq - cursor)
    yield* Metric.update(lag, lagRecords)
    return {
      name,
      owner,
      state,
      cursor,
      lastSeq,
      lagRecords,
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

  return { run, handle: { name, owner, status, awaitCaughtUp, await: Deferred.await(stopped) } }
}

const describe = (error: unknown): string =>
  error instanceof Error ? error.message : typeof error === "object" && error !== null && "message" in error
    ? String((error as { readonly message: unknown }).message)
    : String(error)
