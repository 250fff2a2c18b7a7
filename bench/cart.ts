/**
 * The event shape of the decoding benchmarks (bench/decode.ts, bench/decodeCold.ts): a shopping cart
 * whose one event is `ItemAdded { sku, qty, price }` and whose state is the cart's total, beside the
 * two-event ledger of bench/runtime.ts (`Credited { amount }`, `Debited { amount, note? }`). Each comes
 * with its plain reducer over already unpacked events (the raw baseline's fold).
 */
import { Schema } from "effect"
import { Aggregate } from "../src/index.ts"

// ─── The cart: one event with a string and two numbers ───────────────────────────────────────────
/** The cart's event Schema, never given to a Codec here: decoded by Effect's interpreter, as before issue 17. */
export const ItemAddedSchema = Schema.TaggedStruct("ItemAdded", { sku: Schema.String, qty: Schema.Number, price: Schema.Number })
/** The cart's event. */
export type ItemAdded = typeof ItemAddedSchema.Type
const CartState = Schema.Struct({ total: Schema.Number, items: Schema.Number })
/** The cart's state. */
export type CartState = typeof CartState.Type

/** The cart's fold of one event. */
export const cartEvolve = (state: CartState, event: ItemAdded): CartState => ({
  total: state.total + event.qty * event.price,
  items: state.items + event.qty
})
/** The cart's initial state. */
export const cartInitial: CartState = { total: 0, items: 0 }

/** The cart aggregate in `namespace`; a new Schema each call, so that one never shares another's compiled decoder. */
export const cart = (namespace = "cart") =>
  Aggregate.make({
    namespace,
    event: Schema.TaggedStruct("ItemAdded", { sku: Schema.String, qty: Schema.Number, price: Schema.Number }),
    state: CartState,
    initial: cartInitial,
    evolve: cartEvolve
  })

/** The `i`-th cart event: 500 distinct skus, small integer quantities, prices with cents. */
export const itemAt = (i: number): ItemAdded => ({
  _tag: "ItemAdded",
  sku: `sku-${(i * 7919) % 500}`,
  qty: 1 + (i % 5),
  price: 9.99 + (i % 7)
})

// ─── The ledger of bench/runtime.ts ──────────────────────────────────────────────────────────────
const Credited = Schema.TaggedStruct("Credited", { amount: Schema.Int })
const Debited = Schema.TaggedStruct("Debited", { amount: Schema.Int, note: Schema.optional(Schema.String) })
/** The ledger's event Schema, never given to a Codec here (as `ItemAddedSchema`). */
export const LedgerEventSchema = Schema.Union([Credited, Debited])
/** The ledger's events. */
export type LedgerEvent = typeof LedgerEventSchema.Type
const LedgerState = Schema.Struct({ balance: Schema.Int, count: Schema.Int })
/** The ledger's state. */
export type LedgerState = typeof LedgerState.Type

/** The ledger's fold of one event. */
export const ledgerEvolve = (state: LedgerState, event: LedgerEvent): LedgerState => ({
  balance: state.balance + (event._tag === "Credited" ? event.amount : -event.amount),
  count: state.count + 1
})
/** The ledger's initial state. */
export const ledgerInitial: LedgerState = { balance: 0, count: 0 }

/** The ledger aggregate; a new Schema each call, as `cart`. */
export const ledger = (namespace = "ledger") =>
  Aggregate.make({
    namespace,
    event: Schema.Union([
      Schema.TaggedStruct("Credited", { amount: Schema.Int }),
      Schema.TaggedStruct("Debited", { amount: Schema.Int, note: Schema.optional(Schema.String) })
    ]),
    state: LedgerState,
    initial: ledgerInitial,
    evolve: ledgerEvolve
  })

/** The `i`-th ledger event, as bench/runtime.ts appends them. */
export const ledgerAt = (i: number): LedgerEvent =>
  i % 3 === 2 ? { _tag: "Debited", amount: i % 17, note: "fee" } : { _tag: "Credited", amount: i % 101 }
