/**
 * The examples' domains (examples/domain/), tested as a user would test theirs: given/when/then with
 * AggregateSpec from annals/testing — accepted commands, commands that change nothing, and domain
 * errors with nothing appended.
 */
import { test } from "node:test"
import {
  AccountClosed,
  BankAccount,
  deposit,
  InsufficientFunds,
  open,
  withdraw
} from "../examples/domain/bankAccount.ts"
import { addItem, beans, Cart, checkout, filters, LimitReached, mug, removeItem } from "../examples/domain/shoppingCart.ts"
import { AggregateSpec } from "../src/testing/index.ts"

const account = AggregateSpec.for(BankAccount, { id: "alice" })
const opened = account.given([{ _tag: "Opened", owner: "Alice" }])

test("bank account: opening a new account records its owner", () =>
  account.when(open("Alice")).then([{ _tag: "Opened", owner: "Alice" }]))

test("bank account: opening it again changes nothing", () => opened.when(open("Mallory")).thenNothing())

test("bank account: a deposit on an open account is recorded with its memo", () =>
  opened.when(deposit(100, "salary")).then([{ _tag: "Deposited", amount: 100, memo: "salary" }]))

test("bank account: a withdrawal the balance covers is recorded", () =>
  opened.given([{ _tag: "Deposited", amount: 100, memo: "salary" }])
    .when(withdraw(60, "ATM"))
    .then([{ _tag: "Withdrawn", amount: 60, memo: "ATM" }]))

test("bank account: a withdrawal beyond the balance fails with InsufficientFunds (balance and amount named)", () =>
  opened.given([{ _tag: "Deposited", amount: 100, memo: "salary" }, { _tag: "Withdrawn", amount: 60, memo: "ATM" }])
    .when(withdraw(70, "cash at the branch"))
    .thenFails(new InsufficientFunds({ balance: 40, requested: 70 })))

test("bank account: no deposit on an account that was never opened", () =>
  account.when(deposit(5, "gift")).thenFails(new AccountClosed({})))

const cart = AggregateSpec.for(Cart, { id: "alice" })
const withBeans = cart.given([{ _tag: "ItemAdded", sku: beans.sku, name: beans.name, price: beans.price, quantity: 2 }])

test("shopping cart: adding an item records it with its price", () =>
  cart.when(addItem(filters, 1)).then([{ _tag: "ItemAdded", sku: filters.sku, name: filters.name, price: 450, quantity: 1 }]))

test("shopping cart: a limited product is added only up to its limit", () =>
  cart.given([{ _tag: "ItemAdded", sku: mug.sku, name: mug.name, price: mug.price, quantity: 1 }])
    .when(addItem(mug, 2))
    .then([{ _tag: "ItemAdded", sku: mug.sku, name: mug.name, price: mug.price, quantity: 1 }]))

test("shopping cart: past the limit, adding fails with LimitReached", () =>
  cart.given([{ _tag: "ItemAdded", sku: mug.sku, name: mug.name, price: mug.price, quantity: 2 }])
    .when(addItem(mug, 1))
    .thenFails(new LimitReached({ name: mug.name, limit: 2 })))

test("shopping cart: removing a product that is not in the cart changes nothing", () =>
  withBeans.when(removeItem(filters.sku)).thenNothing())

test("shopping cart: checkout records the total in cents", () =>
  withBeans.when(checkout).then([{ _tag: "CheckedOut", total: 4_980 }]))

test("shopping cart: an empty cart cannot be checked out", () =>
  withBeans.given([{ _tag: "ItemRemoved", sku: beans.sku }]).when(checkout).thenFails("EmptyCart"))

test("shopping cart: a checked-out cart is closed", () =>
  withBeans.given([{ _tag: "CheckedOut", total: 4_980 }]).when(addItem(beans, 1)).thenFails("CartClosed"))
