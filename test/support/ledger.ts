/**
 * A small aggregate for runtime tests: a ledger whose state is order-sensitive (a running digest),
 * so a missing, duplicated or reordered event always changes the state.
 */
import { Effect, Schema } from "effect"
import { Aggregate, type Repository } from "../../src/index.ts"

export const Credited = Schema.TaggedStruct("Credited", { amount: Schema.Int })
export const Debited = Schema.TaggedStruct("Debited", { amount: Schema.Int, note: Schema.optional(Schema.String) })
export const LedgerEvent = Schema.Union([Credited, Debited])
export type LedgerEvent = typeof LedgerEvent.Type

export const LedgerState = Schema.Struct({ balance: Schema.Int, count: Schema.Int, digest: Schema.Int })
export type LedgerState = typeof LedgerState.Type

export const initial: LedgerState = { balance: 0, count: 0, digest: 7 }

export const evolve = (state: LedgerState, event: LedgerEvent): LedgerState => ({
  balance: state.balance + (event._tag === "Credited" ? event.amount : -event.amount),
  count: state.count + 1,
  digest: (Math.imul(state.digest, 31) + event.amount * (event._tag === "Credited" ? 3 : 5) + state.count) | 0
})

/** The reference: the plain fold of a list of events from `initial`. */
export const fold = (events: ReadonlyArray<LedgerEvent>): LedgerState => events.reduce(evolve, initial)

export const ledger = (snapshot?: { every: number; schemaVersion: number }) =>
  Aggregate.make({ namespace: "ledger", event: LedgerEvent, state: LedgerState, initial, evolve, snapshot })

/** The Repository of the ledger aggregate. */
export type LedgerRepository = Repository.Repository<LedgerEvent, LedgerState>

/** A command appending the given events, whatever the state. */
export const append = (events: ReadonlyArray<LedgerEvent>) => (_: LedgerState) => Effect.succeed(events)

/** mulberry32: a tiny seeded PRNG, so property tests are repeatable. */
export const prng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
