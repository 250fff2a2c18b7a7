/**
 * The fold the projection suites run (`runtime/projection.test.ts`, `nats-projection-export.test.ts`):
 * `balances`, every ledger stream's state by id, with a count of its evolve calls; `reference`, the
 * plain fold of the records to compare it with; and `appendConcurrently`, ledger appends from several
 * fibers with a foreign record now and then.
 */
import { Effect, Schema } from "effect"
import { Codec, type Journal, Projection } from "../../src/index.ts"
import { evolve, initial, type LedgerEvent, LedgerState, ledger } from "./ledger.ts"

/** A credit of `amount`. */
export const credit = (amount: number): LedgerEvent => ({ _tag: "Credited", amount })
/** A debit of `amount`, with a note. */
export const debit = (amount: number): LedgerEvent => ({ _tag: "Debited", amount, note: `d${amount}` })
/** The ledger aggregate the folds read. */
export const Ledger = ledger()
/** Every ledger stream's state by id. */
export const Balances = Schema.Record(Schema.String, LedgerState)
/** Every ledger stream's state by id. */
export type Balances = typeof Balances.Type

/** A fold of every ledger stream's state by id; `calls` counts evolve calls. */
export const balances = <A extends boolean = false>(options: { readonly version?: number; readonly everyRecords?: number; readonly archive?: A } = {}) => {
  const counter = { calls: 0 }
  const projection = Projection.fold({
    name: "balances",
    version: options.version,
    aggregates: [Ledger],
    state: Balances,
    initial: {} as Balances,
    archive: options.archive,
    snapshot: { everyRecords: options.everyRecords ?? 5 },
    evolve: (state, event, record) => {
      counter.calls++
      return { ...state, [record.stream.id]: evolve(state[record.stream.id] ?? initial, event) }
    }
  })
  return { projection, counter }
}

/** The reference: the plain fold of every ledger record the journal holds (or `records`), by stream id. */
export const reference = (records: ReadonlyArray<Journal.JournalRecord>): Balances => {
  const out: Record<string, LedgerState> = {}
  for (const record of records) {
    if (record.namespace !== "ledger") continue
    const event = Codec.decodeRecord(Ledger.eventCodec, record)
    if (event._tag === "Failure") throw event.failure
    out[record.id] = evolve(out[record.id] ?? initial, event.success)
  }
  return out
}

/** Appends `count` ledger events from `fibers` fibers to streams acct-0…acct-4, and a foreign record now and then. */
export const appendConcurrently = (journal: Journal.Journal, fibers: number, count: number, from = 0) =>
  Effect.forEach(
    Array.from({ length: fibers }, (_, f) => f),
    (f) =>
      Effect.gen(function*() {
        for (let i = from + f; i < from + count; i += fibers) {
          const event = i % 3 === 0 ? debit(i) : credit(i)
          yield* journal.append({ namespace: "ledger", id: `acct-${i % 5}` }, "any", [{ type: event._tag, payload: Ledger.eventCodec.encode(event).pipe((r) => r._tag === "Success" ? r.success : new Uint8Array()) }])
          if (i % 7 === 0) yield* journal.append({ namespace: "other", id: "x" }, "any", [{ type: "Noise", payload: new Uint8Array([1]) }])
        }
      }),
    { concurrency: "unbounded", discard: true }
  )
