/**
 * The settled position of a journal shared by many processes, as one process knows it: raised by
 * this process's own appends as they return and by what a watcher learns of the others'. A
 * follower in this process must never see a record before its append returned, and the watcher
 * may see an append of ours whose reply is still on its way: so what it learns waits while any of
 * our appends is in flight. Seqs are handed out in the order appends commit, so an append's own
 * last seq covers every lower one.
 * @internal
 */
import type { Settled } from "./follow.ts"

/** @internal */
export class InFlightPosition {
  /** The highest seq known to be settled here. */
  settledSeq = 0
  private inFlight = 0
  private deferred = 0
  private readonly settled: Settled

  constructor(settled: Settled) {
    this.settled = settled
  }

  private raise(seq: number): void {
    if (seq > this.settledSeq) {
      this.settledSeq = seq
      this.settled.notify()
    }
  }

  /** What a watcher or a read of the position learned: settled up to `seq`. */
  advance(seq: number): void {
    if (this.inFlight > 0) this.deferred = Math.max(this.deferred, seq)
    else this.raise(seq)
  }

  /** An append of this process is sent. */
  started(): void {
    this.inFlight++
  }

  /** An append of this process returned, with its last seq when it stored records. */
  replied(lastSeq: number | undefined): void {
    this.inFlight--
    if (lastSeq !== undefined) this.raise(lastSeq)
    if (this.inFlight === 0 && this.deferred > 0) {
      this.raise(this.deferred)
      this.deferred = 0
    }
  }
}
