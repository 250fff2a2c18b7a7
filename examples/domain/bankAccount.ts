/**
 * The domain of examples/bank-account.ts: a bank account's events, state, aggregate, commands and
 * domain errors. Nothing here touches storage; test/examples.test.ts tests it with AggregateSpec.
 */
import { Aggregate } from "annals"
import { Effect, Schema } from "effect"

// Events are facts, in the past tense: a union of tagged structs. They are what the journal stores.
export const Opened = Schema.TaggedStruct("Opened", { owner: Schema.String })
export const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Finite, memo: Schema.String })
export const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Finite, memo: Schema.String })
/** Every event of an account. */
export const AccountEvent = Schema.Union([Opened, Deposited, Withdrawn])
export type AccountEvent = typeof AccountEvent.Type

/** The state is whatever the commands need in order to decide. Snapshots store it with this Schema. */
export const Account = Schema.Struct({ owner: Schema.String, balance: Schema.Finite, transactions: Schema.Int })
export type Account = typeof Account.Type

/** A withdrawal beyond the balance: the command fails with it instead of returning events (and nothing is stored). */
export class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", {
  balance: Schema.Finite,
  requested: Schema.Finite
}) {
  override get message() {
    return `insufficient funds: balance ${this.balance}, requested ${this.requested}`
  }
}
/** A deposit or withdrawal on an account that was never opened. */
export class AccountClosed extends Schema.TaggedError<AccountClosed>()("AccountClosed", {}) {}

/** The bank account aggregate, with a snapshot every 5 events. */
export const BankAccount = Aggregate.make({
  namespace: "account",
  event: AccountEvent,
  state: Account,
  initial: { owner: "", balance: 0, transactions: 0 },
  // evolve is pure and total: it only applies facts, it never says no.
  evolve: (account, event) => {
    switch (event._tag) {
      case "Opened":
        return { ...account, owner: event.owner }
      case "Deposited":
        return { ...account, balance: account.balance + event.amount, transactions: account.transactions + 1 }
      case "Withdrawn":
        return { ...account, balance: account.balance - event.amount, transactions: account.transactions + 1 }
    }
  },
  // Save a snapshot every 5 events, so a load folds at most 4 events on top of it.
  snapshot: { every: 5, schemaVersion: 1 }
})

/** Commands decide, from the current state, which events happen (or fail with a domain error). */
export type AccountCommand<Err = never> = Aggregate.Command<Account, AccountEvent, Err>

/** Opens the account for `owner`; opening twice changes nothing. */
export const open = (owner: string): AccountCommand => (account) =>
  Effect.succeed(account.owner === "" ? [{ _tag: "Opened", owner }] : [])

/** Deposits `amount` on an open account. */
export const deposit = (amount: number, memo: string): AccountCommand<AccountClosed> => (account) =>
  account.owner === "" ? Effect.fail(new AccountClosed({})) : Effect.succeed([{ _tag: "Deposited", amount, memo }])

/** Withdraws `amount` from an open account, if the balance covers it. */
export const withdraw = (amount: number, memo: string): AccountCommand<InsufficientFunds | AccountClosed> => (account) => {
  if (account.owner === "") return Effect.fail(new AccountClosed({}))
  if (account.balance < amount) return Effect.fail(new InsufficientFunds({ balance: account.balance, requested: amount }))
  return Effect.succeed([{ _tag: "Withdrawn", amount, memo }])
}
