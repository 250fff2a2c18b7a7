/**
 * The domain of examples/shopping-cart.ts: a shopping cart's events, state, aggregate, products,
 * commands and domain errors. Nothing here touches storage; test/examples.test.ts tests it with
 * AggregateSpec.
 */
import { Aggregate } from "annals"
import { Data, Effect, Schema } from "effect"

/** In cents: money is never a float. */
export const Price = Schema.Int
export const ItemAdded = Schema.TaggedStruct("ItemAdded", { sku: Schema.String, name: Schema.String, price: Price, quantity: Schema.Int })
export const ItemRemoved = Schema.TaggedStruct("ItemRemoved", { sku: Schema.String })
export const CheckedOut = Schema.TaggedStruct("CheckedOut", { total: Price })
/** Every event of a cart. */
export const CartEvent = Schema.Union([ItemAdded, ItemRemoved, CheckedOut])
export type CartEvent = typeof CartEvent.Type

export const Line = Schema.Struct({ name: Schema.String, price: Price, quantity: Schema.Int })
/** The cart's lines by sku, and whether it is checked out. */
export const CartState = Schema.Struct({ lines: Schema.Record(Schema.String, Line), checkedOut: Schema.Boolean })
export type CartState = typeof CartState.Type

// Domain errors, here as plain Data.TaggedError classes (the bank account uses Schema.TaggedError).
/** Any change to a cart that is checked out. */
export class CartClosed extends Data.TaggedError("CartClosed") {
  override get message() {
    return "the cart is already checked out"
  }
}
/** A checkout of a cart without lines. */
export class EmptyCart extends Data.TaggedError("EmptyCart") {
  override get message() {
    return "there is nothing to check out"
  }
}
/** More units of a product than one order may hold. */
export class LimitReached extends Data.TaggedError("LimitReached")<{ readonly name: string; readonly limit: number }> {
  override get message() {
    return `at most ${this.limit} × ${this.name} per order`
  }
}

/** The shopping cart aggregate, with a snapshot every 3 events. */
export const Cart = Aggregate.make({
  namespace: "cart",
  event: CartEvent,
  state: CartState,
  initial: { lines: {}, checkedOut: false },
  evolve: (cart, event) => {
    switch (event._tag) {
      case "ItemAdded": {
        const quantity = (cart.lines[event.sku]?.quantity ?? 0) + event.quantity
        return { ...cart, lines: { ...cart.lines, [event.sku]: { name: event.name, price: event.price, quantity } } }
      }
      case "ItemRemoved": {
        const { [event.sku]: _removed, ...lines } = cart.lines
        return { ...cart, lines }
      }
      case "CheckedOut":
        return { ...cart, checkedOut: true }
    }
  },
  snapshot: { every: 3, schemaVersion: 1 }
})

/** A product of the shop. */
export interface Product {
  readonly sku: string
  readonly name: string
  readonly price: number
  /** Most units of this product one order may hold. */
  readonly limit?: number
}
export const beans: Product = { sku: "beans-1kg", name: "coffee beans 1 kg", price: 2_490 }
export const filters: Product = { sku: "filters-100", name: "paper filters", price: 450 }
export const mug: Product = { sku: "mug-ltd", name: "limited-edition mug", price: 1_800, limit: 2 }

/** Commands decide, from the current cart, which events happen (or fail with a domain error). */
export type CartCommand<Err> = Aggregate.Command<CartState, CartEvent, Err>

/** Adds up to `quantity` units: as many as the product's per-order limit still allows. */
export const addItem = (product: Product, quantity: number): CartCommand<CartClosed | LimitReached> => (cart) => {
  if (cart.checkedOut) return Effect.fail(new CartClosed())
  const inCart = cart.lines[product.sku]?.quantity ?? 0
  const allowed = Math.min(quantity, (product.limit ?? Infinity) - inCart)
  if (allowed <= 0) return Effect.fail(new LimitReached({ name: product.name, limit: product.limit ?? 0 }))
  return Effect.succeed([{ _tag: "ItemAdded", sku: product.sku, name: product.name, price: product.price, quantity: allowed }])
}

/** Removes a line; removing a product not in the cart changes nothing. */
export const removeItem = (sku: string): CartCommand<CartClosed> => (cart) => {
  if (cart.checkedOut) return Effect.fail(new CartClosed())
  return Effect.succeed(cart.lines[sku] === undefined ? [] : [{ _tag: "ItemRemoved", sku }])
}

/** The cart's total in cents. */
export const total = (cart: CartState) => Object.values(cart.lines).reduce((sum, line) => sum + line.price * line.quantity, 0)

/** Checks out a cart with lines, recording its total. */
export const checkout: CartCommand<CartClosed | EmptyCart> = (cart) => {
  if (cart.checkedOut) return Effect.fail(new CartClosed())
  if (Object.keys(cart.lines).length === 0) return Effect.fail(new EmptyCart())
  return Effect.succeed([{ _tag: "CheckedOut", total: total(cart) }])
}
