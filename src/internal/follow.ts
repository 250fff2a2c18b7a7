/**
 * `Journal.follow` written once for every layer: a layer supplies a page reader (settled records from
 * a seq, checked against truncation in the same step) and a `Settled` signal it notifies whenever
 * the settled position moves or the journal closes. The follower reads page after page from the log
 * (so a slow follower costs no memory: nothing is buffered for it) and, at the end, waits on the
 * signal — woken by the append that settles the next record, not by a timer.
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { JournalRecord } from "../Journal.ts"

/** Records per page of a follow. @internal */
export const FOLLOW_PAGE_RECORDS = 4096

/**
 * Wakes the fibers waiting for the log to move. A layer calls `notify` after its settled position
 * rose (or it closed); waiters re-check their condition and wait again if it still does not hold.
 *
 * The waiters wake on a microtask, never inside `notify`: a resumed fiber runs at once, so a
 * follower woken inside the append that settled its record would hand that record to its consumer
 * before the append returned, and a consumer that appends (a process manager) would append inside
 * the first append, in the middle of the layer's bookkeeping. A layer that resumes its appends on a
 * microtask of its own calls `notify` there, after raising its settled position, so that the appends
 * return before any follower wakes.
 * @internal
 */
export class Settled {
  private waiters = new Set<() => void>()
  /** Follow streams running now. */
  private followers = 0

  /** Wakes every waiter on a microtask (each re-checks its condition). */
  notify(): void {
    if (this.waiters.size === 0) return
    const waiters = this.waiters
    this.waiters = new Set()
    queueMicrotask(() => {
      for (const wake of waiters) wake()
    })
  }

  /**
   * Yields to the scheduler once while any follow stream runs, else does nothing. An append starts
   * with it: a writer appending in a tight loop would otherwise run on until the scheduler's budget
   * is spent (tens of appends), while the followers it woke — and the fibers they feed — wait for
   * their turn. (Yielding only after a `notify` that woke a waiter is not enough: a follower woken
   * but not yet run misses the next notify, and from then on nothing yields.)
   */
  readonly turn: Effect.Effect<void> = Effect.suspend(() => this.followers > 0 ? Effect.yieldNow : Effect.void)

  /** Counts `stream` among the running followers while it runs. */
  counted<A, E>(stream: Stream.Stream<A, E>): Stream.Stream<A, E> {
    return Stream.unwrap(Effect.acquireRelease(
      Effect.sync(() => {
        this.followers++
        return stream
      }),
      () => Effect.sync(() => void this.followers--)
    ))
  }

  /** Succeeds once `ready()` holds: at once if it does, else after a later `notify`. Interruptible. */
  until(ready: () => boolean): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      if (ready()) return resume(Effect.void)
      // Cleared on interruption: a wake already queued by `notify` then does nothing.
      let waiting = true
      const wake = () => {
        if (!waiting) return
        if (!ready()) return void this.waiters.add(wake)
        waiting = false
        resume(Effect.void)
      }
      this.waiters.add(wake)
      return Effect.sync(() => {
        waiting = false
        this.waiters.delete(wake)
      })
    })
  }
}

/** What a layer gives `follow`. @internal */
export interface FollowSource<E> {
  /**
   * At most `FOLLOW_PAGE_RECORDS` settled records with `seq ≥ fromSeq` in seq order, empty at the end
   * of the log; fails when records at or after `fromSeq` were truncated (or the journal closed).
   */
  readonly page: (fromSeq: number) => Effect.Effect<ReadonlyArray<JournalRecord>, E>
  /** True once a page from `fromSeq` may hold something new (the settled position reached it, or the journal closed). */
  readonly ready: (fromSeq: number) => boolean
  readonly settled: Settled
}

/**
 * The settled records with `seq ≥ fromSeq`, then each record as it settles, for ever: every record
 * once, in seq order. @internal
 */
export const follow = <E>(fromSeq: number, source: FollowSource<E>): Stream.Stream<JournalRecord, E> =>
  source.settled.counted(Stream.paginate(fromSeq, function next(seq): Effect.Effect<readonly [ReadonlyArray<JournalRecord>, Option.Option<number>], E> {
    return Effect.flatMap(source.page(seq), (records) =>
      records.length > 0
        ? Effect.succeed([records, Option.some(records[records.length - 1]!.seq + 1)] as const)
        // Seqs start at 1: from 0, wait for seq 1 (`ready(0)` holds on an empty log, and would spin).
        : Effect.andThen(source.settled.until(() => source.ready(Math.max(seq, 1))), next(seq)))
  }))
